"""control.WallTimers: calls at wall-clock instants on one thread that lives only while a call is
pending, made on time, never early, at most one slice late after the wall clock jumps (a resumed
laptop), cancellable, and made at once in a forked child. Real threads; every wait is bounded."""

from __future__ import annotations

import os
import threading
import time

import pytest

from flyteauth_jupyter.control import WallTimers

BOUND = 5.0  # seconds any wait here may take at most


class WallClock:
    """Wall time that follows the real clock plus a jump the test applies (a suspend, a clock step)."""

    def __init__(self) -> None:
        self.jump = 0.0

    def __call__(self) -> float:
        return time.time() + self.jump


def ends(timers: WallTimers, thread: threading.Thread | None) -> bool:
    """Whether the timer thread ``thread`` ends within the bound (nothing is pending any more)."""
    assert thread is not None
    thread.join(BOUND)
    return not thread.is_alive() and timers._thread is None


def test_a_call_is_made_at_its_instant_and_not_before() -> None:
    timers = WallTimers(slice_seconds=1.0)
    made = threading.Event()
    made_at: list[float] = []
    due = time.time() + 0.3
    timers.add(due, lambda: (made_at.append(time.time()), made.set()))
    thread = timers._thread
    assert not made.wait(0.2)
    assert made.wait(BOUND)
    assert due <= made_at[0] < due + 0.25
    assert ends(timers, thread)


def test_after_a_jump_of_the_wall_clock_the_call_is_at_most_one_slice_late() -> None:
    clock = WallClock()
    timers = WallTimers(now=clock, slice_seconds=0.1)
    made = threading.Event()
    timers.add(clock() + 3600, made.set)  # an hour away: the thread waits in 0.1 s slices
    assert not made.wait(0.25)
    jumped = time.monotonic()
    clock.jump = 3601  # the machine slept for an hour: the monotonic wait did not count it
    assert made.wait(BOUND)
    assert time.monotonic() - jumped < 0.1 + 0.2  # one slice, and the thread's wake-up


def test_cancel_drops_the_call_and_the_thread_ends_when_nothing_is_pending() -> None:
    timers = WallTimers(slice_seconds=0.05)
    made = threading.Event()
    timer = timers.add(time.time() + 0.2, made.set)
    thread = timers._thread
    timer.cancel()
    timer.cancel()  # idempotent
    assert timers.pending() == 0
    assert ends(timers, thread)
    assert not made.wait(0.4)


def test_one_thread_serves_every_call_in_order_and_a_failing_call_does_not_stop_it() -> None:
    timers = WallTimers(slice_seconds=0.05)
    order: list[int] = []
    done = threading.Event()
    start = time.time()

    def fail() -> None:
        raise RuntimeError("boom")

    timers.add(start + 0.15, lambda: order.append(3))
    timers.add(start + 0.05, lambda: order.append(1))
    timers.add(start + 0.10, fail)
    timers.add(start + 0.10, lambda: order.append(2))
    timers.add(start + 0.20, done.set)
    assert len({t.ident for t in [timers._thread] if t is not None}) == 1
    assert done.wait(BOUND)
    assert order == [1, 2, 3]


def test_a_call_that_is_already_due_is_made_at_once() -> None:
    timers = WallTimers()
    made = threading.Event()
    timers.add(time.time() - 10, made.set)
    assert made.wait(0.5)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_makes_every_pending_call_at_once() -> None:
    from flyteauth_jupyter.control import TIMERS

    read, write = os.pipe()
    TIMERS.add(time.time() + 3600, lambda: os.write(write, b"made"))
    pid = os.fork()
    if pid == 0:  # the child: its copy of the call was made by the fork handler, in this process
        os._exit(0)
    os.close(write)
    try:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert os.read(read, 16) == b"made"
    finally:
        os.close(read)
        for timer in list(TIMERS._heap):  # the parent's call is still pending: drop it
            timer.cancel()
