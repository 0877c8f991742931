"""What the authenticators hand the flows (issue 18 wiring), through the transport seam: a confidential
client's authentication on every request (device authorization and polling, code exchange, refresh,
revocation; basic, or post where the metadata allows only that), ``prompt`` and the PKCE methods to the
browser flow, ``audience`` on the refresh, ``proxy_auth`` to the transport and the stores they make,
the store's service name without an endpoint. The real servers: tests/notebook_layer/test_nb_confidential.py,
test_nb_issuer.py, test_nb_proxy.py."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest

from flyteauth_jupyter import ClientConfig, Credentials, DeviceCodeAuthenticator, PKCEAuthenticator, StaticClientConfigStore
from flyteauth_jupyter.authenticators import ClientCredentialsAuthenticator, authenticator_for
from flyteauth_jupyter.config import IssuerClientConfigStore, RemoteClientConfigStore
from flyteauth_jupyter.endpoint import parse_endpoint
from flyteauth_jupyter.errors import AuthenticationError, ConfigurationError
from flyteauth_jupyter.flows.client_auth import ClientSecretBasic, ClientSecretPost
from flyteauth_jupyter.proxy import ProxyAuth, ProxyCredential
from flyteauth_jupyter.stores import MemoryStore
from flow_fakes import SECRETS, FakeClock, FakeTransport, ok

ENDPOINT = "http://127.0.0.1:30080"
SERVICE = "127.0.0.1:30080"
AT, RT, DC, CS, IDT = SECRETS


def config(**over) -> ClientConfig:
    values = dict(token_endpoint="https://idp.test/token", authorization_endpoint="https://idp.test/auth",
                  redirect_uri="http://127.0.0.1:53593/callback", client_id="cli",
                  device_authorization_endpoint="https://idp.test/device", scopes=["openid", "offline_access"],
                  header_key="flyte-authorization", audience=None)
    values.update(over)
    keyword = {k: values.pop(k) for k in ("revocation_endpoint", "issuer", "token_endpoint_auth_methods_supported",
                                          "code_challenge_methods_supported", "prompt") if k in values}
    return ClientConfig(**values, **keyword)


def token(at=AT, rt=RT):
    return ok({"access_token": at, "token_type": "Bearer", "expires_in": 300, "refresh_token": rt})


def device(script, *, cfg=None, **kw):
    auth = DeviceCodeAuthenticator(ENDPOINT, StaticClientConfigStore(cfg or config()), store=MemoryStore(),
                                   clock=FakeClock(), **kw)
    auth._transport = FakeTransport(script, clock=auth.clock)
    return auth, auth._transport


DEVICE_ANSWER = ok({"device_code": DC, "user_code": "ABCD-EFGH", "verification_uri": "https://idp.test/activate",
                    "expires_in": 600, "interval": 1})


def basic_of(auth) -> str:
    assert isinstance(auth, ClientSecretBasic)
    request = type("R", (), {"headers": {}})()
    auth(request)
    return base64.b64decode(request.headers["Authorization"][6:]).decode()


@pytest.mark.parametrize("methods, kind", [(None, "basic"), (["client_secret_basic", "client_secret_post"], "basic"),
                                           (["client_secret_post", "private_key_jwt"], "post")])
def test_a_confidential_device_client_authenticates_every_request(methods, kind):
    cfg = config(revocation_endpoint="https://idp.test/revoke", token_endpoint_auth_methods_supported=methods)
    auth, t = device([DEVICE_ANSWER, token(), token(at="AT-2", rt="RT-2"), ok({})], cfg=cfg, client_secret=CS)
    assert auth.confidential and auth.refresh_credentials().access_token == AT
    auth._set_credentials(Credentials(AT, RT, SERVICE, expires_in=1, expires_at=auth.clock.time() - 1))
    assert auth.refresh_credentials(interactive=False).access_token == "AT-2"
    auth.logout()
    assert [url for url, *_ in t.posts] == ["https://idp.test/device", "https://idp.test/token",
                                             "https://idp.test/token", "https://idp.test/revoke"]
    for url, data, request_auth, _ in t.posts:  # device authorization, poll, refresh, revocation
        if kind == "basic":
            assert basic_of(request_auth) == f"cli:{CS}" and "client_secret" not in data
        else:
            assert request_auth is None and data["client_secret"] == CS and data["client_id"] == "cli"
    assert CS not in repr(auth) and "client_secret=<redacted>" in repr(auth)


def test_a_public_client_sends_no_client_authentication():
    auth, t = device([DEVICE_ANSWER, token()])
    auth.refresh_credentials()
    assert not auth.confidential and all(a is None and "client_secret" not in d for _, d, a, _ in t.posts)


def test_an_empty_secret_is_refused_and_the_rule_refuses_a_provider_without_secrets():
    with pytest.raises(ConfigurationError, match="client secret is empty"):
        DeviceCodeAuthenticator(ENDPOINT, StaticClientConfigStore(config()), client_secret="")
    auth, _ = device([], cfg=config(token_endpoint_auth_methods_supported=["private_key_jwt"]), client_secret=CS)
    with pytest.raises(ConfigurationError, match="cannot be used there") as info:
        auth.refresh_credentials()
    assert CS not in str(info.value)


def test_the_refresh_sends_the_audience_the_sign_in_sent():
    auth, t = device([token(at="AT-2")], cfg=config(audience="https://api.example.com"))
    auth._set_credentials(Credentials(AT, RT, SERVICE, expires_in=1, expires_at=auth.clock.time() - 1))
    auth.refresh_credentials(interactive=False)
    assert t.posts[0][1]["audience"] == "https://api.example.com"
    auth, t = device([token(at="AT-2")])
    auth._set_credentials(Credentials(AT, RT, SERVICE, expires_in=1, expires_at=auth.clock.time() - 1))
    auth.refresh_credentials(interactive=False)
    assert "audience" not in t.posts[0][1]


def test_client_credentials_use_post_where_the_metadata_allows_only_that():
    cfg = config(token_endpoint_auth_methods_supported=["client_secret_post"])
    auth = ClientCredentialsAuthenticator(ENDPOINT, "svc", CS, StaticClientConfigStore(cfg))
    t = auth._transport = FakeTransport([token(rt=None)])
    auth.refresh_credentials()
    _, data, request_auth, _ = t.posts[0]
    assert request_auth is None and data["client_secret"] == CS and data["client_id"] == "svc"
    assert repr(auth).count("client_secret=<redacted>") == 1 and CS not in repr(auth)


@pytest.mark.parametrize("argument, configured, sent", [
    (None, None, "consent"),       # the default rule: consent with offline_access
    ("", None, None),              # never sent
    (None, "", None),              # the configuration's "never"
    ("login", "", "login"),        # the argument wins
    (None, "select_account", "select_account"),
])
def test_pkce_sends_the_prompt_setting_and_checks_the_methods(argument, configured, sent, monkeypatch):
    seen: dict[str, str] = {}

    def opener(url: str) -> bool:
        seen["url"] = url
        auth.cancel()
        return False

    cfg = config(prompt=configured, code_challenge_methods_supported=["S256", "plain"])
    auth = PKCEAuthenticator(ENDPOINT, StaticClientConfigStore(cfg), store=MemoryStore(), open_browser=opener,
                             prompt=argument, timeout=10)
    with pytest.raises(Exception):
        auth.refresh_credentials()
    query = parse_qs(urlsplit(seen["url"]).query)
    assert query.get("prompt") == ([sent] if sent else None)
    assert auth.prompt == (argument if argument is not None else configured)

    refused = PKCEAuthenticator(ENDPOINT, StaticClientConfigStore(config(code_challenge_methods_supported=["plain"])),
                                store=MemoryStore(), open_browser=False, timeout=5)
    with pytest.raises(Exception, match="S256"):
        refused.refresh_credentials()


def test_the_stores_take_a_prompt():
    assert StaticClientConfigStore(config(), prompt="").get_client_config().prompt == ""
    assert StaticClientConfigStore(config(prompt="login")).get_client_config().prompt == "login"
    remote = RemoteClientConfigStore(ENDPOINT, prompt="select_account")
    remote._cached_config = lambda: config()  # type: ignore[method-assign]  # no server: the seam
    assert remote.get_client_config().prompt == "select_account"


def test_proxy_auth_goes_to_the_transport_and_the_store_the_authenticator_makes(monkeypatch):
    proxy = ProxyAuth(credential=ProxyCredential(["true"]), endpoint=ENDPOINT)
    for flow in ("device", "pkce", "hub", "command"):
        auth = authenticator_for(flow, parse_endpoint(ENDPOINT), None, proxy_auth=proxy, command=["true"],
                                 store=MemoryStore(), env={})
        assert auth.proxy_auth is proxy, flow
    made: list = []

    def fetched(store):  # the seam: no server; which proxy credential the store was made with
        made.append(store._transport.proxy_auth)
        return config()

    monkeypatch.setattr(RemoteClientConfigStore, "get_client_config", fetched)
    auth = authenticator_for("device", parse_endpoint(ENDPOINT), None, proxy_auth=proxy, store=MemoryStore())
    assert auth._transport.proxy_auth is proxy
    assert auth.header_key == "flyte-authorization" and made == [proxy]
    cc = authenticator_for("client-credentials", parse_endpoint(ENDPOINT), None, proxy_auth=proxy, client_id="svc",
                           client_secret=CS)
    assert cc._transport.proxy_auth is proxy and CS not in repr(cc)


def test_without_an_endpoint_the_issuer_store_names_the_service():
    store = IssuerClientConfigStore("https://login.example.com/realms/x/", "jupyter")
    assert store.service == "login.example.com/realms/x (client jupyter)"
    auth = authenticator_for("device", None, store, store=MemoryStore())
    assert auth.service == store.service and auth.endpoint is None
    from flyteauth_jupyter.clients import BearerAuth

    with pytest.raises(ConfigurationError, match="origins"):
        BearerAuth(auth)


def test_no_device_endpoint_is_the_flows_sentence_naming_the_issuer():
    store = IssuerClientConfigStore("https://login.example.com/pool", "c")
    store._cached = (float("inf"), config(device_authorization_endpoint=None))  # the seam: no request
    store._ttl = float("inf")
    auth = authenticator_for("device", None, store, store=MemoryStore())
    with pytest.raises(AuthenticationError) as info:
        auth.refresh_credentials()
    assert str(info.value).startswith("login.example.com does not offer device sign-in")
    assert "give the device authorization endpoint explicitly" in str(info.value)
