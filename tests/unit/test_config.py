"""ClientConfig and the config stores: casings, empty strings, issuer fallback and its RFC 8414 check, caching."""

from __future__ import annotations

import inspect
import threading

import pytest
import requests

from flyteauth_jupyter.config import (
    ClientConfig,
    IssuerClientConfigStore,
    RemoteClientConfigStore,
    StaticClientConfigStore,
    config_from_documents,
)
from flyteauth_jupyter.errors import ConfigurationError, ProtocolError
from flyteauth_jupyter.transport.http import Transport
from flow_fakes import FakeTransport, ok

ADMIN = "http://127.0.0.1:30080"
ISSUER = "http://127.0.0.1:9000"

CLIENT_SNAKE = {"client_id": "flytectl", "redirect_uri": "http://localhost:53593/callback", "scopes": ["all", "offline", ""],
                "authorization_metadata_key": "flyte-authorization", "service_http_endpoint": "", "audience": ""}
META_SNAKE = {"issuer": ISSUER, "authorization_endpoint": ISSUER + "/auth", "token_endpoint": ISSUER + "/token",
              "device_authorization_endpoint": "", "jwks_uri": ISSUER + "/jwks"}


def camelise(doc):
    from flyteauth_jupyter.config import camel

    return {camel(k): v for k, v in doc.items()}


def test_client_config_fields_and_defaults_match_flytekit() -> None:
    params = list(inspect.signature(ClientConfig).parameters.values())
    assert [p.name for p in params][:8] == ["token_endpoint", "authorization_endpoint", "redirect_uri", "client_id",
                                            "device_authorization_endpoint", "scopes", "header_key", "audience"]
    defaults = {p.name: p.default for p in params}
    assert defaults["device_authorization_endpoint"] is None and defaults["scopes"] is None
    assert defaults["header_key"] == "authorization" and defaults["audience"] is None
    assert defaults["revocation_endpoint"] is None and defaults["issuer"] is None
    cfg = ClientConfig("t", "a", "r", "c")
    assert StaticClientConfigStore(cfg).get_client_config() is cfg


@pytest.mark.parametrize("casing", [lambda d: d, camelise])
def test_documents_in_both_casings(casing) -> None:
    cfg = config_from_documents(casing(CLIENT_SNAKE), casing(META_SNAKE))
    assert cfg.client_id == "flytectl" and cfg.redirect_uri == "http://localhost:53593/callback"
    assert cfg.scopes == ["all", "offline"]
    assert cfg.header_key == "flyte-authorization"
    assert cfg.token_endpoint == ISSUER + "/token" and cfg.authorization_endpoint == ISSUER + "/auth"
    assert cfg.audience is None  # "" means absent (pinned 11)
    assert cfg.device_authorization_endpoint is None
    assert cfg.issuer == ISSUER


def test_empty_header_key_falls_back_to_authorization() -> None:
    cfg = config_from_documents({**CLIENT_SNAKE, "authorization_metadata_key": ""}, META_SNAKE)
    assert cfg.header_key == "authorization"


def test_missing_token_endpoint_is_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="token endpoint"):
        config_from_documents(CLIENT_SNAKE, {"issuer": ISSUER, "token_endpoint": ""}, where="h:1")


def remote(gets, **kw):
    transport = FakeTransport(gets=gets)
    RemoteClientConfigStore.clear_cache()
    return RemoteClientConfigStore(ADMIN, transport=transport, **kw), transport


def test_remote_store_fills_missing_fields_from_the_issuer() -> None:
    oidc = {"issuer": ISSUER, "revocation_endpoint": ISSUER + "/revoke", "device_authorization_endpoint": ISSUER + "/device",
            "token_endpoint": ISSUER + "/OTHER"}
    store, t = remote({
        ADMIN + "/config/v1/flyte_client": ok(CLIENT_SNAKE),
        ADMIN + "/.well-known/oauth-authorization-server": ok(META_SNAKE),
        ISSUER + "/.well-known/openid-configuration": ok(oidc),
    })
    cfg = store.get_client_config()
    assert cfg.revocation_endpoint == ISSUER + "/revoke"
    assert cfg.device_authorization_endpoint == ISSUER + "/device"
    assert cfg.token_endpoint == ISSUER + "/token"  # FlyteAdmin's relayed document wins (pinned 12)


def test_issuer_document_with_another_issuer_is_not_used() -> None:
    oidc = {"issuer": "http://evil.example", "revocation_endpoint": "http://evil.example/revoke"}
    store, _ = remote({
        ADMIN + "/config/v1/flyte_client": ok(CLIENT_SNAKE),
        ADMIN + "/.well-known/oauth-authorization-server": ok(META_SNAKE),
        ISSUER + "/.well-known/openid-configuration": ok(oidc),
    })
    cfg = store.get_client_config()
    assert cfg.revocation_endpoint is None and cfg.token_endpoint == ISSUER + "/token"


def test_issuer_document_failure_is_tolerated() -> None:
    store, _ = remote({
        ADMIN + "/config/v1/flyte_client": ok(CLIENT_SNAKE),
        ADMIN + "/.well-known/oauth-authorization-server": ok(META_SNAKE),
        ISSUER + "/.well-known/openid-configuration": ProtocolError("html", status=404),
    })
    assert store.get_client_config().token_endpoint == ISSUER + "/token"


def test_flyteadmin_relayed_issuer_is_taken_as_served() -> None:
    # FlyteAdmin's own document names an issuer that differs from its host: still used (pinned 12)
    meta = {**META_SNAKE, "issuer": "https://login.corp.example", "revocation_endpoint": ISSUER + "/r",
            "device_authorization_endpoint": ISSUER + "/d"}
    store, t = remote({ADMIN + "/config/v1/flyte_client": ok(CLIENT_SNAKE),
                       ADMIN + "/.well-known/oauth-authorization-server": ok(meta)})
    cfg = store.get_client_config()
    assert cfg.issuer == "https://login.corp.example" and len(t.get_calls) == 2


def test_auth_disabled_deployment_gives_clear_error() -> None:
    store, _ = remote({ADMIN + "/config/v1/flyte_client": ok({"code": 12, "message": "Not Implemented"}, status=501, where="127.0.0.1:30080")})
    with pytest.raises(ProtocolError) as info:
        store.get_client_config()
    assert "501" in str(info.value) and "127.0.0.1:30080" in str(info.value) and "disabled" in str(info.value)


def test_remote_store_is_cached_and_single_flight_across_threads() -> None:
    barrier = threading.Barrier(8)

    def slow_client(url):
        return ok(CLIENT_SNAKE)

    meta = {**META_SNAKE, "revocation_endpoint": ISSUER + "/r", "device_authorization_endpoint": ISSUER + "/d"}
    store, t = remote({ADMIN + "/config/v1/flyte_client": slow_client,
                       ADMIN + "/.well-known/oauth-authorization-server": ok(meta)})
    results = []

    def worker():
        barrier.wait(5)
        results.append(store.get_client_config())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert len(results) == 8 and all(r is results[0] for r in results)
    assert len(t.get_calls) == 2
    # another store object for the same endpoint (and HTTP settings) shares the cache
    other = RemoteClientConfigStore(ADMIN, transport=t)
    assert other.get_client_config() is results[0] and len(t.get_calls) == 2
    RemoteClientConfigStore.clear_cache()


@pytest.mark.parametrize("make", [lambda **kw: RemoteClientConfigStore(ADMIN, **kw),
                                  lambda **kw: IssuerClientConfigStore(ISSUER, "jupyter-native", **kw)],
                         ids=["remote", "issuer"])
def test_a_stores_proxy_auth_goes_to_its_transport_or_must_be_the_transports_own(make) -> None:
    proxy, other = requests.auth.HTTPBasicAuth("p", "q"), requests.auth.HTTPBasicAuth("p", "q")
    assert make(proxy_auth=proxy)._transport.proxy_auth is proxy  # a new transport carries it
    given = Transport(proxy_auth=proxy)
    assert make(transport=given, proxy_auth=proxy)._transport is given
    assert make(transport=given)._transport is given
    with pytest.raises(ConfigurationError, match="not beside it"):
        make(transport=given, proxy_auth=other)
