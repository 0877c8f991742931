"""Token endpoint answers (RFC 6749 section 5): a success body becomes ``Credentials``, an error body the
matching exception.

Rules: ``access_token`` is required; ``token_type`` must be Bearer when present (case-insensitive);
``expires_in`` is optional (absent or not a number: unknown expiry; a number that is not finite or
not in 0 .. ten years: ``ProtocolError``, checked by ``validate.server_seconds``); a missing ``refresh_token`` keeps the
previous one (the server did not rotate it); a missing ``scope`` means the scopes asked for. Error
bodies map through ``errors.OAUTH_ERROR_CLASSES`` (``errors.oauth_error``) with the server's description.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..control import SYSTEM_CLOCK, Clock
from ..credentials import Credentials
from ..errors import OAuthError, ProtocolError, oauth_error
from ..transport.http import JsonResponse, Transport
from ..validate import as_number, scope_list, server_seconds
from .client_auth import prepare

__all__ = ["credentials_from_response", "error_from_response", "parse_expires_in", "token_request", "oauth_error"]


def parse_expires_in(value: Any, *, where: str = "the server") -> int | None:
    """``expires_in`` as whole seconds; None when absent or not a number; ProtocolError when it is a
    number that is not finite, negative or more than ten years."""
    if as_number(value) is None:
        return None
    seconds = server_seconds(value, name="expires_in", where=where)
    return None if seconds is None else int(seconds)


def credentials_from_response(
    body: Mapping[str, Any],
    *,
    endpoint: str,
    where: str = "the server",
    previous: Credentials | None = None,
    requested_scopes: Iterable[str] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Credentials:
    """Credentials from a successful token response; raise ProtocolError when it is not one."""
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token.strip():
        raise ProtocolError(f"{where} answered without an access token; check the token endpoint and client settings.")
    token_type = body.get("token_type")
    if token_type is not None and (not isinstance(token_type, str) or token_type.lower() != "bearer"):
        shown = token_type if isinstance(token_type, str) and token_type.isalnum() and len(token_type) < 20 else "?"
        raise ProtocolError(
            f"{where} issued a {shown!s} token, but only Bearer tokens are supported; check the client's registration."
        )
    expires_in = parse_expires_in(body.get("expires_in"), where=where)
    refresh_token = body.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        refresh_token = previous.refresh_token if previous is not None else None
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        id_token = previous.id_token if previous is not None else None
    scope = body.get("scope")
    if isinstance(scope, str) and scope.strip():
        scopes: tuple[str, ...] = scope_list(scope)  # space-separated (RFC 6749); GitHub separates with commas
    else:
        scopes = scope_list(requested_scopes)
    expires_at = clock.time() + expires_in if expires_in is not None else None
    return Credentials(
        access_token=access_token.strip(),
        refresh_token=refresh_token,
        for_endpoint=endpoint,
        expires_in=expires_in,
        id_token=id_token,
        expires_at=expires_at,
        scopes=scopes,
    )


def error_from_response(response: JsonResponse) -> OAuthError | None:
    """The OAuthError an error body describes (None when it has no ``error``)."""
    return response.oauth_error()


def token_request(
    transport: Transport,
    token_endpoint: str,
    data: Mapping[str, Any],
    *,
    auth: Any = None,
    what: str = "token request",
) -> dict[str, Any]:
    """POST a token request; return the JSON body of a 2xx answer, else raise the mapped error."""
    body, request_auth = prepare(auth, data)
    return transport.post_form(token_endpoint, body, auth=request_auth).raise_for_error(what).data
