"""The one place that owns time, waiting, cancellation and background threads.

Flows never call ``time.sleep`` or start threads: they are handed a :class:`Waiter` and call
``waiter.sleep(seconds)`` between polls and ``waiter.check()`` before each step. A waiter carries a
deadline (wall-clock budget of the flow) and a cancel event that another thread (the Cancel button,
``cancel()`` on an authenticator, KeyboardInterrupt handling) may set at any time; both end the flow
with a typed exception (``LoginTimeoutError``, ``LoginCancelledError``) within one poll, never later.

Background work (the notebook's non-blocking login) runs through :func:`run_in_background`, which
returns a :class:`concurrent.futures.Future`; whoever needs the result waits on that future with a
timeout. Unit tests swap :data:`Clock` for a fake one; nothing else in the package reads the clock
directly.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import LoginCancelledError, LoginTimeoutError

T = TypeVar("T")


class Clock:
    """Wall-clock time (epoch seconds) and monotonic time, with an interruptible sleep."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Block up to ``seconds`` or until ``event`` is set; return whether it was set."""
        return event.wait(max(0.0, seconds))


SYSTEM_CLOCK = Clock()


class Waiter:
    """A flow's deadline and cancel switch.

    ``deadline`` is seconds from now (None: no deadline of its own). ``what`` names the wait in the
    timeout message ("the device login", "the browser sign-in").
    """

    def __init__(
        self,
        deadline: float | None = None,
        *,
        what: str = "the login",
        clock: Clock = SYSTEM_CLOCK,
        cancel_event: threading.Event | None = None,
    ) -> None:
        self.clock = clock
        self.what = what
        self._cancel = cancel_event or threading.Event()
        self._ends_at = None if deadline is None else clock.monotonic() + deadline

    # -- cancellation -------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the flow to stop; safe from any thread, idempotent."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- deadline -----------------------------------------------------------------------------
    def remaining(self) -> float | None:
        """Seconds left before the deadline, or None when there is none."""
        if self._ends_at is None:
            return None
        return max(0.0, self._ends_at - self.clock.monotonic())

    def limit(self, seconds: float) -> float:
        """``seconds`` cut down to what is left of the deadline."""
        left = self.remaining()
        return seconds if left is None else min(seconds, left)

    def tighten(self, deadline: float) -> None:
        """Bring the deadline forward to ``deadline`` seconds from now (never pushes it back)."""
        ends_at = self.clock.monotonic() + deadline
        if self._ends_at is None or ends_at < self._ends_at:
            self._ends_at = ends_at

    def check(self) -> None:
        """Raise if the flow was cancelled or its deadline has passed."""
        if self._cancel.is_set():
            raise LoginCancelledError(f"{self.what[:1].upper()}{self.what[1:]} was cancelled.")
        left = self.remaining()
        if left is not None and left <= 0:
            raise LoginTimeoutError(
                f"{self.what[:1].upper()}{self.what[1:]} did not finish in time; run the login again."
            )

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (cut to the deadline), waking at once on cancel; then :meth:`check`."""
        self.check()
        self.clock.wait(self._cancel, self.limit(seconds))
        self.check()

    def wait_for(self, event: threading.Event, seconds: float | None = None) -> bool:
        """Wait until ``event`` is set, the deadline passes or the flow is cancelled.

        Returns True when the event was set; polls at most every 0.1 s so a cancel is seen promptly.
        """
        ends = None if seconds is None else self.clock.monotonic() + seconds
        while not event.is_set():
            self.check()
            step = self.limit(0.1)
            if ends is not None:
                left = ends - self.clock.monotonic()
                if left <= 0:
                    return event.is_set()
                step = min(step, left)
            event.wait(max(step, 0.0))
        return True


def run_in_background(fn: Callable[..., T], *args: Any, name: str = "flyteauth", **kwargs: Any) -> concurrent.futures.Future[T]:
    """Run ``fn(*args, **kwargs)`` in a daemon thread; return a Future with its result or exception."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(exc)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
