"""From the magic's options to a ready-to-run authenticator: :class:`LoginSpec` and :func:`prepare`.

``LoginSpec`` is everything ``%flyte_login`` decided in the cell, and nothing secret: a client secret
is referred to by the name of its environment variable (or its file) and read only here, in the
background, when the authenticator is built. :func:`prepare` runs in the login's background thread:
it reads the server's configuration when ``--flow auto`` needs it, applies the flow rules
(:mod:`.environment`) and constructs one of the seed authenticators with the keyword-only extras
(``observer=``, ``timeout=``, ``store=``, ``client_id=``, ``open_browser=``), by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..endpoint import Endpoint
from ..environment import (
    BrowserLocation,
    FlowChoice,
    browser_location,
    choose_flow,
    configured_choice,
    device_fallback_reason,
    device_grant_refused,
    hub_fallback_reason,
)
from ..errors import ConfigurationError, FlyteAuthError, OAuthError
from ..flows.events import Event, FlowStarted, notify
from ..transport.relay import is_relay_uri
from ..sdk_config import read_client_secret
from .session import Prepared


@dataclass(frozen=True)
class LoginSpec:
    """What the cell asked for. Holds no secret (see the module docstring)."""

    endpoint: Endpoint
    flow: str = "auto"
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_location: str | None = None
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    command: tuple[str, ...] = ()
    timeout: float | None = None
    no_cache: bool = False
    #: keyring | file | memory, from %config FlyteAuthMagics.token_cache (None: $FLYTEAUTH_TOKEN_CACHE)
    token_cache: str | None = None
    insecure: bool = False
    verify: bool | str | None = None
    http_proxy_url: str | None = None
    open_browser: bool = True
    redirect_uri: str | None = None
    configured_auth_type: str | None = None
    name: str = "flyte_auth"
    location: BrowserLocation | None = field(default=None, compare=False)

    @property
    def has_client_secret(self) -> bool:
        return bool(self.client_secret_env or self.client_secret_location)


def config_store_for(spec: LoginSpec) -> Any:
    from ..config import RemoteClientConfigStore

    return RemoteClientConfigStore(
        spec.endpoint.url, insecure=spec.insecure, verify=spec.verify, http_proxy_url=spec.http_proxy_url
    )


def relayed_remotely(spec: LoginSpec, redirect_uri: str | None = None) -> bool:
    """True when the redirect goes through the Jupyter relay and the browser is not on this machine:
    the user opens the widget's link in their own browser; the kernel must not launch one."""
    redirect_uri = redirect_uri or spec.redirect_uri
    return bool(redirect_uri and is_relay_uri(redirect_uri)) and not (spec.location or browser_location()).local


def _server_redirect_uri(cfg_store: Any) -> str | None:
    if cfg_store is None:
        return None
    try:
        return getattr(cfg_store.get_client_config(), "redirect_uri", None) or None
    except FlyteAuthError:
        return None


def decide_flow(spec: LoginSpec, cfg_store: Any) -> FlowChoice:
    """The flow for ``spec``; reads the server configuration only when ``auto`` needs it."""
    location = spec.location or browser_location()
    if spec.flow not in ("auto", "hub") or spec.command or spec.has_client_secret:
        return choose_flow(
            spec.flow, location=location, has_client_secret=spec.has_client_secret, has_command=bool(spec.command),
            configured_auth_type=spec.configured_auth_type, endpoint=spec.endpoint.service,
        )
    configured = configured_choice(spec.configured_auth_type)
    if configured is not None and spec.flow == "auto":
        return configured
    cfg = cfg_store.get_client_config()
    redirect_uri = spec.redirect_uri or getattr(cfg, "redirect_uri", None)
    return choose_flow(
        "auto",
        location=location,
        authorization_endpoint=getattr(cfg, "authorization_endpoint", None) or None,
        device_endpoint=getattr(cfg, "device_authorization_endpoint", None) or None,
        configured_auth_type=None if spec.flow == "hub" else spec.configured_auth_type,
        endpoint=spec.endpoint.service,
        relay_redirect=bool(redirect_uri and is_relay_uri(redirect_uri)),
    )


def _hub_authenticator(spec: LoginSpec, cfg_store: Any, observer: Callable[[Event], None] | None) -> Any:
    from ..hub import HubAuthenticator

    return HubAuthenticator(
        spec.endpoint.url, None, spec.http_proxy_url, spec.verify, cfg_store=cfg_store, observer=observer,
        timeout=spec.timeout, insecure=spec.insecure,
    )


def try_hub(spec: LoginSpec, cfg_store: Any) -> tuple[bool, str]:
    """``(usable, reason)``: can the Hub's sign-in serve ``spec`` (one read of the Hub's API)?"""
    probe = _hub_authenticator(spec, cfg_store, None)
    if probe.context is None:
        return False, probe.available_reason or "not on JupyterHub"
    try:
        probe.refresh_credentials(interactive=False)
    except FlyteAuthError as exc:
        return False, str(exc)
    return True, f"your JupyterHub login ({probe.where}) is reused, no click needed"


def wants_hub(spec: LoginSpec) -> bool:
    """``--flow hub``, or ``auto`` on JupyterHub with nothing that decides otherwise."""
    if spec.flow == "hub":
        return True
    if spec.flow != "auto" or spec.command or spec.has_client_secret or configured_choice(spec.configured_auth_type):
        return False
    from ..flows.hub import hub_context

    return hub_context(os.environ) is not None


class DeviceThenBrowser:
    """Mixin for the device authenticator ``auto`` chose: when the identity provider refuses the device
    grant for the client, the same login continues as the browser sign-in (and says so)."""

    _browser: Any = None
    _make_browser: Callable[[], Any]

    def _login(self, waiter: Any) -> Any:
        if self._browser is None:
            try:
                return super()._login(waiter)  # type: ignore[misc]
            except OAuthError as exc:
                if not device_grant_refused(exc.error, exc.description):
                    raise
            self._browser = self._make_browser()
        notify(self.observer, FlowStarted(flow="pkce", endpoint=self.service,  # type: ignore[attr-defined]
                                          reason=device_fallback_reason(self.service)))  # type: ignore[attr-defined]
        return self._browser._login(waiter)

    def submit_redirect(self, url: str) -> None:
        if self._browser is None:
            raise ConfigurationError("No browser sign-in is waiting for a redirect address.")
        self._browser.submit_redirect(url)

    @property
    def awaiting_redirect(self) -> bool:
        return bool(self._browser is not None and self._browser.awaiting_redirect)

    @property
    def redirect_uri(self) -> str | None:
        return self._browser.redirect_uri if self._browser is not None else None


def prepare(spec: LoginSpec, observer: Callable[[Event], None]) -> Prepared:
    """Build the authenticator for ``spec`` (runs in the background thread)."""
    from .. import authenticators as auth

    cfg_store = None if spec.flow == "command" or (spec.command and spec.flow == "auto") else config_store_for(spec)
    if wants_hub(spec):
        usable, why = try_hub(spec, cfg_store)
        if usable:
            return Prepared(authenticator=_hub_authenticator(spec, cfg_store, observer), flow="hub", reason=why)
        fallback = decide_flow(spec, cfg_store)
        choice = FlowChoice(fallback.flow, hub_fallback_reason(why, fallback))
    else:
        choice = decide_flow(spec, cfg_store)
    store: Any = None
    if spec.no_cache:
        from ..stores import MemoryStore

        store = MemoryStore()
    else:
        from ..stores import TOKEN_CACHE_ENV, make_store

        kind = spec.token_cache or os.environ.get(TOKEN_CACHE_ENV, "").strip() or None
        if kind:  # chosen explicitly (trait or environment): every flow uses it, client credentials too
            store = make_store(kind if spec.token_cache else None)
    scopes = list(spec.scopes) or None
    extras: dict[str, Any] = {"observer": observer, "timeout": spec.timeout, "store": store, "insecure": spec.insecure}
    endpoint = spec.endpoint.url
    authenticator: Any
    if choice.flow == "device":
        device_class: Any = auth.DeviceCodeAuthenticator
        server_redirect = None
        if spec.flow in ("auto", "hub"):  # auto's choice: fall back to the browser if device code is refused
            server_redirect = spec.redirect_uri or _server_redirect_uri(cfg_store)
            device_class = type("DeviceCodeAuthenticator", (DeviceThenBrowser, auth.DeviceCodeAuthenticator), {})
        authenticator = device_class(
            endpoint, cfg_store, audience=spec.audience, scopes=scopes, http_proxy_url=spec.http_proxy_url,
            verify=spec.verify, client_id=spec.client_id, **extras,
        )
        if isinstance(authenticator, DeviceThenBrowser):
            authenticator._make_browser = lambda: _pkce(spec, cfg_store, scopes, extras, server_redirect)
    elif choice.flow == "pkce":
        authenticator = _pkce(spec, cfg_store, scopes, extras, spec.redirect_uri or _server_redirect_uri(cfg_store))
    elif choice.flow == "hub":
        authenticator = _hub_authenticator(spec, cfg_store, observer)
    elif choice.flow == "client-credentials":
        client_id = spec.client_id
        if not client_id:
            raise ConfigurationError(
                "Client credentials need a client id; pass --client-id ID (or set admin.clientId)."
            )
        secret = read_client_secret(env_var=spec.client_secret_env, location=spec.client_secret_location)
        authenticator = auth.ClientCredentialsAuthenticator(
            endpoint, client_id, secret, cfg_store, scopes=scopes, http_proxy_url=spec.http_proxy_url,
            verify=spec.verify, audience=spec.audience, **extras,
        )
        del secret
    elif choice.flow == "command":
        if not spec.command:
            raise ConfigurationError("The command flow needs a command; pass --command followed by the program and its arguments.")
        authenticator = auth.CommandAuthenticator(
            list(spec.command), endpoint=endpoint, observer=observer, timeout=spec.timeout
        )
    else:  # pragma: no cover - choose_flow validated it
        raise ConfigurationError(f"Unknown flow {choice.flow!r}.")
    return Prepared(
        authenticator=authenticator,
        flow=choice.flow,
        reason=choice.reason,
        notice=getattr(authenticator, "fallback_reason", None) or getattr(store, "notice", None),
    )


def _pkce(spec: LoginSpec, cfg_store: Any, scopes: list[str] | None, extras: dict[str, Any],
          redirect_uri: str | None) -> Any:
    from .. import authenticators as auth

    return auth.PKCEAuthenticator(
        spec.endpoint.url, cfg_store, scopes=scopes, verify=spec.verify, client_id=spec.client_id,
        redirect_uri=spec.redirect_uri, open_browser=spec.open_browser and not relayed_remotely(spec, redirect_uri),
        http_proxy_url=spec.http_proxy_url, **extras,
    )
