"""The authenticators: flytekit's public classes, re-implemented on top of the flows.

Each class takes the seed's parameters (flytekit's names, order and defaults) and keyword-only
extras (``observer=``, ``timeout=``, ``store=``, ``clock=``, ``insecure=``, and for the browser and
device logins ``client_id=``, ``redirect_uri=``, ``open_browser=``, ``audience=``). The token
lifecycle under them (current credentials and the hot path, the refresh margin, single flight,
store adoption, backoff) is :mod:`..lifecycle`.

* ``get_credentials()``: the current Credentials or None before any login (pinned 10), refreshed
  first (without user interaction) when less than min(60 s, half the lifetime) is left (pinned 5).
* ``refresh_credentials(*, interactive=True)``: the refresh grant when possible, else the interactive
  flow if allowed (else AccessTokenNotFoundError); overlapping calls share one request (single flight).
* ``fetch_grpc_call_auth_metadata()``: ``(header_key, "Bearer <token>")`` or None; the header key is
  the argument, else the server's ``authorization_metadata_key``, else ``authorization`` (pinned 3).
* ``cancel()`` ends an interactive login in progress (any thread); ``logout()`` revokes (RFC 7009)
  when a revocation endpoint is known and clears the store.
* ``PKCEAuthenticator.submit_redirect(url)`` hands the waiting browser sign-in the address the user's
  browser ended on, when the redirect cannot reach this machine (paste-back; any thread).

Where to look: :mod:`.base` (``Authenticator``: the header, the configuration, sign-out),
:mod:`.configured` (scopes, audience, client id, the refresh grant), :mod:`.browser` (PKCE),
:mod:`.device` (device code, and ``auto``'s device-then-browser), :mod:`.client_credentials`,
:mod:`.command`, :mod:`.hub` (JupyterHub's own sign-in), :mod:`.build` (a flow name to an
authenticator: the one place that maps them). Progress goes to the observer as events
(flows.events); nothing prints. Reprs redact every secret.
"""

from __future__ import annotations

from ..lifecycle import needs_refresh, refresh_margin
from .base import DEFAULT_HEADER_KEY, LOGOUT_FLIGHT_WAIT, Authenticator, _default_store, reachable_stores
from .browser import PKCEAuthenticator
from .build import authenticator_for
from .client_credentials import ClientCredentialsAuthenticator
from .command import CommandAuthenticator
from .configured import ConfiguredAuthenticator
from .device import DeviceCodeAuthenticator, DeviceOrBrowserAuthenticator
from .hub import HubAuthenticator

__all__ = [
    "DEFAULT_HEADER_KEY",
    "LOGOUT_FLIGHT_WAIT",
    "Authenticator",
    "ClientCredentialsAuthenticator",
    "CommandAuthenticator",
    "ConfiguredAuthenticator",
    "DeviceCodeAuthenticator",
    "DeviceOrBrowserAuthenticator",
    "HubAuthenticator",
    "PKCEAuthenticator",
    "_default_store",
    "authenticator_for",
    "needs_refresh",
    "reachable_stores",
    "refresh_margin",
]
