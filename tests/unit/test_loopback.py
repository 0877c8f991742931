"""transport.loopback: the RFC 8252 receiver, driven with real requests on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
import requests

from flyteauth_jupyter.control import Waiter
from flyteauth_jupyter.errors import (
    AccessDeniedError,
    ConfigurationError,
    LoginCancelledError,
    LoginTimeoutError,
    OAuthError,
    ProtocolError,
)
from flyteauth_jupyter.transport.loopback import LoopbackReceiver, render_page

STATE = "state-abc"
CODE = "CODE-secret-xyz"


@pytest.fixture
def http() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    yield s
    s.close()


def busy_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def test_code_with_right_state(http: requests.Session) -> None:
    with LoopbackReceiver("http://127.0.0.1:0/callback", state=STATE, site="flyte:1") as rx:
        assert rx.port and rx.redirect_uri == f"http://127.0.0.1:{rx.port}/callback"
        r = http.get(rx.redirect_uri, params={"code": CODE, "state": STATE, "iss": "http://idp"}, timeout=5)
        assert r.status_code == 200 and "signed in" in r.text.lower() and "flyte:1" in r.text
        result = rx.wait(Waiter(5))
        assert result.code == CODE and result.iss == "http://idp"
        assert CODE not in repr(result)


def test_stray_requests_get_404_and_do_not_count(http: requests.Session) -> None:
    with LoopbackReceiver("http://127.0.0.1:0/callback", state=STATE) as rx:
        base = f"http://127.0.0.1:{rx.port}"
        assert http.get(base + "/favicon.ico", timeout=5).status_code == 404
        assert http.get(base + "/", timeout=5).status_code == 404
        assert http.get(base + "/callbackx?code=1&state=" + STATE, timeout=5).status_code == 404
        assert not rx.done.is_set() and rx.stray_count == 3
        http.get(rx.redirect_uri, params={"code": CODE, "state": STATE}, timeout=5)
        assert rx.wait(Waiter(5)).code == CODE


def test_wrong_state_is_refused_and_the_right_one_still_accepted(http: requests.Session) -> None:
    with LoopbackReceiver("http://127.0.0.1:0/callback", state=STATE) as rx:
        r = http.get(rx.redirect_uri, params={"code": "attacker", "state": "other"}, timeout=5)
        assert r.status_code == 400
        r = http.get(rx.redirect_uri, params={"error": "access_denied"}, timeout=5)  # no state: refused too
        assert r.status_code == 400
        assert not rx.done.is_set() and rx.wrong_state_count == 2
        http.get(rx.redirect_uri, params={"code": CODE, "state": STATE}, timeout=5)
        assert rx.wait(Waiter(5)).code == CODE


def test_timeout_mentions_a_refused_state(http: requests.Session) -> None:
    with LoopbackReceiver("http://127.0.0.1:0/callback", state=STATE) as rx:
        http.get(rx.redirect_uri, params={"code": "x", "state": "stale"}, timeout=5)
        with pytest.raises(LoginTimeoutError, match="different state"):
            rx.wait(Waiter(0.3))


def test_error_redirect_raises_oauth_error(http: requests.Session) -> None:
    with LoopbackReceiver("http://127.0.0.1:0/callback", state=STATE) as rx:
        r = http.get(
            rx.redirect_uri,
            params={"error": "access_denied", "error_description": "End-User aborted interaction", "state": STATE},
            timeout=5,
        )
        assert "denied" in r.text.lower()
        with pytest.raises(AccessDeniedError) as info:
            rx.wait(Waiter(5))
        assert "denied" in str(info.value).lower() and info.value.description == "End-User aborted interaction"


def test_other_error_and_missing_code(http: requests.Session) -> None:
    with LoopbackReceiver("http://127.0.0.1:0/cb", state=STATE) as rx:
        http.get(rx.redirect_uri, params={"error": "invalid_request", "state": STATE}, timeout=5)
        with pytest.raises(OAuthError):
            rx.wait(Waiter(5))
        # a second redirect after completion does not overwrite the result
        assert http.get(rx.redirect_uri, params={"code": CODE, "state": STATE}, timeout=5).status_code == 400
    with LoopbackReceiver("http://127.0.0.1:0/cb", state=STATE) as rx:
        http.get(rx.redirect_uri, params={"state": STATE}, timeout=5)
        with pytest.raises(ProtocolError):
            rx.wait(Waiter(5))


def test_issuer_mismatch_is_refused(http: requests.Session) -> None:
    with LoopbackReceiver("http://127.0.0.1:0/cb", state=STATE, expected_issuer="http://idp.good") as rx:
        http.get(rx.redirect_uri, params={"code": CODE, "state": STATE, "iss": "http://idp.evil"}, timeout=5)
        with pytest.raises(ProtocolError, match="iss"):
            rx.wait(Waiter(5))


def test_cancel_ends_the_wait() -> None:
    with LoopbackReceiver("http://127.0.0.1:0/cb", state=STATE) as rx:
        waiter = Waiter(30)
        threading.Timer(0.1, waiter.cancel).start()
        with pytest.raises(LoginCancelledError):
            rx.wait(waiter)


def test_busy_port_on_ip_literal_uses_a_free_port(http: requests.Session) -> None:
    blocker = busy_port()
    try:
        port = blocker.getsockname()[1]
        with LoopbackReceiver(f"http://127.0.0.1:{port}/callback", state=STATE) as rx:
            assert rx.port != port
            assert rx.redirect_uri == f"http://127.0.0.1:{rx.port}/callback"
            assert rx.registered_uri == f"http://127.0.0.1:{port}/callback"
    finally:
        blocker.close()


def test_busy_port_on_localhost_is_a_clear_error() -> None:
    blocker = busy_port()
    try:
        port = blocker.getsockname()[1]
        with pytest.raises(ConfigurationError) as info:
            LoopbackReceiver(f"http://localhost:{port}/callback", state=STATE).start()
        assert str(port) in str(info.value) and "in use" in str(info.value)
    finally:
        blocker.close()


def test_localhost_binds_loopback_and_keeps_the_registered_uri(http: requests.Session) -> None:
    probe = busy_port()
    port = probe.getsockname()[1]
    probe.close()
    with LoopbackReceiver(f"http://localhost:{port}/callback", state=STATE) as rx:
        assert rx.redirect_uri == f"http://localhost:{port}/callback"
        assert rx._server is not None and rx._server.server_address[0] == "127.0.0.1"
        http.get(f"http://127.0.0.1:{port}/callback", params={"code": CODE, "state": STATE}, timeout=5)
        assert rx.wait(Waiter(5)).code == CODE


def test_port_is_released_after_close() -> None:
    rx = LoopbackReceiver("http://127.0.0.1:0/cb", state=STATE).start()
    port = rx.port
    rx.close()
    rx.close()  # idempotent
    again = LoopbackReceiver(f"http://127.0.0.1:{port}/cb", state=STATE).start()
    try:
        assert again.port == port
    finally:
        again.close()


@pytest.mark.parametrize("uri", ["https://127.0.0.1:1/cb", "http://example.com:8080/cb", "http://10.0.0.1:8080/cb"])
def test_non_loopback_redirects_are_refused(uri: str) -> None:
    with pytest.raises(ConfigurationError):
        LoopbackReceiver(uri, state=STATE)


def test_request_line_is_never_logged(http: requests.Session, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with LoopbackReceiver("http://127.0.0.1:0/cb", state=STATE) as rx:
        http.get(rx.redirect_uri, params={"code": CODE, "state": STATE}, timeout=5)
        http.post(rx.redirect_uri, data={"code": CODE}, timeout=5)  # unsupported method: 501, still silent
        rx.wait(Waiter(5))
    out, err = capfd.readouterr()
    ours = "".join(r.getMessage() for r in caplog.records if r.name.startswith("flyteauth_jupyter"))
    assert CODE not in out + err + ours


def test_page_is_escaped() -> None:
    page = render_page("<b>t</b>", "a & <script>x</script>").decode()
    assert "<script>" not in page and "&lt;script&gt;" in page and "http" not in page.split("<style>")[0]


# ------------------------------------------------------------------ issue 16: a denial names host:port
SITE = "flyte.example.com:8443"


@pytest.mark.parametrize("how", ["redirect", "paste"])
def test_a_denied_sign_in_names_the_endpoint_host_and_port(http: requests.Session, how: str) -> None:
    with LoopbackReceiver("http://127.0.0.1:0/callback", state=STATE, site=SITE) as rx:
        params = {"error": "access_denied", "error_description": "End-User aborted interaction", "state": STATE}
        if how == "redirect":
            http.get(rx.redirect_uri, params=params, timeout=5)
        else:
            rx.submit_redirect(requests.Request("GET", rx.redirect_uri, params=params).prepare().url)
        with pytest.raises(AccessDeniedError) as info:
            rx.wait(Waiter(5))
    message = str(info.value)
    assert "denied" in message and SITE in message and len(message) <= 500


def test_every_refusal_of_a_redirect_names_the_endpoint(http: requests.Session) -> None:
    from flyteauth_jupyter.transport.loopback import interpret_redirect

    for params in ({"error": "invalid_scope"}, {"code": CODE, "iss": "http://idp.evil"}, {"state": STATE}):
        result, error = interpret_redirect(params, "http://idp.good", where=SITE)
        assert result is None and error is not None and SITE in str(error), params
    _, error = interpret_redirect({"error": "access_denied"}, "http://idp.good:9000")  # no endpoint: the issuer's
    assert "idp.good:9000" in str(error)


def test_the_relay_receiver_names_the_endpoint_too(tmp_path) -> None:
    from flyteauth_jupyter.transport.relay import RelayReceiver, write_redirect

    rx = RelayReceiver("https://hub.example/user/a/flyteauth/callback", state=STATE, site=SITE, directory=tmp_path)
    with rx:
        write_redirect({"error": "access_denied", "state": STATE}, tmp_path)
        with pytest.raises(AccessDeniedError, match=SITE):
            rx.wait(Waiter(5))
