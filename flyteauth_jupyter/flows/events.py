"""Progress events that flows report to an observer, and the plain-text observer for terminals.

A flow never prints: it calls ``observer(event)`` with one of the frozen dataclasses below, from
whatever thread runs the flow. The notebook layer turns them into widget updates, the
:class:`TextObserver` into log-like lines for a terminal. Events carry only what may be shown to the
user: the verification URL and user code (shown on purpose), the authorization URL (it holds the
state and the S256 challenge, neither a secret), expiry times, intervals and error sentences. They
never carry a token, a device code, a code verifier or an authorization code (DESIGN.md, pinned 13).
An observer that raises is logged and ignored; it cannot break a login.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Union

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowStarted:
    """A flow began. ``flow`` is 'device', 'pkce', 'client-credentials', 'command' or 'refresh'."""

    flow: str
    endpoint: str
    reason: str = ""


@dataclass(frozen=True)
class DeviceCodeIssued:
    """RFC 8628 section 3.2: show ``user_code`` and ``verification_uri`` to the user."""

    verification_uri: str
    user_code: str
    expires_at: float
    interval: float
    verification_uri_complete: str | None = None


@dataclass(frozen=True)
class AuthorizationRequested:
    """Auth code + PKCE: the user should open ``url``; the receiver waits on ``redirect_uri``."""

    url: str
    redirect_uri: str
    expires_at: float
    browser_opened: bool = False


@dataclass(frozen=True)
class Polling:
    """The device flow asked the token endpoint again; ``attempt`` counts from 1."""

    attempt: int
    interval: float


@dataclass(frozen=True)
class SlowedDown:
    """The server said slow_down; ``interval`` is the new interval, kept for good (RFC 8628 3.5)."""

    interval: float


@dataclass(frozen=True)
class NetworkRetry:
    """A network failure; the flow waits ``delay`` seconds before trying again."""

    delay: float
    reason: str


@dataclass(frozen=True)
class Succeeded:
    """The flow obtained credentials. ``subject`` comes from the id token when there is one."""

    flow: str
    endpoint: str
    expires_at: float | None = None
    subject: str | None = None
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Failed:
    """The flow ended with ``error`` (a FlyteAuthError); ``message`` is str(error)."""

    flow: str
    message: str
    error: BaseException | None = None


@dataclass(frozen=True)
class Cancelled:
    """The flow was cancelled."""

    flow: str


@dataclass(frozen=True)
class SavedSignInRefused:
    """The saved sign-in cannot be used: the identity provider refused its refresh token (``error``:
    the OAuth code, e.g. ``invalid_grant`` after it forgot or revoked the grant), so a new sign-in is
    needed. Reported by the lifecycle beside its log line, so the panel can say why it asks again."""

    endpoint: str
    error: str

    def sentence(self) -> str:
        return (f"The saved sign-in to {self.endpoint} was refused by the identity provider ({self.error}); "
                "sign in again.")


Event = Union[
    FlowStarted, DeviceCodeIssued, AuthorizationRequested, Polling, SlowedDown, NetworkRetry, Succeeded, Failed,
    Cancelled, SavedSignInRefused,
]
Observer = Callable[[Event], None]


def notify(observer: Observer | None, event: Event) -> None:
    """Hand ``event`` to ``observer``; an observer's exception is logged, never propagated."""
    if observer is None:
        return
    try:
        observer(event)
    except Exception:  # noqa: BLE001 - a broken UI must not break the login
        log.exception("flyteauth observer failed on %s", type(event).__name__)


class TextObserver:
    """Writes one plain line per meaningful event to a stream (default stderr), for terminals."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def __call__(self, event: Event) -> None:
        line = self.format(event)
        if line:
            stream = self.stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()

    @staticmethod
    def format(event: Event) -> str | None:
        if isinstance(event, DeviceCodeIssued):
            minutes = max(0, round((event.expires_at - time.time()) / 60))
            where = event.verification_uri_complete or event.verification_uri
            return (
                f"To sign in, open {where} in a browser and enter the code {event.user_code} "
                f"(valid for about {minutes} min)."
            )
        if isinstance(event, AuthorizationRequested):
            if event.browser_opened:
                return f"A browser window was opened to sign in; if it did not appear, open {event.url}"
            return f"To sign in, open {event.url}"
        if isinstance(event, SlowedDown):
            return f"The server asked to poll more slowly; now every {event.interval:g} s."
        if isinstance(event, NetworkRetry):
            return f"Network problem ({event.reason}); retrying in {event.delay:g} s."
        if isinstance(event, Succeeded):
            who = f" as {event.subject}" if event.subject else ""
            return f"Signed in{who} to {event.endpoint}."
        if isinstance(event, Failed):
            return f"Sign-in failed: {event.message}"
        if isinstance(event, Cancelled):
            return "Sign-in cancelled."
        if isinstance(event, SavedSignInRefused):
            return event.sentence()
        return None
