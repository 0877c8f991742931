"""The one place that owns time, waiting, cancellation and background threads.

Flows never call ``time.sleep`` or start threads: they are handed a :class:`Waiter` and call
``waiter.sleep(seconds)`` between polls and ``waiter.check()`` before each step. A waiter carries a
deadline (wall-clock budget of the flow) and a cancel event that another thread (the Cancel button,
``cancel()`` on an authenticator, KeyboardInterrupt handling) may set at any time; both end the flow
with a typed exception (``LoginTimeoutError``, ``LoginCancelledError``) within one poll, never later.

There are no timers: whatever depends on the wall clock (a token's freshness, in ``lifecycle``)
reads it when asked (:meth:`Clock.reader`), so nothing of ours runs while a kernel is idle, and a
machine that slept past an instant is never late for it.

Background work (the notebook's non-blocking login) runs through :func:`run_in_background`, which
returns a :class:`concurrent.futures.Future`; whoever needs the result waits on that future with a
timeout (:func:`wait_future`). Unit tests swap :data:`Clock` for a fake one; nothing else in the
package reads the clock directly.

A forked child (:func:`survive_fork`, :func:`end_in_child`): a process forked while a sign-in or
refresh runs inherits its half-finished state but not the threads that would finish it, nor the
owners of the locks they held. After a fork, in the child only, every unfinished future of
:func:`run_in_background` and every flight of the objects registered here (held weakly; they
re-create their locks in ``_after_fork_in_child()``) end at once with
:class:`~flyteauth_jupyter.errors.InterruptedByForkError`; the next call starts afresh. Module-level
locks register a hook with :func:`at_fork_in_child`. The kernel's sockets are the parent's, so in a
child no :class:`CommPump` runs.

Waiting in a kernel cell (:class:`CommPump`): while a Jupyter cell blocks on a login, the panel's
button clicks and the paste field arrive as ``comm_msg`` requests that ipykernel would only handle
after the cell. :func:`wait_future` called on the kernel's main thread therefore drains the main
shell's pending requests every 50 ms: comm messages are handled at once (exactly as ipykernel 7
itself dispatches comms during an *async* cell: ``dispatch_shell(..., concurrent=True)``'s path,
parent restored afterwards), and every other request (another cell's ``execute_request``,
``kernel_info_request``, ...) is held back and handed to the kernel's own dispatcher, in arrival
order, when the wait ends, so it queues behind the running cell as usual. This is jupyter-ui-poll's
technique; that library calls ``kernel.do_one_iteration()``, which ipykernel 7 no longer has (its
error is swallowed, so nothing would be processed): see docs/architecture.md. The kernel is found
through ``sys.modules`` (no IPython or ipykernel import here); outside a kernel, off the main
thread, in a kernel without the expected parts, or nested inside a comm handler, the wait is a
plain wait.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import InterruptedByForkError, LoginCancelledError, LoginTimeoutError

T = TypeVar("T")

log = logging.getLogger(__name__)


class Clock:
    """Wall-clock time (epoch seconds) and monotonic time, with an interruptible sleep.

    Tests swap in a subclass with a ``time()``/``monotonic()`` of their own (a fake or skewed clock).
    """

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Block up to ``seconds`` or until ``event`` is set; return whether it was set."""
        return event.wait(max(0.0, seconds))

    def reader(self) -> Callable[[], float]:
        """The cheapest zero-argument function that reads this clock's wall time, for code that reads
        it on every call (the token lifecycle's hot path): ``time.time`` itself for the system clock
        (no Python frame), else this clock's own ``time``."""
        return time.time if type(self).time is Clock.time else self.time


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
    """Run ``fn(*args, **kwargs)`` in a daemon thread; return a Future with its result or exception.

    In a child forked before it ends, the Future ends at once with InterruptedByForkError."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(exc)

    _BACKGROUND[future] = name
    future.add_done_callback(_forget)
    threading.Thread(target=target, name=name, daemon=True).start()
    return future


# ------------------------------------------------------------------------------------------------
# a forked child
# ------------------------------------------------------------------------------------------------
#: objects whose ``_after_fork_in_child()`` runs in a forked child (held weakly)
_FORK_AWARE: weakref.WeakSet[Any] = weakref.WeakSet()
#: module-level hooks run in a forked child (module locks re-created), in the order registered
_FORK_HOOKS: list[Callable[[], object]] = []
#: the unfinished futures of run_in_background (held weakly) and the names of their threads
_BACKGROUND: weakref.WeakKeyDictionary[concurrent.futures.Future[Any], str] = weakref.WeakKeyDictionary()
#: True in a process forked from the one that imported this module
FORKED_CHILD = False


def _forget(future: concurrent.futures.Future[Any]) -> None:
    _BACKGROUND.pop(future, None)


def survive_fork(obj: Any) -> None:
    """Have ``obj._after_fork_in_child()`` called in a child forked from this process (``obj`` held
    weakly): it re-creates its locks and ends its flights with :func:`end_in_child`."""
    _FORK_AWARE.add(obj)


def at_fork_in_child(hook: Callable[[], object]) -> None:
    """Call ``hook()`` in a forked child, after the objects' own handlers (module-level state)."""
    _FORK_HOOKS.append(hook)


def end_in_child(future: concurrent.futures.Future[Any], what: str) -> None:
    """End ``future``, inherited unfinished by a forked child, with InterruptedByForkError naming
    ``what`` ("the sign-in to host:port"). Its condition's lock is re-created first: a parent thread
    may have held it at the moment of the fork."""
    if future.done():
        return
    future._condition = threading.Condition()  # type: ignore[attr-defined]  # CPython's own attribute
    try:
        future.set_exception(InterruptedByForkError(
            f"This process was forked while {what} was in progress; it goes on in the parent process "
            "only, so call again to start afresh here."
        ))
    except concurrent.futures.InvalidStateError:
        pass  # it ended after all


def _after_fork_in_child() -> None:
    global FORKED_CHILD
    FORKED_CHILD = True
    for obj in list(_FORK_AWARE):
        try:
            obj._after_fork_in_child()
        except Exception:  # noqa: BLE001 - one object must not stop the others
            log.debug("after-fork handler failed", exc_info=True)
    for future, name in list(_BACKGROUND.items()):
        end_in_child(future, f"the background job {name}")
    _BACKGROUND.clear()
    for hook in _FORK_HOOKS:
        try:
            hook()
        except Exception:  # noqa: BLE001
            log.debug("after-fork hook failed", exc_info=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ------------------------------------------------------------------------------------------------
# waiting on a future, keeping a Jupyter kernel's comm messages flowing
# ------------------------------------------------------------------------------------------------
#: how often a blocking wait in a kernel cell handles the panel's pending comm messages (seconds)
PUMP_STEP = 0.05
COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})


class CommPump:
    """Handles a running kernel's pending comm requests while its main thread is blocked in a cell.

    ``CommPump.current()`` is None unless called on the main thread of an ipykernel (7+: the main
    shell's inproc socket from the shell-channel thread; 6: the shell socket itself). Use as a
    context manager; :meth:`pump` handles what is pending and returns at once; leaving the context
    hands every held-back request to the kernel's dispatcher, in order.
    """

    _active = threading.local()

    def __init__(self, kernel: Any, stream: Any) -> None:
        self.kernel = kernel
        self.stream = stream  # the ZMQStream the kernel's main thread reads requests from
        self.socket = stream.socket
        self.held: list[Any] = []
        self.handled = 0

    @classmethod
    def current(cls) -> CommPump | None:
        if FORKED_CHILD or threading.current_thread() is not threading.main_thread() or getattr(
            cls._active, "on", False
        ):
            return None  # (in a forked child the kernel's sockets are the parent's)
        kernelbase = sys.modules.get("ipykernel.kernelbase")
        kernel_class = getattr(kernelbase, "Kernel", None)
        try:
            if kernel_class is None or not kernel_class.initialized():
                return None
            kernel = kernel_class.instance()
            parent = kernel.get_parent("shell") if hasattr(kernel, "get_parent") else {}
            if (parent or {}).get("header", {}).get("subshell_id"):
                return None  # a cell in a subshell: its own thread, not the main shell's socket
            channel = getattr(kernel, "shell_channel_thread", None)
            if channel is not None:
                pair = getattr(channel.manager, "_shell_channel_to_main", None)
                stream = getattr(pair, "to_stream", None)
            else:
                stream = getattr(kernel, "shell_stream", None)
            needed = ("session", "shell_handlers", "shell_main", "set_parent", "io_loop")
            if getattr(stream, "socket", None) is None or not all(hasattr(kernel, name) for name in needed):
                return None
        except Exception:  # noqa: BLE001 - a kernel we do not know: wait plainly
            log.debug("no comm pump for this kernel", exc_info=True)
            return None
        return cls(kernel, stream)

    def __enter__(self) -> CommPump:
        CommPump._active.on = True
        return self

    def __exit__(self, *exc: object) -> None:
        CommPump._active.on = False
        self._release()

    def pump(self, limit: int = 20) -> int:
        """Handle up to ``limit`` pending requests (comms now, others held); return how many were read."""
        import zmq  # ipykernel's own dependency, present whenever a kernel is

        count = 0
        for _ in range(limit):  # bounded per step
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=getattr(self.stream, "_recv_copy", False))
            except zmq.Again:
                break
            count += 1
            if self._is_comm(frames):
                self._dispatch_comm(frames)
            else:
                self.held.append(frames)
        return count

    def _is_comm(self, frames: list[Any]) -> bool:
        try:
            session = self.kernel.session
            _, rest = session.feed_identities(frames, copy=False)
            header = session.deserialize(rest, content=False, copy=False)["header"]
            return header.get("msg_type") in COMM_TYPES
        except Exception:  # noqa: BLE001 - not ours to judge: the kernel's dispatcher will log it
            return False

    def _dispatch_comm(self, frames: list[Any]) -> None:
        kernel = self.kernel
        parent = kernel.get_parent("shell")
        ident_var = getattr(kernel, "_shell_parent_ident", None)
        ident = kernel._get_shell_context_var(ident_var) if ident_var is not None and hasattr(
            kernel, "_get_shell_context_var") else None
        try:
            idents, rest = kernel.session.feed_identities(frames, copy=False)
            msg = kernel.session.deserialize(rest, content=True, copy=False)
            kernel.set_parent(idents, msg, channel="shell")
            handler = kernel.shell_handlers.get(msg["header"]["msg_type"])
            if handler is not None:
                stream = getattr(kernel, "shell_stream", None)
                result = handler(stream, idents, msg)
                if hasattr(result, "close"):  # a coroutine we cannot drive from a blocked loop
                    result.close()
                self.handled += 1
        except Exception:  # noqa: BLE001 - as the kernel does: log, never into the waiting cell
            log.warning("A widget message could not be handled during the wait.", exc_info=True)
        finally:
            try:
                kernel.set_parent(ident, parent, channel="shell")
            except Exception:  # noqa: BLE001
                log.debug("could not restore the cell's parent", exc_info=True)

    def _release(self) -> None:
        """Hand the held-back requests to the kernel's dispatcher (they run after the current cell)."""
        held, self.held = self.held, []
        # the stream's own callback (ipykernel's persistent context, the same code path as always)
        callback = getattr(self.stream, "_recv_callback", None)
        for frames in held:
            if callable(callback):
                self.kernel.io_loop.add_callback(callback, frames)
            else:
                self.kernel.io_loop.add_callback(self.kernel.shell_main, None, frames)
        # we read the socket behind the stream's back: let it look again once the loop runs
        recheck = getattr(self.stream, "_handle_events", None)
        if callable(recheck):
            self.kernel.io_loop.add_callback(recheck, self.socket, 0)


def wait_future(
    future: concurrent.futures.Future[T],
    timeout: float,
    *,
    clock: Clock = SYSTEM_CLOCK,
    step: float = PUMP_STEP,
) -> T:
    """``future.result(timeout)``; in a blocked kernel cell, the panel's comm messages are handled
    every ``step`` seconds meanwhile (see :class:`CommPump`). Raises ``concurrent.futures.TimeoutError``."""
    pump = CommPump.current()
    if pump is None:
        return future.result(max(0.0, timeout))
    ends = clock.monotonic() + max(0.0, timeout)
    with pump:
        for _ in range(int(max(0.0, timeout) / step) + 2):  # bounded by the timeout
            pump.pump()
            left = ends - clock.monotonic()
            if future.done() or left <= 0:
                break
            try:
                return future.result(min(step, left))
            except concurrent.futures.TimeoutError:
                continue
    return future.result(0)
