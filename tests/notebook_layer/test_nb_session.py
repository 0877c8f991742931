"""LoginSession with a scripted authenticator: non-blocking start, waiting, cancel, retry, cache."""

from __future__ import annotations

import threading

import pytest
from nb_fakes import SECRET_ACCESS, FakeAuthenticator, wait_until

from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.errors import (
    AccessDeniedError,
    AccessTokenNotFoundError,
    ConfigurationError,
    LoginCancelledError,
    LoginTimeoutError,
)
from flyteauth_jupyter.notebook.session import LoginSession, Prepared


class Recorder:
    """A display that records the views it was given."""

    def __init__(self):
        self.views = []
        self.shown = 0
        self.redisplayed = 0
        self.ticks = 0

    def show(self, view):
        self.shown += 1
        self.views.append(view)

    def update(self, view):
        self.views.append(view)

    def tick(self, view):
        self.ticks += 1

    def redisplay(self, view):
        self.redisplayed += 1

    def phases(self):
        out = []
        for view in self.views:
            if not out or out[-1] != view.phase:
                out.append(view.phase)
        return out


def make(**fake_kwargs):
    built = []
    ready = threading.Event()

    def prepare(observer):
        fake = FakeAuthenticator(observer, **fake_kwargs)
        built.append(fake)
        ready.set()
        return Prepared(fake, "device", "test")

    recorder = Recorder()
    session = LoginSession(prepare, endpoint="127.0.0.1:9", name="auth", display=recorder, timeout=30)
    return session, built, recorder


def started_fake(built, index=0):
    wait_until(lambda: len(built) > index and built[index].started.is_set(), what="the fake flow to start")
    return built[index]


def test_start_returns_at_once_and_wait_gets_the_token():
    session, built, recorder = make()
    session.start()
    fake = started_fake(built)
    assert not session.done and session.status == "waiting"
    assert session.view.user_code == "WDJB-MJHT"
    fake.approve()
    creds = session.wait(10)
    assert creds.access_token == SECRET_ACCESS
    assert session.status == "signed_in" and session.view.subject == "alice"
    assert recorder.phases() == ["starting", "waiting", "signed_in"]
    assert session.get_credentials() is creds
    assert session.fetch_grpc_call_auth_metadata() == ("authorization", f"Bearer {SECRET_ACCESS}")
    # the real authenticator is at hand, and the repr holds no token
    assert session.authenticator.user_code == "WDJB-MJHT"
    assert SECRET_ACCESS not in repr(session) and "signed_in" in repr(session)


def test_get_credentials_waits_for_the_login_in_progress():
    session, built, _ = make()
    session.start()
    fake = started_fake(built)
    results = []
    waiter = threading.Thread(target=lambda: results.append(session.get_credentials()))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and not results  # blocked while the user has not approved
    fake.approve()
    waiter.join(10)
    assert results and results[0].access_token == SECRET_ACCESS


def test_wait_timeout_is_bounded():
    session, built, _ = make()
    session.start()
    started_fake(built)
    with pytest.raises(LoginTimeoutError, match="still in progress"):
        session.wait(0.05)
    session.cancel()


def test_denied_login_raises_on_wait_and_shows_denied():
    session, built, recorder = make()
    session.start()
    started_fake(built).deny()
    with pytest.raises(AccessDeniedError):
        session.wait(10)
    assert session.status == "denied" and session.view.user_code is None
    with pytest.raises(AccessDeniedError):
        session.get_credentials()


def test_cancel_then_retry():
    session, built, recorder = make()
    session.start()
    started_fake(built)
    session.cancel()
    with pytest.raises(LoginCancelledError):
        session.wait(10)
    assert session.status == "cancelled"
    session.retry()
    fake = started_fake(built, 1)
    assert session.view.attempt == 2 and session.status == "waiting"
    fake.approve()
    assert session.wait(10).access_token == SECRET_ACCESS
    assert recorder.phases()[-3:] == ["starting", "waiting", "signed_in"]


def test_retry_while_waiting_supersedes_the_old_attempt():
    session, built, _ = make()
    session.start()
    old = started_fake(built)
    results = []
    waiter = threading.Thread(target=lambda: results.append(session.wait(10)))
    waiter.start()
    session.retry()
    new = started_fake(built, 1)
    wait_until(lambda: old.waiter.cancelled, what="the old attempt to be cancelled")
    new.approve()
    waiter.join(10)
    assert results and results[0].access_token == SECRET_ACCESS  # the waiter followed the retry
    assert session.status == "signed_in"


def test_cached_token_signs_in_without_a_flow():
    cached = Credentials("cached-SECRET-token", None, "127.0.0.1:9", expires_in=3600)
    session, built, recorder = make(cached=cached)
    session.start()
    assert session.wait(10) is cached
    assert built[0].interactive_calls == 0
    assert session.view.flow == "cached" and "still valid" in session.view.flow_reason
    assert "waiting" not in recorder.phases()


def test_expired_cache_without_refresh_token_runs_the_flow():
    cached = Credentials("old", None, "127.0.0.1:9", expires_in=-10)
    session, built, _ = make(cached=cached)
    session.start()
    started_fake(built).approve()
    assert session.wait(10).access_token == SECRET_ACCESS
    assert built[0].interactive_calls == 1


def test_use_cache_false_always_runs_the_flow():
    cached = Credentials("cached", None, "127.0.0.1:9", expires_in=3600)
    built = []

    def prepare(observer):
        built.append(FakeAuthenticator(observer, cached=cached))
        return Prepared(built[-1], "device", "t")

    session = LoginSession(prepare, endpoint="127.0.0.1:9", use_cache=False)
    session.start()
    started_fake(built).approve()
    assert session.wait(10).access_token == SECRET_ACCESS


def test_prepare_failure_is_shown_and_raised():
    def prepare(observer):
        raise ConfigurationError("The server at h:1 advertises neither an authorization endpoint nor a device endpoint.")

    recorder = Recorder()
    session = LoginSession(prepare, endpoint="h:1", display=recorder)
    session.start()
    with pytest.raises(ConfigurationError):
        session.wait(10)
    assert session.status == "error" and "neither" in session.view.message


def test_refresh_credentials_uses_refresh_grant_then_relogin_here():
    session, built, recorder = make()
    session.start()
    started_fake(built).approve()
    session.wait(10)
    refreshed = session.refresh_credentials()
    assert refreshed.access_token == SECRET_ACCESS + "-r" and built[0].refresh_calls == 1
    assert session.status == "signed_in"
    # refresh token dead: a new sign-in is shown in the current cell and waited for
    built[0].refresh_token_ok = False
    results = []
    worker = threading.Thread(target=lambda: results.append(session.refresh_credentials()))
    worker.start()
    started_fake(built, 1).approve()
    worker.join(10)
    assert results and results[0].access_token == SECRET_ACCESS
    assert recorder.redisplayed == 1
    built[1].refresh_token_ok = False
    with pytest.raises(AccessTokenNotFoundError):
        session.refresh_credentials(interactive=False)


def test_logout_cancels_and_clears():
    session, built, _ = make()
    session.start()
    started_fake(built).approve()
    session.wait(10)
    session.logout()
    assert built[0].logged_out and session.status == "signed_out"


def test_wait_before_start_raises():
    session = LoginSession(lambda observer: None, endpoint="h:1")
    with pytest.raises(AccessTokenNotFoundError, match="run %flyte_login"):
        session.wait(1)


def _goes_straight_to(session, inner):
    """A call goes straight to ``inner`` (the lock-free check of the session's hot path passes)."""
    return session._finished is inner


def _waits_first(session):
    return session._finished is None


class NoLock:
    """A lock that fails the test when taken."""

    def __enter__(self):
        raise AssertionError("the session's hot path took its lock")

    def __exit__(self, *exc):
        pass

    acquire = release = __enter__


def test_a_finished_session_forwards_and_every_change_makes_it_wait_again():
    session, built, _ = make()
    session.start()
    started_fake(built).approve()
    session.wait(10)
    assert _waits_first(session)  # wait() alone binds nothing
    assert session.get_credentials().access_token == SECRET_ACCESS
    assert _goes_straight_to(session, built[0])  # later calls are the authenticator's own methods
    lock, session._lock = session._lock, NoLock()
    for _ in range(20):  # the hot path: a lock-free check, then the authenticator's own
        assert session.get_credentials().access_token == SECRET_ACCESS
        assert session.fetch_grpc_call_auth_metadata() is not None
    session._lock = lock

    # a retry: the class's methods again, and they wait for the new attempt
    session.retry()
    assert _waits_first(session)
    fake = started_fake(built, 1)
    results = []
    waiter = threading.Thread(target=lambda: results.append(session.get_credentials()))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and not results  # waiting for the new sign-in, not the old authenticator
    fake.approve()
    waiter.join(10)
    assert results and results[0].access_token == SECRET_ACCESS
    assert session.fetch_grpc_call_auth_metadata() is not None
    assert _goes_straight_to(session, built[1]) and not _goes_straight_to(session, built[0])

    # an inner refresh changes the view: calls wait again until the next call has waited again
    session.refresh_credentials()
    assert _waits_first(session)
    assert session.get_credentials().access_token == SECRET_ACCESS + "-r"
    assert _goes_straight_to(session, built[1])

    # a cancel of the finished attempt, and a logout: calls wait again; the class's methods answer
    session.cancel()
    assert _waits_first(session)
    session.get_credentials()
    assert _goes_straight_to(session, built[1])
    session.logout()
    assert _waits_first(session) and session.status == "signed_out"


def test_the_countdown_thread_ends_with_the_attempt():
    """Issue 19.1: a signed-in, idle kernel runs nothing of ours (the 1-second ticker ends with its attempt)."""
    session, built, _ = make()
    session.start()
    started_fake(built).approve()
    session.wait(10)
    ours = [t for t in threading.enumerate() if t.name.startswith("flyteauth")]
    for thread in ours:
        thread.join(5)
    assert not [t.name for t in ours if t.is_alive()]
    session.get_credentials()
    session.fetch_grpc_call_auth_metadata()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("flyteauth")]


def test_failed_attempt_leaves_the_session_waits_first():
    session, built, _ = make()
    session.start()
    started_fake(built).approve()
    session.wait(10)
    session.get_credentials()
    assert _goes_straight_to(session, built[0])
    session.retry()
    started_fake(built, 1).deny()
    with pytest.raises(AccessDeniedError):
        session.get_credentials()
    assert _waits_first(session)
    with pytest.raises(AccessDeniedError):
        session.fetch_grpc_call_auth_metadata()
    assert _waits_first(session)
