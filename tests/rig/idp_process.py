"""What the two test IdPs' runners share: one server process on 127.0.0.1, started and stopped.

:class:`IdPProcess` starts a subclass's command with the settings as environment variables, waits
(with a deadline) for its ``<PREFIX>READY <issuer>`` line on stdout, kills a start that is not ready
in time and tries again (as often as the subclass allows), keeps the process's stderr in a log file
(``log_tail()``), and stops it (also at interpreter exit). It also reads the rig's own feeds the two
servers serve alike (the discovery document, ``/rig/grants``). rig.idp.IdP (node-oidc-provider) and
rig.idp2.DjangoIdP (django-oauth-toolkit) add their command, settings, endpoints and dialect.

One ``slug`` names everything of a server: its environment variables and ready line start with
``slug.upper() + "_"`` (``IDP_``, ``IDP2_``), its log and secrets files with the slug.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar
from urllib.parse import urljoin

import requests

HOST = "127.0.0.1"

USERS = {"alice": "wonderland", "bob": "builder"}
CONFIDENTIAL_SECRET = "confidential-secret"

#: When set (tests/conftest.py does, for the session), every provider appends the secrets it issues
#: to its own file in this directory (see provider.js IDP_SECRETS_FILE and tests/rig/secret_log.py).
SECRETS_DIR_ENV = "FLYTEAUTH_RIG_SECRETS_DIR"

_running: "weakref.WeakSet[IdPProcess]" = weakref.WeakSet()

Self = TypeVar("Self", bound="IdPProcess")


# converters for the settings tables (settings value -> environment value)
def flag(value: Any) -> str:
    return "1" if value else "0"


def user_list(value: Any) -> str:
    """``{"alice": "wonderland"}`` (or the string itself) as ``alice:wonderland,...``."""
    return value if isinstance(value, str) else ",".join(f"{u}:{p}" for u, p in value.items())


class IdPError(RuntimeError):
    """The provider could not be installed or started."""


class IdPProcess:
    """A test identity provider as one process on 127.0.0.1; subclasses say which."""

    #: the server's name (``oauth_server`` fixtures are keyed by it)
    name: ClassVar[str]
    #: what error messages call it
    label: ClassVar[str]
    slug: ClassVar[str]
    #: settings name -> (environment variable, converter)
    SETTINGS: ClassVar[dict[str, tuple[str, Callable[[Any], Any]]]]
    #: how long one start may take before it is killed (and tried again while attempts are left)
    START_TIMEOUT: ClassVar[float]
    ATTEMPTS: ClassVar[int] = 1
    #: how long ``stop()`` waits after SIGTERM before it kills
    TERMINATE_WAIT: ClassVar[float] = 5.0

    users = USERS
    confidential_secret = CONFIDENTIAL_SECRET

    def __init__(self, *, port: int = 0, host: str = HOST, **settings: Any) -> None:
        unknown = set(settings) - set(self.SETTINGS)
        if unknown:
            raise TypeError(f"settings {self.name} does not have: {sorted(unknown)}")
        self.host = host
        self.requested_port = port
        self.settings = dict(settings)
        self.issuer: str | None = None
        self.port: int | None = None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._log_path: str | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._metadata: dict[str, Any] | None = None

    # ------------------------------------------------------------------ what a subclass says
    def _command(self) -> tuple[list[str], Path]:
        """The argv and working directory of one start (called before each attempt)."""
        raise NotImplementedError

    def _stopped(self) -> None:
        """Clean up after the process is gone (each attempt's, and the last one's)."""

    # ------------------------------------------------------------------ lifecycle
    @property
    def _prefix(self) -> str:
        return self.slug.upper() + "_"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(self._prefix)}
        for name, value in self.settings.items():
            if value is not None:
                var, conv = self.SETTINGS[name]
                env[var] = str(conv(value))
        secrets_dir = os.environ.get(SECRETS_DIR_ENV)
        if secrets_dir:
            env[f"{self._prefix}SECRETS_FILE"] = os.path.join(
                secrets_dir, f"{self.slug}-{os.getpid()}-{id(self):x}.secrets")
        return env

    def start(self: Self, timeout: float | None = None, attempts: int | None = None) -> Self:
        """Start the server and wait for it; ``timeout`` (each start) and ``attempts`` default to the
        class's START_TIMEOUT and ATTEMPTS. A start that exits, or is never ready, raises IdPError with
        the server's log."""
        timeout = self.START_TIMEOUT if timeout is None else timeout
        attempts = self.ATTEMPTS if attempts is None else attempts
        if self._proc is not None:
            raise IdPError(f"{self.label} already started")
        began = time.monotonic()
        for attempt in range(1, attempts + 1):
            why = self._start_once(timeout)
            if why is None:
                self.startup_seconds = time.monotonic() - began
                return self
            if why != "hung" or attempt == attempts:
                tail = self.log_tail()
                if why == "hung":
                    tail = f"{tail}\nits threads: {self._threads_now()}"
                self.stop()
                if why == "exited":
                    what = "exited"
                elif attempts == 1:
                    what = f"not ready within {timeout:.0f} s"
                else:
                    what = f"not ready after {attempts} starts of {timeout:.0f} s"
                raise IdPError(f"{self.label} {what}: {tail}")
            print(f"{self.label}: not ready in {timeout:.0f} s; starting it again "
                  f"(attempt {attempt + 1} of {attempts}); its threads: {self._threads_now()}",
                  file=sys.stderr, flush=True)
            self.stop()
            with contextlib.suppress(OSError):
                os.unlink(self._log_path or "")
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> str | None:
        """Start the process once: None when ready, else "exited" or "hung"."""
        self._ready.clear()
        argv, cwd = self._command()
        fd, self._log_path = tempfile.mkstemp(prefix=f"flyteauth-{self.slug}-", suffix=".log")
        log = os.fdopen(fd, "w")
        try:
            self._proc = subprocess.Popen(
                argv, cwd=cwd, env=self.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                text=True, bufsize=1,
            )
        finally:
            log.close()
        _running.add(self)
        self._reader = threading.Thread(target=self._read_stdout, name=f"{self.slug}-stdout", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._proc.poll() is not None:
                return "exited"
            if time.monotonic() > deadline:
                return "hung"
        return None

    def _threads_now(self) -> str:
        """Where each thread of the running process waits (Linux /proc: name, state, kernel wait
        channel, syscall number), the evidence of a stalled start; "" where /proc cannot tell."""
        proc = self._proc
        if proc is None:
            return ""
        seen = []
        for task in sorted(Path(f"/proc/{proc.pid}/task").glob("*"))[:32]:
            try:
                name = (task / "comm").read_text().strip()
                state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
                wchan = (task / "wchan").read_text().strip() or "-"
                syscall = (task / "syscall").read_text().split(" ", 1)[0]
            except OSError:
                continue
            seen.append(f"{name}:{state}:{wchan}:{syscall}")
        return " ".join(seen)

    def _read_stdout(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        ready = f"{self._prefix}READY "
        for line in proc.stdout:  # ends when the process closes stdout
            if line.startswith(ready) and not self._ready.is_set():
                self.issuer = line.split(None, 1)[1].strip()
                self.port = int(self.issuer.rsplit(":", 1)[1])
                self._ready.set()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _running.discard(self)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self.TERMINATE_WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._reader is not None:
            self._reader.join(2)
        self._stopped()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, chars: int = 1500) -> str:
        if not self._log_path or not os.path.exists(self._log_path):
            return ""
        with open(self._log_path, encoding="utf-8", errors="replace") as f:
            return f.read()[-chars:]

    def __enter__(self: Self) -> Self:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(issuer={self.issuer!r}, settings={self.settings!r})"

    # ------------------------------------------------------------------ the rig's requests
    def url(self, path: str = "/") -> str:
        if self.issuer is None:
            raise IdPError(f"{self.label} not started")
        return urljoin(self.issuer + "/", path.lstrip("/"))

    def _get(self, path: str) -> Any:
        """GET one of the server's JSON documents (no proxy, 10 s)."""
        with requests.Session() as s:
            s.trust_env = False
            r = s.get(self.url(path), timeout=10)
            r.raise_for_status()
            return r.json()

    def _post(self, url: str, data: dict[str, str]) -> Any:
        """POST a form to ``url`` and read its JSON answer (no proxy, 10 s)."""
        with requests.Session() as s:
            s.trust_env = False
            r = s.post(url, data=data, timeout=10)
            r.raise_for_status()
            return r.json()

    @property
    def metadata(self) -> dict[str, Any]:
        """The OpenID Connect discovery document (fetched once)."""
        if self._metadata is None:
            self._metadata = dict(self._get("/.well-known/openid-configuration"))
        return self._metadata

    def grants(self) -> dict[str, Any]:
        """The token endpoint's counters (GET /rig/grants): ``success`` and ``error`` by grant type /
        error code, ``revoked`` (grants revoked, e.g. on a replayed refresh token), and, from
        node-oidc-provider, ``requests``: every request it answered, its /rig/ feeds excepted."""
        return dict(self._get("/rig/grants"))


@atexit.register
def _stop_all() -> None:
    for idp in list(_running):
        try:
            idp.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
