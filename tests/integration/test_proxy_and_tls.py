"""Proxy and TLS support with real parts: a forward proxy, a throwaway CA, an HTTPS front for FlyteAdmin.

Everything runs on 127.0.0.1 (tests/rig/netparts.py). The proxy forwards absolute-URI requests and
CONNECT tunnels only to 127.0.0.1 and counts them per target host:port; the HTTPS front serves the
FlyteAdmin stand-in's documents (pointing at the real IdP) with a certificate from a CA made per
module. Waits are on events and futures with bounded timeouts.

requests and NO_PROXY: requests consults NO_PROXY / no_proxy (``should_bypass_proxies``) only for
proxies it takes from the environment (``get_environ_proxies`` / ``resolve_proxies``); an explicit
``proxies=`` argument, which our Transport passes on every call, always wins. The proxy tests run both
with NO_PROXY removed and with ``NO_PROXY=127.0.0.1,localhost`` to pin that down.
"""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from urllib3.exceptions import InsecureRequestWarning

from flyteauth_jupyter import ClientCredentialsAuthenticator, DeviceCodeAuthenticator, RemoteClientConfigStore
from flyteauth_jupyter.errors import TransportError
from flyteauth_jupyter.flows.events import DeviceCodeIssued
from flyteauth_jupyter.stores import MemoryStore
from rig.netparts import ForwardProxy, TLSFront, TLSMaterial, free_port, make_tls_material

pytestmark = pytest.mark.idp

CONFIDENTIAL = ("jupyter-confidential", "confidential-secret")
METADATA_PATHS = ("/config/v1/flyte_client", "/.well-known/oauth-authorization-server")
PROXY_ENV = ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


# ------------------------------------------------------------------------------------ helpers
def loopback_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def call_api(url: str, metadata: tuple[str, str] | None, **kwargs: Any) -> int:
    assert metadata is not None
    with loopback_session() as s:
        return s.get(url, headers=dict([metadata]), timeout=10, **kwargs).status_code


def assert_one_sentence(text: str, *must: str) -> None:
    """Pinned 7 / 'Bad input gets one clear sentence': short, one line, no traceback or ssl internals."""
    assert len(text) <= 500, text
    assert "\n" not in text and "Traceback" not in text, text
    for internal in ("_ssl.c", "[SSL", "MaxRetryError", "HTTPConnectionPool", "HTTPSConnectionPool", "Errno"):
        assert internal not in text, text
    for word in must:
        assert word in text, text


def metadata_hits(admin: Any) -> int:
    return sum(admin.requests[p] for p in METADATA_PATHS)


class DeviceUserOnIssue:
    """Observer: when the flow announces its code, the rig's device user approves it (in a thread)."""

    def __init__(self, device_user: Any) -> None:
        self.device_user = device_user
        self.issued = threading.Event()
        self.user: Any = None  # Future of the user's run

    def __call__(self, event: Any) -> None:
        if isinstance(event, DeviceCodeIssued) and not self.issued.is_set():
            self.issued.set()
            self.user = self.device_user.complete_in_thread(
                event.verification_uri, event.user_code,
                verification_uri_complete=event.verification_uri_complete,
            )


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    RemoteClientConfigStore.clear_cache()
    return monkeypatch


@pytest.fixture
def proxy(clean_proxy_env: pytest.MonkeyPatch) -> Iterator[ForwardProxy]:
    with ForwardProxy() as running:
        yield running


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_front(flyteadmin: Any, tls_material: TLSMaterial) -> Iterator[TLSFront]:
    """FlyteAdmin's documents (and its protected API) over HTTPS, relayed from the stand-in."""
    with TLSFront(flyteadmin.endpoint, tls_material) as front:
        yield front


@pytest.fixture
def no_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Default verification must mean the default trust store, not a bundle from the environment."""
    for name in CA_ENV + PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    RemoteClientConfigStore.clear_cache()


# --------------------------------------------------------------------------------- the proxy rig
def test_rig_proxy_refuses_targets_other_than_loopback(proxy: ForwardProxy) -> None:
    with requests.Session() as s:
        s.trust_env = False
        r = s.get("http://flyte.example.invalid/config", proxies={"http": proxy.url}, timeout=10)
    assert r.status_code == 403
    assert proxy.refused == ["flyte.example.invalid:80"] and not proxy.requests


# --------------------------------------------------------------------------------- through the proxy
@pytest.mark.parametrize("no_proxy", [None, "127.0.0.1,localhost"], ids=["no-NO_PROXY", "NO_PROXY-loopback"])
def test_device_login_goes_through_the_proxy(
    flyteadmin: Any, idp: Any, device_user: Any, proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch,
    no_proxy: str | None,
) -> None:
    if no_proxy:  # an explicitly configured proxy must win over NO_PROXY (requests: explicit proxies= win)
        clean_proxy_env.setenv("NO_PROXY", no_proxy)
        clean_proxy_env.setenv("no_proxy", no_proxy)
    admin_target, idp_target = flyteadmin.service, f"127.0.0.1:{idp.port}"
    before = metadata_hits(flyteadmin)
    user = DeviceUserOnIssue(device_user)
    auth = DeviceCodeAuthenticator(
        flyteadmin.endpoint, None, http_proxy_url=proxy.url, store=MemoryStore(), timeout=60, observer=user,
    )
    creds = auth.refresh_credentials()

    assert user.issued.is_set() and user.user.result(timeout=30)["status"] == "approved"
    assert creds.access_token and creds.refresh_token and creds.subject == "alice"
    # every metadata GET the stand-in saw came through the proxy, and the IdP's POSTs did too
    assert proxy.methods[("GET", admin_target)] == metadata_hits(flyteadmin) - before >= 2
    assert proxy.methods[("POST", idp_target)] >= 2  # device authorization + at least one token poll
    assert set(proxy.requests) <= {admin_target, idp_target} and not proxy.refused
    # the token is good: the protected API accepts it (called directly, not through the proxy)
    assert call_api(flyteadmin.url("/api/v1/projects"), auth.fetch_grpc_call_auth_metadata()) == 200


@pytest.mark.parametrize("no_proxy", [None, "127.0.0.1,localhost"], ids=["no-NO_PROXY", "NO_PROXY-loopback"])
def test_client_credentials_login_goes_through_the_proxy(
    flyteadmin: Any, idp: Any, proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch, no_proxy: str | None,
) -> None:
    if no_proxy:
        clean_proxy_env.setenv("NO_PROXY", no_proxy)
        clean_proxy_env.setenv("no_proxy", no_proxy)
    admin_target, idp_target = flyteadmin.service, f"127.0.0.1:{idp.port}"
    before = metadata_hits(flyteadmin)
    auth = ClientCredentialsAuthenticator(
        flyteadmin.endpoint, *CONFIDENTIAL, None, scopes=["api:read"], http_proxy_url=proxy.url, timeout=30,
    )
    creds = auth.refresh_credentials()

    assert creds.access_token and creds.expires_at
    assert proxy.methods[("GET", admin_target)] == metadata_hits(flyteadmin) - before >= 2
    assert proxy.methods[("POST", idp_target)] == 1  # the one token request, never re-sent
    assert not proxy.refused
    assert call_api(flyteadmin.url("/api/v1/projects"), auth.fetch_grpc_call_auth_metadata()) == 200


def test_proxy_that_is_down_gives_one_sentence_naming_it(flyteadmin: Any, clean_proxy_env: pytest.MonkeyPatch) -> None:
    dead = f"127.0.0.1:{free_port()}"
    auth = ClientCredentialsAuthenticator(
        flyteadmin.endpoint, *CONFIDENTIAL, None, http_proxy_url=f"http://{dead}", timeout=30,
    )
    with pytest.raises(TransportError) as info:
        auth.refresh_credentials()
    text = str(info.value)
    assert_one_sentence(text, dead, flyteadmin.service, "proxy")
    assert CONFIDENTIAL[1] not in text


def test_https_metadata_through_the_proxy_tunnel(
    proxy: ForwardProxy, tls_front: TLSFront, tls_material: TLSMaterial, idp: Any,
) -> None:
    """CONNECT: TLS end to end through the proxy, verified against our CA."""
    store = RemoteClientConfigStore(tls_front.endpoint, verify=str(tls_material.ca_cert), http_proxy_url=proxy.url)
    assert store.get_client_config().token_endpoint == idp.token_endpoint
    assert proxy.methods[("CONNECT", tls_front.service)] >= 1


# --------------------------------------------------------------------------------------- TLS
def test_https_metadata_with_our_ca(tls_front: TLSFront, tls_material: TLSMaterial, idp: Any, no_ca_env: None) -> None:
    before = sum(tls_front.requests[p] for p in METADATA_PATHS)
    cfg = RemoteClientConfigStore(tls_front.endpoint, verify=str(tls_material.ca_cert)).get_client_config()
    assert cfg.token_endpoint == idp.token_endpoint
    assert cfg.device_authorization_endpoint == idp.device_authorization_endpoint
    assert cfg.client_id == "jupyter-native" and cfg.header_key == "flyte-authorization"
    assert sum(tls_front.requests[p] for p in METADATA_PATHS) - before == 2  # really served over TLS


@pytest.mark.parametrize("verify", [None, True], ids=["default", "verify-True"])
def test_untrusted_certificate_gives_one_clear_sentence(
    tls_front: TLSFront, no_ca_env: None, verify: bool | None,
) -> None:
    handshakes_before = len(tls_front.handshake_errors)
    store = RemoteClientConfigStore(tls_front.endpoint, verify=verify)
    with pytest.raises(TransportError) as info:
        store.get_client_config()
    assert_one_sentence(str(info.value), "could not be verified", tls_front.service, "--ca-cert", "trust store")
    # the client really refused our certificate (the server records the failed handshake in its own
    # thread, possibly just after the client gave up: wait for it, bounded)
    deadline = time.monotonic() + 5
    while len(tls_front.handshake_errors) <= handshakes_before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(tls_front.handshake_errors) > handshakes_before


def test_certificate_from_another_ca_is_refused(tls_front: TLSFront, tmp_path: Path, no_ca_env: None) -> None:
    other = make_tls_material(tmp_path / "other")
    with pytest.raises(TransportError) as info:
        RemoteClientConfigStore(tls_front.endpoint, verify=str(other.ca_cert)).get_client_config()
    assert_one_sentence(str(info.value), "could not be verified", tls_front.service)


def test_verify_false_skips_the_check(tls_front: TLSFront, idp: Any, no_ca_env: None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureRequestWarning)
        cfg = RemoteClientConfigStore(tls_front.endpoint, verify=False).get_client_config()
    assert cfg.token_endpoint == idp.token_endpoint


def test_host_port_without_scheme_means_https(
    tls_front: TLSFront, tls_material: TLSMaterial, flyteadmin: Any, idp: Any, no_ca_env: None,
) -> None:
    """Pinned 1: ``host:port`` is HTTPS unless insecure=True, which means plain HTTP."""
    store = RemoteClientConfigStore(tls_front.service, verify=str(tls_material.ca_cert))
    assert store.endpoint == tls_front.endpoint
    assert store.get_client_config().token_endpoint == idp.token_endpoint

    plain = RemoteClientConfigStore(flyteadmin.service, insecure=True)
    assert plain.endpoint == flyteadmin.endpoint
    assert plain.get_client_config().token_endpoint == idp.token_endpoint

    # host:port of a plain-HTTP server without insecure=True: HTTPS is tried and fails clearly
    with pytest.raises(TransportError) as info:
        RemoteClientConfigStore(flyteadmin.service).get_client_config()
    assert_one_sentence(str(info.value), flyteadmin.service, "HTTPS", "--insecure")


def test_client_credentials_login_with_https_metadata(
    tls_front: TLSFront, tls_material: TLSMaterial, flyteadmin: Any, idp: Any, no_ca_env: None,
) -> None:
    """Metadata over HTTPS (our CA), token from the real IdP over HTTP, then the API over HTTPS."""
    ca = str(tls_material.ca_cert)
    before = sum(tls_front.requests[p] for p in METADATA_PATHS)
    auth = ClientCredentialsAuthenticator(tls_front.endpoint, *CONFIDENTIAL, None, scopes=["api:read"], verify=ca,
                                          timeout=30)
    creds = auth.refresh_credentials()
    assert creds.access_token and creds.expires_at
    assert sum(tls_front.requests[p] for p in METADATA_PATHS) - before == 2
    metadata = auth.fetch_grpc_call_auth_metadata()
    assert metadata is not None and metadata[0] == "flyte-authorization"
    assert call_api(tls_front.endpoint + "/api/v1/projects", metadata, verify=ca) == 200
