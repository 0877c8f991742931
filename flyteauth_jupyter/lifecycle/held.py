"""The held credentials and the hot path (issue 19.1, DESIGN.md pinned 21).

While the held token is fresh, ``get_credentials()`` (and the authenticators'
``fetch_grpc_call_auth_metadata()``) read the clock, compare it with the token's refresh instant and
return a cached value: two attributes, ``_hot_creds`` and ``_hot_header``, each one tuple ``(clock
reader, refresh instant, value)``. The slow path (:meth:`_publish`, under the state lock) replaces a
tuple whole, so a lock-free reader never sees a mix; every change of the held credentials (the
``_creds`` property), of the clock and of the header key empties both (:meth:`_cool`) under the same
lock, so a publication racing a change is never of replaced credentials. The tuple carries its
clock's reader because unpacking it measured cheaper than a second attribute read (bench/).

The notebook's ``LoginSession`` shares them (issue 19.2): once a sign-in has finished, the session
reads its authenticator's two tuples itself (the authenticator instance is the holder; any change of
the session points it at :data:`NOTHING_HELD`), so a session's call is the authenticator's own work
plus one attribute read, with no call of the authenticator's methods. The tuples are instance
attributes from ``_init_held`` on, so reading them is one specialised attribute load.

The wall clock is read on every call, so a token that expired while the machine slept is never
served, and nothing runs in the background: no thread, no timer, no wake-up. Why not the timer this
replaced (values withdrawn by a thread at the refresh instant, issue 12): it saved one clock read
(about 60 ns on our VMs) at the price of a thread waking every second in every signed-in kernel, a
second of serving an expired token after a suspend, and much machinery. The 60 ns were not worth a
thread.

Also here: loading the store once (``_current``) and calling it without ever letting it break a
login (``_store_call``). The renewal (single flight, backoff, sign-out) is :mod:`.renewal`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from ..control import SYSTEM_CLOCK, Clock
from ..credentials import Credentials
from ..errors import TokenStoreError
from ..flows.events import Observer
from .margin import refresh_at

log = logging.getLogger("flyteauth_jupyter.authenticators")  # one logger name for the authenticators' messages

#: a hot-path tuple while nothing fresh is held: no clock reading is below -inf
COLD: tuple[Callable[[], float], float, Any] = (time.time, -math.inf, None)


class _NothingHeld:
    """Where a hot path reads while it has no authenticator to read from: both tuples cold."""

    __slots__ = ()
    _hot_creds = _hot_header = COLD


#: The source a ``LoginSession`` reads (instead of its authenticator's tuples) while its sign-in is not
#: finished, or after any change: every call takes the session's own checks.
NOTHING_HELD: Any = _NothingHeld()


class HeldCredentials:
    """The credentials an authenticator holds, its store, its clock and the hot path's cache."""

    #: set by the authenticator: the service (``host[:port]``), the observer, the login's deadline
    service: str
    observer: Observer | None
    timeout: float | None
    #: the flow's name in events, and whether new credentials need a person (authenticator class attributes)
    flow_name: str = "login"
    needs_user: bool = False

    #: The hot path's cache (see the module docstring): (clock reader, refresh instant, credentials),
    #: and the same with the metadata tuple once the header key is known without a request.
    _hot_creds: tuple[Callable[[], float], float, Credentials | None] = COLD
    _hot_header: tuple[Callable[[], float], float, tuple[str, str] | None] = COLD

    def _init_held(self, *, credentials: Credentials | None, store: Any, clock: Clock | None) -> None:
        self._hot_creds = self._hot_header = COLD  # instance attributes from the start (see the module doc)
        self._state_lock = threading.RLock()
        self._held: Credentials | None = None
        self.clock = clock or SYSTEM_CLOCK
        self._store = store
        self._creds = credentials
        self._loaded = credentials is not None or store is None
        self._store_warning: str | None = None

    def _after_fork_in_child(self) -> None:
        """In a forked child (``control``): a parent thread may have held the lock at the fork."""
        self._state_lock = threading.RLock()

    # -- current credentials (the hot path) -------------------------------------------------------
    def get_credentials(self) -> Credentials | None:
        """The current credentials (None before any login), refreshed first when about to expire."""
        now, until, creds = self._hot_creds
        if now() < until:
            return creds
        return self._get_credentials()

    def _get_credentials(self) -> Credentials | None:
        """The slow path: the current credentials, renewed first when due (:mod:`.renewal`)."""
        raise NotImplementedError

    # -- the hot path's value (set by the slow path while fresh, emptied by any change) --------------
    @property
    def _creds(self) -> Credentials | None:
        return self._held

    @_creds.setter
    def _creds(self, creds: Credentials | None) -> None:
        with self._state_lock:
            self._held = creds
            self._cool()

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        with self._state_lock:
            self._clock = clock
            self._cool()

    def _cool(self) -> None:
        """Empty the hot path's cache (the caller holds the state lock): the next call takes the slow path."""
        self._hot_creds = self._hot_header = COLD

    def _publish(self, creds: Credentials) -> None:
        """Cache ``creds`` (held and fresh) for the hot path until its refresh instant, with its
        metadata tuple once the header key is known without a request. Under the state lock, which
        every change of the held credentials, the clock and the header key also takes: a value
        published here is never one of credentials that were replaced meanwhile."""
        with self._state_lock:
            now = self._clock.reader()
            until = refresh_at(creds) if creds.access_token else -math.inf
            if creds is not self._held or not now() < until:
                return
            self._hot_creds = (now, until, creds)
            key = self._known_header_key()
            if key is not None:
                self._hot_header = (now, until, (key, f"Bearer {creds.access_token}"))

    def _set_credentials(self, creds: Credentials | None) -> None:
        with self._state_lock:
            self._creds = creds
            self._loaded = True

    def _known_header_key(self) -> str | None:
        """The metadata header key when it is known without a request (None: not cached yet)."""
        return None

    # -- state and store ------------------------------------------------------------------------------
    def _current(self) -> Credentials | None:
        if not self._loaded:
            with self._state_lock:
                if not self._loaded:
                    stored = self._store_call("load")
                    if self._creds is None and stored is not None:
                        self._creds = stored
                    self._loaded = True
        return self._creds

    def _store_call(self, method: str, *args: Any) -> Any:
        store = self._store
        if store is None:
            return None
        try:
            return getattr(store, method)(self.service, *args)
        except Exception as exc:  # noqa: BLE001 - the store must never break a login
            if self._store_warning is None:
                # our own store errors are one secret-free sentence (e.g. a FileStore refusing a path)
                why = str(exc).rstrip(".") if isinstance(exc, TokenStoreError) and str(exc) else type(exc).__name__
                self._store_warning = (
                    f"The token store failed ({why}); tokens for {self.service} are kept in memory "
                    "for this kernel only."
                )
                log.warning("%s", self._store_warning)
            return None
