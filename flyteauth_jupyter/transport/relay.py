"""The hand-off file between the Jupyter server's OAuth redirect relay and a waiting kernel.

On JupyterHub, VS Code remote and any Jupyter that is not on the user's machine, an authorization
redirect to 127.0.0.1 reaches the user's laptop, not the kernel. The server extension
(``flyteauth_jupyter.server``) offers instead ``<jupyter base url>/flyteauth/callback``: the user's
browser already reaches it, and Jupyter's own login protects it. It writes the redirect's query
(code, state, error, ...) to ``<runtime dir>/flyteauth-relay/<sha256(state)>.json`` (directory 0700,
file 0600, written atomically); the kernel that sent that ``state`` picks the file up and deletes it
at once. The file name is a hash, so listing the directory reveals no state; the code itself lives on
disk for well under a second, readable by the same user only. Why a file: kernel and server share the
file system but not an authenticated channel (the kernel holds no server token).

When the server extension is missing, the browser ends on a "404" page at that address instead; the
user can paste it (:meth:`RelayReceiver.submit_redirect`, same rules as the loopback receiver's).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import FlyteAuthError
from .loopback import AuthorizationResponse, RedirectReceiver, interpret_redirect

if TYPE_CHECKING:
    from ..control import Waiter

RELAY_PATH = "flyteauth/callback"
FIELDS = ("code", "state", "error", "error_description", "error_uri", "iss")


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


def relay_file(state: str, directory: Path | None = None) -> Path:
    digest = hashlib.sha256(state.encode("utf-8")).hexdigest()
    return (directory or relay_dir()) / f"{digest}.json"


def write_redirect(query: dict[str, str], directory: Path | None = None) -> Path:
    """Drop a redirect's query for the kernel waiting on its ``state`` (server side)."""
    state = query.get("state") or ""
    if not state:
        raise ValueError("the redirect has no state")
    directory = directory or relay_dir()
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    target = relay_file(state, directory)
    payload = {key: query[key] for key in FIELDS if query.get(key)}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".relay-")
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
    """Read and delete the redirect relayed for ``state`` (kernel side); None when not there yet."""
    target = relay_file(state, directory)
    try:
        with open(target, encoding="utf-8") as handle:
            payload = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        payload = {"error": "invalid_request", "error_description": "the relayed redirect could not be read"}
    try:
        target.unlink()
    except FileNotFoundError:
        pass
    return {str(k): str(v) for k, v in payload.items()} if isinstance(payload, dict) else None


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
        return self

    def close(self) -> None:
        with self._lock:
            self._closed = True
        try:
            relay_file(self._state, self._directory).unlink()
        except FileNotFoundError:
            pass

    def wait(self, waiter: "Waiter") -> "AuthorizationResponse":
        """Poll for the relayed redirect until it arrives (or is pasted), the deadline passes or the
        flow is cancelled."""
        while not self._done.is_set():
            params = take_redirect(self._state, self._directory)
            if params is not None:
                with self._lock:
                    if not self._done.is_set():  # a paste may have won meanwhile
                        self._result, self._error = interpret_redirect(params, self._expected_issuer)
                        self.completed_by = "redirect"
                        self._done.set()
                break
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
