"""The settings every authenticator that reads a client configuration shares: scopes, audience and
client id (the argument, else the server's), the client secret of a confidential client, and the
refresh grant (RFC 6749 section 6).

A confidential client (``client_secret=``: Keycloak confidential clients, Entra ID or Okta "web" apps)
authenticates on every request to the identity provider, whatever the flow: device authorization and
polling, code exchange, refresh and revocation (:meth:`ConfiguredAuthenticator._client_auth`:
``client_secret_basic``, or ``client_secret_post`` when the metadata's
``token_endpoint_auth_methods_supported`` allows only that; flows/client_auth.py). The secret lives
in that object and in one private attribute; no repr, message or log shows it. A refresh sends the
``audience`` the sign-in sent (Auth0 issues an opaque token for the userinfo endpoint without it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests

from ..config import ClientConfig, ClientConfigStore
from ..control import Clock
from ..credentials import Credentials
from ..endpoint import Endpoint
from ..errors import ConfigurationError, FlyteAuthError
from ..flows import refresh
from ..flows.client_auth import ClientAuth, choose_client_auth
from ..flows.events import Observer
from ..transport.http import DEFAULT_DEADLINE, DEFAULT_TIMEOUT
from ..validate import scope_list
from .base import Authenticator


class ConfiguredAuthenticator(Authenticator):
    """Shared settings of the authenticators that read a ClientConfig."""

    discovers_config = True

    def __init__(
        self,
        endpoint: str | Endpoint,
        cfg_store: ClientConfigStore | None,
        *,
        header_key: str | None,
        scopes: Sequence[str] | None,
        audience: str | None,
        http_proxy_url: str | None,
        verify: bool | str | None,
        session: requests.Session | None,
        client_id: str | None,
        observer: Observer | None,
        timeout: float | None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any,
        clock: Clock | None,
        insecure: bool,
        client_secret: str | None = None,
        proxy_auth: requests.auth.AuthBase | None = None,
    ) -> None:
        super().__init__(
            endpoint,
            header_key,
            None,
            http_proxy_url,
            verify,
            observer=observer,
            timeout=timeout,
            http_timeout=http_timeout,
            http_deadline=http_deadline,
            store=store,
            clock=clock,
            insecure=insecure,
            session=session,
            cfg_store=cfg_store,
            proxy_auth=proxy_auth,
        )
        if client_secret is not None and (not isinstance(client_secret, str) or not client_secret):
            raise ConfigurationError("The client secret is empty; pass the confidential client's secret, or none.")
        self._client_secret = client_secret or None
        self._scopes_arg = list(scope_list(scopes)) or None
        self._audience_arg = audience or None
        self._client_id_arg = client_id or None

    @property
    def scopes(self) -> list[str]:
        return list(self._scopes_arg or scope_list(self._config().scopes))

    @property
    def audience(self) -> str | None:
        return self._audience_arg or self._config().audience

    @property
    def client_id(self) -> str:
        client_id = self._client_id_arg or self._config().client_id
        if not client_id:
            raise ConfigurationError(f"{self.service} does not advertise a client id; pass client_id=.")
        return client_id

    @property
    def confidential(self) -> bool:
        """True when this client authenticates with a client secret."""
        return self._client_secret is not None

    def _client_auth(self) -> ClientAuth | None:
        """How a confidential client authenticates at the identity provider (None: a public client):
        ``client_secret_basic``, or ``client_secret_post`` when the metadata allows only that."""
        if self._client_secret is None:
            return None
        return choose_client_auth(self.client_id, self._client_secret,
                                  self._config().token_endpoint_auth_methods_supported)

    def _found_client_auth(self, client_id: str | None) -> ClientAuth | None:
        # tokens another store kept for this very client are revoked with its secret (else 401 there)
        if self._client_secret is None or not client_id or client_id != self._client_id_arg:
            return None
        return self._client_auth()

    def _revocation_client_id(self) -> str | None:
        try:
            return self.client_id
        except FlyteAuthError:
            return None

    def _public_client_id(self, cfg: ClientConfig) -> str | None:
        return self._client_id_arg or cfg.client_id or None

    def _refresh_grant(self, creds: Credentials) -> Credentials | None:
        cfg = self._config()
        return refresh.refresh_access_token(
            self._transport,
            cfg.token_endpoint,
            creds,
            client_id=self.client_id,
            endpoint=self.service,
            audience=self.audience,
            auth=self._client_auth(),
            clock=self.clock,
        )

    def _repr_fields(self) -> list[str]:
        fields = super()._repr_fields()
        return fields + ["client_secret=<redacted>"] if self._client_secret is not None else fields
