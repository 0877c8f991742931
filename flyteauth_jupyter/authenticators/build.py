"""A flow name to an authenticator: the one place that maps ``--flow`` names (``%flyte_login``) and
the flytekit plug-in's flows to the classes and their constructor arguments.

The caller has decided the flow (``environment.decide_flow``) and resolved every setting; this only
constructs (no request is sent here). An unknown flow name is our ``ConfigurationError``.

``client_secret`` goes to every flow that talks to the identity provider: client credentials, and a
confidential client's device and browser sign-ins. ``proxy_auth`` (an identity-aware proxy's
credential for the deployment) goes to every authenticator. ``endpoint`` may be None for an issuer's
sign-in without an API endpoint (``cfg_store`` is then an ``IssuerClientConfigStore``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests

from ..config import ClientConfigStore
from ..endpoint import Endpoint
from ..environment import FLOWS
from ..errors import ConfigurationError
from ..flows.events import Observer
from .base import Authenticator
from .browser import PKCEAuthenticator
from .client_credentials import ClientCredentialsAuthenticator
from .command import CommandAuthenticator
from .device import DeviceCodeAuthenticator, DeviceOrBrowserAuthenticator
from .hub import HubAuthenticator


def authenticator_for(
    flow: str,
    endpoint: Endpoint | None,
    cfg_store: ClientConfigStore | None,
    *,
    observer: Observer | None = None,
    timeout: float | None = None,
    store: Any = None,
    insecure: bool = False,
    verify: bool | str | None = None,
    http_proxy_url: str | None = None,
    session: requests.Session | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    scopes: Sequence[str] | None = None,
    audience: str | None = None,
    command: Sequence[str] = (),
    open_browser: bool = True,
    redirect_uri: str | None = None,
    browser_fallback: bool = False,
    env: Mapping[str, str] | None = None,
    prompt: str | None = None,
    proxy_auth: requests.auth.AuthBase | None = None,
) -> Authenticator:
    """The authenticator of ``flow`` (device, pkce, hub, client-credentials, command) for ``endpoint``.

    ``browser_fallback``: a device sign-in that continues as the browser sign-in when the identity
    provider refuses the device grant (``--flow auto``'s choice). ``env``: the environment the Hub
    sign-in reads (default: the process's)."""
    scope_list = list(scopes) if scopes else None
    common: dict[str, Any] = {"observer": observer, "timeout": timeout, "insecure": insecure, "proxy_auth": proxy_auth}
    where: Any = endpoint  # None: an issuer's sign-in with no API endpoint (the store names the service)

    def browser() -> PKCEAuthenticator:
        return PKCEAuthenticator(
            where, cfg_store, scopes=scope_list, verify=verify, session=session, client_id=client_id,
            redirect_uri=redirect_uri, audience=audience, http_proxy_url=http_proxy_url, open_browser=open_browser,
            store=store, client_secret=client_secret or None, prompt=prompt, **common,
        )

    if flow == "pkce":
        return browser()
    if flow == "device":
        device_args: dict[str, Any] = {
            "audience": audience, "scopes": scope_list, "http_proxy_url": http_proxy_url, "verify": verify,
            "session": session, "client_id": client_id, "store": store, "client_secret": client_secret or None,
            **common,
        }
        if browser_fallback:
            return DeviceOrBrowserAuthenticator(where, cfg_store, browser=browser, **device_args)
        return DeviceCodeAuthenticator(where, cfg_store, **device_args)
    if flow == "hub":
        hub_common = {k: v for k, v in common.items() if k != "proxy_auth"}
        hub = HubAuthenticator(where, None, http_proxy_url, verify, cfg_store=cfg_store, env=env, session=session,
                               **hub_common)
        # the Hub's API is not behind the deployment's proxy (hub.py asks it on a transport of its own);
        # BearerAuth and gRPC read the attribute, and a configuration store it makes reads it lazily
        hub.proxy_auth = proxy_auth
        return hub
    if flow == "client-credentials":
        if not client_id:
            raise ConfigurationError("Client credentials need a client id; pass --client-id ID (or set admin.clientId).")
        if not client_secret:
            raise ConfigurationError("Client credentials need a client secret; pass --client-secret-env VAR.")
        return ClientCredentialsAuthenticator(
            where, client_id, client_secret, cfg_store, scopes=scope_list, http_proxy_url=http_proxy_url,
            verify=verify, audience=audience, session=session, store=store, **common,
        )
    if flow == "command":
        if not command:
            raise ConfigurationError(
                "The command flow needs a command; pass --command followed by the program and its arguments."
            )
        # the endpoint's settings too: it reads the deployment's header key (pinned 3, issue 17.12)
        return CommandAuthenticator(list(command), endpoint=endpoint.url if endpoint is not None else None,
                                    observer=observer, timeout=timeout, insecure=insecure, verify=verify,
                                    http_proxy_url=http_proxy_url, cfg_store=cfg_store, proxy_auth=proxy_auth)
    named = ", ".join(name for name in FLOWS if name != "auto")
    raise ConfigurationError(f"Unknown flow {flow[:40]!r}; use one of {named}.")


__all__ = ["authenticator_for"]
