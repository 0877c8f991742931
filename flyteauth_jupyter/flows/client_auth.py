"""Client authentication at the token endpoint (RFC 6749 section 2.3.1) for confidential clients.

A client registered with a secret (Keycloak confidential clients, Entra ID or Okta "web" apps, Google
installed apps) must authenticate on every token request of every flow: device authorization and
polling, code exchange, refresh, client credentials and revocation; without the secret the provider
answers ``401 invalid_client``. Two methods:

- :class:`ClientSecretBasic`: HTTP Basic with the form-url-encoded id and secret (the default, and
  RFC 8414's default when the metadata names none);
- :class:`ClientSecretPost`: ``client_id`` and ``client_secret`` in the form body, used when the
  provider's ``token_endpoint_auth_methods_supported`` allows only that.

:func:`choose_client_auth` applies that rule; :func:`prepare` is what a flow calls on its form before
posting it (it also accepts what flows took before: None, an ``Authorization`` value or a requests
``AuthBase``). The secret lives only inside these objects, whose reprs redact it; it is never logged,
shown or put in an exception message.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote_plus

import requests

from ..errors import ConfigurationError

BASIC = "client_secret_basic"
POST = "client_secret_post"


def basic_authorization_header(client_id: str, client_secret: str) -> str:
    """``Basic base64(urlencode(id) ":" urlencode(secret))`` per RFC 6749 section 2.3.1."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


class ClientSecretBasic(requests.auth.AuthBase):
    """requests auth that sets the client_secret_basic header; the secret never shows in repr."""

    method = BASIC

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self._secret = client_secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = basic_authorization_header(self.client_id, self._secret)
        return request

    def apply(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], requests.auth.AuthBase | None]:
        return dict(data), self

    def __repr__(self) -> str:
        return f"ClientSecretBasic(client_id={self.client_id!r}, client_secret=<redacted>)"

    __str__ = __repr__


class ClientSecretPost:
    """client_secret_post: the id and the secret go in the form body; the secret never shows in repr."""

    method = POST

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self._secret = client_secret

    def apply(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], requests.auth.AuthBase | None]:
        body = dict(data)
        body["client_id"] = self.client_id
        body["client_secret"] = self._secret
        return body, None

    def __repr__(self) -> str:
        return f"ClientSecretPost(client_id={self.client_id!r}, client_secret=<redacted>)"

    __str__ = __repr__


ClientAuth = ClientSecretBasic | ClientSecretPost


def choose_client_auth(
    client_id: str,
    client_secret: str,
    methods_supported: Iterable[str] | None = None,
    *,
    method: str | None = None,
) -> ClientAuth:
    """``client_secret_basic``, or ``client_secret_post`` when the metadata's
    ``token_endpoint_auth_methods_supported`` lists post but not basic; ``method`` forces one."""
    if not client_id or not client_secret:
        raise ConfigurationError("A confidential client needs both its client id and its client secret.")
    if method is not None:
        if method == BASIC:
            return ClientSecretBasic(client_id, client_secret)
        if method == POST:
            return ClientSecretPost(client_id, client_secret)
        raise ConfigurationError(f"The client authentication method must be {BASIC} or {POST}.")
    listed = [m for m in (methods_supported or ()) if isinstance(m, str)]
    if not listed or BASIC in listed:
        return ClientSecretBasic(client_id, client_secret)
    if POST in listed:
        return ClientSecretPost(client_id, client_secret)
    shown = ", ".join(m[:30] for m in listed[:5])
    raise ConfigurationError(
        f"The provider accepts only {shown} at its token endpoint, so a client secret cannot be used there; "
        "check the client's registration."
    )


def prepare(auth: Any, data: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """The form to post and the ``auth`` to hand to ``Transport.post_form``: a :data:`ClientAuth` puts
    its secret where its method says; anything else (None, an Authorization value, an ``AuthBase``)
    passes through unchanged."""
    if isinstance(auth, (ClientSecretBasic, ClientSecretPost)):
        return auth.apply(data)
    return dict(data), auth


__all__ = [
    "BASIC",
    "POST",
    "ClientAuth",
    "ClientSecretBasic",
    "ClientSecretPost",
    "basic_authorization_header",
    "choose_client_auth",
    "prepare",
]
