"""The refresh token grant (RFC 6749 section 6).

A successful answer replaces the access token; a new refresh token replaces the old one (rotation),
and when none comes back the old one is kept (flytekit loses it). No scope is sent unless asked for,
so the grant keeps its original scopes. A confidential client passes its ``auth``
(:mod:`~flyteauth_jupyter.flows.client_auth`) to both the refresh and the revocation. Errors map to exceptions (``invalid_grant``: the refresh
token is dead and the user must sign in again).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..control import SYSTEM_CLOCK, Clock
from ..credentials import Credentials
from ..errors import AccessTokenNotFoundError
from ..transport.http import Transport
from ..validate import scope_list
from .client_auth import prepare
from .tokens import credentials_from_response

GRANT_TYPE = "refresh_token"


def refresh_access_token(
    transport: Transport,
    token_endpoint: str,
    credentials: Credentials,
    *,
    client_id: str | None,
    endpoint: str,
    scopes: Iterable[str] | None = None,
    audience: str | None = None,
    auth: Any = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Credentials:
    """New credentials from ``credentials.refresh_token``; AccessTokenNotFoundError when there is none."""
    if not credentials.refresh_token:
        raise AccessTokenNotFoundError(f"There is no refresh token for {endpoint}; sign in again.")
    data: dict[str, Any] = {"grant_type": GRANT_TYPE, "refresh_token": credentials.refresh_token}
    if client_id:
        data["client_id"] = client_id
    scopes = scope_list(scopes)
    if scopes:
        data["scope"] = " ".join(scopes)
    if audience:
        data["audience"] = audience
    body, request_auth = prepare(auth, data)
    response = transport.post_form(token_endpoint, body, auth=request_auth).raise_for_error("token refresh")
    return credentials_from_response(
        response.data,
        endpoint=endpoint,
        where=response.where,
        previous=credentials,
        requested_scopes=scopes or credentials.scopes,
        clock=clock,
    )


def revoke_token(
    transport: Transport,
    revocation_endpoint: str,
    token: str,
    *,
    token_type_hint: str = "refresh_token",
    client_id: str | None = None,
    auth: Any = None,
) -> None:
    """RFC 7009 revocation; a 200 (also for unknown tokens) is success, anything else raises."""
    data = {"token": token, "token_type_hint": token_type_hint}
    if client_id:
        data["client_id"] = client_id
    body, request_auth = prepare(auth, data)
    response = transport.post_form(revocation_endpoint, body, auth=request_auth, allow_empty=True)
    response.raise_for_error("token revocation")


__all__ = ["GRANT_TYPE", "refresh_access_token", "revoke_token"]
