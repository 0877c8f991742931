"""RFC 8628 polling logic with a fake clock and a scripted token endpoint."""

from __future__ import annotations

import pytest

from flyteauth_jupyter.control import Waiter
from flyteauth_jupyter.errors import (
    AccessDeniedError,
    ExpiredTokenError,
    InvalidClientError,
    LoginCancelledError,
    LoginTimeoutError,
    OAuthError,
    ProtocolError,
    TransportError,
    TransportTimeoutError,
)
from flyteauth_jupyter.flows import device
from flyteauth_jupyter.flows.events import DeviceCodeIssued, NetworkRetry, Polling, SlowedDown
from flow_fakes import SECRETS, FakeClock, FakeTransport, oauth, ok

DEVICE_EP = "https://idp.test/device/auth"
TOKEN_EP = "https://idp.test/token"
TOKEN = {"access_token": SECRETS[0], "refresh_token": SECRETS[1], "token_type": "Bearer", "expires_in": 300}


def authorization(**over):
    body = {"device_code": SECRETS[2], "user_code": "ABCD-EFGH", "verification_uri": "https://idp.test/device",
            "verification_uri_complete": "https://idp.test/device?user_code=ABCD-EFGH", "expires_in": 600}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def run(script, *, timeout=None, clock=None, body=None, observer=None, **kw):
    clock = clock or FakeClock()
    transport = FakeTransport([ok(body or authorization(**kw))] + list(script), clock=clock)
    events = []

    def obs(e):
        events.append(e)
        if observer:
            observer(e)

    waiter = Waiter(timeout, clock=clock, what="the device sign-in")
    try:
        creds = device.run_device_flow(transport, device_authorization_endpoint=DEVICE_EP, token_endpoint=TOKEN_EP,
                                       client_id="cli", waiter=waiter, endpoint="flyte:1", scopes=["openid", "offline_access"],
                                       audience="aud", observer=obs)
        error = None
    except Exception as exc:  # noqa: BLE001
        creds, error = None, exc
    poll_times = [t for (url, _d, _a, t) in transport.posts if url == TOKEN_EP]
    return creds, error, poll_times, events, transport


def test_device_request_and_poll_bodies() -> None:
    creds, error, times, events, t = run([ok(TOKEN)])
    assert error is None and creds.access_token == SECRETS[0] and creds.refresh_token == SECRETS[1]
    url, data, _, _ = t.posts[0]
    assert url == DEVICE_EP and data == {"client_id": "cli", "scope": "openid offline_access", "audience": "aud"}
    url, data, _, _ = t.posts[1]
    assert data == {"grant_type": device.GRANT_TYPE, "device_code": SECRETS[2], "client_id": "cli", "audience": "aud"}


def test_default_interval_is_5_seconds() -> None:
    _, error, times, _, _ = run([oauth("authorization_pending"), oauth("authorization_pending"), ok(TOKEN)])
    assert error is None and times == [5.0, 10.0, 15.0]


def test_server_interval_is_used() -> None:
    _, _, times, _, _ = run([oauth("authorization_pending"), ok(TOKEN)], interval=2)
    assert times == [2.0, 4.0]


def test_slow_down_adds_5_seconds_for_good() -> None:
    script = [oauth("authorization_pending"), oauth("slow_down"), oauth("authorization_pending"),
              oauth("slow_down"), oauth("authorization_pending"), ok(TOKEN)]
    _, error, times, events, _ = run(script, interval=1)
    assert error is None
    gaps = [round(b - a, 6) for a, b in zip([0.0] + times, times)]
    assert gaps == [1.0, 1.0, 6.0, 6.0, 11.0, 11.0]
    assert [e.interval for e in events if isinstance(e, SlowedDown)] == [6.0, 11.0]


def test_authorization_pending_continues_until_approval() -> None:
    _, error, times, events, _ = run([oauth("authorization_pending")] * 5 + [ok(TOKEN)], interval=1)
    assert error is None and len(times) == 6
    assert [e.attempt for e in events if isinstance(e, Polling)] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "code,cls",
    [("access_denied", AccessDeniedError), ("expired_token", ExpiredTokenError), ("invalid_client", InvalidClientError),
     ("invalid_request", OAuthError), ("brand_new_error", OAuthError), ("invalid_grant", OAuthError)],
)
def test_any_other_error_stops_at_once(code: str, cls: type) -> None:
    _, error, times, _, t = run([oauth(code, "why"), ok(TOKEN)], interval=1)
    assert isinstance(error, cls) and error.error == code
    assert len(times) == 1 and len(t.script) == 1  # never polled again


def test_denied_message_says_denied() -> None:
    _, error, _, _, _ = run([oauth("access_denied", "End-User aborted interaction")], interval=1)
    assert "denied" in str(error).lower()


def test_network_failures_back_off_exponentially_then_reset() -> None:
    script = [TransportError("down"), TransportTimeoutError("slow"), TransportError("down"),
              oauth("authorization_pending"), ok(TOKEN)]
    _, error, times, events, _ = run(script, interval=1)
    assert error is None
    gaps = [round(b - a, 6) for a, b in zip([0.0] + times, times)]
    assert gaps == [1.0, 2.0, 4.0, 8.0, 1.0]
    assert [e.delay for e in events if isinstance(e, NetworkRetry)] == [2.0, 4.0, 8.0]


def test_backoff_is_capped() -> None:
    script = [TransportError("down")] * 8 + [ok(TOKEN)]
    _, error, times, _, _ = run(script, interval=5, expires_in=3600)
    gaps = [round(b - a, 6) for a, b in zip([0.0] + times, times)]
    assert error is None and max(gaps) == device.MAX_BACKOFF


def test_5xx_html_is_transient_but_4xx_html_stops() -> None:
    _, error, times, _, _ = run([ProtocolError("html", status=502), ok(TOKEN)], interval=1)
    assert error is None and len(times) == 2
    _, error, _, _, _ = run([ProtocolError("html", status=404), ok(TOKEN)], interval=1)
    assert isinstance(error, ProtocolError)


def test_deadline_is_expires_in() -> None:
    _, error, times, _, _ = run([oauth("authorization_pending")] * 100, interval=5, expires_in=30)
    assert isinstance(error, ExpiredTokenError) and error.error == "expired_token" and "expired" in str(error)
    assert len(times) <= 6 and max(times) <= 30.0


def test_deadline_is_the_timeout_when_shorter() -> None:
    _, error, times, _, _ = run([oauth("authorization_pending")] * 100, interval=5, expires_in=600, timeout=12)
    assert isinstance(error, LoginTimeoutError) and not isinstance(error, ExpiredTokenError)
    assert times == [5.0, 10.0]


def test_cancel_from_another_thread_ends_within_one_poll() -> None:
    clock = FakeClock()
    holder = {}

    def observer(event):
        if isinstance(event, Polling) and event.attempt == 2:
            holder["waiter"].cancel()

    transport = FakeTransport([ok(authorization(interval=1))] + [oauth("authorization_pending")] * 10, clock=clock)
    waiter = holder["waiter"] = Waiter(None, clock=clock)
    with pytest.raises(LoginCancelledError):
        device.run_device_flow(transport, device_authorization_endpoint=DEVICE_EP, token_endpoint=TOKEN_EP,
                               client_id="c", waiter=waiter, endpoint="e", observer=observer)
    assert len(transport.posts) == 3  # device request + 2 polls


def test_issued_event_shows_complete_uri_and_user_code_never_the_device_code() -> None:
    clock = FakeClock(start=100.0)
    _, _, _, events, _ = run([ok(TOKEN)], clock=clock)
    issued = [e for e in events if isinstance(e, DeviceCodeIssued)][0]
    assert issued.user_code == "ABCD-EFGH"
    assert issued.verification_uri_complete.endswith("user_code=ABCD-EFGH")
    assert issued.expires_at == 700.0 and issued.interval == 5.0
    assert all(SECRETS[2] not in repr(e) for e in events)
    assert all(s not in repr(e) for e in events for s in SECRETS[:2])


def test_parse_device_authorization() -> None:
    parsed = device.parse_device_authorization(authorization(verification_uri_complete=None, interval=None))
    assert parsed.interval == 5.0 and parsed.display_uri == "https://idp.test/device"
    assert SECRETS[2] not in repr(parsed)
    assert device.parse_device_authorization(authorization(interval=0)).interval == device.MIN_INTERVAL
    with pytest.raises(ProtocolError, match="user_code"):
        device.parse_device_authorization(authorization(user_code=None))
    with pytest.raises(ProtocolError, match="expires_in"):
        device.parse_device_authorization(authorization(expires_in="never"))


def test_device_endpoint_error_surfaces_the_servers_description() -> None:
    clock = FakeClock()
    transport = FakeTransport([oauth("invalid_request", "PKCE is required", status=400)], clock=clock)
    with pytest.raises(OAuthError, match="PKCE is required"):
        device.run_device_flow(transport, device_authorization_endpoint=DEVICE_EP, token_endpoint=TOKEN_EP,
                               client_id="c", waiter=Waiter(None, clock=clock), endpoint="e")
