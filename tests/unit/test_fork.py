"""A process forked while a sign-in or refresh runs (issue 16.8): in the child, the parent's flights
and waiters end at once with a typed error, no lock a parent thread held at fork time blocks, and the
next call starts afresh. Real ``os.fork()``; the child reports through a pipe and leaves with
``os._exit``; the parent waits for it with a bound and kills it when it hangs."""

from __future__ import annotations

import json
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from flyteauth_jupyter.authenticators import Authenticator
from flyteauth_jupyter.control import run_in_background
from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.stores import MemoryStore
from rig import rules

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")

SERVICE = "127.0.0.1:30080"
CHILD_BOUND = 20.0  # seconds the parent gives a child before it is killed as hung
PARENT = os.getpid()


def in_child(body: Callable[[], Any]) -> Any:
    """Run ``body`` in a forked child; return what it returned, or raise AssertionError with what it
    raised, or with "hung" when it did not answer within CHILD_BOUND."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            try:
                answer = ["ok", body()]
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                answer = ["raised", f"{type(exc).__name__}: {exc}"]
            os.write(write, json.dumps(answer).encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], CHILD_BOUND)
        data = os.read(read, 65536) if ready else b""
    finally:
        os.close(read)
        if not data:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    if not data:
        raise AssertionError(f"the forked child hung for {CHILD_BOUND:g} s")
    status, value = json.loads(data)
    if status != "ok":
        raise AssertionError(f"the forked child raised {value}")
    return value


def raises_at_once(call: Callable[[], Any]) -> str:
    """The name of what ``call`` raised ("returned" when it did not)."""
    try:
        call()
    except BaseException as exc:  # noqa: BLE001
        return type(exc).__name__
    return "returned"


class Blocking(Authenticator):
    """A refresh grant that, in the parent only, waits for the test to release it."""

    def __init__(self, store: Any) -> None:
        super().__init__(SERVICE, "authorization", insecure=True, store=store)
        self.started, self.release = threading.Event(), threading.Event()

    def _refresh_grant(self, creds: Credentials) -> Credentials:
        if os.getpid() == PARENT:
            self.started.set()
            assert self.release.wait(30), "the test never released the refresh"
            return Credentials("AT-parent", "RT-parent", SERVICE, expires_in=600)
        return Credentials("AT-child", "RT-child", SERVICE, expires_in=600)


def test_a_refresh_in_flight_ends_at_once_in_the_child_and_the_next_call_starts_afresh(reliability_rule: Any) -> None:
    store = MemoryStore()
    store.save(SERVICE, Credentials("AT-old", "RT-old", SERVICE, expires_at=time.time() - 10))
    auth = Blocking(store)
    refresher = threading.Thread(target=lambda: auth.refresh_credentials(interactive=False), daemon=True)
    refresher.start()
    assert auth.started.wait(10)  # a parent thread is inside the flight, holding the store's lock
    holding, letgo = threading.Event(), threading.Event()

    def hold_state_lock() -> None:
        with auth._state_lock:
            holding.set()
            letgo.wait(30)

    holder = threading.Thread(target=hold_state_lock, daemon=True)
    holder.start()
    assert holding.wait(10)  # ... and another holds the state lock at the moment of the fork
    try:
        def child() -> list[Any]:
            waited = raises_at_once(lambda: auth.wait(timeout=5))
            renewed = auth.refresh_credentials(interactive=False).access_token
            saved = store.load(SERVICE)
            return [waited, renewed, auth.get_credentials().access_token, saved and saved.access_token]

        assert in_child(child) == ["InterruptedByForkError", "AT-child", "AT-child", "AT-child"]
    finally:
        letgo.set()
        auth.release.set()
    refresher.join(10)
    holder.join(10)
    assert auth.get_credentials().access_token == "AT-parent"  # the parent's flight went on
    reliability_rule(rules.FORK, "fork while a refresh is in flight and another thread holds the state lock",
                     "wait() raises InterruptedByForkError at once; the next refresh works in the child")


def test_a_background_future_ends_at_once_in_the_child() -> None:
    release = threading.Event()
    future = run_in_background(lambda: release.wait(30), name="flyteauth-test")
    try:
        assert in_child(lambda: raises_at_once(lambda: future.result(5))) == "InterruptedByForkError"
    finally:
        release.set()
    assert future.result(10) is True


class SlowLogin:
    """An authenticator whose interactive sign-in, in the parent only, waits for the test."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.creds: Credentials | None = None

    def get_credentials(self) -> Credentials | None:
        return self.creds

    def refresh_credentials(self, *, interactive: bool = True) -> Credentials:
        if os.getpid() == PARENT:
            assert self.release.wait(30), "the test never released the sign-in"
        self.creds = Credentials(f"AT-{os.getpid()}", None, SERVICE, expires_in=600)
        return self.creds

    def fetch_grpc_call_auth_metadata(self) -> tuple[str, str]:
        return ("authorization", f"Bearer AT-{os.getpid()}")


def test_a_sign_in_in_progress_ends_at_once_in_the_child_and_retry_starts_afresh(reliability_rule: Any) -> None:
    from flyteauth_jupyter.notebook.session import LoginSession, Prepared

    release = threading.Event()
    session = LoginSession(lambda observer: Prepared(SlowLogin(release), "device"), endpoint=SERVICE, name="auth",
                           use_cache=False)
    session.start(None)
    try:
        def child() -> list[Any]:
            waited = raises_at_once(lambda: session.wait(5))
            ended = session.done
            session.retry()  # a new attempt, in the child
            mine = f"AT-{os.getpid()}"
            return [waited, ended, session.wait(5).access_token == mine, session.get_credentials().access_token == mine]

        assert in_child(child) == ["InterruptedByForkError", True, True, True]
    finally:
        release.set()
    assert session.wait(10).access_token == f"AT-{PARENT}"  # the parent's sign-in went on
    reliability_rule(rules.FORK, "fork while %flyte_login's sign-in runs in the background",
                     "session.wait() raises InterruptedByForkError at once; Retry signs in afresh in the child")


def test_a_proxy_command_run_in_flight_ends_in_the_child_and_the_next_token_runs_it_afresh(tmp_path) -> None:
    """The identity-aware proxy's credential (flyteauth_jupyter.proxy) takes part in the same fork
    handling: the parent's run has no thread in the child, so its flight ends there at once, and the
    child's token() runs the command itself instead of waiting on the parent's run."""
    from flyteauth_jupyter.proxy import ProxyCredential
    from rig.proxy import proxy_command, runs

    gate = tmp_path / "gate"
    command = proxy_command(tmp_path, "--gate", str(gate))
    credential = ProxyCredential(command)
    parent = threading.Thread(target=credential.token, daemon=True)
    parent.start()
    started = tmp_path / "gate.started"
    for _ in range(3000):  # the parent's run is waiting at the gate (bounded: 30 s)
        if started.exists() and credential._flight is not None:
            break
        time.sleep(0.01)
    assert started.exists() and credential._flight is not None
    flight = credential._flight

    def child() -> list[str]:
        held = credential._flight  # after the fork handlers ran: None
        ended = type(flight.exception(timeout=0)).__name__  # the parent's flight, ended at once
        gate.touch()  # lets the child's own run finish (and the parent's)
        token = credential.token()
        return [str(held), ended, type(token).__name__]

    assert in_child(child) == ["None", "InterruptedByForkError", "str"]
    parent.join(30)
    assert not parent.is_alive() and runs(command) == 2  # the parent's run and the child's own
