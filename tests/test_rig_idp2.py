"""Tests of the second test IdP (tests/idp2, django-oauth-toolkit) and its runner (rig.idp2).

They pin what issue 18.1 asks of it, from the server's side: started by fixtures only, on 127.0.0.1
and an ephemeral port, stopped cleanly; configured as production runs it (OIDC, PKCE required with
S256 only, refresh-token rotation where reusing a rotated token revokes the grant, RFC 9207 ``iss``
on redirects, revocation); and its dialect as measured (reference/identity-providers.md). Our flows
against it are in tests/integration (the ``oauth_server`` fixture). requests only, 127.0.0.1 only.
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from rig.idp import SECRETS_DIR_ENV
from rig.idp2 import DjangoIdP
from rig.user import DeviceApprover, DeviceUser, LoginPageError
from test_rig import (  # the node rig's helpers, shared rather than copied
    DEVICE_GRANT,
    NATIVE,
    SECRET,
    SCOPE,
    answer,
    authorize_url,
    client_credentials_basic_and_post,
    device_poll_once,
    device_start,
    http,  # noqa: F401 - a fixture
    jwt_part,
    loopback,  # noqa: F401 - a fixture
    pkce_pair,
    post,
)

pytestmark = pytest.mark.idp


def pkce_login(http, idp, loopback, auth_code_user, scope: str = SCOPE) -> dict:
    receiver = loopback()
    verifier, challenge = pkce_pair()
    final = auth_code_user.follow(authorize_url(idp, receiver.redirect_uri, scope=scope, challenge=challenge))
    query = receiver.wait()
    assert final.startswith(receiver.redirect_uri)
    assert query["state"] == "st4te" and query["iss"] == idp.issuer  # RFC 9207
    r = post(http, idp.token_endpoint, {"grant_type": "authorization_code", "code": query["code"],
                                         "redirect_uri": receiver.redirect_uri, "client_id": NATIVE,
                                         "code_verifier": verifier})
    assert r.status_code == 200, r.text
    return answer(r)


def refresh(http, idp, refresh_token: str) -> requests.Response:
    return post(http, idp.token_endpoint, {"grant_type": "refresh_token", "refresh_token": refresh_token,
                                           "client_id": NATIVE})


# ---------------------------------------------------------------------------------- the runner
def test_started_on_an_ephemeral_loopback_port_and_stopped_cleanly(make_idp2, http):
    server = make_idp2()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.issuer) and server.port > 0
    assert server.startup_seconds is not None  # the figure docs/test-rig.md quotes; no threshold here
    assert (server.db_dir / "idp2.sqlite3").is_file()
    server.stop()
    assert not server.running and not server.db_dir.exists()
    with pytest.raises(requests.ConnectionError):
        http.get(server.url("/.well-known/openid-configuration"), timeout=2)


def test_unknown_or_node_only_settings_are_refused():
    for settings in ({"at_tll": 5}, {"slow_down": True}, {"device_code_ttl": 2}):
        with pytest.raises(TypeError):
            DjangoIdP(**settings)
    with pytest.raises(TypeError, match="always or never"):
        DjangoIdP(rt_rotation="default").env()


def test_settings_apply(make_idp2, http, auth_code_user, loopback):
    steady = make_idp2(rt_rotation="never", at_ttl=5)
    first = pkce_login(http, steady, loopback, auth_code_user)
    assert first["expires_in"] == 5
    again = answer(refresh(http, steady, first["refresh_token"]))
    assert again["refresh_token"] == first["refresh_token"] and again["access_token"] != first["access_token"]


# ------------------------------------------------------------------------- production settings
def test_discovery_documents(idp2, http):
    oidc = http.get(idp2.url("/.well-known/openid-configuration"), timeout=10).json()
    rfc8414 = http.get(idp2.url("/.well-known/oauth-authorization-server"), timeout=10).json()
    for md in (oidc, rfc8414):
        assert md["issuer"] == idp2.issuer
        assert md["token_endpoint"] == idp2.token_endpoint
        assert md["authorization_endpoint"] == idp2.authorization_endpoint
        assert md["jwks_uri"] == idp2.jwks_uri
        assert md["code_challenge_methods_supported"] == ["S256"]
        assert md["authorization_response_iss_parameter_supported"] is True  # RFC 9207
        assert md["response_types_supported"] == ["code"]
        # the dialect: no device endpoint in either document (FlyteAdmin's stand-in relays the rig's)
        assert "device_authorization_endpoint" not in md
    assert oidc["userinfo_endpoint"] == idp2.userinfo_endpoint
    assert rfc8414["revocation_endpoint"] == idp2.revocation_endpoint
    assert rfc8414["introspection_endpoint"] == idp2.introspection_endpoint
    assert set(rfc8414["grant_types_supported"]) == {"authorization_code", "client_credentials", "refresh_token",
                                                     DEVICE_GRANT}
    assert idp2.metadata == oidc and idp2.authorization_server_metadata == rfc8414


def test_pkce_is_required_and_s256_only(idp2, auth_code_user, loopback):
    for challenge, method in ((None, None), ("x" * 43, "plain")):
        receiver = loopback()
        auth_code_user.follow(authorize_url(idp2, receiver.redirect_uri, challenge=challenge, method=method))
        query = receiver.wait()
        assert query["error"] == "invalid_request" and "code" not in query


def test_auth_code_with_iss_id_token_and_any_loopback_port(idp2, http, auth_code_user, loopback):
    token = pkce_login(http, idp2, loopback, auth_code_user, scope="openid offline_access profile email api:read")
    assert {"access_token", "refresh_token", "id_token"} <= set(token)
    claims = jwt_part(token["id_token"], 1)
    assert claims["iss"] == idp2.issuer and claims["aud"] == NATIVE
    assert claims["sub"] == idp2.subject("alice") and claims["preferred_username"] == "alice"
    assert jwt_part(token["id_token"], 0)["alg"] == "RS256"


def test_auth_code_deny_and_wrong_password(idp2, auth_code_user, loopback):
    receiver = loopback()
    _, challenge = pkce_pair()
    auth_code_user.follow(authorize_url(idp2, receiver.redirect_uri, challenge=challenge), action="deny")
    query = receiver.wait()
    assert query["error"] == "access_denied" and query["state"] == "st4te" and "code" not in query
    # django-oauth-toolkit 3.4 puts `iss` on successful redirects only (RFC 9207 wants it on errors too)
    assert "iss" not in query
    other = loopback()
    with pytest.raises(LoginPageError, match="Invalid username or password"):
        auth_code_user.follow(authorize_url(idp2, other.redirect_uri, challenge=challenge), password="nope")
    assert not other.got.is_set()


def test_refresh_rotation_and_replay_revokes_the_grant(idp2, http, auth_code_user, loopback):
    first = pkce_login(http, idp2, loopback, auth_code_user)
    second = answer(refresh(http, idp2, first["refresh_token"]))
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    before = idp2.grants()
    replay = refresh(http, idp2, first["refresh_token"])
    assert replay.status_code == 400 and answer(replay)["error"] == "invalid_grant"
    assert answer(refresh(http, idp2, second["refresh_token"]))["error"] == "invalid_grant"  # the family is dead
    after = idp2.grants()
    assert after["revoked"] == before["revoked"] + 1
    assert after["error"]["invalid_grant"] == before["error"].get("invalid_grant", 0) + 2


def test_revocation_and_the_rigs_introspection(idp2, http, auth_code_user, loopback):
    token = pkce_login(http, idp2, loopback, auth_code_user)
    assert idp2.introspect(token["access_token"]) == {"active": True, "token_type": "access_token"}
    assert idp2.introspect(token["refresh_token"]) == {"active": True, "token_type": "refresh_token"}
    assert idp2.introspect("no-such-token") == {"active": False}
    # RFC 7662 as the FlyteAdmin stand-in asks it: the confidential client, access tokens only
    r = post(http, idp2.introspection_endpoint, {"token": token["access_token"]}, auth=("jupyter-confidential", SECRET))
    assert answer(r)["active"] is True and answer(r)["username"] == "alice"
    revoked = post(http, idp2.revocation_endpoint, {"token": token["refresh_token"], "client_id": NATIVE})
    assert revoked.status_code == 200
    assert idp2.introspect(token["refresh_token"])["active"] is False
    assert idp2.introspect(token["access_token"])["active"] is False  # revoked with it
    assert answer(refresh(http, idp2, token["refresh_token"]))["error"] == "invalid_grant"


def test_client_credentials_basic_post_and_wrong_secret(idp2, http):
    for r in client_credentials_basic_and_post(http, idp2):
        assert r.status_code == 200, r.text
        token = answer(r)
        assert token["token_type"] == "Bearer" and token["scope"] == "api:read" and "refresh_token" not in token
    wrong = post(http, idp2.token_endpoint, {"grant_type": "client_credentials"}, auth=("jupyter-confidential", "wrong"))
    assert wrong.status_code == 401 and answer(wrong)["error"] == "invalid_client"
    public = post(http, idp2.token_endpoint, {"grant_type": "client_credentials", "client_id": NATIVE})
    assert public.status_code in (400, 401) and answer(public)["error"] in ("invalid_client", "unauthorized_client")


# ------------------------------------------------------------------------------- device flow
def test_device_flow_issues_no_id_token(idp2, http, device_user):
    device = device_start(http, idp2)
    assert device["interval"] == 1 and device["verification_uri"] == idp2.url("/device/")
    assert device["verification_uri_complete"] == f"{device['verification_uri']}?user_code={device['user_code']}"
    assert answer(device_poll_once(http, idp2, device["device_code"]))["error"] == "authorization_pending"
    outcome = device_user.complete(device["verification_uri"], device["user_code"],
                                   verification_uri_complete=device["verification_uri_complete"])
    assert outcome["status"] == "approved"
    token = answer(device_poll_once(http, idp2, device["device_code"]))
    assert {"access_token", "refresh_token"} <= set(token) and "id_token" not in token  # even with openid
    assert token["scope"] == SCOPE


@pytest.mark.parametrize("action", ["deny", "abort"])
def test_device_deny_and_abort_are_one_button(idp2, http, device_user, action):
    device = device_start(http, idp2)
    outcome = device_user.complete(device["verification_uri"], device["user_code"], action=action)
    assert outcome["status"] == {"deny": "denied", "abort": "aborted"}[action]
    r = device_poll_once(http, idp2, device["device_code"])
    assert r.status_code == 400 and answer(r)["error"] == "access_denied"


def test_device_wrong_code_and_wrong_password(idp2, http, device_user):
    device = device_start(http, idp2)
    with pytest.raises(LoginPageError, match="Incorrect user code") as info:
        device_user.complete(device["verification_uri"], device["user_code"], wrong_code=True)
    assert info.value.code == "incorrect_user_code"
    with pytest.raises(LoginPageError, match="Invalid username or password"):  # a fresh browser: not signed in
        DeviceUser().complete(device["verification_uri"], device["user_code"],
                              verification_uri_complete=device["verification_uri_complete"], wrong_password=True)
    assert answer(device_poll_once(http, idp2, device["device_code"]))["error"] == "authorization_pending"


def test_device_approver_uses_the_rigs_feed(idp2, http):
    with DeviceApprover(idp2.issuer) as approver:
        device = device_start(http, idp2, scope="openid")
        deadline = time.monotonic() + 20
        token = None
        while token is None and time.monotonic() < deadline:
            time.sleep(device["interval"])  # the protocol's own wait between polls
            r = device_poll_once(http, idp2, device["device_code"])
            if r.status_code == 200:
                token = answer(r)
            else:
                assert answer(r)["error"] == "authorization_pending"
        assert token and token["access_token"]
        assert approver.results[0] == {**approver.results[0], "user_code": device["user_code"], "status": "approved"}
        assert device["device_code"] not in http.get(idp2.url("/rig/device-codes"), timeout=10).text


# ---------------------------------------------------------------------------- the secrets log
def test_issued_secrets_are_recorded_for_the_log_scan(make_idp2, http, monkeypatch, tmp_path):
    monkeypatch.setenv(SECRETS_DIR_ENV, str(tmp_path))
    server = make_idp2()
    token = answer(post(http, server.token_endpoint, {"grant_type": "client_credentials", "scope": "api:read"},
                        auth=("jupyter-confidential", SECRET)))
    device = device_start(http, server)
    recorded = "".join(p.read_text() for p in tmp_path.glob("*.secrets"))
    assert f"access_token\t{token['access_token']}\n" in recorded
    assert f"device_code\t{device['device_code']}\n" in recorded
