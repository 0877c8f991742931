"""Start and stop the loopback OpenID provider (tests/idp/provider.js, node-oidc-provider).

``IdP(**settings).start()`` spawns ``node provider.js`` with the settings as environment variables,
waits (with a deadline) for its ``IDP_READY <issuer>`` line and exposes the issuer. ``stop()`` (also
run at interpreter exit) terminates the process. The running of the process is rig.idp_process's,
shared with rig.idp2; this module adds node, the settings, the endpoints and the request feed.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

# the rig's modules and tests import these from here too
from .idp_process import (  # noqa: F401
    CONFIDENTIAL_SECRET, SECRETS_DIR_ENV, USERS, IdPError, IdPProcess, flag, user_list,
)

IDP_DIR = Path(__file__).resolve().parent.parent / "idp"
PROVIDER_JS = IDP_DIR / "provider.js"
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
    "slow_down": ("IDP_SLOW_DOWN", flag),
    "rt_rotation": ("IDP_RT_ROTATION", str),
    "at_format": ("IDP_AT_FORMAT", str),
    "resource": ("IDP_RESOURCE", str),
    "resource_scopes": ("IDP_RESOURCE_SCOPES", lambda v: v if isinstance(v, str) else " ".join(v)),
    "users": ("IDP_USERS", user_list),
    "clients_file": ("IDP_CLIENTS_FILE", str),
    "extra_clients_file": ("IDP_EXTRA_CLIENTS_FILE", str),
    "dev_interactions": ("IDP_DEV_INTERACTIONS", flag),
    # the token endpoint's client authentication methods (its token_endpoint_auth_methods_supported)
    "client_auth_methods": ("IDP_CLIENT_AUTH_METHODS", lambda v: v if isinstance(v, str) else " ".join(v)),
    # `make demo` only: keys, grants and tokens kept in this directory across restarts (provider.js)
    "state_dir": ("IDP_STATE_DIR", str),
}

_npm_lock = threading.Lock()


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


class IdP(IdPProcess):
    """A running node-oidc-provider on 127.0.0.1 (one node process)."""

    name = "node-oidc-provider"
    label = "test IdP"
    slug = "idp"
    SETTINGS = _SETTINGS
    #: The device grant answers with an id_token when ``openid`` was asked for (rig.idp2's does not).
    device_id_token = True

    #: Node 20 now and then hangs while starting provider.js, before it binds its socket, with its main
    #: thread in a futex wait and every other thread idle (seen about once in three full runs on a fresh
    #: clone, at any point of the run, never with a standalone start). So a start that is not ready
    #: within ``timeout`` is killed and tried again, ``attempts`` times in all; a start that fails
    #: (exits, or hangs every time) still raises IdPError with the provider's log. A healthy start
    #: takes 0.4-0.7 s here, 1-3 s under load; 10 s per start keeps a stall shorter than the waits of
    #: the tests that restart the provider mid-flow (tests/faults: a 30 s login, a 20 s read), which
    #: 25 s did not: one stall there failed three tests in a row on a fresh clone.
    ATTEMPTS = 4
    START_TIMEOUT = 10.0

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update({"IDP_HOST": self.host, "IDP_PORT": str(self.requested_port)})
        env.pop("NODE_OPTIONS", None)
        return env

    def _command(self) -> tuple[list[str], Path]:
        ensure_node_modules()
        node = shutil.which("node")
        if node is None:
            raise IdPError("node is needed for the test identity provider (tests/idp)")
        return [node, str(PROVIDER_JS)], IDP_DIR

    # ------------------------------------------------------------------ endpoints
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

    def requests_seen(self, since: int = 0) -> list[dict[str, Any]]:
        """The requests the provider received after sequence number ``since`` (GET /rig/requests),
        oldest first: ``seq``, ``method``, ``path`` (no query) and ``headers`` (lower-case *names* only;
        the provider keeps no header value). ``requests_seen()[-1]["seq"]`` or :meth:`last_request`
        marks a point to look from."""
        return [entry for entry in self._get("/rig/requests")["requests"] if entry["seq"] > since]

    def last_request(self) -> int:
        """The sequence number of the last request the provider received (0 before any)."""
        return int(self._get("/rig/requests")["last"])

    def introspect(self, token: str, client_id: str = NATIVE_CLIENT) -> dict[str, Any]:
        """RFC 7662 introspection of ``token`` as the public client that holds it."""
        return dict(self._post(self.introspection_endpoint, {"token": token, "client_id": client_id}))

    def subject(self, username: str) -> str:
        """The OIDC ``sub`` of a user: the username itself (the account id)."""
        return username
