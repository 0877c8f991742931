"""Start and stop the second loopback identity provider (tests/idp2, django-oauth-toolkit).

``DjangoIdP(**settings).start()`` runs ``python -m tests.idp2.serve --port 0 --db <fresh temporary
directory>/idp2.sqlite3``, waits with a deadline for its ``IDP2_READY <issuer>`` line and
exposes the same surface as :class:`rig.idp.IdP` (endpoints, ``metadata``, ``grants()``,
``introspect()``, ``users``), so a test or stand-in written for one server runs against the other.
``stop()`` (also run at interpreter exit) terminates the process and removes its database directory.

Settings use tests/idp's vocabulary where the servers share a knob (``at_ttl``, ``rt_ttl``,
``code_ttl``, ``device_interval``, ``rt_rotation`` "always"/"never", ``users``); ``rt_reuse`` and
``rt_grace`` are django-oauth-toolkit's own (reuse detection on/off, grace seconds). A node-only
knob (``slow_down``, ``device_code_ttl``, ...) raises TypeError: there is nothing to set.

Dialect, as measured (reference/identity-providers.md): the device grant issues no id_token even
with ``openid``; neither discovery document advertises ``device_authorization_endpoint`` (the rig
knows it: ``device_authorization_endpoint``); ``sub`` is the user's primary key
(``subject("alice")``); no ``slow_down``; RFC 7662 introspection answers for access tokens only, so
``introspect()`` asks the rig's ``/rig/introspect``, which answers for refresh tokens too.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from .idp import CONFIDENTIAL_SECRET, NATIVE_CLIENT, SECRETS_DIR_ENV, USERS, IdPError

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
NAME = "django-oauth-toolkit"


def _rotation(value: Any) -> str:
    if value in ("always", True):
        return "1"
    if value in ("never", False):
        return "0"
    raise TypeError(f"rt_rotation: django-oauth-toolkit rotates always or never, not {value!r}")


# settings name -> (environment variable, converter)
_SETTINGS = {
    "at_ttl": ("IDP2_AT_TTL", int),
    "rt_ttl": ("IDP2_RT_TTL", int),
    "code_ttl": ("IDP2_CODE_TTL", int),
    "device_interval": ("IDP2_DEVICE_INTERVAL", int),
    "rt_rotation": ("IDP2_RT_ROTATION", _rotation),
    "rt_reuse": ("IDP2_RT_REUSE", lambda v: "1" if v else "0"),
    "rt_grace": ("IDP2_RT_GRACE", int),
    "users": ("IDP2_USERS", lambda v: v if isinstance(v, str) else ",".join(f"{u}:{p}" for u, p in v.items())),
}

_running: "weakref.WeakSet[DjangoIdP]" = weakref.WeakSet()


class DjangoIdP:
    """A running django-oauth-toolkit on 127.0.0.1 (one Python process, threaded WSGI server)."""

    name = NAME
    #: The device grant answers with access and refresh tokens only.
    device_id_token = False
    users = USERS
    confidential_secret = CONFIDENTIAL_SECRET

    def __init__(self, *, port: int = 0, host: str = HOST, **settings: Any) -> None:
        unknown = set(settings) - set(_SETTINGS)
        if unknown:
            raise TypeError(f"settings django-oauth-toolkit does not have: {sorted(unknown)}")
        self.host = host
        self.requested_port = port
        self.settings = dict(settings)
        self.issuer: str | None = None
        self.port: int | None = None
        self.startup_seconds: float | None = None
        self.db_dir: Path | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._log_path: str | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._metadata: dict[str, Any] | None = None
        self._as_metadata: dict[str, Any] | None = None
        self._subjects: dict[str, str] | None = None
        self._session = requests.Session()
        self._session.trust_env = False

    # ------------------------------------------------------------------ lifecycle
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP2_")}
        for name, value in self.settings.items():
            if value is not None:
                var, conv = _SETTINGS[name]
                env[var] = str(conv(value))
        secrets_dir = os.environ.get(SECRETS_DIR_ENV)
        if secrets_dir:
            env["IDP2_SECRETS_FILE"] = os.path.join(secrets_dir, f"idp2-{os.getpid()}-{id(self):x}.secrets")
        return env

    def start(self, timeout: float = 30.0) -> "DjangoIdP":  # a start takes about a second
        if self._proc is not None:
            raise IdPError("django IdP already started")
        began = time.monotonic()
        self.db_dir = Path(tempfile.mkdtemp(prefix="flyteauth-idp2-"))
        fd, self._log_path = tempfile.mkstemp(prefix="flyteauth-idp2-", suffix=".log")
        log = os.fdopen(fd, "w")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.idp2.serve", "--host", self.host, "--port", str(self.requested_port),
                 "--db", str(self.db_dir / "idp2.sqlite3")],
                cwd=REPO, env=self.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                text=True, bufsize=1,
            )
        finally:
            log.close()
        _running.add(self)
        self._reader = threading.Thread(target=self._read_stdout, name="idp2-stdout", daemon=True)
        self._reader.start()
        deadline = began + timeout
        while not self._ready.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                what = "exited" if self._proc.poll() is not None else f"not ready within {timeout:.0f} s"
                tail = self.log_tail()
                self.stop()
                raise IdPError(f"test IdP (django-oauth-toolkit) {what}: {tail}")
        self.startup_seconds = time.monotonic() - began
        return self

    def _read_stdout(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:  # ends when the process closes stdout
            if line.startswith("IDP2_READY ") and not self._ready.is_set():
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
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._reader is not None:
            self._reader.join(2)
        self._session.close()
        if self.db_dir is not None:
            shutil.rmtree(self.db_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, chars: int = 1500) -> str:
        if not self._log_path or not os.path.exists(self._log_path):
            return ""
        with open(self._log_path, encoding="utf-8", errors="replace") as f:
            return f.read()[-chars:]

    def __enter__(self) -> "DjangoIdP":
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DjangoIdP(issuer={self.issuer!r}, settings={self.settings!r})"

    # ------------------------------------------------------------------ endpoints
    def url(self, path: str = "/") -> str:
        if self.issuer is None:
            raise IdPError("django IdP not started")
        return urljoin(self.issuer + "/", path.lstrip("/"))

    def _get(self, path: str) -> Any:
        r = self._session.get(self.url(path), timeout=10)
        r.raise_for_status()
        return r.json()

    @property
    def metadata(self) -> dict[str, Any]:
        """The OpenID Connect discovery document (fetched once)."""
        if self._metadata is None:
            self._metadata = self._get("/.well-known/openid-configuration")
        return self._metadata

    @property
    def authorization_server_metadata(self) -> dict[str, Any]:
        """The RFC 8414 document (fetched once): it has ``revocation_endpoint`` and
        ``grant_types_supported``, which the OpenID document lacks. FlyteAdmin relays this one."""
        if self._as_metadata is None:
            self._as_metadata = self._get("/.well-known/oauth-authorization-server")
        return self._as_metadata

    @property
    def token_endpoint(self) -> str:
        return self.url("/token/")

    @property
    def authorization_endpoint(self) -> str:
        return self.url("/authorize/")

    @property
    def device_authorization_endpoint(self) -> str:
        return self.url("/device-authorization/")

    @property
    def introspection_endpoint(self) -> str:
        return self.url("/introspect/")

    @property
    def revocation_endpoint(self) -> str:
        return self.url("/revoke_token/")

    @property
    def jwks_uri(self) -> str:
        return self.url("/.well-known/jwks.json")

    @property
    def userinfo_endpoint(self) -> str:
        return self.url("/userinfo/")

    def grants(self) -> dict[str, Any]:
        """The token endpoint's counters (GET /rig/grants), in rig.idp.IdP.grants()'s shape."""
        return dict(self._get("/rig/grants"))

    def introspect(self, token: str, client_id: str = NATIVE_CLIENT) -> dict[str, Any]:
        """``{"active": bool, ...}`` for an access or refresh token (the rig's /rig/introspect)."""
        r = self._session.post(self.url("/rig/introspect"), data={"token": token}, timeout=10)
        r.raise_for_status()
        return dict(r.json())

    def subject(self, username: str) -> str:
        """The OIDC ``sub`` of a seeded user: what ``Credentials.subject`` shows after a login whose
        id token has no ``profile`` or ``email`` claims."""
        if self._subjects is None:
            self._subjects = dict(self._get("/rig/users"))
        return self._subjects[username]


@atexit.register
def _stop_all() -> None:
    for idp in list(_running):
        try:
            idp.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
