"""Paste-back: a redirect address pasted in instead of received (a browser on another machine).

The loopback receiver runs for real on 127.0.0.1; the relay receiver on a temporary directory. The
flow is driven with the fake token endpoint (the real IdP is in tests/integration).
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flow_fakes import SECRETS, FakeTransport, ok

from flyteauth_jupyter import PKCEAuthenticator, StaticClientConfigStore
from flyteauth_jupyter.config import ClientConfig
from flyteauth_jupyter.control import Waiter
from flyteauth_jupyter.errors import (
    AccessDeniedError,
    FlyteAuthError,
    LoginTimeoutError,
    ProtocolError,
    StateMismatchError,
)
from flyteauth_jupyter.flows import authcode, pkce
from flyteauth_jupyter.stores import MemoryStore
from flyteauth_jupyter.transport.loopback import LoopbackReceiver, read_pasted_redirect
from flyteauth_jupyter.transport.relay import RelayReceiver, take_redirect, write_redirect

STATE = "state-PASTE-abc"
CODE = "CODE-pasted-secret-xyz"
TOKEN = {"access_token": SECRETS[0], "refresh_token": SECRETS[1], "token_type": "Bearer", "expires_in": 60}


def redirect(rx, **params: str) -> str:
    return f"{rx.redirect_uri}?{urlencode(params)}"


def assert_still_waiting(rx) -> None:
    assert not rx.done.is_set() and rx.completed_by is None


@pytest.fixture
def rx():
    with LoopbackReceiver("http://127.0.0.1:0/callback", state=STATE, site="flyte:1") as receiver:
        yield receiver


# ------------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    "text, path",
    [
        ("http://127.0.0.1:53593/callback?code=C&state=S", "/callback"),
        ("  http://127.0.0.1:53593/callback?code=C\n&state=S  ", "/callback"),  # wrapped, padded
        ("127.0.0.1:53593/callback?code=C&state=S", "/callback"),  # address bar without the scheme
        ("/callback?code=C&state=S", "/callback"),
        ("?code=C&state=S", None),
        ("code=C&state=S", None),
        ("code=C&state=S&iss=http%3A%2F%2Fidp", None),
        ("http://127.0.0.1:53593/callback?code=C&state=S#_=_", "/callback"),
    ],
)
def test_read_pasted_redirect_forms(text: str, path: str | None) -> None:
    got_path, params = read_pasted_redirect(text)
    assert got_path == path and params["code"] == "C" and params["state"] == "S"


@pytest.mark.parametrize("text", ["", "   \n", "x" * 9000, None])
def test_read_pasted_redirect_refuses_nothing_or_junk(text) -> None:
    with pytest.raises(ProtocolError):
        read_pasted_redirect(text)


# ---------------------------------------------------------------------------- loopback paste
def test_full_url_paste_completes_the_wait(rx) -> None:
    rx.submit_redirect(redirect(rx, code=CODE, state=STATE, iss="http://idp"))
    result = rx.wait(Waiter(5))
    assert result.code == CODE and result.iss == "http://idp" and rx.completed_by == "paste"


def test_query_only_paste_is_accepted(rx) -> None:
    rx.submit_redirect("?" + urlencode({"code": CODE, "state": STATE}))
    assert rx.wait(Waiter(5)).code == CODE


def test_wrong_state_is_refused_and_the_wait_goes_on(rx) -> None:
    with pytest.raises(StateMismatchError, match="another sign-in") as info:
        rx.submit_redirect(redirect(rx, code=CODE, state="stale-state"))
    assert CODE not in str(info.value) and "stale-state" not in str(info.value)
    assert_still_waiting(rx)
    assert rx.refused_paste_count == 1 and rx.wrong_state_count == 0
    rx.submit_redirect(redirect(rx, code=CODE, state=STATE))
    assert rx.wait(Waiter(5)).code == CODE


def test_missing_state_is_refused(rx) -> None:
    with pytest.raises(StateMismatchError, match="no state"):
        rx.submit_redirect(CODE)  # a bare code cannot be checked: refused
    with pytest.raises(StateMismatchError):
        rx.submit_redirect(redirect(rx, code=CODE))
    assert_still_waiting(rx)


def test_state_is_checked_before_the_path(rx) -> None:
    wrong_both = f"http://127.0.0.1:{rx.port}/elsewhere?" + urlencode({"code": CODE, "state": "other"})
    with pytest.raises(StateMismatchError):
        rx.submit_redirect(wrong_both)
    right_state_wrong_path = f"http://127.0.0.1:{rx.port}/elsewhere?" + urlencode({"code": CODE, "state": STATE})
    with pytest.raises(ProtocolError, match="wrong path") as info:
        rx.submit_redirect(right_state_wrong_path)
    assert not isinstance(info.value, StateMismatchError)
    assert_still_waiting(rx)


def test_pasting_the_sign_in_link_itself_is_refused(rx) -> None:
    url = authcode.build_authorization_url(
        "http://127.0.0.1:9/auth", client_id="c", redirect_uri=rx.redirect_uri, scopes=["openid"],
        state=STATE, code_challenge="x",
    )
    with pytest.raises(ProtocolError, match="not the sign-in link"):
        rx.submit_redirect(url)
    assert_still_waiting(rx)


def test_access_denied_paste_ends_the_flow_as_a_denial(rx) -> None:
    rx.submit_redirect(redirect(rx, error="access_denied", error_description="End-User aborted interaction", state=STATE))
    with pytest.raises(AccessDeniedError, match="denied"):
        rx.wait(Waiter(5))


def test_right_state_without_code_or_with_foreign_issuer_keeps_waiting() -> None:
    with LoopbackReceiver("http://127.0.0.1:0/cb", state=STATE, expected_issuer="http://idp.good") as rx:
        with pytest.raises(ProtocolError, match="no code"):
            rx.submit_redirect(redirect(rx, state=STATE))
        with pytest.raises(ProtocolError, match="iss"):
            rx.submit_redirect(redirect(rx, code=CODE, state=STATE, iss="http://idp.evil"))
        assert_still_waiting(rx)
        rx.submit_redirect(redirect(rx, code=CODE, state=STATE, iss="http://idp.good/"))
        assert rx.wait(Waiter(5)).code == CODE


def test_after_completion_or_close_a_paste_is_refused(rx) -> None:
    rx.submit_redirect(redirect(rx, code=CODE, state=STATE))
    with pytest.raises(ProtocolError, match="already"):
        rx.submit_redirect(redirect(rx, code="CODE-2", state=STATE))
    assert rx.wait(Waiter(5)).code == CODE
    with LoopbackReceiver("http://127.0.0.1:0/cb", state=STATE) as other:
        pass
    with pytest.raises(ProtocolError, match="no longer waiting"):
        other.submit_redirect(redirect(other, code=CODE, state=STATE))


def test_the_pasted_address_is_never_logged(rx, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StateMismatchError):
        rx.submit_redirect(redirect(rx, code=CODE, state="nope"))
    rx.submit_redirect(redirect(rx, code=CODE, state=STATE))
    rx.wait(Waiter(5))
    assert caplog.records  # the acceptance is logged, without the address
    assert all(CODE not in r.getMessage() and STATE not in r.getMessage() for r in caplog.records)


def test_a_paste_wakes_a_waiting_thread_at_once(rx) -> None:
    got: list[str] = []
    waiting = threading.Thread(target=lambda: got.append(rx.wait(Waiter(10)).code), daemon=True)
    waiting.start()
    rx.submit_redirect(redirect(rx, code=CODE, state=STATE))
    waiting.join(5)
    assert got == [CODE]


def test_paste_racing_a_real_redirect_only_one_wins() -> None:
    """The browser's redirect and a paste arrive together: exactly one completes the wait."""
    http = requests.Session()
    http.trust_env = False
    winners = set()
    for _ in range(15):  # bounded
        with LoopbackReceiver("http://127.0.0.1:0/callback", state=STATE) as rx:
            start = threading.Barrier(2, timeout=5)
            outcome: dict[str, object] = {}

            def browser() -> None:
                start.wait()
                outcome["status"] = http.get(rx.redirect_uri, params={"code": "CODE-browser", "state": STATE}, timeout=5).status_code

            def paste() -> None:
                start.wait()
                try:
                    rx.submit_redirect(redirect(rx, code="CODE-pasted", state=STATE))
                    outcome["paste"] = "accepted"
                except ProtocolError as exc:
                    outcome["paste"] = str(exc)

            threads = [threading.Thread(target=browser, daemon=True), threading.Thread(target=paste, daemon=True)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            code = rx.wait(Waiter(5)).code
            if rx.completed_by == "paste":
                assert code == "CODE-pasted" and outcome == {"paste": "accepted", "status": 400}
            else:
                assert code == "CODE-browser" and outcome["status"] == 200 and "already" in str(outcome["paste"])
            winners.add(rx.completed_by)
    http.close()
    assert winners <= {"paste", "redirect"}


def test_a_paste_after_the_real_redirect_loses() -> None:
    with LoopbackReceiver("http://127.0.0.1:0/callback", state=STATE) as rx, requests.Session() as http:
        http.trust_env = False
        assert http.get(rx.redirect_uri, params={"code": "CODE-browser", "state": STATE}, timeout=5).status_code == 200
        with pytest.raises(ProtocolError, match="already"):
            rx.submit_redirect(redirect(rx, code="CODE-pasted", state=STATE))
        assert rx.wait(Waiter(5)).code == "CODE-browser" and rx.completed_by == "redirect"


def test_many_concurrent_pastes_exactly_one_is_accepted(rx) -> None:
    threads_count = 16
    start = threading.Barrier(threads_count, timeout=5)
    accepted: list[str] = []
    refused: list[str] = []
    guard = threading.Lock()

    def paste(n: int) -> None:
        code = f"CODE-{n}"
        start.wait()
        try:
            rx.submit_redirect(redirect(rx, code=code, state=STATE))
            outcome = accepted
        except ProtocolError:
            outcome = refused
        with guard:
            outcome.append(code)

    threads = [threading.Thread(target=paste, args=(n,), daemon=True) for n in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(accepted) == 1 and len(refused) == threads_count - 1
    assert rx.wait(Waiter(5)).code == accepted[0]


# ------------------------------------------------------------------------------- relay paste
def test_relay_paste_wakes_the_wait_and_accepts_the_hub_path(tmp_path) -> None:
    uri = "https://hub.example/hub/user-redirect/flyteauth/callback"
    with RelayReceiver(uri, state=STATE, directory=tmp_path) as rx:
        with pytest.raises(StateMismatchError):
            rx.submit_redirect("https://hub.example/user/alice/flyteauth/callback?code=x&state=other")
        with pytest.raises(ProtocolError, match="wrong path"):
            rx.submit_redirect(f"https://hub.example/user/alice/lab?code={CODE}&state={STATE}")
        assert not rx.done.is_set()
        got: list[str] = []
        waiting = threading.Thread(target=lambda: got.append(rx.wait(Waiter(10)).code), daemon=True)
        waiting.start()
        rx.submit_redirect(f"https://hub.example/user/alice/flyteauth/callback?code={CODE}&state={STATE}")
        waiting.join(5)
        assert got == [CODE] and rx.completed_by == "paste"
        with pytest.raises(ProtocolError, match="already"):
            rx.submit_redirect(f"?code={CODE}&state={STATE}")


def test_relay_file_after_a_paste_is_ignored_and_a_file_first_wins(tmp_path) -> None:
    uri = "https://jupyter.example/flyteauth/callback"
    with RelayReceiver(uri, state=STATE, directory=tmp_path) as rx:
        rx.submit_redirect(f"?code={CODE}&state={STATE}")
        write_redirect({"code": "CODE-relayed", "state": STATE}, tmp_path)
        assert rx.wait(Waiter(5)).code == CODE
    assert take_redirect(STATE, tmp_path) is None  # closed: the leftover file is gone
    with RelayReceiver(uri, state=STATE, directory=tmp_path) as rx:
        write_redirect({"code": "CODE-relayed", "state": STATE}, tmp_path)
        assert rx.wait(Waiter(5)).code == "CODE-relayed" and rx.completed_by == "redirect"
        with pytest.raises(ProtocolError, match="already"):
            rx.submit_redirect(f"?code={CODE}&state={STATE}")


def test_relay_wait_still_times_out(tmp_path) -> None:
    with RelayReceiver("https://j.example/flyteauth/callback", state=STATE, directory=tmp_path) as rx:
        with pytest.raises(LoginTimeoutError):
            rx.wait(Waiter(0.3))


# ----------------------------------------------------------------------- flow and authenticator
def test_inbox_without_a_waiting_attempt_says_so() -> None:
    inbox = authcode.RedirectInbox("flyte:1")
    assert not inbox.waiting
    with pytest.raises(FlyteAuthError, match="No browser sign-in to flyte:1 is waiting") as info:
        inbox.submit(f"?code={CODE}&state={STATE}")
    assert CODE not in str(info.value)


def test_flow_exchanges_a_pasted_code_with_its_verifier() -> None:
    inbox = authcode.RedirectInbox("flyte:1")
    sent: dict[str, str] = {}
    refused: list[BaseException] = []

    def remote_browser(url: str) -> bool:  # nothing reaches the loopback; the user pastes instead
        q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        sent.update(q)
        assert inbox.waiting
        try:
            inbox.submit(f"{q['redirect_uri']}?code={CODE}&state=not-{q['state']}")
        except StateMismatchError as exc:
            refused.append(exc)
        inbox.submit(f"{q['redirect_uri']}?code={CODE}&state={q['state']}")
        return False

    transport = FakeTransport([ok(TOKEN)])
    creds = authcode.run_authcode_flow(
        transport, authorization_endpoint="https://idp.test/auth", token_endpoint="https://idp.test/token",
        client_id="cli", redirect_uri="http://127.0.0.1:0/callback", waiter=Waiter(10), endpoint="flyte:1",
        open_browser=remote_browser, inbox=inbox,
    )
    assert creds.access_token == SECRETS[0] and len(refused) == 1
    _, data, _, _ = transport.posts[0]
    assert data["code"] == CODE and data["redirect_uri"] == sent["redirect_uri"]
    assert pkce.code_challenge(data["code_verifier"]) == sent["code_challenge"]
    assert not inbox.waiting  # detached once the attempt ended


def static_store() -> StaticClientConfigStore:
    return StaticClientConfigStore(
        ClientConfig(
            token_endpoint="https://idp.test/token",
            authorization_endpoint="https://idp.test/auth",
            redirect_uri="http://127.0.0.1:0/callback",
            client_id="cli",
            scopes=["openid"],
        )
    )


def test_pkce_authenticator_submit_redirect() -> None:
    state: dict[str, str] = {}

    def remote_browser(url: str) -> bool:
        state.update({k: v[0] for k, v in parse_qs(urlsplit(url).query).items()})
        return False

    auth = PKCEAuthenticator("http://127.0.0.1:9", static_store(), open_browser=remote_browser, store=MemoryStore(),
                             timeout=10)
    with pytest.raises(FlyteAuthError, match="No browser sign-in to 127.0.0.1:9 is waiting"):
        auth.submit_redirect(f"?code={CODE}&state=x")
    auth._transport = FakeTransport([ok(TOKEN)])  # the token endpoint is faked in unit tests
    future = auth.refresh_in_background()
    for _ in range(500):  # bounded: until the receiver listens
        if auth.awaiting_redirect and state:
            break
        threading.Event().wait(0.01)
    with pytest.raises(StateMismatchError):
        auth.submit_redirect(f"?code={CODE}&state=wrong")
    assert not future.done()
    auth.submit_redirect(f"{state['redirect_uri']}?code={CODE}&state={state['state']}")
    assert future.result(10).access_token == SECRETS[0]
    assert not auth.awaiting_redirect
    assert CODE not in repr(auth)
