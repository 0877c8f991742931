"""The view model: event sequences in, phases and sentences out."""

from __future__ import annotations

import time

from flyteauth_jupyter.errors import (
    AccessDeniedError,
    ExpiredTokenError,
    LoginCancelledError,
    LoginTimeoutError,
    TransportError,
)
from flyteauth_jupyter.flows.events import (
    AuthorizationRequested,
    Cancelled,
    DeviceCodeIssued,
    Failed,
    FlowStarted,
    NetworkRetry,
    Polling,
    SlowedDown,
    Succeeded,
)
from flyteauth_jupyter.notebook.state import LoginView, countdown_text

NOW = 1_700_000_000.0


def run(*events, view=None):
    view = view or LoginView(endpoint="flyte.example.com", name="flyte_auth")
    for event in events:
        view = view.apply(event)
    return view


def device_code(expires_in=300.0):
    return DeviceCodeIssued(
        verification_uri="https://idp.example.com/device",
        user_code="WDJB-MJHT",
        expires_at=NOW + expires_in,
        interval=5,
        verification_uri_complete="https://idp.example.com/device?user_code=WDJB-MJHT",
    )


def test_device_approve_sequence():
    view = run(
        FlowStarted("device", "flyte.example.com", "JupyterHub detected"),
        device_code(),
        Polling(1, 5),
        SlowedDown(10),
        Polling(2, 10),
        Succeeded("device", "flyte.example.com", NOW + 3600, "alice", ("openid", "all")),
    )
    assert view.history == ("starting", "waiting", "waiting", "slowed_down", "slowed_down", "signed_in")
    assert view.phase == "signed_in" and view.done and not view.failed
    assert view.subject == "alice" and view.scopes == ("openid", "all")
    # the code and the links are gone once signed in
    assert view.user_code is None and view.verification_uri is None and view.verification_uri_complete is None
    assert view.flow_line() == "device code: JupyterHub detected"
    summary = view.summary()
    assert summary.startswith("Signed in as alice to flyte.example.com, token valid until ")
    assert summary.endswith("; available as `flyte_auth`.")
    assert view.status_line() == summary


def test_waiting_shows_code_and_countdown():
    view = run(FlowStarted("device", "flyte.example.com"), device_code(125))
    assert view.phase == "waiting" and view.active
    assert view.countdown(NOW) == "2:05"
    assert view.countdown(NOW + 1000) == "0:00"
    line = view.status_line(NOW)
    assert "approve" in line and "2:05" in line
    text = "\n".join(view.text_lines(NOW))
    assert "WDJB-MJHT" in text and "https://idp.example.com/device" in text


def test_slow_down_and_network_retry_messages():
    view = run(FlowStarted("device", "e"), device_code(), SlowedDown(10))
    assert view.phase == "slowed_down" and "every 10 s" in view.message
    view = view.apply(NetworkRetry(2.0, "connection refused"))
    assert view.phase == "network_retry" and "connection refused" in view.status_line(NOW)
    view = view.apply(Polling(3, 10))
    assert view.phase == "waiting" and "approve" in view.message


def test_denied_expired_cancelled_error():
    base = run(FlowStarted("device", "e"), device_code())
    denied = base.apply(Failed("device", "The sign-in was denied.", AccessDeniedError("x", error="access_denied")))
    assert denied.phase == "denied" and denied.status_line() == "Denied: The sign-in was denied."
    assert denied.user_code is None and denied.failed and denied.error_type == "AccessDeniedError"
    expired = base.apply(Failed("device", "The code expired.", ExpiredTokenError("x")))
    assert expired.phase == "expired"
    timed_out = base.apply(Failed("device", "Took too long.", LoginTimeoutError("x")))
    assert timed_out.phase == "expired"
    cancelled = base.apply(Failed("device", "The login was cancelled.", LoginCancelledError("x")))
    assert cancelled.phase == "cancelled"
    assert base.apply(Cancelled("device")).phase == "cancelled"
    error = base.apply(Failed("device", "Could not reach idp:443.", TransportError("x")))
    assert error.phase == "error" and error.status_line() == "Error: Could not reach idp:443."


def test_pkce_sequence():
    view = run(
        FlowStarted("pkce", "e", "the browser runs on the kernel's machine (local Jupyter)"),
        AuthorizationRequested("https://idp/auth?state=s&code_challenge=c", "http://127.0.0.1:5/callback", NOW + 300, True),
    )
    assert view.phase == "waiting" and view.auth_url.startswith("https://idp/auth")
    assert "browser window was opened" in view.message
    view = view.apply(Succeeded("pkce", "e", None, None))
    assert view.auth_url is None and "token expiry not known" in view.summary()
    assert view.summary().startswith("Signed in to e")


def test_refresh_inside_login_keeps_flow_and_subject():
    view = run(FlowStarted("device", "e", "why"), device_code(), Succeeded("device", "e", NOW + 60, "alice"))
    view = view.apply(FlowStarted("refresh", "e"))
    assert view.flow == "device" and view.phase == "starting"
    view = view.apply(Succeeded("refresh", "e", NOW + 3600, None))
    assert view.phase == "signed_in" and view.subject == "alice" and view.flow == "device"
    assert view.token_expires_at == NOW + 3600


def test_failure_after_success_is_ignored_and_cancel_too():
    view = run(FlowStarted("device", "e"), Succeeded("device", "e", NOW + 60, "alice"))
    assert view.apply(Failed("device", "late", None)).phase == "signed_in"
    assert view.apply(Cancelled("device")).phase == "signed_in"


def test_restart_and_sign_out():
    view = run(FlowStarted("device", "e"), device_code()).apply(Cancelled("device"))
    again = view.restarted()
    assert again.phase == "starting" and again.attempt == 2 and again.user_code is None
    out = run(FlowStarted("device", "e"), Succeeded("device", "e", NOW, "alice")).signed_out()
    assert out.phase == "signed_out" and out.subject is None and "Signed out of" in out.status_line()
    assert out.apply(device_code()).phase == "signed_out"


def test_countdown_text():
    assert countdown_text(None) is None
    assert countdown_text(59.6) == "1:00"
    assert countdown_text(3725) == "1:02:05"


def test_status_record_has_no_token_fields():
    view = run(FlowStarted("device", "e"), Succeeded("device", "e", time.time() + 60, "alice", ("openid",)))
    record = view.status_record()
    assert set(record) == {"name", "endpoint", "flow", "phase", "subject", "scopes", "token_expires_at", "message",
                           "store", "binding"}
