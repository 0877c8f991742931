"""Confidential clients (issue 18, item 4, flow half) against the real provider (tests/idp).

A client registered with a secret must authenticate on every token request, even with PKCE or the
device flow: without it the provider answers 401 invalid_client; with it (client_secret_basic, or
client_secret_post when the metadata allows only that) every flow works: device authorization and
polling, code exchange, refresh and revocation. The secret never appears in a message.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flyteauth_jupyter.config import IssuerClientConfigStore
from flyteauth_jupyter.control import Waiter
from flyteauth_jupyter.errors import InvalidClientError, InvalidGrantError
from flyteauth_jupyter.flows import authcode, device, refresh
from flyteauth_jupyter.flows.client_auth import ClientSecretBasic, ClientSecretPost, choose_client_auth
from flyteauth_jupyter.flows.events import DeviceCodeIssued
from flyteauth_jupyter.transport.http import Transport, build_session

pytestmark = pytest.mark.idp

BASIC_CLIENT = "jupyter-confidential"
POST_CLIENT = "jupyter-confidential-post-native"
SECRET = "confidential-secret"
SCOPES = ["openid", "offline_access", "api:read"]


def transport() -> Transport:
    session = build_session()
    session.trust_env = False
    return Transport(session)


def metadata(idp: Any) -> Any:
    session = build_session()
    session.trust_env = False
    return IssuerClientConfigStore(idp.issuer, BASIC_CLIENT, session=session).get_client_config()


def device_sign_in(idp: Any, device_user: Any, client_id: str, auth: Any) -> Any:
    issued: list[DeviceCodeIssued] = []
    ready = threading.Event()

    def observer(event: Any) -> None:
        if isinstance(event, DeviceCodeIssued):
            issued.append(event)
            ready.set()

    def approve() -> None:
        if ready.wait(15):
            device_user.complete(issued[0].verification_uri, issued[0].user_code,
                                 verification_uri_complete=issued[0].verification_uri_complete)

    helper = threading.Thread(target=approve, daemon=True)
    helper.start()
    try:
        return device.run_device_flow(
            transport(), device_authorization_endpoint=idp.device_authorization_endpoint,
            token_endpoint=idp.token_endpoint, client_id=client_id, scopes=SCOPES, waiter=Waiter(60),
            endpoint="confidential.test", observer=observer, auth=auth,
        )
    finally:
        ready.set()
        helper.join(30)


def pkce_sign_in(idp: Any, auth_code_user: Any, client_id: str, auth: Any) -> Any:
    def opener(url: str) -> bool:
        threading.Thread(target=lambda: auth_code_user.follow(url), daemon=True).start()
        return True

    return authcode.run_authcode_flow(
        transport(), authorization_endpoint=idp.authorization_endpoint, token_endpoint=idp.token_endpoint,
        client_id=client_id, redirect_uri="http://127.0.0.1/callback", waiter=Waiter(30),
        endpoint="confidential.test", scopes=SCOPES, open_browser=opener, issuer=idp.issuer, auth=auth,
    )


def assert_invalid_client(info: Any, idp: Any) -> None:
    message = str(info.value)
    assert info.value.error == "invalid_client" and info.value.status == 401
    assert f"127.0.0.1:{idp.port}" in message and SECRET not in message


def test_the_rule_picks_basic_from_the_real_metadata(idp: Any) -> None:
    cfg = metadata(idp)
    assert {"client_secret_basic", "client_secret_post"} <= set(cfg.token_endpoint_auth_methods_supported)
    assert isinstance(choose_client_auth(BASIC_CLIENT, SECRET, cfg.token_endpoint_auth_methods_supported),
                      ClientSecretBasic)


def test_device_flow_without_the_secret_is_invalid_client(idp: Any) -> None:
    with pytest.raises(InvalidClientError) as info:
        device.run_device_flow(
            transport(), device_authorization_endpoint=idp.device_authorization_endpoint,
            token_endpoint=idp.token_endpoint, client_id=BASIC_CLIENT, scopes=SCOPES, waiter=Waiter(10),
            endpoint="confidential.test",
        )
    assert_invalid_client(info, idp)


def test_device_flow_refresh_and_revocation_with_client_secret_basic(idp: Any, device_user: Any) -> None:
    auth = choose_client_auth(BASIC_CLIENT, SECRET, metadata(idp).token_endpoint_auth_methods_supported)
    creds = device_sign_in(idp, device_user, BASIC_CLIENT, auth)
    assert creds.access_token and creds.refresh_token and creds.subject == "alice"
    renewed = refresh.refresh_access_token(transport(), idp.token_endpoint, creds, client_id=BASIC_CLIENT,
                                           endpoint="confidential.test", auth=auth)
    assert renewed.access_token != creds.access_token
    with pytest.raises(InvalidClientError) as info:  # the refresh grant needs the secret too
        refresh.refresh_access_token(transport(), idp.token_endpoint, renewed, client_id=BASIC_CLIENT,
                                     endpoint="confidential.test")
    assert_invalid_client(info, idp)
    refresh.revoke_token(transport(), idp.revocation_endpoint, renewed.refresh_token, client_id=BASIC_CLIENT, auth=auth)
    with pytest.raises(InvalidGrantError):  # revoked (with the secret), so refused now
        refresh.refresh_access_token(transport(), idp.token_endpoint, renewed, client_id=BASIC_CLIENT,
                                     endpoint="confidential.test", auth=auth)


def test_pkce_without_the_secret_is_invalid_client(idp: Any, auth_code_user: Any) -> None:
    with pytest.raises(InvalidClientError) as info:
        pkce_sign_in(idp, auth_code_user, BASIC_CLIENT, None)
    assert_invalid_client(info, idp)


def test_pkce_and_refresh_with_client_secret_post(idp: Any, auth_code_user: Any) -> None:
    auth = choose_client_auth(POST_CLIENT, SECRET, ["client_secret_post", "private_key_jwt"])
    assert isinstance(auth, ClientSecretPost) and SECRET not in repr(auth)
    creds = pkce_sign_in(idp, auth_code_user, POST_CLIENT, auth)
    assert creds.access_token and creds.refresh_token
    renewed = refresh.refresh_access_token(transport(), idp.token_endpoint, creds, client_id=POST_CLIENT,
                                           endpoint="confidential.test", auth=auth)
    assert renewed.access_token != creds.access_token


def test_a_post_client_without_the_secret_is_invalid_client(idp: Any, auth_code_user: Any) -> None:
    with pytest.raises(InvalidClientError) as info:
        pkce_sign_in(idp, auth_code_user, POST_CLIENT, None)
    assert_invalid_client(info, idp)


def test_device_flow_with_client_secret_post(idp: Any, device_user: Any) -> None:
    creds = device_sign_in(idp, device_user, POST_CLIENT, ClientSecretPost(POST_CLIENT, SECRET))
    assert creds.access_token and creds.refresh_token
