"""Start and stop the loopback OpenID provider (tests/idp/provider.js, node-oidc-provider).

``IdP(**settings).start()`` spawns ``node provider.js`` with the settings as environment variables,
waits (with a deadline) for its ``IDP_READY <issuer>`` line and exposes the issuer. ``stop()`` (also
run at interpreter exit) terminates the process.
"""

from __future__ import annotations

import atexit
import contextlib
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

IDP_DIR = Path(__file__).resolve().parent.parent / "idp"
PROVIDER_JS = IDP_DIR / "provider.js"
HOST = "127.0.0.1"

USERS = {"alice": "wonderland", "bob": "builder"}
CONFIDENTIAL_SECRET = "confidential-secret"
NATIVE_CLIENT = "jupyter-native"
WEB_CLIENT = "jupyter-web-public"
CONFIDENTIAL_CLIENT = "jupyter-confidential"
CONFIDENTIAL_POST_CLIENT = "jupyter-confidential-post"
RESOURCE = "urn:jupyter:api"
SCOPES = ("openid", "offline_access", "profile", "email", "api:read", "api:write")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

# settings name -> (environment variable, converter)
_SETTINGS = {
    "at_ttl": ("IDP_AT_TTL", int),
    "cc_ttl": ("IDP_CC_TTL", int),
    "rt_ttl": ("IDP_RT_TTL", int),
    "code_ttl": ("IDP_CODE_TTL", int),
    "device_code_ttl": ("IDP_DEVICE_CODE_TTL", int),
    "device_interval": ("IDP_DEVICE_INTERVAL", int),
    "slow_down": ("IDP_SLOW_DOWN", lambda v: "1" if v else "0"),
    "rt_rotation": ("IDP_RT_ROTATION", str),
    "at_format": ("IDP_AT_FORMAT", str),
    "resource": ("IDP_RESOURCE", str),
    "resource_scopes": ("IDP_RESOURCE_SCOPES", lambda v: v if isinstance(v, str) else " ".join(v)),
    "users": ("IDP_USERS", lambda v: v if isinstance(v, str) else ",".join(f"{u}:{p}" for u, p in v.items())),
    "clients_file": ("IDP_CLIENTS_FILE", str),
    "extra_clients_file": ("IDP_EXTRA_CLIENTS_FILE", str),
    "dev_interactions": ("IDP_DEV_INTERACTIONS", lambda v: "1" if v else "0"),
    # the token endpoint's client authentication methods (its token_endpoint_auth_methods_supported)
    "client_auth_methods": ("IDP_CLIENT_AUTH_METHODS", lambda v: v if isinstance(v, str) else " ".join(v)),
    # `make demo` only: keys, grants and tokens kept in this directory across restarts (provider.js)
    "state_dir": ("IDP_STATE_DIR", str),
}

#: When set (tests/conftest.py does, for the session), every provider appends the secrets it issues
#: to its own file in this directory (see provider.js IDP_SECRETS_FILE and tests/rig/secret_log.py).
SECRETS_DIR_ENV = "FLYTEAUTH_RIG_SECRETS_DIR"

_running: "weakref.WeakSet[IdP]" = weakref.WeakSet()
_npm_lock = threading.Lock()


class IdPError(RuntimeError):
    """The provider could not be installed or started."""


def ensure_node_modules(timeout: float = 300) -> None:
    """Run ``npm ci`` in tests/idp when its node_modules is missing (never skip silently)."""
    with _npm_lock:
        if (IDP_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            return
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            raise IdPError("node and npm are needed for the test identity provider (tests/idp); install Node.js 20+")
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=IDP_DIR, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        )
        if proc.returncode != 0:
            raise IdPError(f"npm ci in {IDP_DIR} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")


class IdP:
    """A running node-oidc-provider on 127.0.0.1 (one node process)."""

    name = "node-oidc-provider"
    #: The device grant answers with an id_token when ``openid`` was asked for (rig.idp2's does not).
    device_id_token = True

    def __init__(self, *, port: int = 0, host: str = HOST, **settings: Any) -> None:
        unknown = set(settings) - set(_SETTINGS)
        if unknown:
            raise TypeError(f"unknown IdP settings: {sorted(unknown)}")
        self.host = host
        self.requested_port = port
        self.settings = dict(settings)
        self.issuer: str | None = None
        self.port: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._log_path: str | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._metadata: dict[str, Any] | None = None

    # ------------------------------------------------------------------ lifecycle
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        env.update({"IDP_HOST": self.host, "IDP_PORT": str(self.requested_port)})
        for name, value in self.settings.items():
            if value is None:
                continue
            var, conv = _SETTINGS[name]
            env[var] = str(conv(value))
        env.pop("NODE_OPTIONS", None)
        secrets_dir = os.environ.get(SECRETS_DIR_ENV)
        if secrets_dir:
            env["IDP_SECRETS_FILE"] = os.path.join(secrets_dir, f"idp-{os.getpid()}-{id(self):x}.secrets")
        return env

    #: Node 20 now and then hangs while starting provider.js, before it binds its socket, with its main
    #: thread in a futex wait and every other thread idle (seen about once in three full runs on a fresh
    #: clone, at any point of the run, never with a standalone start). So a start that is not ready
    #: within ``timeout`` is killed and tried again, ``attempts`` times in all; a start that fails
    #: (exits, or hangs every time) still raises IdPError with the provider's log.
    ATTEMPTS = 3

    def start(self, timeout: float = 25.0, attempts: int = ATTEMPTS) -> "IdP":  # a healthy start takes 1-3 s
        if self._proc is not None:
            raise IdPError("IdP already started")
        ensure_node_modules()
        node = shutil.which("node")
        if node is None:
            raise IdPError("node is needed for the test identity provider (tests/idp)")
        for attempt in range(1, attempts + 1):
            why = self._start_once(node, timeout)
            if why is None:
                return self
            if why != "hung" or attempt == attempts:
                tail = self.log_tail()
                self.stop()
                what = "exited" if why == "exited" else f"not ready after {attempts} starts of {timeout:.0f} s"
                raise IdPError(f"test IdP {what}: {tail}")
            print(f"tests/idp: node was not ready in {timeout:.0f} s; starting it again "
                  f"(attempt {attempt + 1} of {attempts})", file=sys.stderr, flush=True)
            self.stop()
            with contextlib.suppress(OSError):
                os.unlink(self._log_path)
        raise AssertionError("unreachable")

    def _start_once(self, node: str, timeout: float) -> str | None:
        """Start node once: None when ready, else "exited" or "hung"."""
        self._ready.clear()
        fd, self._log_path = tempfile.mkstemp(prefix="flyteauth-idp-", suffix=".log")
        log = os.fdopen(fd, "w")
        try:
            self._proc = subprocess.Popen(
                [node, str(PROVIDER_JS)], cwd=IDP_DIR, env=self.env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
            )
        finally:
            log.close()
        _running.add(self)
        self._reader = threading.Thread(target=self._read_stdout, name="idp-stdout", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._proc.poll() is not None:
                return "exited"
            if time.monotonic() > deadline:
                return "hung"
        return None

    def _read_stdout(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:  # ends when the process closes stdout
            if line.startswith("IDP_READY ") and not self._ready.is_set():
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
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._reader is not None:
            self._reader.join(2)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, chars: int = 1500) -> str:
        if not self._log_path or not os.path.exists(self._log_path):
            return ""
        with open(self._log_path, encoding="utf-8", errors="replace") as f:
            return f.read()[-chars:]

    def __enter__(self) -> "IdP":
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"IdP(issuer={self.issuer!r}, settings={self.settings!r})"

    # ------------------------------------------------------------------ endpoints
    def url(self, path: str = "/") -> str:
        if self.issuer is None:
            raise IdPError("IdP not started")
        return urljoin(self.issuer + "/", path.lstrip("/"))

    @property
    def metadata(self) -> dict[str, Any]:
        """The provider's /.well-known/openid-configuration (fetched once)."""
        if self._metadata is None:
            s = requests.Session()
            s.trust_env = False
            r = s.get(self.url("/.well-known/openid-configuration"), timeout=10)
            r.raise_for_status()
            self._metadata = r.json()
        return self._metadata

    @property
    def token_endpoint(self) -> str:
        return self.url("/token")

    @property
    def authorization_endpoint(self) -> str:
        return self.url("/auth")

    @property
    def device_authorization_endpoint(self) -> str:
        return self.url("/device/auth")

    @property
    def introspection_endpoint(self) -> str:
        return self.url("/token/introspection")

    @property
    def revocation_endpoint(self) -> str:
        return self.url("/token/revocation")

    @property
    def jwks_uri(self) -> str:
        return self.url("/jwks")

    @property
    def userinfo_endpoint(self) -> str:
        return self.url("/me")

    def grants(self) -> dict[str, Any]:
        """The provider's token-endpoint counters (GET /rig/grants): ``success`` and ``error`` by
        grant type / error code, ``revoked`` (grants revoked, e.g. on a replayed refresh token), and
        ``requests``: every request the provider answered, its /rig/ feeds excepted."""
        s = requests.Session()
        s.trust_env = False
        r = s.get(self.url("/rig/grants"), timeout=10)
        r.raise_for_status()
        return r.json()

    def requests_seen(self, since: int = 0) -> list[dict[str, Any]]:
        """The requests the provider received after sequence number ``since`` (GET /rig/requests),
        oldest first: ``seq``, ``method``, ``path`` (no query) and ``headers`` (lower-case *names* only;
        the provider keeps no header value). ``requests_seen()[-1]["seq"]`` or :meth:`last_request`
        marks a point to look from."""
        s = requests.Session()
        s.trust_env = False
        r = s.get(self.url("/rig/requests"), timeout=10)
        r.raise_for_status()
        return [entry for entry in r.json()["requests"] if entry["seq"] > since]

    def last_request(self) -> int:
        """The sequence number of the last request the provider received (0 before any)."""
        s = requests.Session()
        s.trust_env = False
        r = s.get(self.url("/rig/requests"), timeout=10)
        r.raise_for_status()
        return int(r.json()["last"])

    def introspect(self, token: str, client_id: str = NATIVE_CLIENT) -> dict[str, Any]:
        """RFC 7662 introspection of ``token`` as the public client that holds it."""
        s = requests.Session()
        s.trust_env = False
        r = s.post(self.introspection_endpoint, data={"token": token, "client_id": client_id}, timeout=10)
        r.raise_for_status()
        return r.json()

    def subject(self, username: str) -> str:
        """The OIDC ``sub`` of a user: the username itself (the account id)."""
        return username

    users = USERS
    confidential_secret = CONFIDENTIAL_SECRET


@atexit.register
def _stop_all() -> None:
    for idp in list(_running):
        try:
            idp.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
