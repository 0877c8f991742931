"""From ``%flyte_login``'s options to a ready-to-run authenticator: :class:`LoginSpec` and :func:`prepare`.

``LoginSpec`` is everything ``%flyte_login`` decided in the cell (the endpoint parsed once), and
nothing secret: a client secret is referred to by the name of its environment variable (or its
file) and read only here, in the background, right before the authenticator is built.
:func:`prepare` runs in the login's background thread and is a straight line: the facts the flow
rules may need are looked up lazily (:class:`Lookups`: the server's client configuration, the
Hub's answer), ``environment.decide_flow`` decides (the one place), and
``authenticators.authenticator_for`` builds (the one place that maps a flow to a class). The whole
path of the options, stop by stop, is in docs/architecture.md ("The path of %flyte_login").

Which configuration store: ``--issuer`` reads the issuer's own discovery document
(``IssuerClientConfigStore``: any OIDC API, no FlyteAdmin), else FlyteAdmin's
(``RemoteClientConfigStore``). An issuer's sign-in without ``--endpoint`` has no API endpoint: its
tokens are kept under the issuer and client (``LoginSpec.service``), and the session has no origin
of its own, so ``BearerAuth`` needs ``origins=[...]`` (the token never goes to the issuer by
default). A proxy command (``--proxy-command``, or the SDKs' settings) becomes one ``ProxyAuth`` for
the endpoint, handed to the store and the authenticator: the deployment gets its header, the
identity provider never does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..endpoint import Endpoint, issuer_service
from ..environment import BrowserLocation, FlowRequest, ServerFacts, browser_location, decide_flow
from ..errors import FlyteAuthError
from ..flows.events import Event
from ..flows.hub import hub_context
from ..sdk_config import read_client_secret
from ..transport.relay import is_relay_uri
from .session import Prepared


#: the notice of an issuer's sign-in without an API endpoint (the panel and %flyte_status show it)
NO_API_ORIGIN = (
    "No --endpoint names the API, so the token is sent nowhere by default: pass --endpoint URL for the API, "
    "or give BearerAuth({name}, origins=[...]) the API's origins."
)


@dataclass(frozen=True)
class LoginSpec:
    """What the cell asked for. Holds no secret (see the module docstring).

    ``endpoint`` is the deployment or API (None: an issuer's sign-in with no ``--endpoint``);
    ``issuer`` selects the issuer's own discovery document. ``confidential``: the client secret was
    given for this sign-in (``--client-secret-env``), so every flow sends it; a secret found only in the
    SDKs' settings is for client credentials, as flytekit uses it."""

    endpoint: Endpoint | None
    flow: str = "auto"
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_location: str | None = None
    confidential: bool = False
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
    issuer: str | None = None
    device_authorization_endpoint: str | None = None
    #: the browser sign-in's ``prompt`` (None: the default rule, "": never sent)
    prompt: str | None = None
    #: the identity-aware proxy's command (argv), for the endpoint
    proxy_command: tuple[str, ...] = ()
    location: BrowserLocation | None = field(default=None, compare=False)

    @property
    def has_client_secret(self) -> bool:
        return bool(self.client_secret_env or self.client_secret_location)

    @property
    def service(self) -> str:
        """The name of this sign-in: the endpoint's ``host:port``, else (an issuer's sign-in with no API
        endpoint) the issuer and client (``endpoint.issuer_service``): the token store's key, the panel's
        title and ``%flyte_status``'s first word."""
        if self.endpoint is not None:
            return self.endpoint.service
        return issuer_service(self.issuer or "", self.client_id or "")

    @property
    def endpoint_url(self) -> str | None:
        """The origin ``BearerAuth`` sends the token to (None: no API endpoint, origins=[...] needed)."""
        return self.endpoint.url if self.endpoint is not None else None


class Lookups:
    """The facts ``environment.decide_flow`` may ask for, each looked up on its first ask only: the
    server's client configuration (through ``cfg_store``) and the Hub's answer (one read of its API)."""

    def __init__(self, spec: LoginSpec, cfg_store: Any) -> None:
        self.spec = spec
        self.cfg_store = cfg_store
        self._server: ServerFacts | None = None
        self._hub: tuple[bool, str] | None = None

    def server(self) -> ServerFacts:
        if self._server is None:
            cfg = self.cfg_store.get_client_config()
            redirect_uri = self.spec.redirect_uri or getattr(cfg, "redirect_uri", None)
            self._server = ServerFacts(
                authorization_endpoint=getattr(cfg, "authorization_endpoint", None) or None,
                device_endpoint=getattr(cfg, "device_authorization_endpoint", None) or None,
                relay_redirect=bool(redirect_uri and is_relay_uri(redirect_uri)),
            )
        return self._server

    def hub(self) -> tuple[bool, str]:
        if self._hub is None:
            self._hub = self._ask_hub()
        return self._hub

    def _ask_hub(self) -> tuple[bool, str]:
        from ..authenticators import HubAuthenticator

        spec = self.spec
        probe = HubAuthenticator(spec.endpoint or "", None, spec.http_proxy_url, spec.verify,
                                 cfg_store=self.cfg_store, timeout=spec.timeout, insecure=spec.insecure)
        if probe.context is None:
            return False, probe.available_reason or "not on JupyterHub"
        try:
            probe.refresh_credentials(interactive=False)
        except FlyteAuthError as exc:
            return False, str(exc)
        return True, probe.reused_reason

    def redirect_uri(self) -> str | None:
        """The redirect URI in force (the trait, else the server's), for where the browser opens;
        None when the configuration cannot be read (the sign-in itself will say why)."""
        if self.spec.redirect_uri or self.cfg_store is None:
            return self.spec.redirect_uri
        try:
            return getattr(self.cfg_store.get_client_config(), "redirect_uri", None) or None
        except FlyteAuthError:
            return None


def proxy_auth_for(spec: LoginSpec) -> Any:
    """The identity-aware proxy's credential for the endpoint (None without a proxy command). The
    command's output is cached per process (``proxy.shared_credential``), so a later sign-in does not
    run it again."""
    if not spec.proxy_command or spec.endpoint is None:
        return None
    from ..proxy import ProxyAuth

    return ProxyAuth(spec.proxy_command, endpoint=spec.endpoint.url, insecure=spec.insecure)


def config_store_for(spec: LoginSpec, proxy_auth: Any = None) -> Any:
    """The issuer's own discovery document with ``--issuer``, else FlyteAdmin's."""
    if spec.issuer:
        from ..config import ISSUER_REDIRECT_URI, IssuerClientConfigStore

        return IssuerClientConfigStore(
            spec.issuer, spec.client_id or "", device_authorization_endpoint=spec.device_authorization_endpoint,
            scopes=list(spec.scopes) or None, audience=spec.audience,
            redirect_uri=spec.redirect_uri or ISSUER_REDIRECT_URI, prompt=spec.prompt, insecure=spec.insecure,
            verify=spec.verify, http_proxy_url=spec.http_proxy_url, proxy_auth=proxy_auth,
        )
    from ..config import RemoteClientConfigStore

    if spec.endpoint is None:  # build_spec never makes one; a clear sentence all the same
        from ..errors import ConfigurationError

        raise ConfigurationError("No Flyte endpoint and no issuer: pass --endpoint URL or --issuer URL.")
    return RemoteClientConfigStore(
        spec.endpoint.url, insecure=spec.insecure, verify=spec.verify, http_proxy_url=spec.http_proxy_url,
        proxy_auth=proxy_auth, prompt=spec.prompt,
    )


def relayed_remotely(location: BrowserLocation, redirect_uri: str | None) -> bool:
    """True when the redirect goes through the Jupyter relay and the browser is not on this machine:
    the user opens the widget's link in their own browser; the kernel must not launch one."""
    return bool(redirect_uri and is_relay_uri(redirect_uri)) and not location.local


def token_store_for(spec: LoginSpec) -> Any:
    """``--no-cache``: process memory of this login only; a store chosen explicitly (trait or
    ``$FLYTEAUTH_TOKEN_CACHE``) for every flow; else None (each authenticator's default)."""
    if spec.no_cache:
        from ..stores import MemoryStore

        return MemoryStore()
    from ..stores import TOKEN_CACHE_ENV, make_store

    kind = spec.token_cache or os.environ.get(TOKEN_CACHE_ENV, "").strip() or None
    return make_store(kind if spec.token_cache else None) if kind else None


def prepare(spec: LoginSpec, observer: Callable[[Event], None]) -> Prepared:
    """Build the authenticator for ``spec`` (runs in the background thread): look up, decide, build."""
    from ..authenticators import authenticator_for

    location = spec.location or browser_location()
    needs_server = not (spec.flow == "command" or (spec.command and spec.flow == "auto"))
    proxy_auth = proxy_auth_for(spec)
    lookups = Lookups(spec, config_store_for(spec, proxy_auth) if needs_server else None)
    choice = decide_flow(FlowRequest(
        flow=spec.flow, location=location, has_command=bool(spec.command), has_client_secret=spec.has_client_secret,
        configured_auth_type=spec.configured_auth_type, on_hub=hub_context(os.environ) is not None,
        endpoint=spec.service,
    ), lookups)
    browser_fallback = choice.flow == "device" and spec.flow in ("auto", "hub")  # auto's device: PKCE if refused
    opens_browser = choice.flow == "pkce" or browser_fallback
    store = token_store_for(spec)
    secret = None  # read here, right before it is used, and dropped after (never in the spec)
    if choice.flow == "client-credentials" or (spec.confidential and choice.flow in ("device", "pkce")):
        secret = read_client_secret(env_var=spec.client_secret_env, location=spec.client_secret_location)
    authenticator = authenticator_for(
        choice.flow, spec.endpoint, lookups.cfg_store, observer=observer, timeout=spec.timeout, store=store,
        insecure=spec.insecure, verify=spec.verify, http_proxy_url=spec.http_proxy_url, client_id=spec.client_id,
        client_secret=secret, scopes=spec.scopes, audience=spec.audience, command=spec.command,
        open_browser=spec.open_browser and not (opens_browser and relayed_remotely(location, lookups.redirect_uri())),
        redirect_uri=spec.redirect_uri, browser_fallback=browser_fallback, prompt=spec.prompt, proxy_auth=proxy_auth,
    )
    del secret
    notices = [getattr(authenticator, "fallback_reason", None) or getattr(store, "notice", None)]
    if spec.issuer and spec.endpoint is None:
        notices.append(NO_API_ORIGIN.format(name=spec.name))
    return Prepared(
        authenticator=authenticator,
        flow=choice.flow,
        reason=choice.reason,
        notice=" ".join(n for n in notices if n) or None,
    )
