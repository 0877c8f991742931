"""The session's attempts, run in the background, and its view: starting, cancelling, retrying and
replacing an attempt; the attempt's thread (build the authenticator, use a cached token if one is
valid, else the interactive flow; the countdown ticker); a forked child; and the view every event
updates (drawn by the display from whichever thread). ``LoginSession`` (:mod:`.waitable`) adds what
later cells call: waiting, the authenticator's interface, paste-back and sign-out.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...control import SYSTEM_CLOCK, Clock, end_in_child, run_in_background, survive_fork
from ...credentials import Credentials
from ...errors import AccessTokenNotFoundError, FlyteAuthError, LoginCancelledError
from ...flows.events import Cancelled, Event, Failed, FlowStarted, Succeeded
from ..render import LoginDisplay
from ..state import LoginView
from .attempt import DEFAULT_WAIT, WAIT_MARGIN, Attempt, CellContext, Prepared, log, usable, with_sentence

if TYPE_CHECKING:
    from typing_extensions import Self

    from .waitable import LoginSession


class SessionBase:
    """The state of a :class:`~.waitable.LoginSession` (its parameters are documented there), its
    attempts and its view."""

    #: May an SDK's "token rejected" retry (flytekit's UNAUTHENTICATED) start a new interactive sign-in
    #: in whatever cell it happens? ``%config FlyteAuthMagics.interactive_refresh`` sets it (default False).
    interactive_refresh: bool = False
    #: The deployment's base URL (``scheme://host:port``), for clients that send the token only there
    #: (``BearerAuth``); ``%flyte_login`` sets it.
    endpoint_url: str | None = None
    #: The earlier working sign-in whose name this one took while it runs: the name goes back to it if
    #: this one fails or is cancelled (``%flyte_login`` sets and clears it; docs/architecture.md,
    #: "Panel lifecycle").
    fallback: LoginSession | None = None
    #: "cell [7]": where this sign-in was started, for %flyte_status and other panels' sentences
    started_in: str = ""

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
        self._attempt: Attempt | None = None
        self._attempts = 0
        self._inner: Any = None
        self._cell: CellContext | None = None
        self._shell: Any = None
        #: the authenticator, once a wait has returned for the current attempt and view with the view
        #: drawn final: a call goes straight to it. Emptied (under the lock) by every change of the
        #: view (_set_view) and by a new attempt, cancel, retry, failure and logout.
        self._finished: Any = None
        survive_fork(self)
        #: called with the session whenever a later login starts from it (Retry, "Sign in again": the
        #: magic binds ``name`` again, since %flyte_logout removed the variable); the first attempt's
        #: caller has bound it already
        self.on_start: Callable[[Any], None] | None = None
        #: called in the attempt's thread when an attempt ends, before anyone waiting on it wakes:
        #: ``on_end(session, None)`` after a sign-in, ``on_end(session, error)`` after a failure or a
        #: cancel (not after a replacement). It may return a clause saying where the name points now
        #: (the magic gave it back to an earlier sign-in), which the panel and the error then carry.
        self.on_end: Callable[[Any, BaseException | None], str | None] | None = None
        self._lent_to: str | None = None

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
    def start(self, shell: Any = None) -> Self:
        """Start the login in the background and return at once (call from the cell)."""
        self._shell = shell if shell is not None else self._shell
        self._cell = CellContext(self._shell)
        if self.display is not None:
            self.display.show(self._view)
        self._launch()
        return self

    def _launch(self, *, skip_cache: bool = False) -> Attempt:
        self._finished = None  # a new attempt: the next call waits for it
        if self.on_start is not None and self._attempts:  # a later attempt (the first: the caller bound it)
            try:
                self.on_start(self)
            except Exception:  # noqa: BLE001 - binding must never stop a login
                log.warning("Could not bind %s to the new sign-in.", self.name, exc_info=True)
        with self._lock:
            self._attempts += 1
            attempt = Attempt(self._attempts)
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

    def retry(self, *, here: bool = False, skip_cache: bool = False) -> Self:
        """Start the login again (cancelling one in progress). Returns at once.

        ``here=True`` (from code in a cell, not a button) attributes the new attempt to the current
        cell and shows the login there too; ``skip_cache=True`` ignores saved tokens (they were
        rejected, or could not be renewed: the new panel says which).
        """
        self._finished = None
        old = self._attempt
        if old is not None:
            old.retried = True  # its end is not this session's: neither its view nor its name changes
            old.cancel()
        why = ""
        if skip_cache:
            why = self._view.why or f"The saved sign-in to {self.endpoint} could not be renewed; sign in again."
        with self._lock:
            self._set_view(self._view.restarted(why), force=True)
        if here:
            self._cell = CellContext(self._shell)
            if self.display is not None:
                self.display.redisplay(self._view)
        self._launch(skip_cache=skip_cache)
        return self

    # ------------------------------------------------------------------------------------------
    # the name: lent to a later sign-in while it runs, and given back or not (the magic decides)
    # ------------------------------------------------------------------------------------------
    @property
    def working(self) -> bool:
        """Signed in: a sign-in worth returning the name to."""
        return self._view.phase == "signed_in"

    def lend(self, by: str) -> None:
        """A later sign-in (``by``: "the sign-in started in cell [7]") took this one's name while it runs."""
        with self._lock:
            self._lent_to = by
            self._set_view(self._view.with_binding(
                f"`{self.name}` points to {by} while it runs; back here if that one fails"))

    def give_up_name(self) -> None:
        """The later sign-in that took the name succeeded: the name stays there."""
        with self._lock:
            by, self._lent_to = self._lent_to or "a later sign-in", None
            self._set_view(self._view.with_binding(f"`{self.name}` now refers to {by}"))

    def take_name_back(self) -> None:
        """The later sign-in failed or was cancelled: the name points here again."""
        with self._lock:
            self._lent_to = None
            self._set_view(self._view.with_binding(""))

    def note(self, notice: str | None) -> None:
        """Show ``notice`` once, beside the panel's other notes (e.g. a configuration file that was skipped)."""
        with self._lock:
            self._set_view(self._view.noted(notice))

    def _ended(self, attempt: Attempt, error: BaseException | None) -> None:
        """Tell ``on_end`` that the current attempt ended; show where the name points now, if it says."""
        hook = self.on_end
        if hook is None or attempt.retried:
            return
        try:
            where = hook(self, error)
        except Exception:  # noqa: BLE001 - binding must never break a sign-in's ending
            log.warning("Could not settle where %s points after the sign-in ended.", self.name, exc_info=True)
            return
        if not where:
            return
        attempt.kept = where
        with self._lock:
            if attempt is self._attempt:
                self._set_view(self._view.with_binding(where))
        if isinstance(error, FlyteAuthError) and not isinstance(error, LoginCancelledError):
            with_sentence(error, f"{where}.")  # a cancel's error is written by wait() (_cancelled_error)

    def _update_if_current(self, attempt: Attempt | None, change: Callable[[LoginView], LoginView]) -> None:
        with self._lock:
            if attempt is not None and attempt is self._attempt:
                self._set_view(change(self._view))

    # ------------------------------------------------------------------------------------------
    # the background attempt
    # ------------------------------------------------------------------------------------------
    def _observer_for(self, attempt: Attempt) -> Callable[[Event], None]:
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

    def _run(self, attempt: Attempt) -> Credentials:
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
                    self._set_view(self._view.with_flow(prepared.flow, prepared.reason).noted(prepared.notice))
            attempt.check(self.endpoint)
            inner = prepared.authenticator
            creds: Credentials | None = None
            if self.use_cache and not attempt.skip_cache:
                creds = inner.get_credentials()
                if usable(creds, self._clock.time()):
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
            return creds
        except BaseException as exc:
            self._finished = None
            if attempt is self._attempt and not attempt.retried and not self._view.done:
                if isinstance(exc, LoginCancelledError) and attempt.replaced_by:
                    self._apply_replaced(attempt, flow)
                elif isinstance(exc, LoginCancelledError):
                    self._apply(Cancelled(flow=flow))
                else:
                    self._apply(Failed(flow=flow, message=str(exc) or type(exc).__name__, error=exc))
            if attempt is self._attempt and not attempt.replaced_by:
                self._ended(attempt, exc)  # before the future resolves: a waiting cell sees where the name is
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

    def _succeeded(self, attempt: Attempt, creds: Credentials, flow: str) -> None:
        """The attempt signed in: the view says so (if the flow did not), with where the tokens are kept
        (worked out once per sign-in, not on every update) and any store notice; then ``on_end``."""
        if attempt is not self._attempt:
            return
        inner = attempt.inner
        where, reason = _where_kept(inner, self.endpoint), _fallback_reason(inner)
        with self._lock:
            if attempt is not self._attempt:
                return
            view = self._view
            if view.phase != "signed_in":
                view = view.apply(Succeeded(
                    flow=flow,
                    endpoint=self.endpoint,
                    expires_at=getattr(creds, "expires_at", None),
                    subject=getattr(creds, "subject", None),
                    scopes=tuple(getattr(creds, "scopes", ()) or ()),
                ))
            elif view.subject is None and getattr(creds, "subject", None):
                # the flow reported it; complete what it may have left out
                view = dataclasses.replace(view, subject=creds.subject)
            self._set_view(view.with_store(where).noted(reason))
        self._ended(attempt, None)

    def _tick(self, attempt: Attempt) -> None:
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

    def _apply_replaced(self, attempt: Attempt, flow: str) -> None:
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


def _where_kept(inner: Any, service: str) -> str:
    """Where ``inner`` keeps its tokens, one phrase (``stores.describe_store``): "the keyring
    (SecretService)", "the private file ~/.cache/flyteauth_jupyter/tokens/ab12cd34….json", "memory only
    (this kernel)" (also for an authenticator without a store); an authenticator whose tokens live
    elsewhere says so itself (``tokens_kept``: the JupyterHub sign-in)."""
    own = getattr(inner, "tokens_kept", None)
    if isinstance(own, str) and own:
        return own
    from ...stores import describe_store

    return describe_store(getattr(inner, "store", None), service)


def _fallback_reason(inner: Any) -> str | None:
    """Why the tokens are not where they should be (the keyring failed, ...), said once."""
    reason = getattr(inner, "fallback_reason", None)
    return reason if reason is not None else getattr(getattr(inner, "store", None), "fallback_reason", None)
