"""The one exception tree of flyteauth_jupyter; every layer may import it, it imports nothing of ours.

::

    FlyteAuthError(Exception)
    ├── ConfigurationError(ValueError)        bad endpoint, bad option, missing client id/secret
    ├── AuthenticationError(RuntimeError)     flytekit's name: a login or token request failed
    │   ├── OAuthError                        the server answered error=...; .error, .description, .status
    │   │   ├── AccessDeniedError             the user (or policy) refused: access_denied
    │   │   ├── ExpiredTokenError             device code expired: expired_token
    │   │   ├── InvalidGrantError             code/refresh token invalid, expired or revoked
    │   │   ├── InvalidClientError            wrong client id or secret
    │   │   ├── InvalidScopeError
    │   │   └── UnauthorizedClientError
    │   ├── ProtocolError                     the server's answer is not what the spec says (HTML, no token)
    │   │   └── StateMismatchError            redirect state differs from the one we sent (CSRF)
    │   ├── LoginTimeoutError(TimeoutError)   the deadline passed before the user finished
    │   ├── LoginCancelledError               cancelled from another thread (Cancel button)
    │   ├── CommandError                      external command failed, timed out or printed nothing
    │   └── TransportError(ConnectionError)   network failure talking to a server
    │       └── TransportTimeoutError(TimeoutError)
    ├── AccessTokenNotFoundError(RuntimeError) flytekit's name: no token and no way to get one here
    ├── AuthenticationPending(RuntimeError)    flytekit's name: authorization_pending / slow_down
    └── TokenStoreError(OSError)               the keyring failed (we fall back to memory and say so)

Messages are one or two sentences, at most 500 characters, name the host:port and HTTP status where
there is one, and never contain a secret or an HTML body (DESIGN.md, pinned details 6, 7, 13).

:func:`one_line` marks an error for IPython to show as its one line, ``LoginCancelledError: <sentence>``,
instead of a traceback: the magics and a cell waiting for a sign-in raise the typed exception that way.
"""

from __future__ import annotations

import re
from typing import TypeVar

MAX_MESSAGE = 500


def _clip(message: str) -> str:
    message = " ".join(str(message).split())
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1].rstrip() + "…"
    return message


class FlyteAuthError(Exception):
    """Base of every exception flyteauth_jupyter raises."""

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(_clip(message), *args)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigurationError(FlyteAuthError, ValueError):
    """Local misuse: a bad endpoint, option or missing setting."""


class AuthenticationError(FlyteAuthError, RuntimeError):
    """A login or token request failed (flytekit's name)."""


class AccessTokenNotFoundError(FlyteAuthError, RuntimeError):
    """No usable token, and this call may not start a login (flytekit's name)."""


class AuthenticationPending(FlyteAuthError, RuntimeError):
    """The user has not finished yet: authorization_pending or slow_down (flytekit's name)."""


class TokenStoreError(FlyteAuthError, OSError):
    """The token store (keyring) failed."""


class OAuthError(AuthenticationError):
    """The authorization server answered with an OAuth error (RFC 6749 section 5.2, RFC 8628 section 3.5)."""

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        description: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.description = _clip(description) if description else None
        self.status = status


class AccessDeniedError(OAuthError):
    """The user or the server's policy refused the request (access_denied)."""


class ExpiredTokenError(OAuthError):
    """The device code expired before the user approved it (expired_token)."""


class InvalidGrantError(OAuthError):
    """The code or refresh token is invalid, expired or revoked (invalid_grant)."""


class InvalidClientError(OAuthError):
    """Client authentication failed (invalid_client)."""


class InvalidScopeError(OAuthError):
    """A requested scope is invalid or not allowed (invalid_scope)."""


class UnauthorizedClientError(OAuthError):
    """The client may not use this grant (unauthorized_client)."""


class ProtocolError(AuthenticationError):
    """The server's answer does not follow the protocol (not JSON, no access_token, ...).

    ``.status`` is the HTTP status when there was one (a 5xx HTML page from a proxy is transient).
    """

    def __init__(self, message: str = "", *args: object, status: int | None = None) -> None:
        super().__init__(message, *args)
        self.status = status


class StateMismatchError(ProtocolError):
    """The redirect carried a state that is not the one this login sent."""


class LoginTimeoutError(AuthenticationError, TimeoutError):
    """The login's deadline passed before it finished."""


class LoginCancelledError(AuthenticationError):
    """The login was cancelled."""


class InterruptedByForkError(AuthenticationError):
    """This process was forked while a sign-in or refresh ran: it goes on in the parent only; in the
    child it ended at once, and the next call starts afresh."""


class CommandError(AuthenticationError):
    """An external token command failed, timed out or printed no token."""


class TransportError(AuthenticationError, ConnectionError):
    """A network failure talking to a server."""


class TransportTimeoutError(TransportError, TimeoutError):
    """A network call timed out."""


#: RFC 6749 / RFC 8628 error codes and the class that carries each.
OAUTH_ERROR_CLASSES: dict[str, type[OAuthError]] = {
    "access_denied": AccessDeniedError,
    "expired_token": ExpiredTokenError,
    "invalid_grant": InvalidGrantError,
    "invalid_client": InvalidClientError,
    "invalid_scope": InvalidScopeError,
    "unauthorized_client": UnauthorizedClientError,
    # Entra ID's device-flow names for the same outcomes (Microsoft identity platform, device code flow):
    # the user declined; the device code is not one the server knows; v1's name for an expired code.
    "authorization_declined": AccessDeniedError,
    "bad_verification_code": InvalidGrantError,
    "code_expired": ExpiredTokenError,
}

_SAFE_CODE = re.compile(r"[^A-Za-z0-9_.:-]")
_TOKEN_LIKE = re.compile(r"[^\s'\"(),;<>\[\]{}]{16,}")
_USERINFO = re.compile(r"(?<=//)[^/@\s]*@")
REDACTED = "<redacted>"


def _token_like(match: re.Match[str]) -> str:
    """Long words of random-looking characters: letters and digits mixed, and several digits, or both
    cases, or 32+ characters (a path such as /config/v1/flyte_client is none of these)."""
    word = match.group(0)
    digits = sum(c.isdigit() for c in word)
    if not digits or not any(c.isalpha() for c in word):
        return word
    mixed_case = any(c.isupper() for c in word) and any(c.islower() for c in word)
    if digits >= 3 or mixed_case or len(word) >= 32:
        return REDACTED
    return word


def scrub(text: object, secrets: tuple[str | None, ...] = (), *, limit: int = 200) -> str:
    """A text from outside (a server's error description, a backend's message) fit for a log or a
    message: known ``secrets`` and anything shaped like a token (16+ characters mixing letters and
    digits, see ``_token_like``) replaced by ``<redacted>``, user:password@ in URLs dropped, control characters removed,
    clipped to ``limit``. The one scrubber: every layer uses it for text it did not write."""
    text = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = _USERINFO.sub("", " ".join(text.split()))
    text = _TOKEN_LIKE.sub(_token_like, text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_Error = TypeVar("_Error", bound=FlyteAuthError)


def one_line(exc: _Error) -> _Error:
    """``exc``, to be shown by IPython as one line, ``<Type>: <sentence>``, without a traceback.

    IPython (and so ipykernel's error reply) draws an exception's ``_render_traceback_()`` instead of
    its traceback when it has one; the type stays, so ``except LoginCancelledError`` and the reply's
    ``ename`` name our class. Only for errors whose sentence says everything (a sign-in that failed,
    a bad option): a bug's traceback is never hidden this way. Nothing is imported here."""

    def render() -> list[str]:
        return [f"{type(exc).__name__}: {exc}"]

    exc._render_traceback_ = render  # type: ignore[attr-defined]
    return exc


def oauth_error(
    error: str,
    description: str | None = None,
    *,
    status: int | None = None,
    where: str | None = None,
) -> OAuthError:
    """The exception for an OAuth error answer (RFC 6749 5.2, RFC 8628 3.5, RFC 6749 4.1.2.1).

    ``error`` picks the class (OAUTH_ERROR_CLASSES, else OAuthError); ``where`` is the host:port that
    answered. The server's description is kept (sanitised, clipped) as ``.description`` and quoted
    in the message, scrubbed of anything shaped like a token (:func:`scrub`); nothing else from the body is used.
    """
    code = scrub(_SAFE_CODE.sub("", str(error or ""))[:64], limit=64) or "unknown_error"
    desc = scrub(description, limit=200) if description else None
    cls = OAUTH_ERROR_CLASSES.get(code, OAuthError)
    at = f" at {where}" if where else ""
    http = f"HTTP {status} " if status else ""
    detail = f" ({http}{code}{': ' + desc if desc else ''})"
    if cls is AccessDeniedError:
        message = f"The sign-in was denied{at}{detail}; run the login again if that was a mistake."
    elif cls is ExpiredTokenError:
        message = f"The sign-in code expired before it was approved{at}{detail}; run the login again."
    elif cls is InvalidGrantError:
        message = (
            f"The server{at} rejected the grant{detail}: the code or refresh token is invalid, expired or "
            "revoked; sign in again."
        )
    elif cls is InvalidClientError:
        message = f"The server{at} rejected the client credentials{detail}; check the client id and secret."
    elif cls is InvalidScopeError:
        message = f"The server{at} rejected the requested scopes{detail}; check the scopes configured."
    elif cls is UnauthorizedClientError:
        message = f"The client may not use this grant{at}{detail}; check the client's registration."
    else:
        message = f"The server{at} refused the request{detail}."
    return cls(message, error=code, description=desc, status=status)


__all__ = [
    "InterruptedByForkError",
    "FlyteAuthError",
    "ConfigurationError",
    "AuthenticationError",
    "AccessTokenNotFoundError",
    "AuthenticationPending",
    "TokenStoreError",
    "OAuthError",
    "AccessDeniedError",
    "ExpiredTokenError",
    "InvalidGrantError",
    "InvalidClientError",
    "InvalidScopeError",
    "UnauthorizedClientError",
    "ProtocolError",
    "StateMismatchError",
    "LoginTimeoutError",
    "LoginCancelledError",
    "CommandError",
    "TransportError",
    "TransportTimeoutError",
    "OAUTH_ERROR_CLASSES",
    "oauth_error",
    "one_line",
    "scrub",
]
