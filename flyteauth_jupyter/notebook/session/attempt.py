"""The pieces of one sign-in attempt: what ``prepare`` returns (:class:`Prepared`), the cell it runs
for (:class:`CellContext`: ipykernel routes output by the thread's parent), the attempt itself
(:class:`Attempt`: cancel switch, done event, future) and how long a wait may last."""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...credentials import Credentials
from ...errors import FlyteAuthError, LoginCancelledError, one_line

log = logging.getLogger("flyteauth_jupyter.notebook.session")

#: how long wait()/get_credentials() wait when the login has no timeout of its own (seconds)
DEFAULT_WAIT = 900.0
#: extra time granted beyond the login's own deadline before wait() gives up
WAIT_MARGIN = 30.0


@dataclass
class Prepared:
    """What ``prepare(observer)`` returns: the real authenticator and the flow it runs, with the reason."""

    authenticator: Any
    flow: str
    reason: str = ""
    notice: str | None = None


class CellContext:
    """The context of the cell that started a login, re-entered by background threads."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.context = contextvars.copy_context()
        getter = getattr(shell, "get_parent", None)
        parent = None
        if callable(getter):
            try:
                parent = getter()
            except Exception:  # noqa: BLE001 - not every shell has a parent
                parent = None
        self.parent = parent or None

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.context.copy().run(self._with_parent, fn, *args)

    def _with_parent(self, fn: Callable[..., Any], *args: Any) -> Any:
        tokens = None
        setter = getattr(self.shell, "set_thread_parent", None)
        if self.parent and callable(setter):
            try:
                tokens = setter(self.parent)
            except Exception:  # noqa: BLE001
                tokens = None
        try:
            return fn(*args)
        finally:
            if tokens is not None:
                try:
                    self.shell.reset_thread_parent(tokens)
                except Exception:  # noqa: BLE001
                    pass


class Attempt:
    def __init__(self, number: int) -> None:
        self.number = number
        self.cancel_event = threading.Event()
        self.done_event = threading.Event()
        self.inner: Any = None
        self.saw_refresh = False
        self.skip_cache = False  # a retry because the server rejected the saved token: never reuse it
        #: "the sign-in started in cell [7]" when a new %flyte_login replaced this one
        self.replaced_by: str | None = None
        #: a retry of the session superseded this attempt: its end changes neither the view nor the name
        self.retried = False
        #: where the name points after this attempt failed ("`flyte_auth` still refers to your earlier
        #: sign-in to h:p (as alice)"), when the magic gave it back to an earlier sign-in
        self.kept: str | None = None
        #: epoch seconds when ``--timeout`` ends the interactive flow (None: no timeout)
        self.deadline: float | None = None
        self.future: concurrent.futures.Future[Credentials] | None = None

    def cancel(self) -> None:
        self.cancel_event.set()
        inner = self.inner
        if inner is not None and hasattr(inner, "cancel"):
            try:
                inner.cancel()
            except Exception:  # noqa: BLE001 - cancelling must never raise into a button handler
                log.debug("cancel failed", exc_info=True)

    def check(self, what: str) -> None:
        if self.cancel_event.is_set():
            raise LoginCancelledError(f"The sign-in to {what} was cancelled.")


def shortened(exc: FlyteAuthError) -> FlyteAuthError:
    """``exc`` without the background flow's frames and chain, shown by IPython as its one line
    (``errors.one_line``): the waiting cell gets the sign-in's own typed exception, not a traceback."""
    log.debug("the sign-in failed", exc_info=exc)
    exc.__traceback__ = None
    exc.__cause__ = None
    exc.__context__ = None
    exc.__suppress_context__ = True
    return one_line(exc)


def with_sentence(exc: FlyteAuthError, sentence: str) -> FlyteAuthError:
    """``exc`` with one more sentence at the end of its message (clipped as every message is); its
    type and attributes (``.error``, ``.status``) stay. Called once, by the thread that raises it."""
    FlyteAuthError.__init__(exc, f"{exc} {sentence}")
    return exc


def usable(creds: Credentials | None, now: float) -> bool:
    if creds is None or not getattr(creds, "access_token", None):
        return False
    left = creds.lifetime_left(now) if hasattr(creds, "lifetime_left") else None
    return left is None or left > 0
