"""Client authentication for confidential clients: the basic/post rule, where the secret goes, redaction."""

from __future__ import annotations

import logging

import pytest
import requests

from flyteauth_jupyter.errors import ConfigurationError
from flyteauth_jupyter.flows import device
from flyteauth_jupyter.flows.client_auth import (
    ClientSecretBasic,
    ClientSecretPost,
    basic_authorization_header,
    choose_client_auth,
    prepare,
)
from flyteauth_jupyter.control import Waiter
from flow_fakes import SECRETS, FakeClock, FakeTransport, ok

SECRET = SECRETS[3]


@pytest.mark.parametrize("methods, kind", [
    (None, ClientSecretBasic),
    ([], ClientSecretBasic),
    (["client_secret_basic"], ClientSecretBasic),
    (["client_secret_post", "client_secret_basic"], ClientSecretBasic),
    (["private_key_jwt", "client_secret_post"], ClientSecretPost),
    (["client_secret_post"], ClientSecretPost),
])
def test_basic_unless_the_metadata_allows_only_post(methods, kind) -> None:
    assert isinstance(choose_client_auth("svc", SECRET, methods), kind)


def test_forced_method_and_refusals() -> None:
    assert isinstance(choose_client_auth("svc", SECRET, ["client_secret_basic"], method="client_secret_post"), ClientSecretPost)
    with pytest.raises(ConfigurationError):
        choose_client_auth("svc", SECRET, method="tls_client_auth")
    with pytest.raises(ConfigurationError) as info:
        choose_client_auth("svc", SECRET, ["private_key_jwt", "none"])
    assert "private_key_jwt" in str(info.value) and SECRET not in str(info.value)
    with pytest.raises(ConfigurationError):
        choose_client_auth("svc", "")


def test_where_the_secret_goes() -> None:
    body, auth = prepare(ClientSecretPost("svc", SECRET), {"grant_type": "refresh_token"})
    assert body == {"grant_type": "refresh_token", "client_id": "svc", "client_secret": SECRET} and auth is None
    basic = ClientSecretBasic("svc", SECRET)
    body, auth = prepare(basic, {"grant_type": "refresh_token"})
    assert body == {"grant_type": "refresh_token"} and auth is basic
    request = auth(requests.Request("POST", "https://idp.test/token").prepare())
    assert request.headers["Authorization"] == basic_authorization_header("svc", SECRET)
    assert prepare(None, {"a": "b"}) == ({"a": "b"}, None)
    assert prepare("Basic xyz", {"a": "b"}) == ({"a": "b"}, "Basic xyz")


def test_the_secret_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for auth in (ClientSecretBasic("svc", SECRET), ClientSecretPost("svc", SECRET)):
        assert SECRET not in repr(auth) and SECRET not in str(auth) and "<redacted>" in repr(auth)
    assert SECRET not in caplog.text


def test_device_polling_carries_the_secret_on_every_request() -> None:
    clock = FakeClock()
    transport = FakeTransport([
        ok({"device_code": SECRETS[2], "user_code": "ABCD", "verification_uri": "https://idp.test/d", "expires_in": 60}),
        ok({"error": "authorization_pending"}, status=400),
        ok({"access_token": SECRETS[0], "token_type": "Bearer"}),
    ], clock=clock)
    device.run_device_flow(
        transport, device_authorization_endpoint="https://idp.test/device", token_endpoint="https://idp.test/token",
        client_id="svc", waiter=Waiter(60, clock=clock), endpoint="idp.test", auth=ClientSecretPost("svc", SECRET),
    )
    assert len(transport.posts) == 3
    assert all(data["client_secret"] == SECRET and auth is None for _url, data, auth, _t in transport.posts)
