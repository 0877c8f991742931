"""``LoginSession``: what later cells call on the object ``%flyte_login`` binds: waiting for the
sign-in (the panel stays live meanwhile), flytekit's authenticator interface (its hot path: the
authenticator's own cached values, read by the session itself), paste-back, and sign-out."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

from ...control import wait_future
from ...credentials import Credentials
from ...errors import (
    AccessTokenNotFoundError,
    FlyteAuthError,
    InvalidGrantError,
    LoginCancelledError,
    LoginTimeoutError,
    one_line,
)
from ...lifecycle.held import NOTHING_HELD, HeldCredentials
from ..state import LoginView, clock_time
from .attempt import DEFAULT_WAIT, WAIT_MARGIN, Attempt, log, shortened
from .background import SessionBase


class LoginSession(SessionBase):
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

    # ------------------------------------------------------------------------------------------
    # paste-back (a browser on another machine)
    # ------------------------------------------------------------------------------------------
    def submit_redirect(self, url: str | None = None) -> None:
        """Finish the waiting browser sign-in with the address your browser ended on (any thread).

        When the browser runs on another machine (VS Code remote, SSH, a container), the redirect to
        ``http://127.0.0.1:<port>/callback?code=...&state=...`` fails there; paste that address (or
        its query). Without ``url`` (what the panel suggests) it asks for the address at a hidden
        prompt (``getpass``: the front end neither echoes nor saves it), so no cell holds the code; a
        cell with the address in it would keep the code in the saved notebook (the secret scanner
        flags it: delete such a cell after it ran). Returns once it is accepted; :meth:`wait` then
        returns the credentials. A wrong or unusable address raises StateMismatchError /
        ProtocolError (also shown in the panel) and the sign-in keeps waiting; with no browser
        sign-in waiting, FlyteAuthError.
        """
        if url is None:
            url = self._prompt_for_address()
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

    def _prompt_for_address(self) -> str:
        import getpass  # ipykernel answers getpass.getpass with a hidden input request to the front end

        try:
            return getpass.getpass("Paste the address your browser ended on (hidden): ")
        except Exception as exc:  # noqa: BLE001 - StdinNotImplementedError, EOFError: no front end to ask
            raise one_line(FlyteAuthError(
                f"This front end cannot prompt for the address ({type(exc).__name__}); pass it: "
                f'{self.name}.submit_redirect("<address>"), then delete that cell (it holds the code).'
            )) from None

    def handle_paste(self, text: str) -> None:
        """The panel's Submit: :meth:`submit_redirect`, with a refusal shown in the status line instead
        of raised (a button handler has nobody to raise to)."""
        try:
            self.submit_redirect(text)
        except FlyteAuthError:
            pass  # the sentence is in the status line; the sign-in keeps waiting
        except Exception as exc:  # noqa: BLE001 - never into the kernel's comm handler; never the text
            log.warning("The pasted address could not be handed to the sign-in (%s).", type(exc).__name__)

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
                raise one_line(AccessTokenNotFoundError(f"No sign-in to {self.endpoint} was started; run %flyte_login."))
            left = max(0.0, ends - self._clock.monotonic())
            try:
                creds = wait_future(attempt.future, left, clock=self._clock)
            except concurrent.futures.TimeoutError:
                raise one_line(LoginTimeoutError(
                    f"The sign-in to {self.endpoint} is still in progress after {budget:g} s; finish it in the "
                    f"browser, or call {self.name}.cancel()."
                )) from None
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
                    raise shortened(exc) from None
                raise
            if attempt is not self._attempt:
                continue
            self._refresh_display()
            return creds
        raise one_line(LoginTimeoutError(f"The sign-in to {self.endpoint} was restarted too many times."))

    def _cancelled_error(self, attempt: Attempt) -> LoginCancelledError:
        if attempt.replaced_by:
            message = f"The sign-in to {self.endpoint} was replaced by {attempt.replaced_by}; use that one."
        elif attempt.kept:  # the name went back to an earlier sign-in: its retry() is not this one's
            message = (f"The sign-in to {self.endpoint} was cancelled by the user; press Retry in its panel to "
                       f"sign in again. {attempt.kept}.")
        else:
            message = (f"The sign-in to {self.endpoint} was cancelled by the user; press Retry in its panel or "
                       f"call {self.name}.retry() to sign in again.")
        return one_line(LoginCancelledError(message))

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
    # The hot path (issue 19.2): once a wait() has returned for the current view (and redrawn it),
    # ``_finished`` is the authenticator and ``_hot`` is where its hot path keeps its cached values
    # (the authenticator itself when it is ours, lifecycle/held.py): a call reads them as the
    # authenticator would (a clock read, a compare, the value), without a lock and without calling
    # it. Any change (a retry, a refresh that changed the view, a logout, a failure) sets
    # ``_finished`` to None, which points ``_hot`` at NOTHING_HELD, and the call waits again. One
    # specialised attribute read on the session (it has no __getattr__: see FORWARDED below). No
    # class-level default for _hot: an instance of a Python class there would keep the read from being
    # specialised; SessionBase.__init__ sets _finished, hence _hot.
    _finished_inner: Any = None

    @property
    def _finished(self) -> Any:
        return self._finished_inner

    @_finished.setter
    def _finished(self, inner: Any) -> None:
        if inner is None:
            self._hot = NOTHING_HELD  # first: the next call takes the checks below
            self._finished_inner = None
        else:
            self._finished_inner = inner
            self._hot = inner if isinstance(inner, HeldCredentials) else NOTHING_HELD

    def get_credentials(self) -> Credentials | None:
        """The current credentials; waits for the login in progress (DESIGN.md, pinned 10)."""
        now, until, creds = self._hot._hot_creds
        if now() < until:
            return creds
        finished = self._finished_inner
        if finished is not None:
            return finished.get_credentials()
        return self._ready().get_credentials()

    def fetch_grpc_call_auth_metadata(self) -> tuple[str, str] | None:
        """``(header_key, "Bearer <token>")``; waits for the login in progress."""
        now, until, header = self._hot._hot_header
        if now() < until:
            return header
        finished = self._finished_inner
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
    # The authenticator's own attributes (header_key, store, fallback_reason, proxy_auth, ...) are read
    # through the properties FORWARDED adds below the class, not a ``__getattr__``: on Python 3.11 a
    # class with ``__getattr__`` gets no specialised attribute reads at all, which cost the hot path
    # above about 25 ns a call (docs/architecture.md, Performance).

    def __repr__(self) -> str:
        # a snapshot: shown under a panel that keeps changing, it says when it was taken (issue 17)
        view = self._view
        who = f", subject={view.subject!r}" if view.subject else ""
        return (
            f"LoginSession(name={self.name!r}, endpoint={self.endpoint!r}, flow={view.flow!r}, "
            f"status={view.phase!r}{who}, as_of={clock_time(self._clock.time())!r})"
        )

    __str__ = __repr__


#: What the session answers from its authenticator, once one is built: the public attributes of the
#: authenticator classes that the session has no meaning of its own for (AttributeError before that).
FORWARDED = (
    "audience", "available_reason", "awaiting_redirect", "client_id", "clock", "command", "confidential",
    "fallback_reason", "flow_name", "header_key", "login_in_progress", "needs_user", "prompt", "proxy_auth",
    "redirect_uri", "reused_reason", "scopes", "store", "where",
)


def _forwarded(name: str) -> property:
    def read(session: LoginSession) -> Any:
        inner = session._inner
        if inner is None:
            raise AttributeError(f"{name!r}: the sign-in to {session.endpoint} has not built its authenticator yet")
        return getattr(inner, name)

    return property(read, doc=f"The authenticator's ``{name}`` (AttributeError until the sign-in has built it).")


for _name in FORWARDED:
    setattr(LoginSession, _name, _forwarded(_name))
del _name
