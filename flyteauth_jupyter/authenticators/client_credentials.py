"""``ClientCredentialsAuthenticator``: the machine sign-in with a client id and secret (RFC 6749
section 4.4): ``client_secret_basic``, or ``client_secret_post`` when the metadata allows only that;
a new token is as cheap as a refresh."""

from __future__ import annotations

from typing import Any

import requests

from ..config import ClientConfig, ClientConfigStore
from ..control import Clock, Waiter
from ..credentials import Credentials
from ..endpoint import Endpoint
from ..errors import ConfigurationError
from ..flows import client_credentials
from ..flows.events import Observer
from ..transport.http import DEFAULT_DEADLINE, DEFAULT_TIMEOUT
from .configured import ConfiguredAuthenticator


class ClientCredentialsAuthenticator(ConfiguredAuthenticator):
    """Machine sign-in with a client id and secret (client_secret_basic); tokens kept in memory."""

    flow_name = "client-credentials"
    needs_user = False

    def __init__(
        self,
        endpoint: str | Endpoint,
        client_id: str,
        client_secret: str,
        cfg_store: ClientConfigStore | None,
        header_key: str | None = None,
        scopes: list[str] | None = None,
        http_proxy_url: str | None = None,
        verify: bool | str | None = None,
        audience: str | None = None,
        session: requests.Session | None = None,
        *,
        observer: Observer | None = None,
        timeout: float | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any = None,
        clock: Clock | None = None,
        insecure: bool = False,
        proxy_auth: requests.auth.AuthBase | None = None,
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigurationError("Client credentials need both a client id and a client secret.")
        super().__init__(
            endpoint,
            cfg_store,
            header_key=header_key,
            scopes=scopes,
            audience=audience,
            http_proxy_url=http_proxy_url,
            verify=verify,
            session=session,
            client_id=client_id,
            observer=observer,
            timeout=timeout,
            http_timeout=http_timeout,
            http_deadline=http_deadline,
            store=store,
            clock=clock,
            insecure=insecure,
            client_secret=client_secret,
            proxy_auth=proxy_auth,
        )
        self._loaded = store is None

    def _public_client_id(self, cfg: ClientConfig) -> str | None:
        return cfg.client_id or None  # ours is confidential: an earlier user sign-in was the public client's

    def _refresh_grant(self, creds: Credentials) -> Credentials | None:
        return None  # a new client credentials token is as cheap as a refresh

    def _login(self, waiter: Waiter) -> Credentials:
        cfg = self._config()
        return client_credentials.fetch_client_credentials_token(
            self._transport,
            cfg.token_endpoint,
            client_id=self.client_id,
            client_secret=self._client_secret or "",
            endpoint=self.service,
            scopes=self.scopes,
            audience=self.audience,
            clock=self.clock,
            client_auth=self._client_auth(),
        )

    def _repr_fields(self) -> list[str]:
        own, secret = super()._repr_fields()[:-1], "client_secret=<redacted>"
        return own + [f"client_id={self._client_id_arg!r}", secret]
