"""Start and stop the second loopback identity provider (tests/idp2, django-oauth-toolkit).

``DjangoIdP(**settings).start()`` runs ``python -m tests.idp2.serve --port 0 --db <fresh temporary
directory>/idp2.sqlite3``, waits with a deadline for its ``IDP2_READY <issuer>`` line and
exposes the same surface as :class:`rig.idp.IdP` (endpoints, ``metadata``, ``grants()``,
``introspect()``, ``users``), so a test or stand-in written for one server runs against the other.
``stop()`` (also run at interpreter exit) terminates the process and removes its database directory.
Running the process is rig.idp_process's, shared with rig.idp; this module adds the command, the
settings, the endpoints and the dialect.

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

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from .idp import NATIVE_CLIENT
from .idp_process import HOST, IdPProcess, flag, user_list

REPO = Path(__file__).resolve().parents[2]
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
    "rt_reuse": ("IDP2_RT_REUSE", flag),
    "rt_grace": ("IDP2_RT_GRACE", int),
    "users": ("IDP2_USERS", user_list),
}


class DjangoIdP(IdPProcess):
    """A running django-oauth-toolkit on 127.0.0.1 (one Python process, threaded WSGI server)."""

    name = NAME
    label = "test IdP (django-oauth-toolkit)"
    slug = "idp2"
    SETTINGS = _SETTINGS
    START_TIMEOUT = 30.0  # a start takes about a second
    TERMINATE_WAIT = 10.0
    #: The device grant answers with access and refresh tokens only.
    device_id_token = False

    def __init__(self, *, port: int = 0, host: str = HOST, **settings: Any) -> None:
        super().__init__(port=port, host=host, **settings)
        self.db_dir: Path | None = None
        self._as_metadata: dict[str, Any] | None = None
        self._subjects: dict[str, str] | None = None

    def _command(self) -> tuple[list[str], Path]:
        self.db_dir = Path(tempfile.mkdtemp(prefix="flyteauth-idp2-"))  # a fresh database each start
        return [sys.executable, "-m", "tests.idp2.serve", "--host", self.host, "--port", str(self.requested_port),
                "--db", str(self.db_dir / "idp2.sqlite3")], REPO

    def _stopped(self) -> None:
        if self.db_dir is not None:
            shutil.rmtree(self.db_dir, ignore_errors=True)

    # ------------------------------------------------------------------ endpoints
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

    def introspect(self, token: str, client_id: str = NATIVE_CLIENT) -> dict[str, Any]:
        """``{"active": bool, ...}`` for an access or refresh token (the rig's /rig/introspect)."""
        return dict(self._post(self.url("/rig/introspect"), {"token": token}))

    def subject(self, username: str) -> str:
        """The OIDC ``sub`` of a seeded user: what ``Credentials.subject`` shows after a login whose
        id token has no ``profile`` or ``email`` claims."""
        if self._subjects is None:
            self._subjects = dict(self._get("/rig/users"))
        return self._subjects[username]

