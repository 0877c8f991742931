"""``LoginSession``: the object ``%flyte_login`` binds to ``--name``, a waitable authenticator.

Thread model
------------
``%flyte_login`` builds a session and calls :meth:`LoginSession.start` in the cell. ``start`` captures
the cell's context (``contextvars.copy_context()``, which holds ipykernel's per-request parent header)
and the parent message (``get_ipython().get_parent()``) and hands one *attempt* to
:func:`flyteauth_jupyter.control.run_in_background`. The attempt's thread runs inside a copy of that
context and, where ipykernel has it (7+), ``shell.set_thread_parent(parent)``: every widget and display
update it makes is attributed to the cell that started the login (ipykernel 7 routes output by the
thread's parent; see DESIGN.md, Known pitfalls). ``set_parent()`` itself is *not* called from the
thread: it changes the kernel-wide parent and would steal the output of whatever cell runs then.

A second background job per attempt ticks the countdown once a second; it ends with the attempt
(it waits on the attempt's ``done_event``), so a signed-in, idle kernel runs nothing of ours.

The attempt: build the authenticator (``prepare``: may read the server's configuration), use a
cached token if one is valid (no prompt, no device request), else run the interactive flow with the
session as observer. Its :class:`concurrent.futures.Future` is what :meth:`wait`,
:meth:`get_credentials` and :meth:`fetch_grpc_call_auth_metadata` wait on, so a later cell (Run All,
papermill) blocks until the login ends, with a bound. Once a wait has returned for the current
attempt and view (``_finished``), a call is one lock-free check and the authenticator's own hot path. :meth:`cancel` (the Cancel button) stops the flow
within one poll; :meth:`retry` starts a new attempt without blocking (the Retry button runs in the
kernel's main thread). Events of a superseded attempt are ignored.

Paste-back: while a browser (PKCE) sign-in waits, :meth:`submit_redirect` hands the address the
user's browser ended on to the attempt's authenticator (from code, or through the panel's Submit,
:meth:`handle_paste`). It returns at once: the receiver only checks the address and wakes the
attempt, whose background thread exchanges the code. A refused paste is shown in the status line
and the sign-in keeps waiting. The pasted text is kept nowhere.

A forked child (``control.survive_fork``): a sign-in in progress at the fork goes on in the parent
only; in the child its attempt ends at once (``InterruptedByForkError`` from :meth:`wait`), the lock
is re-created, the panel stays the parent's (no display), and :meth:`retry` starts afresh.

Nothing here holds a secret in an attribute that a repr shows; ``repr(session)`` names the endpoint,
flow, phase and subject only.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..control import SYSTEM_CLOCK, Clock, end_in_child, run_in_background, survive_fork, wait_future
from ..credentials import Credentials
from ..errors import (
    AccessTokenNotFoundError,
    FlyteAuthError,
    InvalidGrantError,
    LoginCancelledError,
    LoginTimeoutError,
)
from ..flows.events import Cancelled, Event, Failed, FlowStarted, Succeeded
from .render import LoginDisplay
from .state import LoginView

log = logging.getLogger(__name__)

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


class _CellContext:
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


class _Attempt:
    def __init__(self, number: int) -> None:
        self.number = number
        self.cancel_event = threading.Event()
        self.done_event = threading.Event()
        self.inner: Any = None
        self.saw_refresh = False
        self.skip_cache = False  # a retry because the server rejected the saved token: never reuse it
        #: "the sign-in started in cell [7]" when a new %flyte_login replaced this one
        self.replaced_by: str | None = None
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


def _short(exc: FlyteAuthError) -> FlyteAuthError:
    """``exc`` without the background flow's frames and chain: raised again, it shows its one sentence
    under a traceback of the waiting code only."""
    log.debug("the sign-in failed", exc_info=exc)
    exc.__traceback__ = None
    exc.__cause__ = None
    exc.__context__ = None
    exc.__suppress_context__ = True
    return exc


def _usable(creds: Credentials | None, now: float) -> bool:
    if creds is None or not getattr(creds, "access_token", None):
        return False
    left = creds.lifetime_left(now) if hasattr(creds, "lifetime_left") else None
    return left is None or left > 0


class LoginSession:
    """A pending-then-ready authenticator bound in the notebook namespace.

    Parameters
    ----------
    prepare:
        ``prepare(observer) -> Prepared``; called in the background for every attempt. Builds the
        real authenticator (reading the server configuration when it must choose the flow).
    endpoint:
        The endpoint's ``host[:port]`` (for messages and the view).
    name:
        The variable the session is bound to (shown in the final sentence).
    use_cache:
        Try the token store first (False: ``--no-cache``).
    timeout:
        The login's deadline in seconds (None: the flow's own), also bounds :meth:`wait`.
    display:
        Where the view is drawn (widget, HTML, text), or None.
    """

    #: May an SDK's "token rejected" retry (flytekit's UNAUTHENTICATED) start a new interactive sign-in
    #: in whatever cell it happens? ``%config FlyteAuthMagics.interactive_refresh`` sets it (default False).
    interactive_refresh: bool = False
    #: The deployment's base URL (``scheme://host:port``), for clients that send the token only there
    #: (``BearerAuth``); ``%flyte_login`` sets it.
    endpoint_url: str | None = None

    def __init__(
        self,
        prepare: Callable[[Callable[[Event], None]], Prepared],
        *,
        endpoint: str,
        name: str = "flyte_auth",
        use_cache: bool = True,
        timeout: float | None = None,
        display: LoginDisplay | None = None,
        flow_hint: str = "",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._prepare = prepare
        self.endpoint = endpoint
        self.name = name
        self.use_cache = use_cache
        self.timeout = timeout
        self.display = display
        self._clock = clock
        self._lock = threading.RLock()
        self._view = LoginView(endpoint=endpoint, name=name, flow=flow_hint)
        self._attempt: _Attempt | None = None
        self._attempts = 0
        self._inner: Any = None
        self._cell: _CellContext | None = None
        self._shell: Any = None
        #: the authenticator, once a wait has returned for the current attempt and view with the view
        #: drawn final: a call goes straight to it. Emptied (under the lock) by every change of the
        #: view (_set_view) and by a new attempt, cancel, retry, failure and logout.
        self._finished: Any = None
        survive_fork(self)
        #: called with the session whenever a login starts from it (the magic binds ``name`` again:
        #: after %flyte_logout, the old panel's "Sign in again" must make the variable usable)
        self.on_start: Callable[[LoginSession], None] | None = None

    def _after_fork_in_child(self) -> None:
        """In a forked child (``control``): the attempt in progress ends here at once; the panel is the
        parent's kernel's, so this session draws nothing."""
        self._lock = threading.RLock()
        self.display = None
        attempt = self._attempt
        if attempt is not None and not attempt.done_event.is_set():
            self._finished = None
            attempt.cancel_event.set()
            if attempt.future is not None:
                end_in_child(attempt.future, f"the sign-in to {self.endpoint}")
            attempt.done_event.set()

    # ------------------------------------------------------------------------------------------
    # starting, cancelling, retrying
    # ------------------------------------------------------------------------------------------
    def start(self, shell: Any = None) -> LoginSession:
        """Start the login in the background and return at once (call from the cell)."""
        self._shell = shell if shell is not None else self._shell
        self._cell = _CellContext(self._shell)
        if self.display is not None:
            self.display.show(self._view)
        self._launch()
        return self

    def _launch(self, *, skip_cache: bool = False) -> _Attempt:
        self._finished = None  # a new attempt: the next call waits for it
        if self.on_start is not None:
            try:
                self.on_start(self)
            except Exception:  # noqa: BLE001 - binding must never stop a login
                log.warning("Could not bind %s to the new sign-in.", self.name, exc_info=True)
        with self._lock:
            self._attempts += 1
            attempt = _Attempt(self._attempts)
            attempt.skip_cache = skip_cache
            self._attempt = attempt
            attempt.future = run_in_background(self._in_cell, self._run, attempt, name=f"flyteauth-login-{self.name}")
            run_in_background(self._in_cell, self._tick, attempt, name=f"flyteauth-tick-{self.name}")
        return attempt

    def _in_cell(self, fn: Callable[..., Any], *args: Any) -> Any:
        cell = self._cell
        return cell.run(fn, *args) if cell is not None else fn(*args)

    def cancel(self) -> None:
        """Stop the login in progress (any thread; returns at once)."""
        self._finished = None
        attempt = self._attempt
        if attempt is None or attempt.done_event.is_set():
            return
        attempt.cancel()

    def replaced(self, by: str) -> None:
        """Stop the login in progress because another login replaces it; ``by`` names that one
        ("the sign-in started in cell [7]"), for the old panel and for whoever waits on this one."""
        self._finished = None
        attempt = self._attempt
        if attempt is None or attempt.done_event.is_set():
            return
        if attempt.replaced_by is None:
            attempt.replaced_by = by
        attempt.cancel()

    def retry(self, *, here: bool = False, skip_cache: bool = False) -> LoginSession:
        """Start the login again (cancelling one in progress). Returns at once.

        ``here=True`` (from code in a cell, not a button) attributes the new attempt to the current
        cell and shows the login there too; ``skip_cache=True`` ignores saved tokens (they were rejected).
        """
        self._finished = None
        old = self._attempt
        if old is not None:
            old.cancel()
        with self._lock:
            self._set_view(self._view.restarted(), force=True)
        if here:
            self._cell = _CellContext(self._shell)
            if self.display is not None:
                self.display.redisplay(self._view)
        self._launch(skip_cache=skip_cache)
        return self

    # ------------------------------------------------------------------------------------------
    # paste-back (a browser on another machine)
    # ------------------------------------------------------------------------------------------
    def submit_redirect(self, url: str) -> None:
        """Finish the waiting browser sign-in with the address your browser ended on (any thread).

        When the browser runs on another machine (VS Code remote, SSH, a container), the redirect to
        ``http://127.0.0.1:<port>/callback?code=...&state=...`` fails there; paste that address (or
        its query). Returns once it is accepted; :meth:`wait` then returns the credentials. A wrong or
        unusable address raises StateMismatchError / ProtocolError (also shown in the panel) and the
        sign-in keeps waiting; with no browser sign-in waiting, FlyteAuthError.
        """
        with self._lock:
            attempt = self._attempt
        try:
            inner = attempt.inner if attempt is not None and not attempt.done_event.is_set() else None
            submit = getattr(inner, "submit_redirect", None) if inner is not None else None
            if attempt is None or not callable(submit):
                raise FlyteAuthError(
                    f"No browser sign-in to {self.endpoint} is waiting for a redirect, so there is nothing to "
                    "paste the address into; start one with %flyte_login --flow pkce."
                )
            submit(url)
        except FlyteAuthError as exc:
            sentence = str(exc)
            self._update_if_current(attempt, lambda view: view.with_paste_refused(sentence))
            raise
        self._update_if_current(attempt, LoginView.with_paste_accepted)

    def handle_paste(self, text: str) -> None:
        """The panel's Submit: :meth:`submit_redirect`, with a refusal shown in the status line instead
        of raised (a button handler has nobody to raise to)."""
        try:
            self.submit_redirect(text)
        except FlyteAuthError:
            pass  # the sentence is in the status line; the sign-in keeps waiting
        except Exception as exc:  # noqa: BLE001 - never into the kernel's comm handler; never the text
            log.warning("The pasted address could not be handed to the sign-in (%s).", type(exc).__name__)

    def _update_if_current(self, attempt: _Attempt | None, change: Callable[[LoginView], LoginView]) -> None:
        with self._lock:
            if attempt is not None and attempt is self._attempt:
                self._set_view(change(self._view))

    # ------------------------------------------------------------------------------------------
    # the background attempt
    # ------------------------------------------------------------------------------------------
    def _observer_for(self, attempt: _Attempt) -> Callable[[Event], None]:
        def observe(event: Event) -> None:
            if attempt is not self._attempt:
                return  # a superseded attempt
            if isinstance(event, (FlowStarted, Succeeded)) and event.flow == "refresh":
                attempt.saw_refresh = True
            if isinstance(event, FlowStarted):
                if attempt.cancel_event.is_set():
                    attempt.cancel()  # a flow that starts after Cancel is stopped at once
                if event.flow != "refresh" and self.timeout is not None and attempt.deadline is None:
                    attempt.deadline = self._clock.time() + self.timeout
            if isinstance(event, Cancelled) and attempt.replaced_by:
                self._apply_replaced(attempt, event.flow)
                return
            self._apply(event, attempt.deadline)

        return observe

    def _run(self, attempt: _Attempt) -> Credentials:
        observe = self._observer_for(attempt)
        flow = self._view.flow
        try:
            attempt.check(self.endpoint)
            prepared = self._prepare(observe)
            attempt.inner = prepared.authenticator
            flow = prepared.flow
            with self._lock:
                if attempt is self._attempt:
                    self._inner = prepared.authenticator
                    view = self._view.with_flow(prepared.flow, prepared.reason)
                    self._set_view(view.with_notice(prepared.notice) if prepared.notice else view)
            attempt.check(self.endpoint)
            inner = prepared.authenticator
            creds: Credentials | None = None
            if self.use_cache and not attempt.skip_cache:
                creds = inner.get_credentials()
                if _usable(creds, self._clock.time()):
                    refreshed = attempt.saw_refresh
                    with self._lock:
                        if attempt is self._attempt:
                            reason = "the saved token was refreshed" if refreshed else "a saved token was still valid"
                            self._set_view(self._view.with_flow("cached", reason))
                    self._succeeded(attempt, creds, "cached")
                    return creds  # type: ignore[return-value]
            attempt.check(self.endpoint)
            creds = self._interactive(inner)
            if creds is None:
                creds = inner.get_credentials()
            if creds is None or not getattr(creds, "access_token", None):
                raise AccessTokenNotFoundError(f"The sign-in to {self.endpoint} ended without a token; press Retry.")
            self._succeeded(attempt, creds, flow)
            self._store_notice(inner)
            return creds
        except BaseException as exc:
            self._finished = None
            if attempt is self._attempt and not self._view.done:
                if isinstance(exc, LoginCancelledError) and attempt.replaced_by:
                    self._apply_replaced(attempt, flow)
                elif isinstance(exc, LoginCancelledError):
                    self._apply(Cancelled(flow=flow))
                else:
                    self._apply(Failed(flow=flow, message=str(exc) or type(exc).__name__, error=exc))
            raise
        finally:
            attempt.done_event.set()

    @staticmethod
    def _interactive(inner: Any) -> Credentials | None:
        try:
            return inner.refresh_credentials(interactive=True)
        except TypeError as exc:  # an authenticator with flytekit's bare signature
            if "interactive" not in str(exc):
                raise
            return inner.refresh_credentials()

    def _succeeded(self, attempt: _Attempt, creds: Credentials, flow: str) -> None:
        if attempt is not self._attempt:
            return
        with self._lock:
            if self._view.phase == "signed_in":
                # the flow reported it; complete what it may have left out (subject, expiry)
                view = self._view
                if view.subject is None and getattr(creds, "subject", None):
                    import dataclasses

                    self._set_view(dataclasses.replace(view, subject=creds.subject))
                return
        self._apply(
            Succeeded(
                flow=flow,
                endpoint=self.endpoint,
                expires_at=getattr(creds, "expires_at", None),
                subject=getattr(creds, "subject", None),
                scopes=tuple(getattr(creds, "scopes", ()) or ()),
            )
        )
        self._store_notice(attempt.inner)

    def _store_notice(self, inner: Any) -> None:
        reason = getattr(inner, "fallback_reason", None)
        if reason is None:
            reason = getattr(getattr(inner, "store", None), "fallback_reason", None)
        if reason and reason != self._view.notice:
            with self._lock:
                self._set_view(self._view.with_notice(reason))

    def _tick(self, attempt: _Attempt) -> None:
        budget = int((self.timeout or DEFAULT_WAIT) + WAIT_MARGIN) + 1
        for _ in range(budget):  # bounded: at most one tick per second of the login's budget
            if self._clock.wait(attempt.done_event, 1.0):
                return
            if attempt is not self._attempt:
                return
            view = self._view
            if view.active and view.expires_at is not None and self.display is not None:
                try:
                    self.display.tick(view)
                except Exception:  # noqa: BLE001
                    log.debug("countdown tick failed", exc_info=True)

    # ------------------------------------------------------------------------------------------
    # the view
    # ------------------------------------------------------------------------------------------
    def _apply(self, event: Event, deadline: float | None = None) -> None:
        with self._lock:
            view = self._view.apply(event)
            self._set_view(view.with_deadline(deadline) if deadline is not None else view)

    def _apply_replaced(self, attempt: _Attempt, flow: str) -> None:
        with self._lock:
            self._set_view(self._view.apply(Cancelled(flow=flow)).with_message(
                f"This sign-in was replaced by {attempt.replaced_by}."))

    def _set_view(self, view: LoginView, *, force: bool = False) -> None:
        """Show ``view`` (the caller holds the session lock)."""
        if view is self._view and not force:
            return
        self._view = view
        self._finished = None  # a new view: the next call waits, and redraws it from the main thread
        if self.display is not None:
            try:
                self.display.update(view)
            except Exception:  # noqa: BLE001 - a broken display never breaks the login
                log.debug("display update failed", exc_info=True)

    @property
    def view(self) -> LoginView:
        """The current :class:`LoginView` (what the widget shows)."""
        return self._view

    @property
    def status(self) -> str:
        """The phase: starting, waiting, slowed_down, network_retry, signed_in, denied, expired,
        cancelled, error or signed_out."""
        return self._view.phase

    @property
    def widget(self) -> Any:
        """The :class:`~.widget.LoginWidget`, when the login is shown as a widget."""
        return getattr(self.display, "widget", None)

    @property
    def authenticator(self) -> Any:
        """The real authenticator of the current attempt (None until it is built)."""
        return self._inner

    @property
    def done(self) -> bool:
        attempt = self._attempt
        return attempt is not None and attempt.done_event.is_set()

    @property
    def future(self) -> concurrent.futures.Future[Credentials] | None:
        attempt = self._attempt
        return attempt.future if attempt is not None else None

    # ------------------------------------------------------------------------------------------
    # waiting: what later cells call
    # ------------------------------------------------------------------------------------------
    def _wait_budget(self) -> float:
        return (self.timeout if self.timeout is not None else DEFAULT_WAIT) + WAIT_MARGIN

    def wait(self, timeout: float | None = None) -> Credentials:
        """Block until the login ends; return its credentials or raise its error.

        ``timeout`` (seconds) bounds the wait (default: the login's own timeout plus a margin).
        A retry that replaces the attempt being waited on is followed. In a Jupyter cell the panel
        stays live meanwhile: its Cancel, Retry and Submit are handled within a fraction of a second
        (:func:`flyteauth_jupyter.control.wait_future`). The error raised is the login's own
        one-sentence exception, without the flow's internal traceback and chain.
        """
        budget = self._wait_budget() if timeout is None else float(timeout)
        ends = self._clock.monotonic() + budget
        for _ in range(100):  # bounded: retries that supersede the awaited attempt
            with self._lock:  # _launch publishes the attempt and its future together
                attempt = self._attempt
            if attempt is None or attempt.future is None:
                raise AccessTokenNotFoundError(f"No sign-in to {self.endpoint} was started; run %flyte_login.")
            left = max(0.0, ends - self._clock.monotonic())
            try:
                creds = wait_future(attempt.future, left, clock=self._clock)
            except concurrent.futures.TimeoutError:
                raise LoginTimeoutError(
                    f"The sign-in to {self.endpoint} is still in progress after {budget:g} s; finish it in the "
                    f"browser, or call {self.name}.cancel()."
                ) from None
            except LoginCancelledError:
                if attempt is not self._attempt:
                    continue  # superseded by a retry: wait for the new attempt
                self._refresh_display()
                raise self._cancelled_error(attempt) from None
            except BaseException as exc:
                if attempt is not self._attempt and isinstance(exc, FlyteAuthError):
                    continue
                self._refresh_display()
                if isinstance(exc, FlyteAuthError):
                    raise _short(exc) from None
                raise
            if attempt is not self._attempt:
                continue
            self._refresh_display()
            return creds
        raise LoginTimeoutError(f"The sign-in to {self.endpoint} was restarted too many times.")

    def _cancelled_error(self, attempt: _Attempt) -> LoginCancelledError:
        if attempt.replaced_by:
            return LoginCancelledError(
                f"The sign-in to {self.endpoint} was replaced by {attempt.replaced_by}; use that one."
            )
        return LoginCancelledError(
            f"The sign-in to {self.endpoint} was cancelled by the user; press Retry in its panel or call "
            f"{self.name}.retry() to sign in again."
        )

    def _refresh_display(self) -> None:
        """Redraw the final state from the waiting (main) thread, with the current cell as parent.

        nbclient/papermill only read the executing cell's messages: this update is what brings the
        earlier cell's output to its final state in an executed notebook."""
        display = self.display
        if display is None or threading.current_thread() is not threading.main_thread():
            return
        refresh = getattr(display, "refresh", None)
        if callable(refresh):
            try:
                refresh(self._view)
            except Exception:  # noqa: BLE001
                log.debug("display refresh failed", exc_info=True)

    def _ready(self) -> Any:
        """The authenticator of the finished login, after waiting for it (:meth:`wait`)."""
        attempt, view = self._attempt, self._view
        self.wait()
        inner = self._inner
        if inner is None:  # pragma: no cover - wait() succeeded, so it exists
            raise AccessTokenNotFoundError(f"The sign-in to {self.endpoint} has no authenticator.")
        if self.display is None or threading.current_thread() is threading.main_thread():
            # the view is drawn final: later calls skip wait() while attempt, view and authenticator stay
            with self._lock:
                if attempt is self._attempt and view is self._view and inner is self._inner:
                    self._finished = inner
        return inner

    # ------------------------------------------------------------------------------------------
    # the Authenticator interface (flytekit's names), waiting for the login first
    # ------------------------------------------------------------------------------------------
    # The hot path: once a wait() has returned for the current view (and redrawn it), a call reads
    # one attribute, without a lock, and goes to the authenticator. Any change (a retry, a refresh
    # that changed the view, a logout, a failure) empties it, and the call waits again. One read:
    # the class has a __getattr__, so each attribute read here is a full lookup.
    def get_credentials(self) -> Credentials | None:
        """The current credentials; waits for the login in progress (DESIGN.md, pinned 10)."""
        finished = self._finished
        if finished is not None:
            return finished.get_credentials()
        return self._ready().get_credentials()

    def fetch_grpc_call_auth_metadata(self) -> tuple[str, str] | None:
        """``(header_key, "Bearer <token>")``; waits for the login in progress."""
        finished = self._finished
        if finished is not None:
            return finished.fetch_grpc_call_auth_metadata()
        return self._ready().fetch_grpc_call_auth_metadata()

    def refresh_credentials(self, *, interactive: bool = True) -> Credentials | None:
        """New credentials: the refresh grant if possible; else, when ``interactive``, a new sign-in
        shown in the current cell (never a hidden flow), waited for."""
        inner = self._ready()
        try:
            try:
                return inner.refresh_credentials(interactive=False)
            except TypeError as exc:
                if "interactive" not in str(exc):
                    raise
                return inner.refresh_credentials()
        except (AccessTokenNotFoundError, InvalidGrantError):
            if not interactive:
                raise
        self.retry(here=True, skip_cache=True)
        return self.wait()

    def logout(self) -> None:
        """Cancel a login in progress, revoke and clear the cached tokens for the endpoint in every
        store the kernel can reach (the real authenticator's ``logout(everywhere=True)``), and show
        "signed out"."""
        self.cancel()  # calls wait again (then find the session signed out)
        inner = self._inner
        error: BaseException | None = None
        if inner is None:
            try:
                inner = self._prepare(lambda event: None).authenticator
            except FlyteAuthError as exc:
                error = exc
        if inner is not None and hasattr(inner, "logout"):
            try:  # ours: also every other store this kernel can reach (pinned 14), whatever this one used
                inner.logout(everywhere=True)
            except TypeError as exc:  # an authenticator with flytekit's bare signature
                if "everywhere" not in str(exc):
                    raise
                inner.logout()
        with self._lock:
            self._set_view(self._view.signed_out())
        if error is not None:
            raise error

    # ------------------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # flytekit and SDKs read a few plain attributes (header_key, ...): answer from the real one
        if name.startswith("__") or name in ("_attempt", "_view", "_inner", "_finished"):
            raise AttributeError(name)
        inner = self.__dict__.get("_inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def __repr__(self) -> str:
        view = self._view
        who = f", subject={view.subject!r}" if view.subject else ""
        return (
            f"LoginSession(name={self.name!r}, endpoint={self.endpoint!r}, flow={view.flow!r}, "
            f"status={view.phase!r}{who})"
        )

    __str__ = __repr__
