"""Authenticators: seed signatures, token lifecycle (margin, JWT exp, single flight, store lock/adoption),
header key rules, cancel, logout, reprs and message rules. Fakes for the clock, HTTP and the store."""

from __future__ import annotations

import base64
import contextlib
import inspect
import json
import subprocess
import sys
import threading

import pytest

import flyteauth_jupyter as fj
from flyteauth_jupyter import (
    AccessTokenNotFoundError,
    Authenticator,
    ClientConfig,
    ClientCredentialsAuthenticator,
    CommandAuthenticator,
    Credentials,
    DeviceCodeAuthenticator,
    PKCEAuthenticator,
    StaticClientConfigStore,
)
from flyteauth_jupyter.authenticators import needs_refresh, refresh_margin
from flyteauth_jupyter.errors import (
    AuthenticationError,
    ConfigurationError,
    FlyteAuthError,
    InvalidClientError,
    LoginCancelledError,
    LoginTimeoutError,
    TransportError,
)
from flyteauth_jupyter.flows.events import Cancelled, DeviceCodeIssued, FlowStarted, Polling, Succeeded
from flyteauth_jupyter.stores import MemoryStore
from flow_fakes import SECRETS, FakeClock, FakeTransport, oauth, ok

ENDPOINT = "http://127.0.0.1:30080"
SERVICE = "127.0.0.1:30080"
AT, RT, DC, CS, IDT = SECRETS

SEED = {
    "Authenticator": [("endpoint", inspect.Parameter.empty), ("header_key", inspect.Parameter.empty),
                      ("credentials", None), ("http_proxy_url", None), ("verify", None)],
    "ClientCredentialsAuthenticator": [("endpoint", inspect.Parameter.empty), ("client_id", inspect.Parameter.empty),
                                       ("client_secret", inspect.Parameter.empty), ("cfg_store", inspect.Parameter.empty),
                                       ("header_key", None), ("scopes", None), ("http_proxy_url", None), ("verify", None),
                                       ("audience", None), ("session", None)],
    "CommandAuthenticator": [("command", inspect.Parameter.empty), ("header_key", None)],
    "DeviceCodeAuthenticator": [("endpoint", inspect.Parameter.empty), ("cfg_store", inspect.Parameter.empty),
                                ("header_key", None), ("audience", None), ("scopes", None), ("http_proxy_url", None),
                                ("verify", None), ("session", None)],
    "PKCEAuthenticator": [("endpoint", inspect.Parameter.empty), ("cfg_store", inspect.Parameter.empty), ("scopes", None),
                          ("header_key", None), ("verify", None), ("session", None)],
}


def config(**over) -> ClientConfig:
    values = dict(token_endpoint="https://idp.test/token", authorization_endpoint="https://idp.test/auth",
                  redirect_uri="http://127.0.0.1:53593/callback", client_id="cli",
                  device_authorization_endpoint="https://idp.test/device", scopes=["openid", "offline_access"],
                  header_key="flyte-authorization", audience=None)
    values.update(over)
    extra = {k: values.pop(k) for k in ("revocation_endpoint", "issuer") if k in values}
    return ClientConfig(**values, **extra)


def token(at=AT, rt=RT, expires_in=300):
    body = {"access_token": at, "token_type": "Bearer", "expires_in": expires_in}
    if rt:
        body["refresh_token"] = rt
    return ok(body)


def jwt(claims: dict) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def device_auth(script=(), *, clock=None, store=None, cfg=None, **kw) -> tuple[DeviceCodeAuthenticator, FakeTransport]:
    clock = clock or FakeClock()
    auth = DeviceCodeAuthenticator(ENDPOINT, StaticClientConfigStore(cfg or config()), clock=clock,
                                   store=store if store is not None else MemoryStore(), **kw)
    transport = FakeTransport(script, clock=clock)
    auth._transport = transport
    return auth, transport


# ------------------------------------------------------------------------------ signatures
@pytest.mark.parametrize("name", sorted(SEED))
def test_constructor_matches_the_seed(name: str) -> None:
    params = [p for p in inspect.signature(getattr(fj, name)).parameters.values() if p.kind is not p.KEYWORD_ONLY]
    assert [(p.name, p.default) for p in params] == SEED[name]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)


@pytest.mark.parametrize("name", sorted(SEED))
def test_constructor_matches_installed_flytekit(name: str) -> None:
    authenticator = pytest.importorskip("flytekit.clients.auth.authenticator")
    theirs = [(p.name, p.default) for p in inspect.signature(getattr(authenticator, name)).parameters.values()]
    ours = [(p.name, p.default) for p in inspect.signature(getattr(fj, name)).parameters.values()
            if p.kind is not p.KEYWORD_ONLY]
    assert ours == theirs


def test_public_names_and_light_import() -> None:
    for name in ("Authenticator", "ClientConfig", "ClientConfigStore", "StaticClientConfigStore", "RemoteClientConfigStore",
                 "ClientCredentialsAuthenticator", "CommandAuthenticator", "DeviceCodeAuthenticator", "PKCEAuthenticator",
                 "Credentials", "KeyringStore", "FlyteAuthError", "AuthenticationError", "AccessTokenNotFoundError",
                 "AuthenticationPending", "load_ipython_extension", "unload_ipython_extension"):
        assert hasattr(fj, name), name
    code = ("import sys, flyteauth_jupyter; "
            "bad=[m for m in ('ipywidgets','jupyter_server','flytekit','grpc','IPython') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


# ------------------------------------------------------------------------------ basics
def test_get_credentials_is_none_before_any_login() -> None:
    assert device_auth()[0].get_credentials() is None
    assert PKCEAuthenticator(ENDPOINT, StaticClientConfigStore(config()), store=MemoryStore()).get_credentials() is None
    assert ClientCredentialsAuthenticator(ENDPOINT, "svc", CS, StaticClientConfigStore(config())).get_credentials() is None
    assert CommandAuthenticator(["true"]).get_credentials() is None
    assert device_auth()[0].fetch_grpc_call_auth_metadata() is None


def test_cached_token_in_the_store_is_used() -> None:
    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE))
    auth, t = device_auth(store=store)
    assert auth.get_credentials().access_token == AT
    assert auth.fetch_grpc_call_auth_metadata() == ("flyte-authorization", f"Bearer {AT}")
    assert t.posts == []


def test_header_key_resolution() -> None:
    auth, _ = device_auth(header_key="x-mine")
    assert auth.header_key == "x-mine"
    assert device_auth()[0].header_key == "flyte-authorization"
    assert device_auth(cfg=config(header_key="authorization"))[0].header_key == "authorization"

    class Broken(StaticClientConfigStore):
        def get_client_config(self):
            raise TransportError("Could not connect to h:1.")

    broken = DeviceCodeAuthenticator(ENDPOINT, Broken(config()), store=MemoryStore())
    assert broken.header_key == "authorization"
    assert CommandAuthenticator(["x"]).header_key == "authorization"
    assert CommandAuthenticator(["x"], "proxy-authorization").header_key == "proxy-authorization"


def test_id_token_only_gives_no_metadata() -> None:
    auth = Authenticator(ENDPOINT, "authorization", Credentials(None, id_token=IDT))
    assert auth.fetch_grpc_call_auth_metadata() is None


def test_plain_base_serves_given_credentials_and_cannot_login() -> None:
    auth = Authenticator(ENDPOINT, None, Credentials(AT))
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", f"Bearer {AT}")
    with pytest.raises(AccessTokenNotFoundError):
        auth.refresh_credentials()


def test_bad_endpoint_and_missing_client_secret_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        DeviceCodeAuthenticator("http://flyte.example.com", None)
    with pytest.raises(ConfigurationError) as info:
        ClientCredentialsAuthenticator(ENDPOINT, "svc", "", None)
    assert isinstance(info.value, ValueError)
    with pytest.raises(AuthenticationError):
        CommandAuthenticator([])


# ------------------------------------------------------------------------------ expiry rules
def test_refresh_margin_rules() -> None:
    assert refresh_margin(Credentials(AT, expires_in=3600)) == 60.0
    assert refresh_margin(Credentials(AT, expires_in=20)) == 10.0
    assert refresh_margin(Credentials(AT)) == 60.0
    assert refresh_margin(Credentials(jwt({"iat": 1000, "exp": 1030}))) == 15.0
    unknown = Credentials(AT)
    assert unknown.expires_at is None and not needs_refresh(unknown, now=10**12)
    assert needs_refresh(Credentials(AT, expires_at=1000.0, expires_in=100), now=951.0)
    assert not needs_refresh(Credentials(AT, expires_at=1000.0, expires_in=100), now=949.0)


def test_proactive_refresh_within_margin_keeps_old_refresh_token() -> None:
    clock = FakeClock(start=1000.0)
    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE, expires_in=100, expires_at=1100.0))
    auth, t = device_auth([token(at="AT-new", rt=None, expires_in=100)], clock=clock, store=store)
    assert auth.get_credentials().access_token == AT and t.posts == []
    clock.advance(51)  # 49 s left < min(60, 50)
    creds = auth.get_credentials()
    assert creds.access_token == "AT-new" and creds.refresh_token == RT
    _, data, _, _ = t.posts[0]
    assert data == {"grant_type": "refresh_token", "refresh_token": RT, "client_id": "cli"}
    assert store.load(SERVICE).access_token == "AT-new"


def test_unknown_expiry_is_used_until_rejected_and_jwt_exp_schedules() -> None:
    clock = FakeClock(start=1000.0)
    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE))
    auth, t = device_auth([token(at="AT-2")], clock=clock, store=store)
    clock.advance(10**6)
    assert auth.get_credentials().access_token == AT and t.posts == []
    assert auth.refresh_credentials().access_token == "AT-2"  # the server rejected it: caller refreshes

    clock2 = FakeClock(start=1000.0)
    store2 = MemoryStore()
    store2.save(SERVICE, Credentials(jwt({"iat": 1000, "exp": 1100}), RT, SERVICE))
    auth2, t2 = device_auth([token(at="AT-3")], clock=clock2, store=store2)
    assert auth2.get_credentials().access_token != "AT-3"
    clock2.advance(60)  # 40 s left < min(60, 50)
    assert auth2.get_credentials().access_token == "AT-3" and len(t2.posts) == 1


def test_no_refresh_token_and_not_interactive_raises_access_token_not_found() -> None:
    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, None, SERVICE, expires_in=1, expires_at=0.0))
    auth, t = device_auth(store=store)
    with pytest.raises(AccessTokenNotFoundError, match="flyte_login"):
        auth.refresh_credentials(interactive=False)
    assert t.posts == []
    assert auth.get_credentials().access_token == AT  # expired, returned; the server will say so


def test_dead_refresh_token_falls_back_to_the_interactive_flow() -> None:
    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE))
    events = []
    script = [oauth("invalid_grant", "grant request is invalid"),
              ok({"device_code": DC, "user_code": "AAAA-BBBB", "verification_uri": "https://idp.test/device",
                  "expires_in": 600, "interval": 1}),
              token(at="AT-login", rt="RT-login")]
    auth, t = device_auth(script, store=store, observer=events.append)
    creds = auth.refresh_credentials()
    assert creds.access_token == "AT-login" and store.load(SERVICE).refresh_token == "RT-login"
    kinds = [type(e) for e in events]
    assert FlowStarted in kinds and DeviceCodeIssued in kinds and kinds[-1] is Succeeded


def test_refresh_network_error_is_raised_without_wiping_or_prompting() -> None:
    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE))
    auth, t = device_auth([TransportError("Could not connect to idp.test:443.")], store=store)
    with pytest.raises(TransportError):
        auth.refresh_credentials()
    assert store.load(SERVICE).refresh_token == RT and len(t.posts) == 1


# ------------------------------------------------------------------------------ single flight
def test_32_threads_on_an_expired_token_make_one_refresh() -> None:
    clock = FakeClock(start=1000.0)
    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE, expires_in=60, expires_at=999.0))
    arrived = [0]
    lock = threading.Lock()
    all_in = threading.Event()

    def slow_refresh(url, data):
        all_in.wait(5)  # let the other threads pile up on the flight
        return token(at="AT-new", rt="RT-new")

    auth, t = device_auth([slow_refresh], clock=clock, store=store)
    results, errors = [], []
    start = threading.Barrier(32)

    def worker():
        start.wait(5)
        with lock:
            arrived[0] += 1
            if arrived[0] == 32:
                all_in.set()
        try:
            results.append(auth.get_credentials())
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert not errors and len(results) == 32
    assert {c.access_token for c in results} == {"AT-new"}
    assert len(t.posts) == 1


def test_overlapping_refresh_credentials_share_one_request() -> None:
    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE))
    release = threading.Event()
    started = threading.Event()

    def slow(url, data):
        started.set()
        release.wait(5)
        return token(at="AT-x")

    auth, t = device_auth([slow], store=store)
    first = auth.refresh_in_background()
    assert started.wait(5)
    second = auth.refresh_in_background()
    third = auth.refresh_in_background(interactive=False)
    release.set()
    assert first.result(5) is second.result(5) is third.result(5)
    assert len(t.posts) == 1


def test_wait_for_the_login_in_progress() -> None:
    release = threading.Event()
    started = threading.Event()

    def slow(url, data):
        started.set()
        release.wait(5)
        return token(at="AT-w")

    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE))
    auth, t = device_auth([slow], store=store)
    future = auth.refresh_in_background()
    assert started.wait(5) and auth.login_in_progress
    with pytest.raises(LoginTimeoutError, match="still in progress"):
        auth.wait(timeout=0.05)
    release.set()
    assert auth.wait(timeout=5).access_token == "AT-w" and future.result(5).access_token == "AT-w"
    assert auth.wait() is auth.get_credentials()


def test_store_lock_is_taken_and_a_siblings_fresher_token_adopted() -> None:
    class SiblingStore(MemoryStore):
        def __init__(self):
            super().__init__()
            self.locked = []

        @contextlib.contextmanager
        def lock(self, service, **kw):
            self.locked.append(service)
            # another process refreshed while we waited for the lock
            super().save(service, Credentials("AT-sibling", "RT-sibling", service, expires_in=300))
            yield

    store = SiblingStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE))
    auth, t = device_auth(store=store)
    creds = auth.refresh_credentials()
    assert creds.access_token == "AT-sibling" and store.locked == [SERVICE] and t.posts == []


def test_sibling_rotated_refresh_token_is_used() -> None:
    store = MemoryStore()
    auth, t = device_auth([token(at="AT-3", rt="RT-3")], store=store)
    auth._set_credentials(Credentials(AT, RT, SERVICE, expires_in=1, expires_at=0.0))
    store.save(SERVICE, Credentials("AT-old-2", "RT-2", SERVICE, expires_in=1, expires_at=0.0))
    assert auth.refresh_credentials().access_token == "AT-3"
    assert t.posts[0][1]["refresh_token"] == "RT-2"


def test_broken_store_never_breaks_a_login() -> None:
    class Broken:
        fallback_reason = None

        def load(self, s):
            raise OSError("dbus")

        def save(self, s, c):
            raise OSError("dbus")

        def delete(self, s):
            raise OSError("dbus")

    auth, t = device_auth([token()], store=Broken())
    auth._set_credentials(Credentials("AT-0", RT, SERVICE))
    assert auth.refresh_credentials().access_token == AT
    assert "memory" in auth.fallback_reason


# ------------------------------------------------------------------------------ cancel / logout
def test_cancel_ends_the_device_login() -> None:
    events = []
    holder = {}

    def observer(e):
        events.append(e)
        if isinstance(e, Polling) and e.attempt == 2:
            holder["auth"].cancel()

    script = [ok({"device_code": DC, "user_code": "AAAA-BBBB", "verification_uri": "https://idp.test/device",
                  "expires_in": 600, "interval": 1})] + [oauth("authorization_pending")] * 20
    auth, t = device_auth(script, observer=observer)
    holder["auth"] = auth
    with pytest.raises(LoginCancelledError):
        auth.refresh_credentials()
    assert isinstance(events[-1], Cancelled) and len(t.posts) == 3
    assert not auth.login_in_progress


def test_logout_revokes_and_clears() -> None:
    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE))
    auth, t = device_auth([ok({})], store=store, cfg=config(revocation_endpoint="https://idp.test/revoke"))
    assert auth.logout() is True
    url, data, _, _ = t.posts[0]
    assert url == "https://idp.test/revoke" and data == {"token": RT, "token_type_hint": "refresh_token", "client_id": "cli"}
    assert store.load(SERVICE) is None and auth.get_credentials() is None


def test_logout_without_revocation_endpoint_still_clears() -> None:
    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE))
    auth, t = device_auth(store=store)
    assert auth.logout() is False and t.posts == [] and store.load(SERVICE) is None


# ------------------------------------------------------------------------------ other grants
def test_client_credentials_cached_until_near_expiry() -> None:
    clock = FakeClock(start=1000.0)
    auth = ClientCredentialsAuthenticator(ENDPOINT, "svc", CS, StaticClientConfigStore(config(scopes=["api:read"])),
                                          clock=clock)
    t = auth._transport = FakeTransport([token(rt=None, expires_in=600), token(at="AT-2", rt=None, expires_in=600)])
    assert auth.refresh_credentials().access_token == AT
    assert auth.get_credentials().access_token == AT and len(t.posts) == 1
    clock.advance(545)
    assert auth.get_credentials().access_token == "AT-2" and len(t.posts) == 2
    _, data, basic, _ = t.posts[0]
    assert data == {"grant_type": "client_credentials", "scope": "api:read"} and CS not in repr(basic)


def test_client_credentials_bad_secret_message() -> None:
    auth = ClientCredentialsAuthenticator(ENDPOINT, "svc", CS, StaticClientConfigStore(config()))
    auth._transport = FakeTransport([oauth("invalid_client", "client authentication failed", status=401)])
    with pytest.raises(InvalidClientError) as info:
        auth.refresh_credentials()
    assert "client id and secret" in str(info.value) and CS not in str(info.value)


def test_command_authenticator() -> None:
    exp_token = jwt({"exp": 4_000_000_000, "iat": 3_999_996_400})
    auth = CommandAuthenticator([sys.executable, "-c", f"print('{exp_token}')"])
    assert auth.get_credentials() is None
    creds = auth.refresh_credentials()
    assert creds.access_token == exp_token and creds.expires_at == 4_000_000_000
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", f"Bearer {exp_token}")


# ------------------------------------------------------------------------------ reprs and messages
def test_reprs_redact_every_secret() -> None:
    creds = Credentials(AT, RT, SERVICE, id_token=IDT)
    auths = [
        Authenticator(ENDPOINT, None, creds),
        ClientCredentialsAuthenticator(ENDPOINT, "svc", CS, StaticClientConfigStore(config())),
        CommandAuthenticator([sys.executable, "--token=" + CS]),
        device_auth()[0],
        PKCEAuthenticator(ENDPOINT, StaticClientConfigStore(config()), store=MemoryStore()),
    ]
    for auth in auths:
        auth._set_credentials(creds)
        for text in (repr(auth), str(auth)):
            assert all(secret not in text for secret in SECRETS), text


def test_messages_are_short_and_secret_free() -> None:
    messages = []
    store = MemoryStore()
    store.save(SERVICE, Credentials(AT, RT, SERVICE, expires_in=1, expires_at=0.0))
    scripts = [
        [oauth("invalid_grant", "x" * 800)],
        [oauth("access_denied")],
        [TransportError("Could not connect to idp.test:443.")],
    ]
    for script in scripts:
        auth, _ = device_auth(script, store=store)
        auth._set_credentials(Credentials(AT, RT, SERVICE, expires_in=1, expires_at=0.0))
        try:
            auth.refresh_credentials(interactive=False)
        except FlyteAuthError as exc:
            messages.append(str(exc))
    for m in messages:
        assert len(m) <= 500 and all(s not in m for s in SECRETS), m
    assert len(messages) == 3
