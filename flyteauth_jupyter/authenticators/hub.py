"""``HubAuthenticator``: the user's token from the JupyterHub the kernel runs under (``--flow hub``).

No click: the Hub signed the user in at the identity provider and keeps the tokens (``auth_state``).
This class asks the Hub's API for them (``GET $JUPYTERHUB_API_URL/users/$JUPYTERHUB_USER`` with
the server's own ``$JUPYTERHUB_API_TOKEN``, which needs the scope ``admin:auth_state!user`` on the
``server`` and ``user`` roles) and hands out the access token when :mod:`.flows.hub` finds it is for
this Flyte endpoint (issuer, audience). Near expiry it asks the Hub again (the Hub refreshes in its
``refresh_user``), one request for any number of overlapping calls, backing off 1 s, 2 s ... 60 s
while the Hub hands back a token still due or fails (the lifecycle's rules for silent renewals);
it never holds, spends or caches the Hub's refresh token, and it keeps nothing in a token store. ``logout()`` forgets the token here and never revokes it:
the session is the Hub's (sign out of the Hub to end it). What an earlier sign-in of the endpoint
left in a token store is revoked before it is deleted, as for every flow (issue 16.5).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import requests

from ..config import ClientConfigStore
from ..control import Clock, Waiter
from ..credentials import Credentials
from ..endpoint import Endpoint
from ..errors import ProtocolError
from ..flows.events import Observer
from ..flows.hub import (
    AUTH_STATE_SCOPE,
    Expected,
    HubContext,
    HubSignInUnavailable,
    auth_state_of,
    credentials_from_auth_state,
    hub_context,
    missing_hub_reason,
    reused_reason,
)
from ..transport.http import Transport
from .base import Authenticator


class HubAuthenticator(Authenticator):
    """Credentials from the Hub's ``auth_state`` (flytekit's constructor shape: endpoint, header_key)."""

    flow_name = "hub"
    needs_user = False
    discovers_config = True
    #: where the tokens live, for the panel's "tokens kept in ..." (the Hub keeps and renews them)
    tokens_kept = "JupyterHub (your Hub login renews them)"

    def __init__(
        self,
        endpoint: str | Endpoint,
        header_key: str | None = None,  # flytekit's convention
        http_proxy_url: str | None = None,
        verify: bool | str | None = None,
        *,
        cfg_store: ClientConfigStore | None = None,
        env: Mapping[str, str] | None = None,
        observer: Observer | None = None,
        timeout: float | None = None,
        clock: Clock | None = None,
        insecure: bool = False,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(
            endpoint, header_key, http_proxy_url=http_proxy_url, verify=verify, observer=observer,
            timeout=timeout, store=None, clock=clock, insecure=insecure, session=session, cfg_store=cfg_store,
        )
        self._env = dict(os.environ if env is None else env)
        self.context: HubContext | None = hub_context(self._env)
        # the Hub's API is inside the deployment: no Flyte proxy, default TLS checks
        self._hub_transport = Transport(session)

    @property
    def available_reason(self) -> str | None:
        """None when a Hub is there to ask; else why not (one sentence)."""
        return None if self.context is not None else missing_hub_reason(self._env)

    @property
    def where(self) -> str:
        """The Hub's API address (host:port), as sentences quoting its HTTP status name it."""
        return self.context.where if self.context is not None else "the Hub"

    @property
    def reused_reason(self) -> str:
        """The panel's flow line when this login is used: the Hub by its public address, or "JupyterHub"."""
        if self.context is None:
            return "your JupyterHub login is reused, no click needed"
        return reused_reason(self.context)

    def _login(self, waiter: Waiter) -> Credentials:
        waiter.check()
        ctx = self.context
        if ctx is None:
            raise HubSignInUnavailable(missing_hub_reason(self._env))
        cfg = self._config()
        response = self._hub_transport.get_json(ctx.user_url, headers={"Authorization": f"token {ctx.token}"})
        if response.status in (401, 403):
            raise HubSignInUnavailable(
                f"The Hub at {ctx.where} refused to show your tokens to your server (HTTP {response.status}); its "
                f"administrator must grant the scope {AUTH_STATE_SCOPE} to both the server and the user roles."
            )
        if not response.ok:
            raise ProtocolError(
                f"The Hub at {ctx.where} answered GET /users/{ctx.user[:64]} with HTTP {response.status}.",
                status=response.status,
            )
        state = auth_state_of(response.data, where=ctx.where)
        return credentials_from_auth_state(
            state, expected=Expected(cfg.issuer, cfg.audience), endpoint=self.service, where=ctx.where,
            now=self.clock.time(), hub_user=response.data.get("name"),
        )

    def _revoke_all(self, held: list[Credentials]) -> bool:
        return False  # the Hub's own token: its session, never revoked from a kernel

    def _repr_fields(self) -> list[str]:
        user = self.context.user if self.context is not None else None
        return super()._repr_fields() + [f"hub={self.where!r}", f"user={user!r}"]


def hub_session_available(env: Mapping[str, str] | None = None) -> bool:
    """True when the kernel runs under a Hub it could ask (cheap: environment only)."""
    return hub_context(os.environ if env is None else env) is not None


__all__ = ["HubAuthenticator", "HubSignInUnavailable", "hub_session_available"]

