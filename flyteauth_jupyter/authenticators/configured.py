"""The settings every authenticator that reads a client configuration shares: scopes, audience and
client id (the argument, else the server's), and the refresh grant (RFC 6749 section 6)."""

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
        )
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
            auth=self._client_auth(),
            clock=self.clock,
        )
