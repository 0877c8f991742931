"""The one place where numbers and JSON from servers (and seconds from users) are checked.

Servers are not trusted: every number read from one goes through :func:`server_seconds` or
:func:`epoch_seconds`, which accept only finite values in a stated range (a ``ProtocolError`` naming
the field and host otherwise, or the obvious right meaning where one exists: a JWT ``exp`` in
milliseconds is read as seconds). :func:`loads` is the JSON parser for server bodies: standard JSON
only (no ``NaN``/``Infinity``), non-finite floats and deep nesting refused with a ``ProtocolError``,
never a bare ``ValueError``/``RecursionError``/``OverflowError``. :func:`user_seconds` checks a
timeout given by a person (``--timeout``) and says what is wrong in one sentence.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import ConfigurationError, ProtocolError

#: no server lifetime (expires_in, device code expiry) is longer than this: ten years
MAX_LIFETIME = 10 * 365 * 24 * 3600
#: device polling interval: more than an hour between polls is not a usable device flow
MAX_INTERVAL = 3600.0
#: epoch seconds we accept (1970 .. 9999-12-31); a JWT exp above this and below it x 1000 is milliseconds
MAX_EPOCH = 253_402_300_799.0
#: timeouts a user may ask for: one day
MAX_USER_SECONDS = 86_400.0
#: JSON nesting we read; documents from token and metadata endpoints are two or three levels deep
MAX_DEPTH = 32


class _NotFinite(ValueError):
    pass


class NotJSON(ProtocolError):
    """The body is not JSON at all (as opposed to JSON we refuse: NaN, Infinity, nested too deep)."""


def _reject_constant(name: str) -> Any:
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text[:20])
    return value


def _depth_ok(text: str, limit: int = MAX_DEPTH) -> bool:
    """Cheap nesting check before parsing (brackets inside strings count too: conservative)."""
    depth = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def loads(text: str, *, where: str = "the server") -> Any:
    """Parse a server's JSON body strictly; ProtocolError when it is not standard, finite, shallow JSON."""
    if not _depth_ok(text):
        raise ProtocolError(f"{where} sent JSON nested more than {MAX_DEPTH} levels deep, which no OAuth answer is; check the endpoint URL.")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except _NotFinite:
        raise ProtocolError(f"{where} sent a number that is not finite (NaN or Infinity), which is not valid JSON; check the endpoint URL.") from None
    except (ValueError, RecursionError, OverflowError, MemoryError):
        raise NotJSON(f"{where} sent a body that is not valid JSON; check the endpoint URL.") from None


def as_number(value: Any) -> float | None:
    """``value`` as a float when it is a JSON number or a numeric string; None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    if isinstance(value, str) and 0 < len(value.strip()) <= 40:
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def server_seconds(
    value: Any,
    *,
    name: str,
    where: str = "the server",
    minimum: float = 0.0,
    maximum: float = MAX_LIFETIME,
) -> float | None:
    """A duration a server sent (``expires_in``, ``interval``): None when absent, else a finite number
    in [minimum, maximum]; anything else (NaN, infinite, negative, absurd, not a number) is a ProtocolError."""
    if value is None:
        return None
    number = as_number(value)
    if number is None or not math.isfinite(number) or not minimum <= number <= maximum:
        shown = f" ({value!r})" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        raise ProtocolError(
            f"{where} sent an {name} that is not a number of seconds between {minimum:g} and {maximum:g}{shown[:40]}; "
            "it does not follow the OAuth specification, so check the deployment's identity provider."
        )
    return number


def epoch_seconds(value: Any) -> float | None:
    """An absolute time in epoch seconds (a JWT ``exp``, a stored ``expires_at``), or None when unusable.

    Milliseconds (a value above :data:`MAX_EPOCH` that fits once divided by 1000) are read as such;
    NaN, infinities and absurd values mean "unknown" (the token is used until rejected); a time
    before 1970 is read as 1970 (it is simply expired, and stays a time every clock can show)."""
    number = as_number(value)
    if number is None or not math.isfinite(number) or number < -MAX_EPOCH:
        return None
    if number < 0:
        return 0.0
    if number > MAX_EPOCH:
        number /= 1000.0
        if number > MAX_EPOCH:
            return None
    return number


def user_seconds(value: Any, *, option: str = "--timeout") -> float | None:
    """A number of seconds typed by a user: None stays None; else finite, > 0 and at most a day."""
    if value is None:
        return None
    number = as_number(value)
    if number is None or not math.isfinite(number) or not 0 < number <= MAX_USER_SECONDS:
        raise ConfigurationError(
            f"{option} must be a number of seconds greater than 0 and at most {MAX_USER_SECONDS:g} (one day)."
        )
    return number


def scope_list(scopes: Any) -> tuple[str, ...]:
    """Scopes as a tuple of names: a string is space-separated (``"openid offline_access"`` is two
    scopes, never its characters), and each item of a list is split the same way; duplicates dropped."""
    if scopes is None:
        return ()
    items = [scopes] if isinstance(scopes, str) else list(scopes)
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError("Scopes must be strings, such as \"openid offline_access\".")
        names.extend(item.replace(",", " ").split())
    return tuple(dict.fromkeys(names))


__all__ = [
    "MAX_DEPTH",
    "MAX_EPOCH",
    "MAX_INTERVAL",
    "MAX_LIFETIME",
    "NotJSON",
    "as_number",
    "epoch_seconds",
    "loads",
    "scope_list",
    "server_seconds",
    "user_seconds",
]
