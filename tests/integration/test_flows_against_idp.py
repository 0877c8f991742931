"""The flows and authenticators against the real providers and the FlyteAdmin stand-in.

A test that takes ``oauth_server`` / ``oauth_admin`` / ``make_oauth_server`` runs against both test
IdPs (node-oidc-provider, tests/idp, and django-oauth-toolkit, tests/idp2; tests/conftest.py); one
that takes ``idp`` / ``flyteadmin`` / ``make_idp`` needs something only node-oidc-provider has here
(``slow_down``, a device code lifetime, an abort step, a device endpoint in its discovery document)
or checks our own side of the loopback only.

Everything talks to 127.0.0.1. Users are driven by the rig (device_user, auth_code_user, pkce_browser);
waits are on events and futures with bounded timeouts.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from rig.sign_in import Recorder

from flyteauth_jupyter import (
    AccessTokenNotFoundError,
    AuthenticationError,
    ClientCredentialsAuthenticator,
    CommandAuthenticator,
    DeviceCodeAuthenticator,
    PKCEAuthenticator,
    RemoteClientConfigStore,
)
from flyteauth_jupyter.control import Clock, Waiter
from flyteauth_jupyter.errors import (
    AccessDeniedError,
    CommandError,
    ConfigurationError,
    ExpiredTokenError,
    InvalidClientError,
    LoginTimeoutError,
)
from flyteauth_jupyter.flows import device as device_flow
from flyteauth_jupyter.flows.events import AuthorizationRequested, DeviceCodeIssued, SlowedDown, Succeeded
from flyteauth_jupyter.stores import MemoryStore
from flyteauth_jupyter.transport.http import Transport

pytestmark = pytest.mark.idp

CONFIDENTIAL = ("jupyter-confidential", "confidential-secret")


# ------------------------------------------------------------------------------------ helpers
def loopback_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


class CountingSession(requests.Session):
    """A Session that counts token-endpoint POSTs by grant type; ``before_post`` may act first."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.grants: list[str] = []
        self.post_times: list[tuple[str, float]] = []
        self.before_post: Any = None
        self._lock = threading.Lock()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if method.upper() == "POST":
            grant = (kwargs.get("data") or {}).get("grant_type", "")
            with self._lock:
                self.grants.append(grant)
                self.post_times.append((grant, time.monotonic()))
            if self.before_post is not None:
                self.before_post(self, url, kwargs.get("data") or {})
        return super().request(method, url, *args, **kwargs)


class SkewedClock(Clock):
    """The real clock, shifted by ``offset`` seconds (to make a token look old without sleeping)."""

    offset = 0.0

    def time(self) -> float:
        return super().time() + self.offset


def call_api(admin: Any, metadata: tuple[str, str] | None) -> int:
    assert metadata is not None
    with loopback_session() as s:
        return s.get(admin.url("/api/v1/projects"), headers=dict([metadata]), timeout=10).status_code


def follow_in_thread(user: Any, **kwargs: Any):
    """A browser opener for PKCE that has the rig's auth_code_user follow the URL in a thread."""
    outcome: dict[str, Any] = {}

    def opener(url: str) -> bool:
        def run() -> None:
            try:
                outcome["final_url"] = user.follow(url, **kwargs)
            except BaseException as exc:  # noqa: BLE001
                outcome["error"] = exc

        threading.Thread(target=run, daemon=True).start()
        return True

    return opener, outcome


def pkce_login(admin: Any, auth_code_user: Any, **kwargs: Any) -> PKCEAuthenticator:
    opener, _ = follow_in_thread(auth_code_user)
    kwargs.setdefault("store", MemoryStore())
    auth = PKCEAuthenticator(admin.endpoint, None, open_browser=opener, timeout=30, **kwargs)
    creds = auth.refresh_credentials()
    assert creds.access_token and creds.refresh_token
    return auth


def start_device_login(admin: Any, **kwargs: Any):
    recorder = Recorder()
    kwargs.setdefault("store", MemoryStore())
    auth = DeviceCodeAuthenticator(admin.endpoint, None, observer=recorder, **kwargs)
    future = auth.refresh_in_background()
    return auth, future, recorder


# ------------------------------------------------------------------------------- device flow
def test_device_flow_approve(oauth_server: Any, oauth_admin: Any, device_user: Any) -> None:
    auth, future, recorder = start_device_login(oauth_admin, timeout=60)
    issued = recorder.first(DeviceCodeIssued)
    assert issued.user_code and issued.verification_uri_complete
    result = device_user.complete(issued.verification_uri, issued.user_code,
                                  verification_uri_complete=issued.verification_uri_complete)
    assert result["status"] == "approved"
    creds = future.result(timeout=30)
    assert creds.refresh_token and creds.expires_at
    # django-oauth-toolkit's device grant issues no id_token (and its access tokens are opaque)
    assert bool(creds.id_token) is oauth_server.device_id_token
    assert creds.subject == (oauth_server.subject("alice") if oauth_server.device_id_token else None)
    metadata = auth.fetch_grpc_call_auth_metadata()
    assert metadata[0] == "flyte-authorization"  # the server's key (pinned 3)
    assert call_api(oauth_admin, metadata) == 200
    assert isinstance(recorder.events[-1], Succeeded)


def test_device_flow_by_typing_the_code(oauth_admin: Any, device_user: Any) -> None:
    auth, future, recorder = start_device_login(oauth_admin, timeout=60)
    issued = recorder.first(DeviceCodeIssued)
    device_user.complete(issued.verification_uri, issued.user_code)
    assert future.result(timeout=30).access_token


def test_device_flow_deny(oauth_admin: Any, device_user: Any) -> None:
    auth, future, recorder = start_device_login(oauth_admin, timeout=60)
    issued = recorder.first(DeviceCodeIssued)
    device_user.complete(issued.verification_uri, issued.user_code,
                         verification_uri_complete=issued.verification_uri_complete, action="deny")
    with pytest.raises(AccessDeniedError) as info:
        future.result(timeout=30)
    assert "denied" in str(info.value).lower() and info.value.error == "access_denied"
    assert auth.get_credentials() is None


# node only: django-oauth-toolkit has no abort step (its Deny is test_device_flow_deny)
def test_device_flow_abort(flyteadmin: Any, device_user: Any) -> None:
    auth, future, recorder = start_device_login(flyteadmin, timeout=60)
    issued = recorder.first(DeviceCodeIssued)
    device_user.complete(issued.verification_uri, issued.user_code,
                         verification_uri_complete=issued.verification_uri_complete, action="abort")
    with pytest.raises(AccessDeniedError):
        future.result(timeout=30)


# node only: the device code lifetime is a node knob (django-oauth-toolkit: 1800 s, not configurable)
def test_device_code_expires_at_its_deadline(make_idp: Any, make_flyteadmin: Any) -> None:
    idp = make_idp(device_code_ttl=2)
    admin = make_flyteadmin(idp)
    auth, future, recorder = start_device_login(admin)
    recorder.first(DeviceCodeIssued)
    with pytest.raises(ExpiredTokenError) as info:
        future.result(timeout=20)
    assert "expired" in str(info.value)


# node only: as above
def test_device_code_expired_token_answer_from_the_server(make_idp: Any) -> None:
    # Poll past the code's life (our deadline widened on purpose) to get the server's own expired_token.
    idp = make_idp(device_code_ttl=2)
    transport = Transport(loopback_session())
    authorization = device_flow.request_device_code(transport, idp.device_authorization_endpoint,
                                                    client_id="jupyter-native", scopes=["openid"])
    authorization = dataclasses.replace(authorization, expires_in=30)
    with pytest.raises(ExpiredTokenError) as info:
        device_flow.poll_for_token(transport, idp.token_endpoint, authorization, client_id="jupyter-native",
                                   waiter=Waiter(20), endpoint="e")
    assert info.value.error == "expired_token" and info.value.status == 400


# node only: django-oauth-toolkit never answers slow_down
def test_device_flow_slow_down_is_kept(make_idp: Any, make_flyteadmin: Any, device_user: Any) -> None:
    idp = make_idp(device_interval=1, slow_down=True)
    admin = make_flyteadmin(idp)
    session = CountingSession()
    early = {"sent": False}

    def poll_once_early(s: CountingSession, url: str, data: dict) -> None:
        # A stray poll of the same device code right before ours: the server answers ours slow_down.
        if data.get("grant_type") == device_flow.GRANT_TYPE and not early["sent"]:
            early["sent"] = True
            requests.Session.request(s, "POST", url, data=data, timeout=10)

    session.before_post = poll_once_early
    auth, future, recorder = start_device_login(admin, session=session, timeout=60)
    issued = recorder.first(DeviceCodeIssued)
    slowed = recorder.first(SlowedDown, timeout=15)
    assert slowed.interval == 6.0
    device_user.complete(issued.verification_uri, issued.user_code,
                         verification_uri_complete=issued.verification_uri_complete)
    assert future.result(timeout=30).access_token
    polls = [t for grant, t in session.post_times if grant == device_flow.GRANT_TYPE]
    assert len(polls) >= 2
    assert all(b - a >= 5.9 for a, b in zip(polls[1:], polls[2:])) or len(polls) == 2
    assert polls[-1] - polls[0] >= 5.9  # the poll after slow_down waited the new interval


# ------------------------------------------------------------------------------------- PKCE
def test_pkce_approve_through_the_browser(oauth_server: Any, oauth_admin: Any, pkce_browser: Any) -> None:
    browser = pkce_browser(action="approve")
    recorder = Recorder()
    auth = PKCEAuthenticator(oauth_admin.endpoint, None, store=MemoryStore(), observer=recorder, timeout=60)
    creds = auth.refresh_credentials()
    outcome = browser.wait(30)
    assert outcome["status"] == "ok" and outcome["redirect_status"] == 200
    assert creds.refresh_token and creds.subject == oauth_server.subject("alice")
    requested = recorder.first(AuthorizationRequested)
    assert "code_challenge_method=S256" in requested.url and "prompt=consent" in requested.url
    assert call_api(oauth_admin, auth.fetch_grpc_call_auth_metadata()) == 200


def test_pkce_deny_through_the_browser(oauth_admin: Any, pkce_browser: Any) -> None:
    browser = pkce_browser(action="deny")
    auth = PKCEAuthenticator(oauth_admin.endpoint, None, store=MemoryStore(), timeout=60)
    with pytest.raises(AccessDeniedError) as info:
        auth.refresh_credentials()
    browser.wait(30)
    assert "denied" in str(info.value).lower()
    assert auth.get_credentials() is None


# our loopback receiver only: the server does not matter
def test_pkce_state_mismatch_and_stray_requests_are_ignored(flyteadmin: Any, auth_code_user: Any) -> None:
    statuses: dict[str, int] = {}
    opener, outcome = follow_in_thread(auth_code_user)

    def hostile_then_real(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        base = redirect.rsplit("/", 1)[0]
        with loopback_session() as s:
            statuses["favicon"] = s.get(base + "/favicon.ico", timeout=5).status_code
            statuses["wrong_state"] = s.get(redirect, params={"code": "forged", "state": "not-ours"}, timeout=5).status_code
            statuses["denied_no_state"] = s.get(redirect, params={"error": "access_denied"}, timeout=5).status_code
        return opener(url)

    auth = PKCEAuthenticator(flyteadmin.endpoint, None, store=MemoryStore(), open_browser=hostile_then_real, timeout=30)
    creds = auth.refresh_credentials()
    assert creds.access_token and statuses == {"favicon": 404, "wrong_state": 400, "denied_no_state": 400}
    assert "error" not in outcome


def test_pkce_only_a_wrong_state_times_out_saying_so(flyteadmin: Any) -> None:
    def wrong_state_only(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        with loopback_session() as s:
            s.get(redirect, params={"code": "forged", "state": "stale"}, timeout=5)
        return True

    auth = PKCEAuthenticator(flyteadmin.endpoint, None, store=MemoryStore(), open_browser=wrong_state_only, timeout=2)
    with pytest.raises(LoginTimeoutError, match="different state"):
        auth.refresh_credentials()


def _busy_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def test_pkce_port_taken_on_ip_literal_uses_a_free_port(oauth_server: Any, make_flyteadmin: Any,
                                                        pkce_browser: Any) -> None:
    blocker = _busy_port()
    try:
        port = blocker.getsockname()[1]
        admin = make_flyteadmin(oauth_server, redirect_uri=f"http://127.0.0.1:{port}/callback")
        browser = pkce_browser()
        recorder = Recorder()
        auth = PKCEAuthenticator(admin.endpoint, None, store=MemoryStore(), observer=recorder, timeout=60)
        assert auth.refresh_credentials().access_token
        browser.wait(30)
        used = recorder.first(AuthorizationRequested).redirect_uri
        assert used.startswith("http://127.0.0.1:") and used != f"http://127.0.0.1:{port}/callback"
    finally:
        blocker.close()


def test_pkce_port_taken_on_localhost_is_a_clear_error(idp: Any, make_flyteadmin: Any) -> None:
    blocker = _busy_port()
    try:
        port = blocker.getsockname()[1]
        admin = make_flyteadmin(idp, redirect_uri=f"http://localhost:{port}/callback")
        auth = PKCEAuthenticator(admin.endpoint, None, store=MemoryStore(), open_browser=False, timeout=10)
        with pytest.raises(ConfigurationError) as info:
            auth.refresh_credentials()
        assert str(port) in str(info.value)
    finally:
        blocker.close()


def test_pkce_localhost_redirect_keeps_the_registered_uri(oauth_server: Any, make_flyteadmin: Any,
                                                          auth_code_user: Any) -> None:
    probe = _busy_port()
    port = probe.getsockname()[1]
    probe.close()
    admin = make_flyteadmin(oauth_server, redirect_uri=f"http://localhost:{port}/callback")
    recorder = Recorder()
    opener, _ = follow_in_thread(auth_code_user)
    auth = PKCEAuthenticator(admin.endpoint, None, store=MemoryStore(), open_browser=opener, observer=recorder, timeout=30)
    assert auth.refresh_credentials().access_token
    assert recorder.first(AuthorizationRequested).redirect_uri == f"http://localhost:{port}/callback"


# ------------------------------------------------------------------------ client credentials
def test_client_credentials_good_secret(oauth_admin: Any) -> None:
    auth = ClientCredentialsAuthenticator(oauth_admin.endpoint, *CONFIDENTIAL, None, scopes=["api:read"])
    assert auth.get_credentials() is None
    creds = auth.refresh_credentials()
    assert creds.access_token and creds.refresh_token is None and creds.expires_at
    assert call_api(oauth_admin, auth.fetch_grpc_call_auth_metadata()) == 200
    assert auth.get_credentials() is creds  # cached in memory until near expiry


def test_client_credentials_bad_secret(oauth_admin: Any) -> None:
    auth = ClientCredentialsAuthenticator(oauth_admin.endpoint, "jupyter-confidential", "wrong-secret-value", None)
    with pytest.raises(InvalidClientError) as info:
        auth.refresh_credentials()
    text = str(info.value)
    assert info.value.status == 401 and "wrong-secret-value" not in text and len(text) <= 500
    assert "client id and secret" in text


# ------------------------------------------------------------------------------------ command
def _cc_token_command(idp: Any) -> list[str]:
    script = (
        "import requests, sys\n"
        "s = requests.Session(); s.trust_env = False\n"
        f"r = s.post({idp.token_endpoint!r}, data={{'grant_type': 'client_credentials', 'scope': 'api:read'}},"
        f" auth={CONFIDENTIAL!r}, timeout=10)\n"
        "print(r.json()['access_token'])\n"
    )
    return [sys.executable, "-c", script]


def test_command_ok(idp: Any, flyteadmin: Any) -> None:
    auth = CommandAuthenticator(_cc_token_command(idp), "flyte-authorization")
    assert auth.get_credentials() is None
    auth.refresh_credentials()
    assert call_api(flyteadmin, auth.fetch_grpc_call_auth_metadata()) == 200


def test_command_fails() -> None:
    auth = CommandAuthenticator([sys.executable, "-c", "import sys; print('tok-secret'); sys.stderr.write('not logged in'); sys.exit(2)"])
    with pytest.raises(CommandError) as info:
        auth.refresh_credentials()
    assert "status 2" in str(info.value) and "not logged in" in str(info.value) and "tok-secret" not in str(info.value)


def test_command_hangs() -> None:
    auth = CommandAuthenticator([sys.executable, "-c", "import time; time.sleep(60)"], timeout=1)
    started = time.monotonic()
    with pytest.raises(CommandError, match="did not finish"):
        auth.refresh_credentials()
    assert time.monotonic() - started < 15


# ------------------------------------------------------------------------------------ refresh
def test_refresh_ok_and_rotated(oauth_admin: Any, auth_code_user: Any) -> None:
    auth = pkce_login(oauth_admin, auth_code_user)
    before = auth.get_credentials()
    after = auth.refresh_credentials()
    assert after.access_token != before.access_token
    assert after.refresh_token and after.refresh_token != before.refresh_token  # rotation on
    assert call_api(oauth_admin, auth.fetch_grpc_call_auth_metadata()) == 200
    again = auth.refresh_credentials()  # the rotated token works in turn
    assert again.refresh_token != after.refresh_token


def test_refresh_without_rotation_keeps_the_refresh_token(make_oauth_server: Any, make_flyteadmin: Any,
                                                          auth_code_user: Any) -> None:
    idp = make_oauth_server(rt_rotation="never")
    admin = make_flyteadmin(idp)
    auth = pkce_login(admin, auth_code_user)
    before = auth.get_credentials()
    after = auth.refresh_credentials()
    assert after.access_token != before.access_token and after.refresh_token == before.refresh_token
    assert auth.refresh_credentials().access_token  # still usable


def test_refresh_revoked(oauth_server: Any, oauth_admin: Any, auth_code_user: Any) -> None:
    auth = pkce_login(oauth_admin, auth_code_user)
    creds = auth.get_credentials()
    assert oauth_server.introspect(creds.refresh_token)["active"] is True
    assert auth.logout() is True  # RFC 7009 revocation at the IdP
    assert oauth_server.introspect(creds.refresh_token)["active"] is False
    store = MemoryStore()
    store.save(oauth_admin.service, creds)
    other = PKCEAuthenticator(oauth_admin.endpoint, None, store=store, open_browser=False)
    with pytest.raises(AccessTokenNotFoundError):
        other.refresh_credentials(interactive=False)
    assert store.load(oauth_admin.service) is None  # the dead token is not kept


def test_replayed_rotated_refresh_token_is_refused_and_the_grant_revoked(oauth_server: Any, oauth_admin: Any,
                                                                         auth_code_user: Any) -> None:
    auth = pkce_login(oauth_admin, auth_code_user)
    old = auth.get_credentials()
    new = auth.refresh_credentials()
    revoked = oauth_server.grants()["revoked"]
    stale = PKCEAuthenticator(oauth_admin.endpoint, None, store=MemoryStore(), open_browser=False)
    stale._set_credentials(old)
    with pytest.raises(AccessTokenNotFoundError):
        stale.refresh_credentials(interactive=False)
    # reuse detection: the replay revoked the whole grant, the newest refresh token with it
    assert oauth_server.grants()["revoked"] == revoked + 1
    assert oauth_server.introspect(new.refresh_token)["active"] is False


# -------------------------------------------------------------------------- config discovery
@pytest.mark.parametrize("camel_case", [False, True])
def test_remote_client_config_store_both_casings(oauth_server: Any, make_flyteadmin: Any, camel_case: bool) -> None:
    admin = make_flyteadmin(oauth_server, camel_case=camel_case, audience="", scopes=("openid", "api:read"))
    RemoteClientConfigStore.clear_cache()
    cfg = RemoteClientConfigStore(admin.endpoint).get_client_config()
    assert cfg.client_id == "jupyter-native"
    assert cfg.token_endpoint == oauth_server.token_endpoint
    assert cfg.authorization_endpoint == oauth_server.authorization_endpoint
    assert cfg.device_authorization_endpoint == oauth_server.device_authorization_endpoint
    assert cfg.revocation_endpoint == oauth_server.revocation_endpoint
    assert cfg.scopes == ["openid", "api:read"] and cfg.header_key == "flyte-authorization"
    assert cfg.audience is None and cfg.issuer == oauth_server.issuer
    assert RemoteClientConfigStore(admin.endpoint).get_client_config() is cfg  # cached per endpoint


# node only: django-oauth-toolkit advertises no device endpoint (test_no_device_endpoint_anywhere_...)
def test_device_endpoint_filled_from_the_issuer(idp: Any, make_flyteadmin: Any) -> None:
    admin = make_flyteadmin(idp, device_endpoint=False)
    RemoteClientConfigStore.clear_cache()
    cfg = RemoteClientConfigStore(admin.endpoint).get_client_config()
    assert cfg.device_authorization_endpoint == idp.device_authorization_endpoint


def test_no_device_endpoint_anywhere_is_a_clear_error(idp2: Any, make_flyteadmin: Any) -> None:
    # django-oauth-toolkit advertises none: with a FlyteAdmin that relays none either, say so
    admin = make_flyteadmin(idp2, device_endpoint=False)
    RemoteClientConfigStore.clear_cache()
    assert RemoteClientConfigStore(admin.endpoint).get_client_config().device_authorization_endpoint is None
    auth = DeviceCodeAuthenticator(admin.endpoint, None, store=MemoryStore(), timeout=10)
    with pytest.raises(AuthenticationError, match="does not offer device sign-in") as info:
        auth.refresh_credentials()
    assert admin.service in str(info.value) and "PKCE" in str(info.value)


# ------------------------------------------------------------------------------ single flight
def test_32_threads_on_an_expired_token_cause_one_refresh(oauth_admin: Any, auth_code_user: Any) -> None:
    session = CountingSession()
    clock = SkewedClock()
    auth = pkce_login(oauth_admin, auth_code_user, session=session, clock=clock)
    old = auth.get_credentials()
    session.grants.clear()
    clock.offset = 3600.0  # the token now looks expired (both IdPs' at_ttl is 3600 s)
    start = threading.Barrier(32)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            start.wait(10)
            metadata = auth.fetch_grpc_call_auth_metadata()
            with lock:
                results.append(metadata)
        except BaseException as exc:  # noqa: BLE001
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors and len(results) == 32
    assert session.grants.count("refresh_token") == 1, session.grants
    assert len(set(results)) == 1 and results[0][1] != f"Bearer {old.access_token}"
    assert call_api(oauth_admin, results[0]) == 200  # rotation: a second refresh would have killed the grant
