"""``DeviceCodeAuthenticator``: the device sign-in (RFC 8628), and ``DeviceOrBrowserAuthenticator``,
``--flow auto``'s device sign-in that continues as the browser sign-in when the identity provider
refuses the device grant for the client (``unauthorized_client``, or ``invalid_request`` naming the
grant), saying so with a ``FlowStarted(flow="pkce", reason=...)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from ..config import ClientConfigStore
from ..control import Clock, Waiter
from ..credentials import Credentials
from ..environment import device_fallback_reason, device_grant_refused
from ..endpoint import Endpoint
from ..errors import ConfigurationError, OAuthError
from ..flows import device
from ..flows.events import FlowStarted, Observer, notify
from ..transport.http import DEFAULT_DEADLINE, DEFAULT_TIMEOUT
from .base import _default_store
from .browser import PKCEAuthenticator
from .configured import ConfiguredAuthenticator


class DeviceCodeAuthenticator(ConfiguredAuthenticator):
    """Device sign-in (RFC 8628): show a code and a URL, poll until the user approves.

    Extras: ``client_id`` overrides the server's, ``timeout`` caps the wait (default: the code's life),
    ``client_secret`` (a confidential client: the device authorization and every poll carry it),
    ``proxy_auth``.
    """

    flow_name = "device"
    needs_user = True

    def __init__(
        self,
        endpoint: str | Endpoint,
        cfg_store: ClientConfigStore | None,
        header_key: str | None = None,
        audience: str | None = None,
        scopes: list[str] | None = None,
        http_proxy_url: str | None = None,
        verify: bool | str | None = None,
        session: requests.Session | None = None,
        *,
        client_id: str | None = None,
        observer: Observer | None = None,
        timeout: float | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any = None,
        clock: Clock | None = None,
        insecure: bool = False,
        client_secret: str | None = None,
        proxy_auth: requests.auth.AuthBase | None = None,
    ) -> None:
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
            store=store if store is not None else _default_store(),
            clock=clock,
            insecure=insecure,
            client_secret=client_secret,
            proxy_auth=proxy_auth,
        )
        self._loaded = False

    def _waiting_for(self) -> str:
        return "the device sign-in"

    def _login(self, waiter: Waiter) -> Credentials:
        cfg = self._config()
        if not cfg.device_authorization_endpoint:
            # the configuration's source: the issuer's host for an issuer's sign-in, else the deployment
            where = getattr(self._cfg_store, "where", None)
            raise device.no_device_endpoint(where if isinstance(where, str) and where else self.service)
        return device.run_device_flow(
            self._transport,
            device_authorization_endpoint=cfg.device_authorization_endpoint,
            token_endpoint=cfg.token_endpoint,
            client_id=self.client_id,
            waiter=waiter,
            endpoint=self.service,
            scopes=self.scopes,
            audience=self.audience,
            observer=self.observer,
            auth=self._client_auth(),
        )


class DeviceOrBrowserAuthenticator(DeviceCodeAuthenticator):
    """The device sign-in ``--flow auto`` chose; when the identity provider refuses the device grant
    for the client, the same login (same waiter) continues as the browser sign-in built by
    ``browser()``, announced with ``FlowStarted(flow="pkce", reason=...)``."""

    def __init__(self, *args: Any, browser: Callable[[], PKCEAuthenticator], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._make_browser = browser
        self._browser: PKCEAuthenticator | None = None

    def _login(self, waiter: Waiter) -> Credentials:
        if self._browser is None:
            try:
                return super()._login(waiter)
            except OAuthError as exc:
                if not device_grant_refused(exc.error, exc.description):
                    raise
            self._browser = self._make_browser()
        notify(self.observer, FlowStarted(flow="pkce", endpoint=self.service, reason=device_fallback_reason(self.service)))
        return self._browser._login(waiter)

    def submit_redirect(self, url: str) -> None:
        """Hand the browser sign-in the address it ended on, once the login fell back to it."""
        if self._browser is None:
            raise ConfigurationError("No browser sign-in is waiting for a redirect address.")
        self._browser.submit_redirect(url)

    @property
    def awaiting_redirect(self) -> bool:
        return bool(self._browser is not None and self._browser.awaiting_redirect)

    @property
    def redirect_uri(self) -> str | None:
        return self._browser.redirect_uri if self._browser is not None else None
