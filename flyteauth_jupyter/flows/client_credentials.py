"""The client credentials grant (RFC 6749 section 4.4), with ``client_secret_basic`` by default.

RFC 6749 section 2.3.1: the client id and the secret are each form-url-encoded before they are joined
with ``:`` and base64-encoded (flytekit encodes only the secret). ``client_auth=`` (a
:mod:`~flyteauth_jupyter.flows.client_auth` object, e.g. from ``choose_client_auth``) selects
``client_secret_post`` where the provider allows only that. The secret lives only inside those
objects, whose reprs redact it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..control import SYSTEM_CLOCK, Clock
from ..credentials import Credentials
from ..transport.http import Transport
from ..validate import scope_list
from .client_auth import ClientAuth, ClientSecretBasic, basic_authorization_header, prepare
from .tokens import credentials_from_response

GRANT_TYPE = "client_credentials"


def fetch_client_credentials_token(
    transport: Transport,
    token_endpoint: str,
    *,
    client_id: str,
    client_secret: str,
    endpoint: str,
    scopes: Iterable[str] | None = None,
    audience: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    client_auth: ClientAuth | None = None,
) -> Credentials:
    """One client credentials token request; raise the mapped OAuth error on failure."""
    scopes = scope_list(scopes)
    data = {"grant_type": GRANT_TYPE}
    if scopes:
        data["scope"] = " ".join(scopes)
    if audience:
        data["audience"] = audience
    body, auth = prepare(client_auth or ClientSecretBasic(client_id, client_secret), data)
    response = transport.post_form(token_endpoint, body, auth=auth)
    response.raise_for_error("client credentials request")
    return credentials_from_response(
        response.data, endpoint=endpoint, where=response.where, requested_scopes=scopes, clock=clock
    )


__all__ = ["ClientSecretBasic", "GRANT_TYPE", "basic_authorization_header", "fetch_client_credentials_token"]
