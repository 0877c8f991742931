"""The token lifecycle every authenticator shares: which credentials are current, when they are
renewed, and how many threads and processes share one renewal. ``authenticators.Authenticator``
(flytekit's surface: constructors, the header, the configuration, sign-out) builds on it.

Where to look:

* :mod:`.margin`: when a token is due (pinned 4 and 5): ``refresh_margin``, ``refresh_at``,
  ``needs_refresh``. Pure.
* :mod:`.held`: the held credentials, the store they are loaded from, and the hot path: while the
  held token is fresh, ``get_credentials()`` and ``fetch_grpc_call_auth_metadata()`` are a clock read,
  a compare and a cached value; nothing runs in the background (issue 19.1, pinned 21).
* :mod:`.renewal`: ``TokenLifecycle``: the slow path, single flight across threads and processes
  (store adoption), sign-out during a flight (``_epoch``), the backoff of silent renewals (issue
  16.7), and a forked child (issue 16.8).

Hooks for the authenticators: ``_login(waiter)`` (the interactive flow), ``_refresh_grant(creds)``,
``_login_deadline()``, ``_waiting_for()``, ``_known_header_key()``, ``_revoke_all(held)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

if TYPE_CHECKING:  # the names below, for type checkers; at run time see __getattr__
    from .held import COLD, NOTHING_HELD, HeldCredentials
    from .margin import MAX_REFRESH_MARGIN, needs_refresh, refresh_at, refresh_margin
    from .renewal import GRANT_ENDING_ERRORS, MAX_RETRY_BACKOFF, BackingOff, Flight, TokenLifecycle

#: Public name -> the submodule that defines it, imported on first use (PEP 562), so that the pure
#: :mod:`.margin` (the token command's fast path) comes without the threads and flows of the others.
_LAZY = {
    **dict.fromkeys(("COLD", "NOTHING_HELD", "HeldCredentials"), ".held"),
    **dict.fromkeys(("MAX_REFRESH_MARGIN", "needs_refresh", "refresh_at", "refresh_margin"), ".margin"),
    **dict.fromkeys(("GRANT_ENDING_ERRORS", "MAX_RETRY_BACKOFF", "BackingOff", "Flight", "TokenLifecycle"), ".renewal"),
}


__getattr__, __dir__ = attach(__name__, _LAZY, globals())

__all__ = [
    "COLD",
    "NOTHING_HELD",
    "GRANT_ENDING_ERRORS",
    "MAX_REFRESH_MARGIN",
    "MAX_RETRY_BACKOFF",
    "BackingOff",
    "Flight",
    "HeldCredentials",
    "TokenLifecycle",
    "needs_refresh",
    "refresh_at",
    "refresh_margin",
]
