"""The client credentials grant (RFC 6749 section 4.4) with ``client_secret_basic`` authentication.

RFC 6749 section 2.3.1: the client id and the secret are each form-url-encoded before they are joined
with ``:`` and base64-encoded (flytekit encodes only the secret). The secret lives only inside
:class:`ClientSecretBasic`, whose repr redacts it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import quote_plus

import requests

from ..control import SYSTEM_CLOCK, Clock
from ..credentials import Credentials
from ..transport.http import Transport
from ..validate import scope_list
from .tokens import credentials_from_response

GRANT_TYPE = "client_credentials"


def basic_authorization_header(client_id: str, client_secret: str) -> str:
    """``Basic base64(urlencode(id) ":" urlencode(secret))`` per RFC 6749 section 2.3.1."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


class ClientSecretBasic(requests.auth.AuthBase):
    """requests auth that sets the client_secret_basic header; the secret never shows in repr."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self._secret = client_secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = basic_authorization_header(self.client_id, self._secret)
        return request

    def __repr__(self) -> str:
        return f"ClientSecretBasic(client_id={self.client_id!r}, client_secret=<redacted>)"

    __str__ = __repr__


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
) -> Credentials:
    """One client credentials token request; raise the mapped OAuth error on failure."""
    scopes = scope_list(scopes)
    data = {"grant_type": GRANT_TYPE}
    if scopes:
        data["scope"] = " ".join(scopes)
    if audience:
        data["audience"] = audience
    response = transport.post_form(token_endpoint, data, auth=ClientSecretBasic(client_id, client_secret))
    response.raise_for_error("client credentials request")
    return credentials_from_response(
        response.data, endpoint=endpoint, where=response.where, requested_scopes=scopes, clock=clock
    )


__all__ = ["ClientSecretBasic", "GRANT_TYPE", "basic_authorization_header", "fetch_client_credentials_token"]
