"""transport.http: timeouts, retry policy, proxy/TLS pass-through and error translation (fake adapter)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from urllib3.exceptions import MaxRetryError

from flyteauth_jupyter.errors import (
    ConfigurationError,
    InvalidClientError,
    OAuthError,
    ProtocolError,
    TransportError,
    TransportTimeoutError,
)
from flyteauth_jupyter.transport.http import (
    DEFAULT_TIMEOUT,
    IdempotentRetry,
    Transport,
    build_session,
    default_retry,
    host_port,
)

SECRET = "CS-secret-000"


class FakeAdapter(BaseAdapter):
    """Records what requests would send and answers from a script (bodies or exceptions)."""

    def __init__(self, *answers: Any) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[tuple[requests.PreparedRequest, dict[str, Any]]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append((request, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        status, ctype, body = answer
        response = requests.Response()
        response.status_code = status
        response.headers["Content-Type"] = ctype
        response._content = body if isinstance(body, bytes) else body.encode()
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def transport_with(adapter: FakeAdapter, **kwargs: Any) -> Transport:
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return Transport(session, **kwargs)


def js(status: int, body: Any) -> tuple[int, str, str]:
    return status, "application/json; charset=utf-8", json.dumps(body)


def test_get_json_sends_accept_json_and_default_timeouts() -> None:
    adapter = FakeAdapter(js(200, {"a": 1}))
    response = transport_with(adapter).get_json("https://flyte.example.com/config/v1/flyte_client")
    assert response.ok and response.data == {"a": 1} and response.where == "flyte.example.com:443"
    request, kwargs = adapter.sent[0]
    assert request.headers["Accept"] == "application/json"
    timeout = kwargs["timeout"]
    assert DEFAULT_TIMEOUT == (10.0, 30.0) and (timeout.connect_timeout, timeout._read) == DEFAULT_TIMEOUT


def test_post_form_is_form_encoded_without_redirects_and_drops_none() -> None:
    adapter = FakeAdapter(js(200, {"access_token": "x"}))
    t = transport_with(adapter)
    t.post_form("http://127.0.0.1:9/token", {"grant_type": "client_credentials", "scope": None}, auth="Basic abc")
    request, kwargs = adapter.sent[0]
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Authorization"] == "Basic abc"
    assert request.body == "grant_type=client_credentials"
    assert (kwargs["timeout"].connect_timeout, kwargs["timeout"]._read) == (10.0, 30.0)


def test_proxy_and_verify_are_passed_on_every_call() -> None:
    adapter = FakeAdapter(js(200, {}), js(200, {}))
    t = transport_with(adapter, http_proxy_url="http://proxy.local:3128", verify="/etc/ca.pem")
    t.get_json("https://h.example/x")
    t.post_form("https://h.example/token", {})
    for _, kwargs in adapter.sent:
        assert kwargs["verify"] == "/etc/ca.pem"
        assert kwargs["proxies"]["https"] == "http://proxy.local:3128"


def test_built_session_has_proxy_retry_and_keeps_trust_env() -> None:
    s = build_session(http_proxy_url="http://proxy.local:3128")
    assert s.trust_env is True
    assert s.proxies == {"http": "http://proxy.local:3128", "https": "http://proxy.local:3128"}
    retries = s.get_adapter("https://x.example").max_retries
    assert isinstance(retries, IdempotentRetry)


def test_retry_policy_never_retries_post_but_retries_get() -> None:
    retry = default_retry()
    with pytest.raises(MaxRetryError):
        retry.increment(method="POST", url="/token", error=ConnectionResetError())
    again = retry.increment(method="GET", url="/config", error=ConnectionResetError())
    assert isinstance(again, IdempotentRetry) and again.total == retry.total - 1
    assert not retry.is_retry("POST", 503)
    assert retry.is_retry("GET", 503)


def test_html_body_becomes_protocol_error_without_the_body() -> None:
    page = "<html><body>Sign in to CorpProxy " + SECRET + "</body></html>"
    adapter = FakeAdapter((502, "text/html", page))
    with pytest.raises(ProtocolError) as info:
        transport_with(adapter).post_form("https://idp.example:8443/token", {"client_secret": SECRET})
    text = str(info.value)
    assert "idp.example:8443" in text and "502" in text and "HTML" in text
    assert SECRET not in text and "<html" not in text and len(text) <= 500
    assert info.value.status == 502


def test_non_object_json_is_protocol_error() -> None:
    adapter = FakeAdapter(js(200, ["a"]))
    with pytest.raises(ProtocolError, match="200"):
        transport_with(adapter).get_json("https://h.example/x")


def test_oauth_error_body_maps_to_class_with_fields() -> None:
    adapter = FakeAdapter(js(401, {"error": "invalid_client", "error_description": "client authentication failed"}))
    response = transport_with(adapter).post_form("https://idp.example/token", {})
    assert not response.ok
    with pytest.raises(InvalidClientError) as info:
        response.raise_for_error()
    assert info.value.error == "invalid_client" and info.value.status == 401
    assert "idp.example:443" in str(info.value)


def test_error_status_without_oauth_error_is_protocol_error() -> None:
    adapter = FakeAdapter(js(500, {"message": "boom"}))
    response = transport_with(adapter).post_form("https://idp.example/token", {})
    with pytest.raises(ProtocolError, match="HTTP 500"):
        response.raise_for_error()
    assert not isinstance(response.oauth_error(), OAuthError)


@pytest.mark.parametrize(
    "exc,cls,words",
    [
        (requests.exceptions.ConnectTimeout(), TransportTimeoutError, "Timed out connecting"),
        (requests.exceptions.ReadTimeout(), TransportTimeoutError, "did not answer in time"),
        (requests.exceptions.SSLError(), TransportError, "TLS"),
        (requests.exceptions.ProxyError(), TransportError, "proxy"),
        (requests.exceptions.ConnectionError(), TransportError, "Could not connect"),
        (requests.exceptions.ChunkedEncodingError(), TransportError, "failed"),
    ],
)
def test_requests_exceptions_are_translated(exc: Exception, cls: type, words: str) -> None:
    adapter = FakeAdapter(exc)
    with pytest.raises(cls) as info:
        transport_with(adapter).get_json("https://flyte.example.com:8089/x?token=" + SECRET)
    text = str(info.value)
    assert "flyte.example.com:8089" in text and words in text
    assert SECRET not in text and len(text) <= 500


def test_allow_empty_for_revocation() -> None:
    adapter = FakeAdapter((200, "text/plain", ""))
    assert transport_with(adapter).post_form("https://h.example/revoke", {}, allow_empty=True).data == {}


def test_missing_ca_bundle_is_configuration_error(tmp_path) -> None:
    t = Transport(verify=str(tmp_path / "missing.pem"))
    with pytest.raises((ConfigurationError, TransportError)):
        t.get_json("https://127.0.0.1:9/x")


def test_host_port() -> None:
    assert host_port("https://a.example/x?y=1") == "a.example:443"
    assert host_port("http://127.0.0.1:30080/p") == "127.0.0.1:30080"
    assert host_port("http://[::1]:5/p") == "[::1]:5"


def test_transport_repr_has_no_proxy_credentials() -> None:
    t = Transport(http_proxy_url="http://user:pw-" + SECRET + "@proxy.local:3128")
    assert SECRET not in repr(t)


def test_tls_failures_are_not_retried() -> None:
    """A certificate that fails verification fails again: the error is reported at once, not after retries."""
    import urllib3

    from flyteauth_jupyter.transport.http import default_retry

    retry = default_retry()
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        retry.increment("GET", "https://127.0.0.1:1/x", error=urllib3.exceptions.SSLError("certificate verify failed"))
    # a connection error on a GET is still retried
    again = retry.increment("GET", "https://127.0.0.1:1/x", error=urllib3.exceptions.NewConnectionError(None, "refused"))
    assert again.total == retry.total - 1
