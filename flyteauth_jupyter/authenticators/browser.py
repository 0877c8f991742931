"""``PKCEAuthenticator``: the browser sign-in, authorization code + PKCE with a loopback (or relayed)
redirect (RFC 7636, RFC 8252), with paste-back for a browser on another machine.

``prompt`` (the argument, else the configuration's ``ClientConfig.prompt``; ``flows.authcode.prompt_value``
says what is sent) and the metadata's ``code_challenge_methods_supported`` go to the flow; a
confidential client (``client_secret=``) authenticates the code exchange (``configured.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from ..config import ClientConfigStore
from ..control import Clock, Waiter
from ..credentials import Credentials
from ..endpoint import Endpoint
from ..errors import ConfigurationError
from ..flows import authcode
from ..flows.events import Observer
from ..transport.http import DEFAULT_DEADLINE, DEFAULT_TIMEOUT
from .base import _default_store
from .configured import ConfiguredAuthenticator


class PKCEAuthenticator(ConfiguredAuthenticator):
    """Browser sign-in: authorization code + PKCE with a loopback redirect (RFC 8252).

    Extras: ``client_id``/``redirect_uri`` override the server's, ``audience``, ``http_proxy_url``,
    ``open_browser`` (False, or a callable ``(url) -> bool``), ``timeout`` (default 300 s),
    ``client_secret`` (a confidential client), ``prompt`` (None: the configuration's, whose default
    is ``consent`` when ``offline_access`` is asked for; ``""``: never sent), ``proxy_auth``.
    :meth:`submit_redirect` is the paste-back fallback for a browser on another machine.
    """

    flow_name = "pkce"
    needs_user = True

    def __init__(
        self,
        endpoint: str | Endpoint,
        cfg_store: ClientConfigStore | None,
        scopes: list[str] | None = None,
        header_key: str | None = None,
        verify: bool | str | None = None,
        session: requests.Session | None = None,
        *,
        client_id: str | None = None,
        redirect_uri: str | None = None,
        audience: str | None = None,
        http_proxy_url: str | None = None,
        open_browser: bool | Callable[[str], bool] = True,
        observer: Observer | None = None,
        timeout: float | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any = None,
        clock: Clock | None = None,
        insecure: bool = False,
        client_secret: str | None = None,
        prompt: str | None = None,
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
        self._prompt_arg = prompt
        self._redirect_uri_arg = redirect_uri or None
        self.open_browser = open_browser
        self._inbox = authcode.RedirectInbox(self.service)

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._inbox = authcode.RedirectInbox(self.service)  # the parent's receiver is not ours

    def submit_redirect(self, url: str) -> None:
        """Complete the waiting browser sign-in with the address the browser ended on (any thread).

        For a browser on another machine (VS Code remote, SSH, containers): the redirect to
        ``http://127.0.0.1:<port>/callback?code=...&state=...`` fails there, but its address can be
        pasted here (the whole address, or just its query). The state is checked first; a wrong or
        unusable paste raises StateMismatchError / ProtocolError and the sign-in keeps waiting; with
        no PKCE sign-in waiting, FlyteAuthError. Returns once the address is accepted; the code is
        exchanged by the sign-in itself (``refresh_credentials()`` returns or raises as usual).
        """
        self._inbox.submit(url)

    @property
    def awaiting_redirect(self) -> bool:
        """True while a browser sign-in waits for its redirect (so :meth:`submit_redirect` can complete it)."""
        return self._inbox.waiting

    @property
    def redirect_uri(self) -> str:
        uri = self._redirect_uri_arg or self._config().redirect_uri
        if not uri:
            raise ConfigurationError(f"{self.service} does not advertise a redirect URI; pass redirect_uri=.")
        return uri

    @property
    def prompt(self) -> str | None:
        """The ``prompt`` setting in force: the argument, else the configuration's (None: the default rule)."""
        return self._prompt_arg if self._prompt_arg is not None else self._config().prompt

    def _login_deadline(self) -> float | None:
        return self.timeout if self.timeout is not None else authcode.DEFAULT_TIMEOUT

    def _waiting_for(self) -> str:
        return "the browser sign-in"

    def _login(self, waiter: Waiter) -> Credentials:
        cfg = self._config()
        if not cfg.authorization_endpoint:
            raise ConfigurationError(f"{self.service} does not advertise an authorization endpoint for browser sign-in.")
        return authcode.run_authcode_flow(
            self._transport,
            authorization_endpoint=cfg.authorization_endpoint,
            token_endpoint=cfg.token_endpoint,
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            waiter=waiter,
            endpoint=self.service,
            scopes=self.scopes,
            audience=self.audience,
            observer=self.observer,
            open_browser=self.open_browser,
            issuer=cfg.issuer,
            inbox=self._inbox,
            auth=self._client_auth(),
            code_challenge_methods_supported=cfg.code_challenge_methods_supported,
            prompt=self.prompt,
        )
