"""The hand-off file between the Jupyter server's OAuth redirect relay and a waiting kernel.

On JupyterHub, VS Code remote and any Jupyter that is not on the user's machine, an authorization
redirect to 127.0.0.1 reaches the user's laptop, not the kernel. The server extension
(``flyteauth_jupyter.server``) offers instead ``<jupyter base url>/flyteauth/callback``: the user's
browser already reaches it, and Jupyter's own login protects it. It writes the redirect's query
(code, state, error, ...) to ``<runtime dir>/flyteauth-relay/<sha256(state)>.json`` (directory 0700,
file 0600, written atomically); the kernel that sent that ``state`` picks the file up and deletes it
at once. The server writes only for a state a kernel registered as waiting (a private
``<sha256(state)>.pending`` marker the kernel keeps fresh while it polls); for any other state it
writes nothing and says no sign-in is waiting. The kernel accepts a file only when it is a private
regular file of the same user and the state inside equals its own; stale files (results never taken,
markers of kernels that stopped) are swept. The file name is a hash, so listing the directory reveals
no state; the code itself lives on disk for well under a second, readable by the same user only. Why a file: kernel and server share the
file system but not an authenticated channel (the kernel holds no server token).

When the server extension is missing, the browser ends on a "404" page at that address instead; the
user can paste it (:meth:`RelayReceiver.submit_redirect`, same rules as the loopback receiver's).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import FlyteAuthError
from .loopback import AuthorizationResponse, RedirectReceiver, interpret_redirect

if TYPE_CHECKING:
    from ..control import Waiter

RELAY_PATH = "flyteauth/callback"
FIELDS = ("code", "state", "error", "error_description", "error_uri", "iss")
#: A kernel's "I am waiting for this state" marker is refreshed at every poll; older ones are stale.
PENDING_TTL = 120.0
#: A relayed redirect no kernel took within this many seconds is removed.
RESULT_TTL = 60.0
MAX_RELAY_BYTES = 64 * 1024

log = logging.getLogger(__name__)


def relay_dir() -> Path:
    """Where relayed redirects are dropped: Jupyter's runtime dir (``JUPYTER_RUNTIME_DIR`` honoured)."""
    base = os.environ.get("JUPYTER_RUNTIME_DIR")
    if not base:
        try:
            from jupyter_core.paths import jupyter_runtime_dir

            base = jupyter_runtime_dir()
        except ImportError:  # pragma: no cover - jupyter_core comes with any Jupyter
            base = os.path.join(os.path.expanduser("~"), ".local", "share", "jupyter", "runtime")
    return Path(base) / "flyteauth-relay"


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def relay_file(state: str, directory: Path | None = None) -> Path:
    return (directory or relay_dir()) / f"{_digest(state)}.json"


def pending_file(state: str, directory: Path | None = None) -> Path:
    """The marker a waiting kernel keeps for ``state``: the server relays only to a waiting state."""
    return (directory or relay_dir()) / f"{_digest(state)}.pending"


def _private_dir(directory: Path) -> Path:
    """Create (0700) or check the relay directory: ours, not a symlink, not open to others."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = os.lstat(directory)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != _uid():
        raise FlyteAuthError(f"The sign-in relay directory {directory} is not a private directory of yours; remove it.")
    if st.st_mode & 0o077:
        os.chmod(directory, 0o700)
    return directory


def _uid() -> int:
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid is not None else -1


def _ours(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) and st.st_uid == _uid() and not st.st_mode & 0o077


def register_pending(state: str, directory: Path | None = None) -> Path:
    """Kernel side: mark ``state`` as waiting (a private, empty file; refreshed by :func:`touch_pending`)."""
    target = pending_file(state, _private_dir(directory or relay_dir()))
    with contextlib.suppress(FileNotFoundError):
        target.unlink()  # never trust a leftover
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.close(fd)
    return target


def touch_pending(state: str, directory: Path | None = None) -> None:
    with contextlib.suppress(OSError):
        os.utime(pending_file(state, directory))


def sweep(directory: Path | None = None, *, now: float | None = None) -> int:
    """Remove stale files: results no kernel took within RESULT_TTL, markers of kernels that stopped
    polling (PENDING_TTL), and half-written temporary files. Returns how many were removed."""
    directory = directory or relay_dir()
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        ttl = PENDING_TTL if entry.name.endswith(".pending") else RESULT_TTL
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime > ttl:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


def write_redirect(query: dict[str, str], directory: Path | None = None) -> Path | None:
    """Server side: hand a redirect's query to the kernel waiting on its ``state``.

    Only a state a kernel registered (:func:`register_pending`, a fresh private marker) gets a file;
    the marker is claimed (removed) so one redirect per sign-in is relayed. Returns the file, or None
    when no sign-in is waiting for that state (nothing is written). Stale files are swept first.
    """
    state = query.get("state") or ""
    if not state:
        raise ValueError("the redirect has no state")
    directory = directory or relay_dir()
    if not directory.is_dir():
        return None
    _private_dir(directory)
    sweep(directory)
    marker = pending_file(state, directory)
    try:
        st = os.lstat(marker)
        if not _ours(st) or time.time() - st.st_mtime > PENDING_TTL:
            return None
        os.unlink(marker)  # claim it: only one redirect per waiting state
    except FileNotFoundError:
        return None
    target = relay_file(state, directory)
    payload = {key: query[key] for key in FIELDS if query.get(key)}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".relay-")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def take_redirect(state: str, directory: Path | None = None) -> dict[str, str] | None:
    """Kernel side: read and delete the redirect relayed for ``state``; None when not there yet.

    The file must be a regular file of ours that no one else may read or write, and the state inside
    it must be ours (compared in constant time); anything else is removed (when possible), logged
    without its content, and ignored, so the sign-in keeps waiting.
    """
    target = relay_file(state, directory)
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:  # a symlink (ELOOP) or a file we may not read
        log.warning("Ignoring an unusable relayed sign-in file in %s (%s).", target.parent, type(exc).__name__)
        with contextlib.suppress(OSError):
            target.unlink()
        return None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        raw = handle.read(MAX_RELAY_BYTES + 1) if _ours(st) else None
    with contextlib.suppress(OSError):
        target.unlink()
    if raw is None:
        log.warning("Ignoring a relayed sign-in file in %s that is not a private file of yours.", target.parent)
        return None
    try:
        payload = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_RELAY_BYTES else None
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        return {"error": "invalid_request", "error_description": "the relayed redirect could not be read"}
    inside = payload.get("state")
    if not isinstance(inside, str) or not hmac.compare_digest(inside.encode("utf-8"), state.encode("utf-8")):
        log.warning("Ignoring a relayed sign-in file in %s whose state is not this sign-in's.", target.parent)
        return None
    return {str(k): str(v) for k, v in payload.items()}


POLL_SECONDS = 0.2


class RelayReceiver(RedirectReceiver):
    """Kernel side of the relay: waits for the redirect the server extension dropped for our state.

    Same surface as :class:`~flyteauth_jupyter.transport.loopback.LoopbackReceiver` (``start``,
    ``close``, ``redirect_uri``, ``wait(waiter)``), so the auth-code flow picks one or the other by
    the redirect URI: loopback hosts get a socket, ``https://<jupyter>/.../flyteauth/callback`` the relay.
    """

    def __init__(
        self,
        redirect_uri: str,
        *,
        state: str,
        expected_issuer: str | None = None,
        site: str | None = None,
        directory: Path | None = None,
    ) -> None:
        self.redirect_uri = self.registered_uri = redirect_uri
        self._state = state
        self._expected_issuer = expected_issuer
        self._site = site
        self._directory = directory
        self._path = urlsplit(redirect_uri).path or "/"
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._closed = False
        self._result: AuthorizationResponse | None = None
        self._error: FlyteAuthError | None = None
        self.refused_paste_count = 0
        #: how the wait was completed: "redirect" (relayed by the server) or "paste" (submit_redirect)
        self.completed_by: str | None = None

    def __repr__(self) -> str:
        return f"RelayReceiver(redirect_uri={self.redirect_uri!r})"

    def start(self) -> "RelayReceiver":
        stale = relay_file(self._state, self._directory)
        if stale.exists():  # cannot happen with a fresh state; never trust a leftover
            stale.unlink()
        try:
            register_pending(self._state, self._directory)  # the server relays only to a waiting state
        except OSError as exc:
            log.warning("Cannot register the sign-in with the Jupyter relay (%s); paste the address instead.",
                        type(exc).__name__)
        return self

    def close(self) -> None:
        with self._lock:
            self._closed = True
        for path in (relay_file(self._state, self._directory), pending_file(self._state, self._directory)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def wait(self, waiter: "Waiter") -> "AuthorizationResponse":
        """Poll for the relayed redirect until it arrives (or is pasted), the deadline passes or the
        flow is cancelled."""
        while not self._done.is_set():
            params = take_redirect(self._state, self._directory)
            if params is not None:
                with self._lock:
                    if not self._done.is_set():  # a paste may have won meanwhile
                        self._result, self._error = interpret_redirect(params, self._expected_issuer, where=self._site)
                        self.completed_by = "redirect"
                        self._done.set()
                break
            touch_pending(self._state, self._directory)  # still waiting: keep the marker fresh
            waiter.wait_for(self._done, POLL_SECONDS)  # a paste wakes us at once
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def _path_ok(self, path: str) -> bool:
        return path == self._path or path.rstrip("/").endswith("/" + RELAY_PATH)



def is_relay_uri(redirect_uri: str) -> bool:
    """True for a redirect URI served by the Jupyter relay (its path ends with /flyteauth/callback)."""
    return urlsplit(redirect_uri).path.rstrip("/").endswith("/" + RELAY_PATH)
