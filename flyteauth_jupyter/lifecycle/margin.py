"""When a token is due: the refresh margin (DESIGN.md pinned 5) and unknown expiries (pinned 4).

A token is refreshed when less than min(60 s, half its lifetime) is left; its lifetime is
``expires_in``, else its JWT's ``exp - iat``, else unknown (then the margin is 60 s). A token of
unknown expiry is used until the server rejects it. Pure functions of the credentials and the time.
"""

from __future__ import annotations

import math

from ..credentials import Credentials, jwt_times

MAX_REFRESH_MARGIN = 60.0


def refresh_margin(creds: Credentials) -> float:
    """Seconds before expiry at which to refresh: min(60 s, half the token's lifetime) (pinned 5)."""
    lifetime: float | None = None
    if creds.expires_in:
        lifetime = float(creds.expires_in)
    else:
        iat, exp = jwt_times(creds.access_token)  # the one expiry parser (pinned 22)
        if iat is not None and exp is not None and exp > iat:
            lifetime = exp - iat
    if lifetime is None:
        return MAX_REFRESH_MARGIN
    return min(MAX_REFRESH_MARGIN, lifetime / 2.0)


def refresh_at(creds: Credentials) -> float:
    """Epoch seconds from which ``creds`` is due for a refresh (its expiry less the margin); +inf
    when the expiry is unknown (used until the server rejects it, pinned 4)."""
    if creds.expires_at is None:
        return math.inf
    return creds.expires_at - refresh_margin(creds)


def needs_refresh(creds: Credentials | None, now: float) -> bool:
    """True when ``creds`` has no access token or is within its refresh margin of expiry."""
    if creds is None or not creds.access_token:
        return True
    return now >= refresh_at(creds)
