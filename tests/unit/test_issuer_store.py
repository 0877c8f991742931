"""IssuerClientConfigStore against hostile or odd discovery documents, over real HTTP on 127.0.0.1.

The happy paths (Okta org and custom servers, Cognito, RFC 8414 path insertion) are rows of
test_dialects.py; the real provider is in tests/integration/test_issuer_store_against_idp.py.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from flyteauth_jupyter.config import IssuerClientConfigStore, discovery_urls
from flyteauth_jupyter.errors import ConfigurationError, ProtocolError, TransportTimeoutError
from flyteauth_jupyter.transport.http import build_session
from rig.dialects import Answer, Dialect, DialectServer


def store(issuer: str, **kw: Any) -> IssuerClientConfigStore:
    session = build_session()
    session.trust_env = False
    return IssuerClientConfigStore(issuer, "notebook-client", session=session, **kw)


def serving(doc: Any, *, path: str = "/.well-known/openid-configuration", status: int = 200, **answer: Any) -> Dialect:
    return Dialect(name="hostile", source="hostile input", documents={path: Answer(status, doc, **answer)})


def good(**over: Any) -> dict[str, Any]:
    doc = {"issuer": "{base}", "token_endpoint": "{base}/token", "authorization_endpoint": "{base}/authorize"}
    doc.update(over)
    return doc


def test_discovery_urls_follow_oidc_then_rfc8414_path_insertion() -> None:
    assert discovery_urls("https://idp.example") == [
        "https://idp.example/.well-known/openid-configuration",
        "https://idp.example/.well-known/oauth-authorization-server",
    ]
    assert discovery_urls("https://idp.example/oauth2/default/") == [
        "https://idp.example/oauth2/default/.well-known/openid-configuration",
        "https://idp.example/.well-known/oauth-authorization-server/oauth2/default",
    ]


@pytest.mark.parametrize("doc, sentence", [
    (good(issuer="https://evil.example"), "another issuer"),
    (good(issuer=None), "another issuer"),
    (good(issuer=["{base}"]), "another issuer"),
    (good(token_endpoint=None), "no token endpoint"),
    (good(token_endpoint="http://evil.example/token"), "plain-HTTP token endpoint"),
    (good(token_endpoint="javascript:alert(1)"), "not a usable http(s) URL"),
    (good(device_authorization_endpoint="https://user:pw@evil.example/device"), "not a usable http(s) URL"),
])
def test_hostile_documents_raise_one_protocol_error(doc: Any, sentence: str) -> None:
    with DialectServer(serving(doc)) as server:
        with pytest.raises(ProtocolError) as info:
            store(server.base).get_client_config()
    message = str(info.value)
    assert sentence in message and len(message) <= 500 and "pw@" not in message


@pytest.mark.parametrize("answer", [
    Answer(404, {"error": "not_found"}),
    Answer(200, "<html>login</html>", content_type="text/html"),
    Answer(200, "[1, 2, 3]", content_type="application/json"),
    Answer(503, "busy", content_type="text/plain"),
])
def test_no_document_names_host_port_and_statuses(answer: Answer) -> None:
    dialect = Dialect(name="none", source="hostile input",
                      documents={"/.well-known/openid-configuration": answer})
    with DialectServer(dialect) as server:
        with pytest.raises(ProtocolError) as info:
            store(server.base, deadline=5).get_client_config()
    assert f"127.0.0.1:{server.port}" in str(info.value) and "check the issuer URL" in str(info.value)


def test_rfc8414_document_is_used_when_there_is_no_openid_one() -> None:
    with DialectServer(serving(good(), path="/.well-known/oauth-authorization-server")) as server:
        cfg = store(server.base).get_client_config()
    assert cfg.token_endpoint == server.base + "/token" and cfg.issuer == server.base


@pytest.mark.parametrize("second_issuer, revocation", [("{base}", "{base}/revoke"), ("https://other.example", None)])
def test_endpoints_the_first_document_lacks_come_from_the_second(second_issuer: str, revocation: str | None) -> None:
    # django-oauth-toolkit: its OpenID document has no revocation endpoint, its RFC 8414 one has;
    # a second document naming another issuer lends nothing (RFC 8414 section 3.3)
    dialect = Dialect(name="two documents", source="django-oauth-toolkit 3.4 discovery", documents={
        "/.well-known/openid-configuration": Answer(200, good()),
        "/.well-known/oauth-authorization-server": Answer(200, good(
            issuer=second_issuer, revocation_endpoint="{base}/revoke", token_endpoint="{base}/elsewhere")),
    })
    with DialectServer(dialect) as server:
        cfg = store(server.base).get_client_config()
    assert cfg.token_endpoint == server.base + "/token"  # the first document's own endpoints stand
    assert cfg.revocation_endpoint == (revocation.format(base=server.base) if revocation else None)


def test_a_complete_first_document_is_the_only_request() -> None:
    doc = good(revocation_endpoint="{base}/revoke", device_authorization_endpoint="{base}/device")
    with DialectServer(serving(doc)) as server:
        store(server.base).get_client_config()
        assert [r.path for r in server.requests if r.method == "GET"] == ["/.well-known/openid-configuration"]


def test_overrides_win_and_results_are_cached() -> None:
    with DialectServer(serving(good(scopes_supported=["openid", "offline_access"], revocation_endpoint="{base}/r"))) as server:
        s = store(server.base + "/", device_authorization_endpoint="http://127.0.0.1:1/device",
                  scopes="openid api", audience="urn:api")
        cfg = s.get_client_config()
        assert s.get_client_config() is cfg
        gets = [r for r in server.requests if r.method == "GET"]
    assert len(gets) == 1
    assert cfg.device_authorization_endpoint == "http://127.0.0.1:1/device"
    assert cfg.scopes == ["openid", "api"] and cfg.audience == "urn:api" and cfg.client_id == "notebook-client"
    assert "notebook-client" in repr(s)


@pytest.mark.parametrize("issuer, insecure", [
    ("http://idp.example", False), ("https://idp.example/?a=b", False), ("", False), ("ftp://idp.example", True),
    ("https://user:secret@idp.example", False),
])
def test_bad_issuer_settings_are_configuration_errors(issuer: str, insecure: bool) -> None:
    with pytest.raises(ConfigurationError) as info:
        IssuerClientConfigStore(issuer, "client", insecure=insecure)
    assert "secret" not in str(info.value)


def test_a_client_id_is_required() -> None:
    with pytest.raises(ConfigurationError):
        IssuerClientConfigStore("https://idp.example", " ")


def test_a_server_that_never_answers_ends_at_the_one_deadline() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        with pytest.raises(TransportTimeoutError) as info:
            store(f"http://127.0.0.1:{port}", deadline=1.0, timeout=(1.0, 1.0)).get_client_config()
        assert f"127.0.0.1:{port}" in str(info.value)
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()
