"""The panel's lifecycle as a new user meets it (issue 9), in a real InteractiveShell.

Each test is a defect found by trying the extension as a new user would; each failed before its fix:

* after ``%flyte_logout`` the old panel's "Sign in again" signs in but left ``flyte_auth`` unbound;
* a ``%flyte_login`` that replaces a running one left the old panel saying only "cancelled";
* the countdown showed the code's lifetime (9:59) while ``--timeout 8`` ended the login after 8 s;
* after an error before a flow was chosen, the subtitle stayed on "choosing a sign-in method";
* ``flyte_auth.wait()`` after a denied login showed the flow's whole traceback and chain;
* cancelling a login a cell waits on said "cancelled" without saying by whom or how to go on.
"""

from __future__ import annotations

import time
import traceback

import pytest
from nb_fakes import FakeFactory, wait_until

from flyteauth_jupyter.errors import AccessDeniedError, LoginCancelledError, TransportError
from flyteauth_jupyter.flows.events import DeviceCodeIssued, FlowStarted
from flyteauth_jupyter.notebook import connect as connect_module
from flyteauth_jupyter.notebook.session import LoginSession
from flyteauth_jupyter.notebook.state import LoginView


@pytest.fixture
def fake(monkeypatch):
    factory = FakeFactory()
    monkeypatch.setattr(connect_module, "prepare", factory)
    return factory


def started(ip, cell: str, fake: FakeFactory, count: int) -> LoginSession:
    ip.run_cell(cell, store_history=True).raise_error()  # numbered, as a kernel runs cells
    fake.latest(count).started.wait(5)
    return ip.user_ns["flyte_auth"]


def test_sign_in_again_after_logout_binds_the_variable(nb, fake):
    ip, _ = nb
    session = started(ip, "%flyte_login --endpoint http://127.0.0.1:9", fake, 1)
    fake.latest(1).approve()
    session.wait(10)
    ip.run_cell("%flyte_logout").raise_error()
    assert "flyte_auth" not in ip.user_ns and session.status == "signed_out"

    session.widget.retry_button.click()  # the old panel's "Sign in again"
    fake.latest(2).started.wait(5)
    fake.latest(2).approve()
    session.wait(10)
    assert ip.user_ns.get("flyte_auth") is session
    assert "flyte_auth: 127.0.0.1:9" in magics_module_status(ip)
    assert "signed in" in magics_module_status(ip)


def magics_module_status(ip) -> str:
    return ip.magics_manager.registry["FlyteAuthMagics"].status_text()


def test_a_replaced_login_says_which_cell_replaced_it(nb, fake):
    ip, _ = nb
    old = started(ip, "%flyte_login --endpoint http://127.0.0.1:9", fake, 1)
    number = ip.execution_count  # the number the next cell gets (In [n])
    new = started(ip, "%flyte_login --endpoint http://127.0.0.1:9", fake, 2)
    assert new is not old
    wait_until(lambda: old.status == "cancelled", 5, "the old login to stop")
    wait_until(lambda: "replaced" in old.widget.status.value, 5, "the old panel to say it was replaced")
    assert f"cell [{number}]" in old.view.status_line(), old.view.status_line()
    with pytest.raises(LoginCancelledError, match=r"replaced by the sign-in started in cell"):
        old.wait(5)
    new.cancel()


def test_countdown_shows_the_timeout_in_force():
    view = LoginView(endpoint="e").apply(FlowStarted("device", "e"))
    now = 1_000_000.0
    view = view.apply(DeviceCodeIssued("http://127.0.0.1:9/device", "ABCD-EFGH", now + 599, 5.0))
    assert "9:59" in view.status_line(now)
    limited = view.with_deadline(now + 8)
    assert "0:08" in limited.status_line(now) and "9:59" not in limited.status_line(now)
    assert view.with_deadline(now + 900).status_line(now) == view.status_line(now)  # the code ends first


def test_timeout_flag_drives_the_panel_countdown(nb, fake):
    ip, _ = nb
    session = started(ip, "%flyte_login --endpoint http://127.0.0.1:9 --timeout 8", fake, 1)
    wait_until(lambda: session.view.timeout_at is not None, 5, "the deadline in the view")
    line = session.view.status_line()
    assert "0:0" in line and "4:59" not in line, line  # the fake's code lives 300 s
    session.cancel()


def test_subtitle_after_an_error_before_a_flow_was_chosen(nb, monkeypatch):
    def unreachable(spec, observer):
        raise TransportError("Could not connect to 127.0.0.1:9; is the server running?")

    monkeypatch.setattr(connect_module, "prepare", unreachable)
    ip, _ = nb
    ip.run_cell("%flyte_login --endpoint http://127.0.0.1:9").raise_error()
    session = ip.user_ns["flyte_auth"]
    wait_until(lambda: session.status == "error", 5, "the error")
    assert "choosing a sign-in method" not in session.view.flow_line()
    assert "choosing a sign-in method" not in session.widget.title.value


def test_wait_after_a_denied_login_raises_one_sentence_with_a_short_traceback(nb, fake):
    ip, _ = nb
    session = started(ip, "%flyte_login --endpoint http://127.0.0.1:9", fake, 1)
    fake.latest(1).deny()
    with pytest.raises(AccessDeniedError) as caught:
        session.wait(10)
    exc = caught.value
    assert str(exc) == "The sign-in to 127.0.0.1:9 was denied."
    assert exc.__cause__ is None and exc.__suppress_context__
    frames = traceback.extract_tb(exc.__traceback__)
    assert [f.name for f in frames][1:] == ["wait"], [f.name for f in frames]  # the test, wait(); no flow frames
    # what a user sees for `flyte_auth.wait()` in a cell: the sentence, a few lines of traceback
    shown = "".join(traceback.format_exception(exc))
    assert shown.count("\n") <= 8, shown


def test_cancel_during_wait_says_cancelled_by_the_user_and_how_to_retry(nb, fake):
    ip, _ = nb
    session = started(ip, "%flyte_login --endpoint http://127.0.0.1:9", fake, 1)
    start = time.monotonic()
    threading_cancel = __import__("threading").Timer(0.2, session.cancel)
    threading_cancel.start()
    try:
        with pytest.raises(LoginCancelledError) as caught:
            session.wait(30)
    finally:
        threading_cancel.join(5)
    assert time.monotonic() - start < 30
    message = str(caught.value)
    assert "cancelled by the user" in message and "flyte_auth.retry()" in message and len(message) <= 500
