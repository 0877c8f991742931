"""The flytekit plugin: entry points, factories with flytekit's own PlatformConfig, session reuse, and
compatibility with flytekit's AuthUnaryInterceptor (exercised without a network)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import keyring
import keyring.errors
import pytest
from rig.memory_keyring import MemoryKeyring

from flyteauth_jupyter import flytekit_plugin, sessions
from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.flytekit_plugin import (
    ENTRY_POINTS,
    FlytekitConfigStore,
    as_flytekit_authenticator,
    choose_flow,
    verify_from,
)
from flyteauth_jupyter.sessions import forget_session, get_session, register_session

flytekit_auth = pytest.importorskip("flytekit.clients.auth.authenticator")
auth_helper = pytest.importorskip("flytekit.clients.auth_helper")
from flytekit.configuration import PlatformConfig  # noqa: E402

AT = "at-plugin-0123456789-secret"
RT = "rt-plugin-0123456789-secret"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    previous = keyring.get_keyring()
    fake = MemoryKeyring()
    keyring.set_keyring(fake)
    before = sessions.sessions()
    try:
        yield fake
    finally:
        keyring.set_keyring(previous)
        for name in set(sessions.sessions()) - set(before):
            forget_session(name)
        sessions.set_observer_factory(None)


def flytekit_client_config(**kw):
    values = dict(
        token_endpoint="http://127.0.0.1:9/token",
        authorization_endpoint="http://127.0.0.1:9/auth",
        redirect_uri="http://localhost:53593/callback",
        client_id="flytectl",
        device_authorization_endpoint="http://127.0.0.1:9/device",
        scopes=["openid", "offline_access"],
        header_key="flyte-authorization",
        audience="",
    )
    values.update(kw)
    return flytekit_auth.ClientConfig(**values)


class FakeSession:
    """What the notebook layer registers: an authenticator-shaped object."""

    def __init__(self) -> None:
        self.refreshes = 0
        self.creds = Credentials(AT, RT, "localhost:30080")

    def get_credentials(self):
        return self.creds

    def refresh_credentials(self):
        self.refreshes += 1
        self.creds = Credentials(f"{AT}-{self.refreshes}", RT, "localhost:30080")

    def fetch_grpc_call_auth_metadata(self):
        return ("flyte-authorization", f"Bearer {self.creds.access_token}")

    def logout(self):
        return "logged out"

    def __repr__(self):
        return "FakeSession()"


# -- entry points and registration --------------------------------------------------------------------


def test_entry_points_resolve_to_the_factories():
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group="flytekit.auth")}
    for name, attr in ENTRY_POINTS.items():
        assert name in found, f"entry point {name} is not installed"
        assert found[name].load() is getattr(flytekit_plugin, attr)


def test_register_with_flytekit_fills_its_registry(monkeypatch):
    registry = dict(auth_helper._authenticator_registry)
    monkeypatch.setattr(auth_helper, "_authenticator_registry", registry)
    assert flytekit_plugin.register_with_flytekit() is True
    for name, attr in ENTRY_POINTS.items():
        assert registry[name] is getattr(flytekit_plugin, attr)


def test_importing_the_plugin_does_not_import_flytekit():
    code = (
        "import sys, flyteauth_jupyter.flytekit_plugin, flyteauth_jupyter.sessions;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('flytekit','grpc','ipywidgets','jupyter_server')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- session reuse ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth_mode", ["notebook", "notebook_device", "NOTEBOOK_PKCE"])
def test_flytekit_reuses_the_registered_notebook_session(auth_mode):
    session = FakeSession()
    register_session("http://localhost:30080", session)
    cfg = PlatformConfig(endpoint="localhost:30080", insecure=True, auth_mode=auth_mode)

    auth = auth_helper.get_authenticator(cfg, flytekit_auth.StaticClientConfigStore(flytekit_client_config()))

    assert isinstance(auth, flytekit_auth.Authenticator)
    assert auth.inner is session
    assert auth.get_credentials().access_token == AT
    assert auth.fetch_grpc_call_auth_metadata() == ("flyte-authorization", f"Bearer {AT}")
    auth.refresh_credentials()
    assert session.refreshes == 1
    assert auth.logout() == "logged out"  # extras reach the session
    assert AT not in repr(auth)


def test_interceptor_adds_metadata_and_refreshes_once_on_unauthenticated():
    grpc = pytest.importorskip("grpc")
    from flytekit.clients.grpc_utils.auth_interceptor import AuthUnaryInterceptor

    session = FakeSession()
    register_session("localhost:30080", session)
    cfg = PlatformConfig(endpoint="localhost:30080", insecure=True, auth_mode="notebook")
    interceptor = AuthUnaryInterceptor(
        lambda: auth_helper.get_authenticator(cfg, flytekit_auth.StaticClientConfigStore(flytekit_client_config()))
    )

    class Unauthenticated(Exception):
        def code(self):
            return grpc.StatusCode.UNAUTHENTICATED

    class Done:
        def __init__(self, exc=None):
            self._exc = exc

        def exception(self):
            return self._exc

    seen = []

    def continuation(details, request):
        seen.append(dict(details.metadata))
        return Done(Unauthenticated() if len(seen) == 1 else None)

    from flytekit.clients.grpc_utils.auth_interceptor import _ClientCallDetails

    details = _ClientCallDetails("/flyteidl.service.AdminService/ListProjects", None, [("x", "y")], None)
    result = interceptor.intercept_unary_unary(continuation, details, object())

    assert result.exception() is None
    assert seen[0] == {"x": "y", "flyte-authorization": f"Bearer {AT}"}  # the first call already carries it
    assert seen[1]["flyte-authorization"] == f"Bearer {AT}-1"
    assert session.refreshes == 1


def test_session_lookup_tolerates_spellings():
    session = FakeSession()
    register_session("https://Flyte.Example.com", session)
    assert get_session("flyte.example.com:443") is session
    assert get_session("dns:///flyte.example.com") is session
    assert get_session("flyte.example.com:8443") is None
    assert forget_session("flyte.example.com:443", authenticator=object()) is None
    assert forget_session("flyte.example.com") is session
    assert get_session("flyte.example.com") is None


def test_adapter_wraps_once():
    wrapped = as_flytekit_authenticator(FakeSession())
    assert as_flytekit_authenticator(wrapped) is wrapped
    assert isinstance(wrapped, flytekit_auth.Authenticator)


# -- building our authenticators from a PlatformConfig ------------------------------------------------------


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({}, None),
        ({"insecure_skip_verify": True, "ca_cert_file_path": "/ca.pem"}, False),
        ({"ca_cert_file_path": "/ca.pem"}, "/ca.pem"),
    ],
)
def test_verify_follows_flytekit(fields, expected):
    assert verify_from(PlatformConfig(**fields)) == expected


def test_config_store_normalises_flytekits_client_config():
    calls = []

    class CountingStore(flytekit_auth.ClientConfigStore):
        def get_client_config(self):
            calls.append(1)
            return flytekit_client_config(device_authorization_endpoint="", header_key=None, scopes=("openid",))

    store = FlytekitConfigStore(CountingStore())
    config = store.get_client_config()
    store.get_client_config()
    assert len(calls) == 1  # flytekit's remote store costs 2 RPCs per call; we ask once
    assert config.device_authorization_endpoint is None
    assert config.audience is None
    assert config.scopes == ["openid"]
    assert config.client_id == "flytectl"


def test_choose_flow(monkeypatch):
    store = FlytekitConfigStore(flytekit_auth.StaticClientConfigStore(flytekit_client_config()))
    monkeypatch.setattr(flytekit_plugin, "running_remotely", lambda: False)
    assert choose_flow(store) == "pkce"
    monkeypatch.setattr(flytekit_plugin, "running_remotely", lambda: True)
    assert choose_flow(store) == "device"
    no_device = FlytekitConfigStore(
        flytekit_auth.StaticClientConfigStore(flytekit_client_config(device_authorization_endpoint=""))
    )
    assert choose_flow(no_device) == "pkce"


@pytest.fixture
def authenticators():
    return pytest.importorskip("flyteauth_jupyter.authenticators")


@pytest.mark.parametrize("auth_mode, cls", [("notebook_device", "DeviceCodeAuthenticator"), ("notebook_pkce", "PKCEAuthenticator")])
def test_factory_builds_ours_from_a_real_platform_config(authenticators, isolated, auth_mode, cls):
    isolated.entries[("localhost:30080", "access_token")] = AT  # a token flytekit or we saved earlier
    isolated.entries[("localhost:30080", "refresh_token")] = RT
    cfg = PlatformConfig(
        endpoint="localhost:30080",
        insecure=True,
        insecure_skip_verify=True,
        scopes=["openid", "offline_access"],
        audience="flyte",
        client_id="notebook-client",
        auth_mode=auth_mode,
    )

    auth = auth_helper.get_authenticator(cfg, flytekit_auth.StaticClientConfigStore(flytekit_client_config()))

    assert isinstance(auth, flytekit_auth.Authenticator)
    assert type(auth.inner) is getattr(authenticators, cls)
    assert auth.get_credentials().access_token == AT
    key, value = auth.fetch_grpc_call_auth_metadata()
    assert value == f"Bearer {AT}"
    assert AT not in repr(auth) and RT not in repr(auth)


def test_notebook_mode_without_token_returns_none_credentials(authenticators, monkeypatch):
    monkeypatch.setattr(flytekit_plugin, "running_remotely", lambda: False)
    cfg = PlatformConfig(endpoint="localhost:30080", insecure=True, auth_mode="notebook")
    auth = auth_helper.get_authenticator(cfg, flytekit_auth.StaticClientConfigStore(flytekit_client_config()))
    assert type(auth.inner).__name__ == "PKCEAuthenticator"
    assert auth.get_credentials() is None
    assert auth.fetch_grpc_call_auth_metadata() is None


def test_observer_factory_reaches_built_authenticators(authenticators, monkeypatch):
    seen: list[str] = []

    def factory(service):
        seen.append(service)
        return lambda event: None

    sessions.set_observer_factory(factory)
    cfg = PlatformConfig(endpoint="localhost:30080", insecure=True, auth_mode="notebook_pkce")
    auth_helper.get_authenticator(cfg, flytekit_auth.StaticClientConfigStore(flytekit_client_config()))
    assert seen == ["localhost:30080"]

    sessions.set_observer_factory(lambda service: 1 / 0)  # a broken UI never breaks authentication
    auth_helper.get_authenticator(cfg, flytekit_auth.StaticClientConfigStore(flytekit_client_config()))


class _Refreshable:
    def __init__(self, creds=None, interactive_refresh=None, bare=False):
        self.creds = creds
        self.calls: list[object] = []
        if interactive_refresh is not None:
            self.interactive_refresh = interactive_refresh
        if bare:
            self.refresh_credentials = self._bare

    def get_credentials(self):
        return self.creds

    def refresh_credentials(self, *, interactive=True):
        self.calls.append(interactive)

    def _bare(self):
        self.calls.append("bare")


@pytest.mark.parametrize("auth, expected", [
    (_Refreshable(Credentials("a"), interactive_refresh=False), [False]),  # the session, by default
    (_Refreshable(Credentials("a"), interactive_refresh=True), [True]),  # the session, when allowed
    (_Refreshable(None), [True]),  # a plug-in-built authenticator's first sign-in
    (_Refreshable(Credentials("a")), [False]),  # ... but not a hidden one later
    (_Refreshable(Credentials("a"), bare=True), ["bare"]),  # flytekit's bare signature
])
def test_flytekits_retry_refreshes_without_a_hidden_sign_in(auth, expected):
    flytekit_plugin.as_flytekit_authenticator(auth).refresh_credentials()
    assert auth.calls == expected


# -- the deployment's gRPC metadata, read by the same rules as its HTTP documents --------------------------

from flyteauth_jupyter.errors import ProtocolError  # noqa: E402

SECURE = dict(
    token_endpoint="https://idp.example.com/token",
    authorization_endpoint="https://idp.example.com/auth",
    device_authorization_endpoint="https://idp.example.com/device",
)


def normalised(where="flyte.example.com:443", insecure=False, **fields):
    raw = flytekit_client_config(**{**SECURE, **fields})
    return FlytekitConfigStore(flytekit_auth.StaticClientConfigStore(raw), where=where, insecure=insecure).get_client_config()


@pytest.mark.parametrize("field", ["token_endpoint", "authorization_endpoint", "device_authorization_endpoint"])
def test_plain_http_endpoint_from_flytekits_store_is_refused_naming_the_hosts(field):
    with pytest.raises(ProtocolError) as caught:
        normalised(**{field: "http://idp.example.com/x"})
    message = str(caught.value)
    assert "flyte.example.com:443" in message and "idp.example.com" in message
    assert field.replace("_", " ") in message and "plain-HTTP" in message
    assert len(message) <= 500


def test_userinfo_in_an_advertised_endpoint_is_refused_without_echoing_it():
    with pytest.raises(ProtocolError) as caught:
        normalised(token_endpoint="https://admin:hunter2-pw@idp.example.com/token")
    shown = str(caught.value) + repr(caught.value.args)
    assert "flyte.example.com:443" in shown
    assert "hunter2" not in shown and "admin" not in shown


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/token", "http://localhost:8080/token", "http://[::1]:9/token"])
def test_a_loopback_http_endpoint_is_accepted(url):
    assert normalised(token_endpoint=url).token_endpoint == url


def test_insecure_accepts_plain_http_endpoints():
    config = normalised(insecure=True, token_endpoint="http://idp.example.com/token")
    assert config.token_endpoint == "http://idp.example.com/token"


def test_the_redirect_uri_is_ours_and_not_checked_as_a_server_endpoint():
    # as in config_from_documents: the redirect URI names our loopback receiver or the Jupyter relay
    relay = "http://jupyter.example.com/user/ann/flyteauth/callback"
    assert normalised(redirect_uri=relay).redirect_uri == relay


@pytest.mark.parametrize("value", ["", "   ", None, 123, ["https://idp.example.com/token"]])
def test_a_missing_or_non_string_token_endpoint_is_a_protocol_error(value):
    with pytest.raises(ProtocolError, match="flyte.example.com:443 does not advertise a token endpoint"):
        normalised(token_endpoint=value)


def test_a_store_answering_something_else_entirely_is_a_protocol_error():
    class OddStore:
        def get_client_config(self):
            return object()

    with pytest.raises(ProtocolError, match="deploy.example.com:8443"):
        FlytekitConfigStore(OddStore(), where="deploy.example.com:8443").get_client_config()


def test_a_failing_flytekit_store_is_a_transport_error_naming_the_deployment():
    """flytekit's store reads the config over gRPC; its failure reaches the user as our one sentence."""
    from flyteauth_jupyter.errors import TransportError

    class DownStore:
        calls = 0

        def get_client_config(self):
            DownStore.calls += 1
            raise RuntimeError("StatusCode.UNAVAILABLE: failed to connect to all addresses; token=secret-in-text")

    store = FlytekitConfigStore(DownStore(), where="deploy.example.com:8443")
    with pytest.raises(TransportError, match="deploy.example.com:8443") as caught:
        store.get_client_config()
    assert "UNAVAILABLE" in str(caught.value) and len(str(caught.value)) <= 500
    with pytest.raises(TransportError):
        store.get_client_config()  # not cached: the next call asks again
    assert DownStore.calls == 2


@pytest.mark.parametrize(
    "fields, read",
    [
        ({"scopes": 5}, {"scopes": None}),
        ({"scopes": object()}, {"scopes": None}),
        ({"scopes": ["openid", 5, None, " "]}, {"scopes": ["openid"]}),
        ({"scopes": "openid offline_access"}, {"scopes": ["openid", "offline_access"]}),
        ({"redirect_uri": 53593, "client_id": b"flytectl"}, {"redirect_uri": None, "client_id": None}),
        ({"header_key": 7, "audience": ["flyte"]}, {"header_key": "authorization", "audience": None}),
        ({"device_authorization_endpoint": 123, "authorization_endpoint": 1.5},
         {"device_authorization_endpoint": None, "authorization_endpoint": None}),
    ],
)
def test_hostile_types_read_as_absent_as_in_the_http_documents(fields, read):
    config = normalised(**fields)
    for name, expected in read.items():
        assert getattr(config, name) == expected, name


def test_protobuf_repeated_scopes_become_a_list():
    auth_pb2 = pytest.importorskip("flyteidl.service.auth_pb2")
    scopes = auth_pb2.PublicClientAuthConfigResponse(scopes=["openid", "offline_access"]).scopes
    assert normalised(scopes=scopes).scopes == ["openid", "offline_access"]


def test_factory_names_the_deployment_and_follows_its_insecure_setting(authenticators):
    plain = flytekit_client_config(token_endpoint="http://idp.example.com/token")
    cfg = PlatformConfig(endpoint="dns:///flyte.example.com:443", auth_mode="notebook_pkce")
    auth = auth_helper.get_authenticator(cfg, flytekit_auth.StaticClientConfigStore(plain))
    with pytest.raises(ProtocolError, match=r"^flyte\.example\.com:443 advertises a plain-HTTP token endpoint"):
        auth.inner.redirect_uri  # noqa: B018 - reading it fetches the configuration

    cfg = PlatformConfig(endpoint="flyte.example.com:80", insecure=True, auth_mode="notebook_pkce")
    auth = auth_helper.get_authenticator(cfg, flytekit_auth.StaticClientConfigStore(plain))
    assert auth.inner.redirect_uri == "http://localhost:53593/callback"


def test_an_unknown_flow_name_is_our_configuration_error():
    """Issue 19.5: one sentence as our ConfigurationError (a FlyteAuthError), not a bare ValueError."""
    from flyteauth_jupyter.errors import ConfigurationError

    cfg = PlatformConfig(endpoint="localhost:30080", insecure=True)
    with pytest.raises(ConfigurationError, match="Unknown notebook flow 'magic'"):
        flytekit_plugin.build_authenticator(cfg, None, "magic")


def test_the_proxy_command_goes_to_the_deployment_only(authenticators):
    """PlatformConfig.proxy_command (issue 18.6): one ProxyAuth for the endpoint, on our transport and for
    BearerAuth / gRPC; the identity provider's origin never gets it (flytekit's own session sends it there)."""
    from flyteauth_jupyter.clients import proxy_auth_of
    from flyteauth_jupyter.proxy import ProxyAuth

    cfg = PlatformConfig(endpoint="localhost:30080", insecure=True, auth_mode="notebook_device",
                         proxy_command=["iap-helper", "--audience", "x"])
    store = flytekit_auth.StaticClientConfigStore(flytekit_client_config())
    auth = flytekit_plugin.build_authenticator(cfg, store, "device")
    proxy = auth.proxy_auth
    assert isinstance(proxy, ProxyAuth) and proxy.credential.argv == ("iap-helper", "--audience", "x")
    assert auth._transport.proxy_auth is proxy and proxy_auth_of(flytekit_plugin.as_flytekit_authenticator(auth)) is proxy
    assert proxy.allows("http://localhost:30080/api/v1/projects")
    assert not proxy.allows(auth._config().token_endpoint)
