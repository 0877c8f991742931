"""The JupyterHub sign-in's protocol rules (flyteauth_jupyter/flows/hub.py) and the --flow auto rules
for a Hub (environment.py), without I/O. The real Hub is in tests/hub."""

from __future__ import annotations

import base64
import json

import pytest

from flyteauth_jupyter.environment import (
    BrowserLocation,
    choose_flow,
    device_grant_refused,
    hub_fallback_reason,
)
from flyteauth_jupyter.errors import ConfigurationError, ProtocolError
from flyteauth_jupyter.flows.hub import (
    Expected,
    HubSignInUnavailable,
    auth_state_of,
    credentials_from_auth_state,
    hub_context,
    missing_hub_reason,
)
from rig import rules

NOW = 1_800_000_000.0
ISSUER = "http://127.0.0.1:30091"
AUD = "urn:jupyter:api"
HUB_ENV = {"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "JUPYTERHUB_API_TOKEN": "server-token",
           "JUPYTERHUB_USER": "alice"}


def jwt(**claims: object) -> str:
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def state(**overrides: object) -> dict:
    base = {
        "access_token": jwt(iss=ISSUER, aud=AUD, sub="alice", exp=NOW + 600),
        "refresh_token": "the-hubs-refresh-token",
        "id_token": jwt(iss=ISSUER, aud="jupyterhub", sub="alice", preferred_username="alice"),
        "scope": ["openid", "api:read"],
    }
    base.update(overrides)
    return base


def creds(auth_state: dict, expected: Expected = Expected(ISSUER, AUD)):
    return credentials_from_auth_state(auth_state, expected=expected, endpoint="flyte:443", where="hub:8081", now=NOW)


def test_hub_context_from_the_single_user_servers_environment():
    ctx = hub_context(HUB_ENV)
    assert ctx is not None and ctx.user_url == "http://127.0.0.1:8081/hub/api/users/alice"
    assert "server-token" not in repr(ctx)
    assert hub_context({}) is None
    assert "JUPYTERHUB_API_TOKEN" in missing_hub_reason({"JUPYTERHUB_API_URL": "x", "JUPYTERHUB_USER": "a"})
    assert hub_context({**HUB_ENV, "JUPYTERHUB_USER": "a/b"}).user_url.endswith("/users/a%2Fb")


def test_the_access_token_for_this_endpoint_without_the_hubs_refresh_token():
    c = creds(state())
    assert c.refresh_token is None and c.id_token is None
    assert c.expires_at == NOW + 600 and c.for_endpoint == "flyte:443" and c.scopes == ("openid", "api:read")
    assert "the-hubs-refresh-token" not in repr(c)


def test_opaque_token_without_an_audience_uses_the_id_tokens_issuer_and_the_hubs_expiry():
    c = creds(state(access_token="opaque-token", expires_at=NOW + 30), Expected(ISSUER, None))
    assert c.access_token == "opaque-token" and c.expires_at == NOW + 30


@pytest.mark.parametrize(("auth_state", "expected", "words"), [
    (state(access_token=jwt(iss="http://evil:1", aud=AUD, exp=NOW + 60)), Expected(ISSUER, AUD), "trusts http://127.0.0.1:30091"),
    (state(access_token=jwt(iss=ISSUER, aud="other", exp=NOW + 60)), Expected(ISSUER, AUD), "not 'urn:jupyter:api'"),
    (state(access_token="an-opaque-value"), Expected(ISSUER, AUD), "opaque"),
    (state(access_token=jwt(iss=ISSUER, aud=AUD, exp=NOW - 1)), Expected(ISSUER, AUD), "refresh_user"),
    (state(access_token=""), Expected(ISSUER, AUD), "no usable access token"),
    (state(access_token="an-opaque-value", id_token=None), Expected(ISSUER, None), "names no issuer"),
    (state(), Expected(None, None), "names no issuer"),
])
def test_a_token_that_is_not_for_this_endpoint_is_refused_saying_why(auth_state, expected, words):
    with pytest.raises(HubSignInUnavailable) as err:
        creds(auth_state, expected)
    message = str(err.value)
    assert words in message and len(message) <= 500
    assert "the-hubs-refresh-token" not in message
    assert not auth_state["access_token"] or auth_state["access_token"] not in message


@pytest.mark.parametrize("exp", [float("nan"), float("inf"), True, "soon", NOW + 100 * 365 * 86400])
def test_nonsense_expiry_is_ignored(exp):
    token = jwt(iss=ISSUER, aud=AUD)
    assert creds(state(access_token=token, expires_at=exp)).expires_at is None


def test_auth_state_missing_null_or_garbage():
    with pytest.raises(HubSignInUnavailable, match="admin:auth_state!user"):
        auth_state_of({"name": "alice"}, where="hub:8081")
    with pytest.raises(HubSignInUnavailable, match="enable_auth_state"):
        auth_state_of({"name": "alice", "auth_state": None}, where="hub:8081")
    with pytest.raises(ProtocolError):
        auth_state_of({"auth_state": ["x"]}, where="hub:8081")


def test_a_relay_redirect_uri_picks_the_browser_sign_in_wherever_the_browser_is():
    remote = BrowserLocation(False, "JupyterHub detected; the kernel is not on your machine")
    choice = choose_flow("auto", location=remote, authorization_endpoint="http://i/auth", device_endpoint="http://i/device",
                         relay_redirect=True)
    assert choice.flow == "pkce" and "relay" in choice.reason
    assert choose_flow("auto", location=remote, authorization_endpoint="http://i/auth",
                       device_endpoint="http://i/device").flow == "device"
    assert choose_flow("hub", location=remote).flow == "hub"


@pytest.mark.parametrize(("error", "description", "refused"), [
    ("unauthorized_client", None, True),
    ("invalid_request", "urn:ietf:params:oauth:grant-type:device_code is not allowed for this client", True),
    ("invalid_request", "missing required parameter 'client_id'", False),
    ("invalid_client", "client authentication failed", False),
    ("access_denied", None, False),
])
def test_device_grant_refused(error, description, refused):
    assert device_grant_refused(error, description) is refused


def test_hub_fallback_reason_is_one_line():
    choice = choose_flow("auto", location=BrowserLocation(False, "JupyterHub detected"), device_endpoint="http://i/d")
    line = hub_fallback_reason("The Hub at hub:8081 keeps no tokens for you.", choice)
    assert line == "the JupyterHub sign-in is not usable (The Hub at hub:8081 keeps no tokens for you); JupyterHub detected"


def test_auto_takes_the_relay_redirect_from_flyteadmins_client_config():
    """The redirect URI in force (trait, else FlyteAdmin's) decides through Lookups, without the Hub."""
    from flyteauth_jupyter.config import ClientConfig, StaticClientConfigStore
    from flyteauth_jupyter.endpoint import parse_endpoint
    from flyteauth_jupyter.environment import FlowRequest, decide_flow
    from flyteauth_jupyter.notebook.connect import LoginSpec, Lookups

    cfg = ClientConfig("http://i/token", "http://i/auth", "https://hub.example/hub/user-redirect/flyteauth/callback",
                       "flyteauth-hub", device_authorization_endpoint="http://i/device")
    remote = BrowserLocation(False, "JupyterHub detected; the kernel is not on your machine")
    spec = LoginSpec(endpoint=parse_endpoint("https://flyte.example"), location=remote)
    request = FlowRequest(flow="auto", location=remote, endpoint=spec.endpoint.service)
    choice = decide_flow(request, Lookups(spec, StaticClientConfigStore(cfg)))
    assert choice.flow == "pkce" and "relay" in choice.reason
    loopback = StaticClientConfigStore(ClientConfig("http://i/token", "http://i/auth", "http://127.0.0.1:53593/callback",
                                                    "c", device_authorization_endpoint="http://i/device"))
    assert decide_flow(request, Lookups(spec, loopback)).flow == "device"


class Answers:
    """Facts for decide_flow without I/O, counting what the rules asked for."""

    def __init__(self, hub=(False, "no Hub"), **server):
        from flyteauth_jupyter.environment import ServerFacts

        self.asked: list[str] = []
        self._hub = hub
        self._server = ServerFacts(**server)

    def server(self):
        self.asked.append("server")
        return self._server

    def hub(self):
        self.asked.append("hub")
        return self._hub


def test_decide_flow_asks_only_for_what_its_rules_need():
    from flyteauth_jupyter.environment import FlowRequest, decide_flow

    remote = BrowserLocation(False, "JupyterHub detected; the kernel is not on your machine")
    on_hub = FlowRequest(flow="auto", location=remote, on_hub=True, endpoint="flyte:443")
    usable = Answers(hub=(True, "your JupyterHub login (hub:8081) is reused, no click needed"))
    assert decide_flow(on_hub, usable).flow == "hub" and usable.asked == ["hub"]  # no server read
    refused = Answers(hub=(False, "The Hub keeps no tokens for you."), device_endpoint="http://i/device")
    choice = decide_flow(on_hub, refused)
    assert choice.flow == "device" and refused.asked == ["hub", "server"]
    assert choice.reason.startswith("the JupyterHub sign-in is not usable (The Hub keeps no tokens for you)")
    explicit = Answers()
    assert decide_flow(FlowRequest(flow="device", location=remote, on_hub=True), explicit).flow == "device"
    assert explicit.asked == []  # --flow device: nothing to look up
    secret = Answers()  # a client secret: not the Hub's sign-in; client credentials only when nothing else is offered
    assert decide_flow(FlowRequest(flow="auto", location=remote, on_hub=True, has_client_secret=True),
                       secret).flow == "client-credentials" and secret.asked == ["server"]
    with pytest.raises(ConfigurationError, match="Unknown flow"):
        decide_flow(FlowRequest(flow="magic", location=remote), Answers())


# ------------------------------------------------------------------ HubAuthenticator's I/O seam
class FakeHub:
    """A requests-like session answering the Hub's GET /users/<name> (and nothing else)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, url, **kwargs):
        import requests

        self.calls.append((method, url, kwargs.get("headers", {}).get("Authorization")))
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = url
        return response


def hub_authenticator(session, clock):
    from flyteauth_jupyter.config import ClientConfig, StaticClientConfigStore
    from flyteauth_jupyter.authenticators import HubAuthenticator

    cfg = ClientConfig("http://i/token", "http://i/auth", "http://h/cb", "c", header_key="flyte-authorization",
                       audience=AUD, issuer=ISSUER)
    return HubAuthenticator("https://flyte.example", cfg_store=StaticClientConfigStore(cfg), env=HUB_ENV,
                            session=session, clock=clock)


def test_hub_authenticator_asks_the_hub_again_near_expiry_and_never_refreshes_itself():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from flow_fakes import FakeClock

    clock = FakeClock(start=NOW)
    first = state(access_token=jwt(iss=ISSUER, aud=AUD, sub="alice", exp=NOW + 100))
    second = state(access_token=jwt(iss=ISSUER, aud=AUD, sub="alice", exp=NOW + 400))
    hub = FakeHub([(200, {"name": "alice", "auth_state": first}), (200, {"name": "alice", "auth_state": second})])
    auth = hub_authenticator(hub, clock)
    creds = auth.refresh_credentials()
    assert creds.access_token == first["access_token"] and creds.refresh_token is None
    assert auth.fetch_grpc_call_auth_metadata() == ("flyte-authorization", f"Bearer {first['access_token']}")
    assert len(hub.calls) == 1
    clock.advance(60)  # 40 s left: less than min(60 s, half the lifetime)
    assert auth.get_credentials().access_token == second["access_token"]
    assert [c[:2] for c in hub.calls] == [("GET", "http://127.0.0.1:8081/hub/api/users/alice")] * 2
    assert all(c[2] == "token server-token" for c in hub.calls)  # the server's own token, to the Hub only
    assert "server-token" not in repr(auth) and first["access_token"] not in repr(auth)
    assert auth.logout() is False  # nothing revoked: the session is the Hub's
    assert len(hub.calls) == 2


@pytest.mark.parametrize(("status", "body", "words"), [
    (403, {"status": 403, "message": "Forbidden"}, "HTTP 403"),
    (200, {"name": "alice"}, "admin:auth_state!user"),
    (200, {"name": "alice", "auth_state": None}, "enable_auth_state"),
])
def test_hub_authenticator_says_why_the_hub_cannot_help(status, body, words):
    from flyteauth_jupyter.flows.hub import HubSignInUnavailable

    auth = hub_authenticator(FakeHub([(status, body)]), None)
    with pytest.raises(HubSignInUnavailable, match=words.replace("!", ".")):
        auth.refresh_credentials()


# ------------------------------------------------------------------ renewal through the Hub (issue 16.7)
from rig.hub_api import HubAPIStandIn  # noqa: E402 - a real HTTP stand-in of the Hub's API


@pytest.fixture
def hub_api():
    stand_ins = []

    def make(auth_state: dict) -> HubAPIStandIn:
        stand_in = HubAPIStandIn(auth_state, HUB_ENV)
        stand_ins.append(stand_in)
        return stand_in

    yield make
    for stand_in in stand_ins:
        stand_in.close()


def hub_over_http(stand_in: HubAPIStandIn, clock):
    from flyteauth_jupyter.config import ClientConfig, StaticClientConfigStore
    from flyteauth_jupyter.authenticators import HubAuthenticator

    cfg = ClientConfig("http://127.0.0.1:9/token", "http://127.0.0.1:9/auth", "http://127.0.0.1:9/cb", "c",
                       header_key="flyte-authorization", audience=AUD, issuer=ISSUER)
    return HubAuthenticator("https://flyte.example", cfg_store=StaticClientConfigStore(cfg), env=stand_in.env,
                            clock=clock)


def hub_token(exp: float, iat: float = NOW - 500) -> str:
    return jwt(iss=ISSUER, aud=AUD, sub="alice", iat=iat, exp=exp)


def test_near_expiry_50_calls_send_one_request_to_the_hub_and_back_off(hub_api, reliability_rule):
    """Issue 16.7: the Hub hands back the same, still-near-expiry token: it is not asked again at once,
    but after 1 s, then 2 s, ...; a fresh token ends the backoff and is served from the hot path."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from flow_fakes import FakeClock

    clock = FakeClock(start=NOW)
    first = hub_token(exp=NOW + 100)  # a 600 s token: margin 60 s
    hub = hub_api(state(access_token=first))
    auth = hub_over_http(hub, clock)
    assert auth.refresh_credentials().access_token == first and hub.count() == 1
    clock.advance(50)  # 50 s left: within the margin; the Hub has not refreshed yet
    for _ in range(50):
        assert auth.get_credentials().access_token == first  # still valid: served while the Hub is asked
    assert hub.count() == 2  # one renewal for 50 calls
    for _ in range(50):
        assert auth.fetch_grpc_call_auth_metadata() == ("flyte-authorization", f"Bearer {first}")
    assert hub.count() == 2
    clock.advance(1.0)  # the first backoff (1 s) is over: asked once more, then 2 s
    for _ in range(50):
        auth.get_credentials()
    assert hub.count() == 3
    reliability_rule(rules.HUB_BACKOFF, "100 calls after expiry (the Hub cannot refresh)",
                     "1 request, then backoff; the expired token is never cached as fresh")
    clock.advance(1.0)
    auth.get_credentials()
    assert hub.count() == 3  # within the 2 s backoff
    second = hub_token(exp=NOW + 700, iat=NOW + 100)
    hub.auth_state = state(access_token=second)  # the Hub refreshed the user's token
    clock.advance(1.0)
    for _ in range(50):
        assert auth.fetch_grpc_call_auth_metadata() == ("flyte-authorization", f"Bearer {second}")
    assert hub.count() == 4 and auth.get_credentials().access_token == second
    reliability_rule(rules.HUB_BACKOFF, "50 calls near expiry, the Hub hands back the same token",
                     "1 request to the Hub, then backoff 1 s, 2 s, ...; the Hub's new token ends it")


def test_after_expiry_the_hub_is_not_flooded_and_the_expired_token_is_never_cached(hub_api, reliability_rule):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from flow_fakes import FakeClock

    clock = FakeClock(start=NOW)
    first = hub_token(exp=NOW + 100)
    hub = hub_api(state(access_token=first))
    auth = hub_over_http(hub, clock)
    auth.refresh_credentials()
    clock.advance(150)  # expired; the Hub still keeps the expired token (it cannot refresh)
    for _ in range(50):
        auth.get_credentials()
        auth.fetch_grpc_call_auth_metadata()
    assert hub.count() == 2  # one attempt, then the backoff
    now, until, _ = auth._hot_creds
    assert not now() < until  # nothing expired is cached as fresh: every call checks again
    clock.advance(60)
    for _ in range(50):
        auth.get_credentials()
    assert hub.count() == 3


def test_50_threads_near_expiry_share_one_request_to_the_hub(hub_api):
    import threading
    import time

    now = time.time()
    token = hub_token(exp=now + 30, iat=now - 570)  # a 600 s token with 30 s left: due (margin 60 s)
    hub = hub_api(state(access_token=token))
    auth = hub_over_http(hub, None)
    auth.refresh_credentials()
    start = threading.Barrier(50)
    seen: list[str] = []

    def call() -> None:
        start.wait(10)
        seen.append(auth.get_credentials().access_token)

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(seen) == 50 and set(seen) == {token}
    assert hub.count() <= 2  # the sign-in, then at most one renewal for the 50 calls (none in the backoff)


# ------------------------------------------------------------------ naming the user and the Hub (issue 17.11)
@pytest.mark.parametrize(("auth_state", "hub_user", "name"), [
    # an opaque access token: the Hub's id token names the user
    (state(access_token="opaque-token"), "alice", "alice"),
    (state(access_token="opaque-token", id_token=jwt(iss=ISSUER, sub="00u1x", email="alice@example.org")), None,
     "alice@example.org"),
    # a JWT without a naming claim and no id token: the Hub's user model names them
    (state(access_token=jwt(iss=ISSUER, aud=AUD, exp=NOW + 60), id_token=None), "alice", "alice"),
    # only opaque subject ids in the tokens: the Hub's name comes before a sub
    (state(access_token=jwt(iss=ISSUER, aud=AUD, sub="00u1x"), id_token=jwt(iss=ISSUER, sub="00u1x")), "alice", "alice"),
    (state(access_token=jwt(iss=ISSUER, aud=AUD, sub="00u1x"), id_token=None), None, "00u1x"),
    # a naming claim of the id token first, then of the access token
    (state(access_token=jwt(iss=ISSUER, preferred_username="other")), "alice", "alice"),
    (state(access_token=jwt(iss=ISSUER, preferred_username="alice.l"), id_token=jwt(iss=ISSUER, sub="1")), "al", "alice.l"),
    # nothing names anyone
    (state(access_token="opaque-token", id_token=None), None, None),
    # what is not a name is skipped: not a string, blank, a control character
    (state(access_token="opaque-token", id_token=jwt(preferred_username=["x"], name="  ")), 7, None),
    (state(access_token="opaque-token", id_token=jwt(preferred_username="al\nice")), "alice", "alice"),
    (state(access_token="opaque-token", id_token="not.a-jwt"), "x" * 300, "x" * 256),
])
def test_hub_user_name(auth_state, hub_user, name):
    from flyteauth_jupyter.flows.hub import hub_user_name

    assert hub_user_name(auth_state, hub_user) == name


def test_the_hubs_credentials_name_the_user_and_keep_the_tokens_out_of_their_repr():
    c = credentials_from_auth_state(state(access_token="opaque-token"), expected=Expected(ISSUER, None),
                                    endpoint="flyte:443", where="hub:8081", now=NOW, hub_user="alice")
    assert c.subject == "alice" and c.id_token is None
    assert "opaque-token" not in repr(c) and "opaque-token" not in str(c) and "alice" not in repr(c)


def test_the_hub_is_named_by_its_public_address_never_by_its_api_address():
    from flyteauth_jupyter.flows.hub import reused_reason

    def reason(**env: str) -> str:
        ctx = hub_context({**HUB_ENV, **env})
        assert ctx is not None
        return reused_reason(ctx)

    assert reason() == "your JupyterHub login is reused, no click needed"
    assert reason(JUPYTERHUB_PUBLIC_HUB_URL="https://hub.example.org/hub/") == (
        "your JupyterHub login (hub.example.org) is reused, no click needed")
    assert reason(JUPYTERHUB_PUBLIC_URL="https://hub.example.org:8443/user/alice/") == (
        "your JupyterHub login (hub.example.org:8443) is reused, no click needed")
    assert reason(JUPYTERHUB_PUBLIC_HUB_URL="https://user:secret@hub.example.org/hub/") == (
        "your JupyterHub login (hub.example.org) is reused, no click needed")
    assert "[::1]:8000" in reason(JUPYTERHUB_HOST="http://[::1]:8000")
    for nonsense in ("javascript:alert(1)", "http://", "http://hub:99999/", "hub.example.org", "http://h\n/"):
        assert reason(JUPYTERHUB_PUBLIC_HUB_URL=nonsense) == "your JupyterHub login is reused, no click needed"
    assert "8081" not in reason()  # the API's internal address is never the Hub's name


def test_the_hub_authenticator_names_the_user_from_the_hubs_user_model(hub_api):
    """A JWT access token without a naming claim and no id token: "Signed in as alice" all the same,
    from GET /users/alice's ``name`` (a real HTTP stand-in of the Hub's API)."""
    from flyteauth_jupyter.authenticators import HubAuthenticator
    from flyteauth_jupyter.config import ClientConfig, StaticClientConfigStore
    from flyteauth_jupyter.flows.events import Succeeded

    events: list = []
    import time

    token = jwt(iss=ISSUER, aud=AUD, exp=int(time.time()) + 600)
    stand_in = hub_api(state(access_token=token, id_token=None))
    cfg = ClientConfig("http://127.0.0.1:9/token", "http://127.0.0.1:9/auth", "http://127.0.0.1:9/cb", "c",
                       header_key="flyte-authorization", audience=AUD, issuer=ISSUER)
    auth = HubAuthenticator("https://flyte.example", cfg_store=StaticClientConfigStore(cfg),
                            env={**stand_in.env, "JUPYTERHUB_PUBLIC_HUB_URL": "https://hub.example.org/hub/"},
                            observer=events.append)
    creds = auth.refresh_credentials()
    assert creds.subject == "alice" and creds.access_token == token
    assert [e.subject for e in events if isinstance(e, Succeeded)] == ["alice"]
    assert auth.reused_reason == "your JupyterHub login (hub.example.org) is reused, no click needed"


def test_the_panel_says_the_hub_keeps_a_hub_sign_ins_tokens():
    """Issue 17.5 on a Hub: the zero-click sign-in keeps no store of its own; "memory only" misled."""
    from flyteauth_jupyter.authenticators import HubAuthenticator
    from flyteauth_jupyter.notebook.session.background import _where_kept
    from flyteauth_jupyter.stores import MemoryStore

    class Plain:
        store = MemoryStore()

    hub = HubAuthenticator.__new__(HubAuthenticator)  # the class attribute is what the panel reads
    assert _where_kept(hub, "flyte.example.com:443").startswith("JupyterHub (your Hub login")
    assert _where_kept(Plain(), "flyte.example.com:443") == Plain.store.describe("flyte.example.com:443")
