"""The login's view model: a pure, immutable summary of what the user should see, built from events.

:class:`LoginView` knows nothing about widgets, HTML or threads. ``view.apply(event)`` returns the next
view; the widget, the HTML fallback and the terminal text are all drawn from a view. A view holds only
what may be shown (endpoint, flow, the user code and verification links, expiry times, one status
sentence, the signed-in subject): events never carry a secret, and neither does the view. That makes
the UI path secret-free by construction and lets unit tests check every transition without a kernel.

Phases::

    starting -> waiting -> (slowed_down | network_retry)* -> signed_in
                        \\-> denied | expired | cancelled | error
    signed_in -> signed_out (after %flyte_logout)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from dataclasses import dataclass, field

from ..errors import (
    AccessDeniedError,
    ExpiredTokenError,
    LoginCancelledError,
    LoginTimeoutError,
)
from ..flows.events import (
    AuthorizationRequested,
    Cancelled,
    DeviceCodeIssued,
    Event,
    Failed,
    FlowStarted,
    NetworkRetry,
    Polling,
    SavedSignInRefused,
    SlowedDown,
    Succeeded,
)

ACTIVE_PHASES = ("starting", "waiting", "slowed_down", "network_retry")
FAILED_PHASES = ("denied", "expired", "cancelled", "error")
FINAL_PHASES = ("signed_in", "signed_out") + FAILED_PHASES

FLOW_TITLES = {
    "device": "device code",
    "pkce": "browser sign-in (PKCE)",
    "client-credentials": "client credentials",
    "command": "external command",
    "hub": "JupyterHub sign-in",
    "refresh": "token refresh",
    "cached": "cached token",
}


def flow_title(flow: str) -> str:
    return FLOW_TITLES.get(flow, flow or "login")


def clock_time(epoch: float | None) -> str:
    """``epoch`` as the kernel's wall-clock time with its zone, ``HH:MM:SS UTC`` (with the date when it
    is not today): on a remote kernel the zone may not be the reader's, so it is always named."""
    if epoch is None:
        return "unknown"
    try:
        moment = _dt.datetime.fromtimestamp(epoch).astimezone()
    except (OverflowError, OSError, ValueError):  # beyond what the platform's clock can show
        return "unknown"
    zone = moment.strftime("%Z") or moment.strftime("%z")
    if moment.date() == _dt.date.today():
        return f"{moment:%H:%M:%S} {zone}".rstrip()
    return f"{moment:%Y-%m-%d %H:%M} {zone}".rstrip()


def countdown_text(seconds: float | None) -> str | None:
    """``m:ss`` (or ``h:mm:ss``) left; None when unknown."""
    if seconds is None:
        return None
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _phase_of_failure(event: Failed) -> str:
    error = event.error
    if isinstance(error, AccessDeniedError):
        return "denied"
    if isinstance(error, (ExpiredTokenError, LoginTimeoutError)):
        return "expired"
    if isinstance(error, LoginCancelledError):
        return "cancelled"
    return "error"


@dataclass(frozen=True)
class LoginView:
    """What the login UI shows at one moment. Immutable; :meth:`apply` returns the next view."""

    endpoint: str = ""
    name: str = "flyte_auth"
    flow: str = ""
    flow_reason: str = ""
    phase: str = "starting"
    message: str = ""
    #: device code flow (user_code and links are shown on purpose; cleared once signed in)
    verification_uri: str | None = None
    verification_uri_complete: str | None = None
    user_code: str | None = None
    #: auth code + PKCE: the sign-in page (holds state and the S256 challenge, neither a secret)
    auth_url: str | None = None
    browser_opened: bool = False
    #: auth code + PKCE: a pasted redirect address was accepted (paste-back); the code is being exchanged
    pasted: bool = False
    #: auth code + PKCE: the redirect comes back through the Jupyter server's relay, so pasting is
    #: only the way out when that did not work (the panel keeps the field behind a link)
    relayed: bool = False
    #: when the code / sign-in page stops working (epoch seconds)
    expires_at: float | None = None
    #: when ``--timeout`` ends the login, if that comes before ``expires_at`` (the deadline in force)
    timeout_at: float | None = None
    interval: float | None = None
    polls: int = 0
    #: after success
    subject: str | None = None
    token_expires_at: float | None = None
    scopes: tuple[str, ...] = ()
    #: one-off notices (e.g. "the keyring is not available; tokens are kept in memory"), added with noted()
    notice: str | None = None
    #: where the tokens are kept, one phrase (``stores.describe_store``), set once when signed in
    store: str = ""
    #: where ``name`` points when that is not simply here (a later sign-in took it, or this one failed
    #: and gave it back to an earlier one); a clause without the final period. Empty: "available as `name`"
    binding: str = ""
    #: why this sign-in asks the user again (the saved sign-in was refused), one sentence
    why: str = ""
    error_type: str | None = None
    attempt: int = 1
    history: tuple[str, ...] = field(default=(), compare=False)

    # -- transitions ----------------------------------------------------------------------------
    def apply(self, event: Event) -> LoginView:
        """The view after ``event``. Unknown events leave the view unchanged."""
        if self.phase in ("signed_out",):
            return self
        step = self._next(event)
        if step is self:
            return self
        return dataclasses.replace(step, history=self.history + (step.phase,))

    def _next(self, event: Event) -> LoginView:
        replace = dataclasses.replace
        if isinstance(event, SavedSignInRefused):
            return replace(self, why=event.sentence())  # kept even when signed in: a retry says it (session.retry)
        if isinstance(event, FlowStarted):
            reason = event.reason or (self.flow_reason if event.flow == self.flow else "")
            if event.flow == "refresh" and self.flow and self.flow != "refresh":
                # a refresh inside a login keeps the login's flow line
                return replace(self, phase="starting", message="Refreshing the saved token…")
            return replace(
                self,
                flow=event.flow,
                flow_reason=reason,
                endpoint=event.endpoint or self.endpoint,
                phase="starting",
                message=_starting_message(event.flow),
            )
        if isinstance(event, DeviceCodeIssued):
            return replace(
                self,
                flow=self.flow or "device",
                phase="waiting",
                verification_uri=event.verification_uri,
                verification_uri_complete=event.verification_uri_complete,
                user_code=event.user_code,
                expires_at=event.expires_at,
                interval=event.interval,
                message="Waiting for you to approve the sign-in in your browser.",
            )
        if isinstance(event, AuthorizationRequested):
            opened = "A browser window was opened; finish signing in there." if event.browser_opened else (
                "Open the sign-in page to continue."
            )
            return replace(
                self,
                flow=self.flow or "pkce",
                phase="waiting",
                auth_url=event.url,
                relayed=_through_relay(event.redirect_uri),
                browser_opened=event.browser_opened,
                expires_at=event.expires_at,
                message=opened,
            )
        if isinstance(event, Polling):
            if self.phase not in ACTIVE_PHASES:
                return self
            message = self.message
            if self.phase == "network_retry":
                message = "Waiting for you to approve the sign-in in your browser."
            return replace(
                self,
                phase="slowed_down" if self.phase == "slowed_down" else "waiting",
                polls=event.attempt,
                interval=event.interval,
                message=message,
            )
        if isinstance(event, SlowedDown):
            return replace(
                self,
                phase="slowed_down",
                interval=event.interval,
                message=f"The server asked to check less often; now every {event.interval:g} s. Still waiting.",
            )
        if isinstance(event, NetworkRetry):
            return replace(
                self,
                phase="network_retry",
                message=f"Network problem ({event.reason}); trying again in {event.delay:g} s.",
            )
        if isinstance(event, Succeeded):
            return replace(
                self,
                phase="signed_in",
                flow=self.flow if event.flow == "refresh" and self.flow else (self.flow or event.flow),
                endpoint=event.endpoint or self.endpoint,
                subject=event.subject or self.subject,
                token_expires_at=event.expires_at,
                scopes=tuple(event.scopes or ()) or self.scopes,
                # the code and links are not needed any more: nothing sensitive stays on screen
                verification_uri=None,
                verification_uri_complete=None,
                user_code=None,
                auth_url=None,
                expires_at=None,
                error_type=None,
                message="",
            )
        if isinstance(event, Failed):
            if self.phase == "signed_in":
                return self
            phase = _phase_of_failure(event)
            return replace(
                self,
                phase=phase,
                message=event.message or _default_failure(phase),
                error_type=type(event.error).__name__ if event.error is not None else None,
                verification_uri=None,
                verification_uri_complete=None,
                user_code=None,
                auth_url=None,
            )
        if isinstance(event, Cancelled):
            if self.phase in FINAL_PHASES:
                return self
            return replace(
                self,
                phase="cancelled",
                message="The sign-in was cancelled.",
                verification_uri=None,
                verification_uri_complete=None,
                user_code=None,
                auth_url=None,
            )
        return self

    # -- non-event updates ------------------------------------------------------------------------
    def with_flow(self, flow: str, reason: str) -> LoginView:
        return dataclasses.replace(self, flow=flow, flow_reason=reason)

    def with_deadline(self, deadline: float) -> LoginView:
        """The view with the login's own deadline (``--timeout``) when it ends the wait before the code
        or sign-in page expires: the countdown shows the deadline in force."""
        if not self.active or self.expires_at is None or self.timeout_at is not None:
            return self
        if deadline >= self.expires_at:
            return self
        return dataclasses.replace(self, timeout_at=deadline)

    def with_message(self, message: str) -> LoginView:
        """A final view (cancelled, denied, ...) with its sentence replaced; active views keep theirs."""
        return dataclasses.replace(self, message=message) if self.failed else self

    def noted(self, notice: str | None) -> LoginView:
        """The view with ``notice`` added to the notices shown (once: a notice already shown is not repeated)."""
        if not notice or (self.notice and notice in self.notice):
            return self
        return dataclasses.replace(self, notice=f"{self.notice} {notice}" if self.notice else notice)

    def with_store(self, phrase: str) -> LoginView:
        return dataclasses.replace(self, store=phrase)

    def with_binding(self, binding: str) -> LoginView:
        return dataclasses.replace(self, binding=binding)

    def with_paste_refused(self, sentence: str) -> LoginView:
        """The view after a pasted redirect address was refused: the sentence, and the login still waits."""
        if not self.accepts_paste:
            return self
        return dataclasses.replace(self, message=f"{sentence} Still waiting for the sign-in.")

    def with_paste_accepted(self) -> LoginView:
        """The view after a pasted redirect address was accepted (the code is being exchanged)."""
        if not self.accepts_paste:
            return self
        return dataclasses.replace(self, pasted=True, message="The pasted address was accepted; finishing the sign-in…")

    def restarted(self, why: str = "") -> LoginView:
        """A fresh view for a retry: same endpoint, name and notices, attempt + 1; ``why`` it asks again."""
        return LoginView(
            endpoint=self.endpoint, name=self.name, attempt=self.attempt + 1, notice=self.notice, why=why
        )

    def signed_out(self) -> LoginView:
        return dataclasses.replace(
            LoginView(endpoint=self.endpoint, name=self.name, flow=self.flow, attempt=self.attempt),
            phase="signed_out",
            message=f"Signed out of {self.endpoint}.",
            history=self.history + ("signed_out",),
        )

    # -- derived text ----------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    @property
    def done(self) -> bool:
        return self.phase in FINAL_PHASES

    @property
    def accepts_paste(self) -> bool:
        """True while a browser sign-in waits for its redirect, so the address the browser ended on can
        be pasted (a browser on another machine: VS Code remote, SSH, containers)."""
        return self.phase == "waiting" and self.auth_url is not None and not self.pasted

    def paste_call(self) -> str:
        """The call that completes a waiting browser sign-in with a pasted address (text and HTML
        displays have no field to paste into). It prompts for the address (hidden input), so no cell
        holds the authorization code: a cell with the address in it would keep the code in the saved
        notebook (the secret scanner flags it)."""
        return f"{self.name}.submit_redirect()"

    def paste_hint(self, call: str | None = None) -> str:
        """The paste-back fallback as one sentence around ``call`` (default :meth:`paste_call`; the
        HTML display passes it marked up): through the relay, for when the redirect did not come back;
        else for a browser on another machine."""
        lead = "If the sign-in did not come back here" if self.relayed else "Browser on another machine? After signing in"
        return (f"{lead}, run {call or self.paste_call()} in the next cell and paste the address your browser "
                "ended on at its prompt (hidden; kept nowhere).")

    @property
    def failed(self) -> bool:
        return self.phase in FAILED_PHASES

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until the deadline in force: the code's expiry, or ``--timeout`` when sooner."""
        if self.expires_at is None or not self.active:
            return None
        ends = min(self.expires_at, self.timeout_at) if self.timeout_at is not None else self.expires_at
        return max(0.0, ends - (time.time() if now is None else now))

    def countdown(self, now: float | None = None) -> str | None:
        return countdown_text(self.seconds_left(now))

    def flow_line(self) -> str:
        """One line: which flow and why."""
        if self.flow:
            title = flow_title(self.flow)
        elif self.done:
            title = "stopped before a sign-in method was chosen"
        else:
            title = "choosing a sign-in method"
        return f"{title}: {self.flow_reason}" if self.flow_reason else title

    def summary(self) -> str:
        """The final sentence after success: who, where, until when, which name, where the tokens are kept."""
        who = f" as {self.subject}" if self.subject else ""
        until = (
            f", token valid until {clock_time(self.token_expires_at)}"
            if self.token_expires_at is not None
            else ", token expiry not known"
        )
        where = self.binding or f"available as `{self.name}`"
        kept = f"; tokens kept in {self.store}" if self.store else ""
        return f"Signed in{who} to {self.endpoint}{until}; {where}{kept}."

    def binding_line(self) -> str:
        """Where the name points, as its own line, for a panel that is not signed in ("" when nothing to say)."""
        return f"{self.binding}." if self.binding and self.phase != "signed_in" else ""

    def why_line(self) -> str:
        """Why this sign-in asks again, while it is not signed in ("" when nothing to say)."""
        return self.why if self.phase != "signed_in" else ""

    def status_line(self, now: float | None = None) -> str:
        """The status sentence for the current phase (includes the countdown while waiting)."""
        if self.phase == "signed_in":
            return self.summary()
        if self.phase == "signed_out":
            return self.message or f"Signed out of {self.endpoint}."
        if self.phase == "starting":
            return self.message or "Starting…"
        if self.active:
            left = self.countdown(now)
            if not left:
                suffix = ""
            elif self.timeout_at is not None:
                suffix = f" Gives up in {left} (the login's timeout)."
            elif self.flow == "device":
                suffix = f" Code expires in {left}."
            else:
                suffix = f" Expires in {left}."
            return f"{self.message}{suffix}"
        titles = {
            "denied": "Denied",
            "expired": "Expired",
            "cancelled": "Cancelled",
            "error": "Error",
        }
        return f"{titles.get(self.phase, self.phase)}: {self.message or _default_failure(self.phase)}"

    def text_lines(self, now: float | None = None) -> list[str]:
        """The same information as the widget, as plain text lines (terminal, text/plain)."""
        lines = [f"Flyte sign-in to {self.endpoint or '(endpoint pending)'} · {self.flow_line()}"]
        if self.why_line():
            lines.append(self.why_line())
        if self.user_code and self.active:
            lines.append(f"Open {self.verification_uri} and enter the code {self.user_code}")
            if self.verification_uri_complete:
                lines.append(f"(or open {self.verification_uri_complete})")
        if self.auth_url and self.active:
            lines.append(f"Sign-in page: {self.auth_url}")
        if self.accepts_paste:
            lines.append(self.paste_hint())
        lines.append(self.status_line(now))
        if self.binding_line():
            lines.append(self.binding_line())
        if self.notice:
            lines.append(f"Note: {self.notice}")
        return lines

    def status_record(self) -> dict[str, object]:
        """A plain dict for %flyte_status (no secrets)."""
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "flow": self.flow,
            "phase": self.phase,
            "subject": self.subject,
            "scopes": self.scopes,
            "token_expires_at": self.token_expires_at,
            "message": self.message,
            "store": self.store,
            "binding": self.binding,
        }


def _through_relay(redirect_uri: str) -> bool:
    from ..transport.relay import is_relay_uri  # the flow that sent the event has loaded it already

    return is_relay_uri(redirect_uri)


def _starting_message(flow: str) -> str:
    return {
        "device": "Requesting a device code…",
        "pkce": "Preparing the browser sign-in…",
        "client-credentials": "Requesting a token with the client credentials…",
        "command": "Running the token command…",
        "refresh": "Refreshing the saved token…",
    }.get(flow, "Starting…")


def _default_failure(phase: str) -> str:
    return {
        "denied": "The sign-in was denied.",
        "expired": "The code expired before the sign-in was approved; press Retry.",
        "cancelled": "The sign-in was cancelled.",
    }.get(phase, "The sign-in failed.")
