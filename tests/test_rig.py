"""Tests of the test rig itself, against the running provider (requests only, 127.0.0.1 only)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from rig.idp import IdP
from rig.idp_process import IdPProcess
from rig.user import AuthCodeUser, LoginPageError, new_session

pytestmark = pytest.mark.idp

NATIVE = "jupyter-native"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SECRET = "confidential-secret"
SCOPE = "openid offline_access api:read"


# ------------------------------------------------------------------------------------ helpers
SECRET_KEYS = {"access_token", "refresh_token", "id_token", "device_code", "code"}


class Redacted(dict):
    """A JSON answer whose repr (as pytest shows it on a failed assert) hides the secrets."""

    def __repr__(self) -> str:
        return repr({k: "<redacted>" if k in SECRET_KEYS else v for k, v in self.items()})


def answer(r: requests.Response) -> Redacted:
    return Redacted(r.json())


@pytest.fixture
def http() -> requests.Session:
    s = new_session()
    yield s
    s.close()


def post(http: requests.Session, url: str, data: dict[str, str], **kw: Any) -> requests.Response:
    return http.post(url, data=data, timeout=10, **kw)


def device_start(http: requests.Session, idp: IdP, client_id: str = NATIVE, scope: str = SCOPE) -> dict[str, Any]:
    r = post(http, idp.device_authorization_endpoint, {"client_id": client_id, "scope": scope})
    assert r.status_code == 200, r.text
    return answer(r)


def device_poll_once(http: requests.Session, idp: IdP, device_code: str, client_id: str = NATIVE) -> requests.Response:
    return post(http, idp.token_endpoint, {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id})


def client_credentials_basic_and_post(http: requests.Session, idp: IdPProcess) -> tuple[requests.Response, ...]:
    """A client-credentials grant for ``api:read`` by each confidential client: ``jupyter-confidential``
    with client_secret_basic, ``jupyter-confidential-post`` with client_secret_post."""
    form = {"grant_type": "client_credentials", "scope": "api:read"}
    return (post(http, idp.token_endpoint, form, auth=("jupyter-confidential", SECRET)),
            post(http, idp.token_endpoint, {**form, "client_id": "jupyter-confidential-post", "client_secret": SECRET}))


def device_poll(http: requests.Session, idp: IdP, device: dict[str, Any], timeout: float = 20) -> requests.Response:
    """Polls as RFC 8628 says (interval, +5 s on slow_down, stop on anything else); bounded."""
    interval = device.get("interval", 5)
    deadline = time.monotonic() + timeout
    for _ in range(100):
        r = device_poll_once(http, idp, device["device_code"])
        error = answer(r).get("error") if r.status_code == 400 else None
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            return r
        assert time.monotonic() + interval < deadline, "device login did not finish in time"
        time.sleep(interval)  # the protocol's own wait between polls
    raise AssertionError("too many polls")


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(idp: IdP, redirect_uri: str, *, client_id: str = NATIVE, scope: str = SCOPE,
                  state: str = "st4te", challenge: str | None = None, method: str | None = "S256",
                  prompt: str | None = "consent") -> str:
    params = {"client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri,
              "scope": scope, "state": state}
    if challenge is not None:
        params["code_challenge"] = challenge
        if method:
            params["code_challenge_method"] = method
    if prompt:
        params["prompt"] = prompt
    return idp.authorization_endpoint + "?" + urlencode(params)


class Loopback:
    """A tiny RFC 8252 receiver: 127.0.0.1, any free port, first /callback request wins."""

    def __init__(self, host_in_uri: str = "127.0.0.1") -> None:
        self.query: dict[str, str] | None = None
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                if parts.path != "/callback":
                    self.send_response(404)
                    self.end_headers()
                    return
                if not outer.got.is_set():
                    outer.query = Redacted({k: v[0] for k, v in parse_qs(parts.query).items()})
                    outer.got.set()
                body = b"<p>You can close this window.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.redirect_uri = f"http://{host_in_uri}:{self.port}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait(self, timeout: float = 10) -> dict[str, str]:
        assert self.got.wait(timeout), "no redirect reached the loopback receiver"
        assert self.query is not None
        return self.query

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def loopback():
    receivers: list[Loopback] = []

    def make(host_in_uri: str = "127.0.0.1") -> Loopback:
        receivers.append(Loopback(host_in_uri))
        return receivers[-1]

    yield make
    for r in receivers:
        r.close()


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def pkce_login(http, idp, loopback, auth_code_user, scope: str = SCOPE) -> dict[str, Any]:
    receiver = loopback()
    verifier, challenge = pkce_pair()
    final = auth_code_user.follow(authorize_url(idp, receiver.redirect_uri, scope=scope, challenge=challenge))
    query = receiver.wait()
    assert final.startswith(receiver.redirect_uri)
    assert query["state"] == "st4te" and query["iss"] == idp.issuer
    r = post(http, idp.token_endpoint, {"grant_type": "authorization_code", "code": query["code"],
                                         "redirect_uri": receiver.redirect_uri, "client_id": NATIVE,
                                         "code_verifier": verifier})
    assert r.status_code == 200, r.text
    return answer(r)


# ------------------------------------------------------------------------------- the provider
def test_issuer_and_discovery(idp, http):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", idp.issuer)
    assert idp.port == int(idp.issuer.rsplit(":", 1)[1])
    assert idp.url("/token") == idp.issuer + "/token"
    md = http.get(idp.url("/.well-known/openid-configuration"), timeout=10).json()
    assert md["issuer"] == idp.issuer
    assert md["device_authorization_endpoint"] == idp.issuer + "/device/auth"
    assert md["revocation_endpoint"] == idp.issuer + "/token/revocation"
    assert md["introspection_endpoint"] == idp.issuer + "/token/introspection"
    assert md["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "offline_access", "profile", "email", "api:read", "api:write"} <= set(md["scopes_supported"])
    assert {DEVICE_GRANT, "client_credentials", "refresh_token", "authorization_code"} <= set(md["grant_types_supported"])


def test_pages_have_no_external_resources(idp, http, auth_code_user, loopback):
    receiver = loopback()
    _, challenge = pkce_pair()
    pages = [
        http.get(authorize_url(idp, receiver.redirect_uri, challenge=challenge), timeout=10).text,  # login page
        http.get(idp.url("/device"), timeout=10).text,
        http.get(idp.url("/auth?client_id=nobody"), timeout=10).text,  # error page
    ]
    assert 'id="login-form"' in pages[0] and 'id="sign-in"' in pages[0]
    assert 'id="user_code"' in pages[1]
    assert 'id="error"' in pages[2]
    for html in pages:
        assert "@import" not in html and "https://" not in html
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_unknown_setting_is_refused():
    with pytest.raises(TypeError):
        IdP(at_tll=5)


def test_make_idp_is_stopped_and_settings_apply(make_idp, http):
    other = make_idp(cc_ttl=7, at_format="jwt")
    r = post(http, other.token_endpoint, {"grant_type": "client_credentials", "scope": "api:read"},
             auth=("jupyter-confidential", SECRET))
    assert r.status_code == 200, r.text
    token = answer(r)
    assert token["expires_in"] == 7
    header, claims = jwt_part(token["access_token"], 0), jwt_part(token["access_token"], 1)
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    assert claims["aud"] == "urn:jupyter:api" and claims["iss"] == other.issuer
    other.stop()
    assert not other.running
    with pytest.raises(requests.ConnectionError):
        http.get(other.url("/jwks"), timeout=2)


def test_a_start_that_stalls_is_killed_and_tried_again(tmp_path, monkeypatch):
    """node sometimes hangs while starting (rig.idp.IdP.ATTEMPTS): the rig kills it and starts it again."""
    import rig.idp as idp_module

    marker = tmp_path / "stalled-once"
    script = tmp_path / "stall_once.mjs"  # stalls on its first start, is ready on the second
    script.write_text(
        "import * as fs from 'node:fs';\n"
        f"const marker = {json.dumps(str(marker))};\n"
        "if (!fs.existsSync(marker)) { fs.writeFileSync(marker, 'x'); setInterval(() => {}, 1000); }\n"
        "else { process.stdout.write('IDP_READY http://127.0.0.1:9\\n'); setInterval(() => {}, 1000); }\n"
    )
    monkeypatch.setattr(idp_module, "PROVIDER_JS", script)
    provider = IdP()
    started = time.monotonic()
    try:
        provider.start(timeout=2.0, attempts=2)
        assert provider.issuer == "http://127.0.0.1:9" and marker.exists()
        assert time.monotonic() - started < 10
    finally:
        provider.stop()
    assert not provider.running


def test_a_start_that_always_stalls_fails_within_its_bound(tmp_path, monkeypatch):
    import rig.idp as idp_module
    from rig.idp import IdPError

    script = tmp_path / "stall.mjs"
    script.write_text("setInterval(() => {}, 1000);\n")
    monkeypatch.setattr(idp_module, "PROVIDER_JS", script)
    provider = IdP()
    started = time.monotonic()
    with pytest.raises(IdPError, match="not ready after 2 starts of 2 s"):
        provider.start(timeout=2.0, attempts=2)
    assert time.monotonic() - started < 15 and not provider.running


# ------------------------------------------------------------------------------- device grant
def test_device_approve_via_verification_uri_complete(idp, http, device_user):
    device = device_start(http, idp)
    assert device["interval"] == 1
    assert device["verification_uri"] == idp.issuer + "/device"
    assert device["verification_uri_complete"].startswith(device["verification_uri"] + "?user_code=")
    done = device_user.complete_in_thread(device["verification_uri"], device["user_code"],
                                          verification_uri_complete=device["verification_uri_complete"])
    r = device_poll(http, idp, device)
    assert r.status_code == 200, r.text
    token = answer(r)
    assert {"access_token", "refresh_token", "id_token", "expires_in"} <= set(token)
    assert token["token_type"] == "Bearer" and token["scope"] == "api:read"
    assert jwt_part(token["id_token"], 1)["sub"] == "alice"
    assert done.result(10)["status"] == "approved"


def test_device_approve_by_typing_the_code(idp, http, device_user):
    device = device_start(http, idp, scope="openid profile email")
    outcome = device_user.complete(device["verification_uri"], device["user_code"], username="bob", password="builder")
    assert outcome["status"] == "approved"
    r = device_poll(http, idp, device)
    assert r.status_code == 200, r.text
    token = answer(r)
    assert "refresh_token" not in token  # no offline_access asked
    claims = jwt_part(token["id_token"], 1)
    assert claims["sub"] == "bob" and claims["preferred_username"] == "bob" and claims["email"] == "bob@example.test"
    me = http.get(idp.userinfo_endpoint, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10)
    assert me.json()["sub"] == "bob"


@pytest.mark.parametrize("action", ["deny", "abort"])
def test_device_deny_and_abort(idp, http, device_user, action):
    device = device_start(http, idp)
    outcome = device_user.complete(device["verification_uri"], device["user_code"],
                                   verification_uri_complete=device["verification_uri_complete"], action=action)
    assert outcome["status"] == {"deny": "denied", "abort": "aborted"}[action]
    r = device_poll(http, idp, device)
    assert r.status_code == 400
    assert answer(r) == {"error": "access_denied", "error_description": "End-User aborted interaction"}


def test_device_wrong_password(idp, http, device_user):
    device = device_start(http, idp)
    with pytest.raises(LoginPageError, match="Invalid username or password"):
        device_user.complete(device["verification_uri"], device["user_code"],
                             verification_uri_complete=device["verification_uri_complete"], wrong_password=True)
    assert answer(device_poll_once(http, idp, device["device_code"]))["error"] == "authorization_pending"


def test_device_wrong_code(idp, http, device_user):
    device = device_start(http, idp)
    with pytest.raises(LoginPageError, match="incorrect") as info:
        device_user.complete(device["verification_uri"], device["user_code"], wrong_code=True)
    assert info.value.code == "NotFoundError"


def test_device_expired_token(make_idp, http, device_user):
    short = make_idp(device_code_ttl=1)
    device = device_start(http, short)
    assert device["expires_in"] == 1
    time.sleep(2.2)  # let the TTL pass
    r = device_poll_once(http, short, device["device_code"])
    assert r.status_code == 400
    assert answer(r)["error"] == "expired_token"
    with pytest.raises(LoginPageError, match="expired"):
        device_user.complete(device["verification_uri"], device["user_code"])


def test_device_slow_down(idp, http):
    device = device_start(http, idp)
    first = device_poll_once(http, idp, device["device_code"])
    second = device_poll_once(http, idp, device["device_code"])
    assert answer(first)["error"] == "authorization_pending"
    assert second.status_code == 400
    assert answer(second) == {"error": "slow_down", "error_description": "polling too fast, interval is now 6s"}
    time.sleep(1.1)  # the old interval (1 s) is no longer enough: it is 6 s now
    assert answer(device_poll_once(http, idp, device["device_code"]))["error"] == "slow_down"


def test_device_without_slow_down(make_idp, http):
    plain = make_idp(slow_down=False)
    device = device_start(http, plain)
    errors = [answer(device_poll_once(http, plain, device["device_code"]))["error"] for _ in range(3)]
    assert errors == ["authorization_pending"] * 3


def test_device_unknown_code_and_client(idp, http):
    assert answer(device_poll_once(http, idp, "no-such-code"))["error"] == "invalid_grant"
    r = post(http, idp.device_authorization_endpoint, {"client_id": "nobody", "scope": SCOPE})
    assert r.status_code == 401 and answer(r)["error"] == "invalid_client"


# ---------------------------------------------------------------------- authorization code + PKCE
def test_auth_code_pkce(idp, http, auth_code_user, loopback):
    token = pkce_login(http, idp, loopback, auth_code_user, scope="openid offline_access profile email api:read")
    assert {"access_token", "refresh_token", "id_token"} <= set(token)
    claims = jwt_part(token["id_token"], 1)
    assert claims["sub"] == "alice" and claims["preferred_username"] == "alice" and claims["aud"] == NATIVE
    r = post(http, idp.introspection_endpoint, {"token": token["access_token"]}, auth=("jupyter-confidential", SECRET))
    assert answer(r)["active"] is True and answer(r)["aud"] == "urn:jupyter:api"


def test_auth_code_localhost_redirect_and_second_login_skips_password(idp, loopback):
    user = AuthCodeUser(keep_session=True)
    for password in ("wonderland", "not-asked-the-second-time"):
        receiver = loopback("localhost")
        _, challenge = pkce_pair()
        final = user.follow(authorize_url(idp, receiver.redirect_uri, challenge=challenge), password=password)
        assert final.startswith("http://localhost:")
        assert "code" in receiver.wait()


def test_auth_code_native_relay_path_any_port(idp, auth_code_user):
    _, challenge = pkce_pair()
    redirect = "http://127.0.0.1:45678/flyteauth/callback"  # the Jupyter server extension's relay
    final = auth_code_user.follow(authorize_url(idp, redirect, challenge=challenge), get_redirect=False)
    assert final.startswith(redirect + "?code=")
    with pytest.raises(LoginPageError) as info:
        auth_code_user.follow(authorize_url(idp, "http://127.0.0.1:45678/other", challenge=challenge))
    assert info.value.code == "invalid_redirect_uri"


def test_auth_code_deny(idp, auth_code_user, loopback):
    receiver = loopback()
    _, challenge = pkce_pair()
    final = auth_code_user.follow(authorize_url(idp, receiver.redirect_uri, challenge=challenge), action="deny")
    query = receiver.wait()
    assert final.startswith(receiver.redirect_uri)
    assert query["error"] == "access_denied" and query["state"] == "st4te" and "code" not in query


def test_auth_code_wrong_password(idp, auth_code_user, loopback):
    receiver = loopback()
    _, challenge = pkce_pair()
    with pytest.raises(LoginPageError, match="Invalid username or password"):
        auth_code_user.follow(authorize_url(idp, receiver.redirect_uri, challenge=challenge), password="nope")
    assert not receiver.got.is_set()


def test_auth_code_without_pkce_is_rejected(idp, auth_code_user, loopback):
    receiver = loopback()
    auth_code_user.follow(authorize_url(idp, receiver.redirect_uri, challenge=None))
    query = receiver.wait()
    assert query["error"] == "invalid_request" and "PKCE" in query["error_description"]


def test_auth_code_plain_pkce_is_rejected(idp, auth_code_user, loopback):
    receiver = loopback()
    auth_code_user.follow(authorize_url(idp, receiver.redirect_uri, challenge="x" * 43, method="plain"))
    query = receiver.wait()
    assert query["error"] == "invalid_request"
    assert query["error_description"] == "not supported value of code_challenge_method"


def test_auth_code_web_client_needs_its_exact_port(idp, auth_code_user, loopback):
    receiver = loopback()
    _, challenge = pkce_pair()
    with pytest.raises(LoginPageError, match="redirect_uri did not match") as info:
        auth_code_user.follow(authorize_url(idp, receiver.redirect_uri, client_id="jupyter-web-public", challenge=challenge))
    assert info.value.code == "invalid_redirect_uri"
    # the registered port is accepted (nobody listens on 8888 here, so the redirect is not followed)
    final = auth_code_user.follow(authorize_url(idp, "http://127.0.0.1:8888/callback", client_id="jupyter-web-public",
                                                challenge=challenge), get_redirect=False)
    assert final.startswith("http://127.0.0.1:8888/callback?code=")


def test_auth_code_wrong_verifier(idp, http, auth_code_user, loopback):
    receiver = loopback()
    verifier, challenge = pkce_pair()
    auth_code_user.follow(authorize_url(idp, receiver.redirect_uri, challenge=challenge))
    code = receiver.wait()["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": receiver.redirect_uri, "client_id": NATIVE}
    assert answer(post(http, idp.token_endpoint, {**form, "code_verifier": pkce_pair()[0]}))["error"] == "invalid_grant"


# ---------------------------------------------------------------------------- client credentials
def test_client_credentials_basic_and_post(idp, http):
    for r in client_credentials_basic_and_post(http, idp):
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        token = answer(r)
        assert token["token_type"] == "Bearer" and token["scope"] == "api:read" and token["expires_in"] == 600
        assert "refresh_token" not in token


def test_invalid_client(idp, http):
    r = post(http, idp.token_endpoint, {"grant_type": "client_credentials"}, auth=("jupyter-confidential", "wrong"))
    assert r.status_code == 401
    assert answer(r)["error"] == "invalid_client" and "WWW-Authenticate" in r.headers
    r = post(http, idp.token_endpoint, {"grant_type": "client_credentials", "client_id": NATIVE})
    assert r.status_code == 400 and answer(r)["error"] == "invalid_request"  # public client, grant not allowed


def test_json_body_and_unsupported_grant_rejected(idp, http):
    r = http.post(idp.token_endpoint, json={"grant_type": "client_credentials"}, auth=("jupyter-confidential", SECRET),
                  timeout=10)
    assert r.status_code == 400 and answer(r)["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in answer(r)["error_description"]
    r = post(http, idp.token_endpoint, {"grant_type": "password", "username": "alice", "password": "wonderland"},
             auth=("jupyter-confidential", SECRET))
    assert answer(r)["error"] == "unsupported_grant_type"


# ---------------------------------------------------------------------------------- refresh
def refresh(http, idp, refresh_token: str) -> requests.Response:
    return post(http, idp.token_endpoint, {"grant_type": "refresh_token", "refresh_token": refresh_token,
                                           "client_id": NATIVE})


def test_refresh_rotation_and_replay_revokes_grant(idp, http, auth_code_user, loopback):
    first = pkce_login(http, idp, loopback, auth_code_user)
    r = refresh(http, idp, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = answer(r)
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    replay = refresh(http, idp, first["refresh_token"])
    assert replay.status_code == 400 and answer(replay)["error"] == "invalid_grant"
    assert answer(refresh(http, idp, second["refresh_token"]))["error"] == "invalid_grant"  # whole grant revoked


def test_refresh_without_rotation_and_revocation(make_idp, http, auth_code_user, loopback):
    steady = make_idp(rt_rotation="never", at_ttl=5)
    first = pkce_login(http, steady, loopback, auth_code_user)
    assert first["expires_in"] == 5
    r = refresh(http, steady, first["refresh_token"])
    assert r.status_code == 200, r.text
    assert answer(r).get("refresh_token", first["refresh_token"]) == first["refresh_token"]
    revoked = post(http, steady.revocation_endpoint, {"token": first["refresh_token"], "client_id": NATIVE})
    assert revoked.status_code == 200
    assert answer(refresh(http, steady, first["refresh_token"]))["error"] == "invalid_grant"


# ---------------------------------------------------------------------------- FlyteAdmin stand-in
def test_flyteadmin_snake_case(idp, flyteadmin, http):
    assert flyteadmin.endpoint == f"http://127.0.0.1:{flyteadmin.port}"
    assert flyteadmin.service == f"127.0.0.1:{flyteadmin.port}"
    flyteadmin.reset_requests()
    cfg = http.get(flyteadmin.url("/config/v1/flyte_client"), headers={"Accept": "application/json"}, timeout=10).json()
    assert cfg == {"client_id": NATIVE, "redirect_uri": "http://127.0.0.1:53593/callback",
                   "scopes": ["openid", "offline_access", "api:read"],
                   "authorization_metadata_key": "flyte-authorization", "service_http_endpoint": "", "audience": ""}
    md = http.get(flyteadmin.url("/.well-known/oauth-authorization-server"), timeout=10).json()
    assert md["issuer"] == idp.issuer
    assert md["token_endpoint"] == idp.token_endpoint
    assert md["authorization_endpoint"] == idp.authorization_endpoint
    assert md["device_authorization_endpoint"] == idp.device_authorization_endpoint
    assert md["revocation_endpoint"] == idp.revocation_endpoint
    assert md["jwks_uri"] == idp.jwks_uri
    assert md["code_challenge_methods_supported"] == ["S256"]
    assert DEVICE_GRANT in md["grant_types_supported"]
    assert {"issuer", "authorization_endpoint", "token_endpoint", "response_types_supported", "scopes_supported",
            "token_endpoint_auth_methods_supported", "jwks_uri", "code_challenge_methods_supported",
            "grant_types_supported", "device_authorization_endpoint", "revocation_endpoint"} == set(md)
    assert flyteadmin.requests["/config/v1/flyte_client"] == 1
    assert flyteadmin.requests["/.well-known/oauth-authorization-server"] == 1


def test_flyteadmin_camel_case_and_options(idp, make_flyteadmin, http):
    admin = make_flyteadmin(idp, camel_case=True, client_id="jupyter-web-public", audience="urn:jupyter:api",
                            authorization_metadata_key="authorization", device_endpoint=False,
                            redirect_uri="http://127.0.0.1:8888/callback", scopes=("api:read",))
    cfg = http.get(admin.url("/config/v1/flyte_client"), timeout=10).json()
    assert cfg == {"clientId": "jupyter-web-public", "redirectUri": "http://127.0.0.1:8888/callback",
                   "scopes": ["api:read"], "authorizationMetadataKey": "authorization",
                   "serviceHttpEndpoint": "", "audience": "urn:jupyter:api"}
    md = http.get(admin.url("/.well-known/oauth-authorization-server"), timeout=10).json()
    assert md["tokenEndpoint"] == idp.token_endpoint and md["revocationEndpoint"] == idp.revocation_endpoint
    assert md["deviceAuthorizationEndpoint"] == ""
    assert DEVICE_GRANT not in md["grantTypesSupported"]
    assert "token_endpoint" not in md


def test_flyteadmin_protected_api(idp, flyteadmin, http):
    url = flyteadmin.url("/api/v1/projects")
    assert http.get(url, timeout=10).status_code == 401
    assert http.get(url, headers={"flyte-authorization": "Bearer not-a-token"}, timeout=10).status_code == 401
    token = answer(post(http, idp.token_endpoint, {"grant_type": "client_credentials", "scope": "api:read"},
                 auth=("jupyter-confidential", SECRET)))["access_token"]
    for header in ("flyte-authorization", "authorization"):
        r = http.get(url, headers={header: f"Bearer {token}"}, timeout=10)
        assert r.status_code == 200, r.text
        assert answer(r)["projects"][0]["id"] == "flytesnacks"
    flyteadmin.set_response("/config/v1/flyte_client", 502, "<html><body>Bad gateway</body></html>")
    try:
        r = http.get(flyteadmin.url("/config/v1/flyte_client"), timeout=10)
        assert r.status_code == 502 and r.headers["Content-Type"] == "text/html"
    finally:
        flyteadmin.clear_responses()


def test_flyteadmin_accepts_jwt_access_tokens(make_idp, make_flyteadmin, http, device_user):
    jwt_idp = make_idp(at_format="jwt")
    admin = make_flyteadmin(jwt_idp)
    device = device_start(http, jwt_idp)
    device_user.complete(device["verification_uri"], device["user_code"])
    token = answer(device_poll(http, jwt_idp, device))["access_token"]
    assert token.count(".") == 2
    r = http.get(admin.url("/api/v1/projects"), headers={"flyte-authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200 and answer(r)["subject"] == "alice"
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert http.get(admin.url("/api/v1/projects"), headers={"flyte-authorization": f"Bearer {forged}"},
                    timeout=10).status_code == 401



def test_flyteadmin_behind_an_identity_aware_proxy_and_the_idps_request_log(idp, make_flyteadmin, http, tmp_path):
    import subprocess

    from rig.proxy import ProxyGate, proxy_command, runs

    gate = ProxyGate()
    admin = make_flyteadmin(idp, proxy=gate)
    url = admin.url("/config/v1/flyte_client")
    refused = http.get(url, timeout=10)
    assert refused.status_code == 407 and refused.headers["Proxy-Authenticate"].startswith("Bearer")
    command = proxy_command(tmp_path, "--jwt", "300")
    token = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    assert runs(command) == 1 and token.count(".") == 2
    assert http.get(url, headers={"Proxy-Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    gate.status = 401
    gate.refuse(token)
    iap = http.get(url, headers={"Proxy-Authorization": f"Bearer {token}"}, timeout=10)
    assert iap.status_code == 401 and iap.headers["X-Goog-IAP-Generated-Response"] == "true"
    assert gate.tokens("http") == [None, token, token] and admin.requests[url.split(admin.endpoint)[1]] == 3
    # the IdP keeps the names of the headers it received, never their values
    mark = idp.last_request()
    http.get(idp.url("/.well-known/openid-configuration"), headers={"X-Rig-Probe": "secret-value"}, timeout=10)
    (seen,) = idp.requests_seen(mark)
    assert seen["path"] == "/.well-known/openid-configuration" and "x-rig-probe" in seen["headers"]
    assert "secret-value" not in str(idp.requests_seen(0))

# ------------------------------------------------------------------------------ BROWSER command
def test_browser_command_completes_pkce_login(idp, http, pkce_browser, loopback):
    browser = pkce_browser()
    receiver = loopback()
    verifier, challenge = pkce_pair()
    started = time.monotonic()
    assert webbrowser.open(authorize_url(idp, receiver.redirect_uri, challenge=challenge))
    assert time.monotonic() - started < 5  # the launcher returns at once
    query = receiver.wait(30)
    outcome = browser.wait(30)
    assert outcome["status"] == "ok" and outcome["redirect_status"] == 200
    assert outcome["final_url"].startswith(receiver.redirect_uri + "?code=REDACTED")
    r = post(http, idp.token_endpoint, {"grant_type": "authorization_code", "code": query["code"],
                                         "redirect_uri": receiver.redirect_uri, "client_id": NATIVE,
                                         "code_verifier": verifier})
    assert r.status_code == 200 and "refresh_token" in answer(r)


def test_browser_command_deny_and_wrong_password(idp, pkce_browser, loopback):
    browser = pkce_browser(action="deny", username="bob", password="builder")
    receiver = loopback()
    _, challenge = pkce_pair()
    assert webbrowser.open(authorize_url(idp, receiver.redirect_uri, challenge=challenge))
    assert receiver.wait(30)["error"] == "access_denied"
    assert browser.wait(30)["status"] == "ok"

    browser = pkce_browser(password="wrong")
    receiver = loopback()
    assert webbrowser.open(authorize_url(idp, receiver.redirect_uri, challenge=challenge))
    outcome = browser.wait(30)
    assert outcome["status"] == "login_error" and outcome["error"] == "Invalid username or password"
    assert not receiver.got.is_set()


def test_device_approver_completes_codes_issued_after_it_starts(idp):
    """The approver (used by nbval and the browser suite) acts on a code only the kernel showed."""
    from rig.user import DeviceApprover

    with DeviceApprover(idp.issuer) as approver:
        auth = requests.post(idp.url("/device/auth"), data={"client_id": "jupyter-native", "scope": "openid"}, timeout=10).json()
        deadline = time.monotonic() + 20
        token = None
        while time.monotonic() < deadline:
            time.sleep(auth["interval"])
            resp = requests.post(idp.url("/token"), data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": auth["device_code"], "client_id": "jupyter-native"}, timeout=10)
            if resp.status_code == 200:
                token = resp.json()
                break
            assert resp.json()["error"] in ("authorization_pending", "slow_down")
        assert token and token["access_token"]
        assert approver.results[0]["user_code"] == auth["user_code"]
        assert approver.results[0]["status"] == "approved"
        feed = requests.get(idp.url("/rig/device-codes"), timeout=10).text
        assert auth["device_code"] not in feed
