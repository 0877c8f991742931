"""Renewal: when a refresh runs, how many threads and processes share it, and what stops it.

* Single flight: overlapping refreshes from any number of threads share one request and its result
  (pinned 5); across processes the store's ``lock(service)`` is held and the store re-read, so a
  fresher token a sibling wrote is adopted instead of refreshing (store adoption).
* Sign-out beats a flight: every flight remembers the sign-out count (``_epoch``) it started with and
  stores or holds its result only through :meth:`TokenLifecycle._commit`, which writes nothing when
  ``logout()`` ran meanwhile (and revokes a refresh token it obtained).
* Backoff: a silent renewal (the refresh grant, or the flow of an authenticator that needs nobody:
  the Hub's sign-in, client credentials, a command) that fails for a passing reason, or that brings
  back a token still due for renewal (a Hub that has not refreshed yet hands back the same one), is
  not tried again by ``get_credentials()`` for 1 s, 2 s, 4 s ... 60 s (issue 16.7). Meanwhile the
  held token is returned by the slow path (the server says when it is rejected) and never cached as
  fresh; a fresher one a sibling stored is still adopted. Explicit, interactive calls skip it. Only
  a grant-ending answer (``invalid_grant`` and equivalents) drops the refresh token.
* A forked child (issue 16.8) inherits a flight in progress but not the thread leading it: there
  its waiters end at once with ``InterruptedByForkError``, the locks are re-created, ``wait()``
  reports the interrupted flight, and the next call starts a flight of its own.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

from ..control import Clock, Waiter, end_in_child, survive_fork
from ..credentials import Credentials
from ..errors import (
    AccessDeniedError,
    AccessTokenNotFoundError,
    AuthenticationError,
    ExpiredTokenError,
    FlyteAuthError,
    InvalidGrantError,
    LoginCancelledError,
    LoginTimeoutError,
)
from ..flows.events import Cancelled, Failed, FlowStarted, SavedSignInRefused, Succeeded, notify
from .held import HeldCredentials, log
from .margin import needs_refresh


class Flight:
    """One refresh in progress; callers that overlap it wait on ``future``.

    ``epoch`` is the authenticator's sign-out count when the flight started: a flight that finds it
    changed (``logout()`` ran meanwhile) writes nothing and revokes what it obtained.
    """

    def __init__(self, interactive: bool, epoch: int = 0) -> None:
        self.interactive = interactive
        self.epoch = epoch
        self.thread = threading.get_ident()
        self.future: concurrent.futures.Future[Credentials] = concurrent.futures.Future()


#: OAuth errors after which a refresh token is dead (RFC 6749 5.2); any other error is transient.
GRANT_ENDING_ERRORS = (InvalidGrantError, ExpiredTokenError, AccessDeniedError)
#: Backoff after a transient refresh failure: 1 s, 2 s, 4 s, ... at most this many seconds.
MAX_RETRY_BACKOFF = 60.0


class BackingOff(AuthenticationError):
    """A silent renewal was tried a moment ago; the next try waits for the backoff."""


class TokenLifecycle(HeldCredentials):
    """The held credentials, their renewal and its single flight (see the module docstrings)."""

    def _init_lifecycle(self, *, credentials: Credentials | None, store: Any, clock: Clock | None) -> None:
        self._init_held(credentials=credentials, store=store, clock=clock)
        self._flight_lock = threading.Lock()
        self._flight: Flight | None = None
        self._waiter: Waiter | None = None
        self._epoch = 0  # sign-outs so far (logout bumps it; a flight from before writes nothing)
        self._failures = 0  # transient refresh failures in a row
        self._retry_at: float | None = None  # no background refresh grant before this time (backoff)
        self._interrupted: Flight | None = None  # the parent's flight, ended in a forked child
        survive_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child (``control``): new locks, no flight; the parent's flight ends here at once."""
        super()._after_fork_in_child()
        self._flight_lock = threading.Lock()
        flight, self._flight = self._flight, None
        self._waiter = None  # it belongs to the parent's flight
        if flight is not None:
            end_in_child(flight.future, f"the sign-in or refresh for {self.service}")
            self._interrupted = flight  # what wait() reports until a flight of this process starts

    def _get_credentials(self) -> Credentials | None:
        """The slow path: renew first when due (without the user), else the held credentials."""
        creds = self._current()
        if creds is None or not needs_refresh(creds, self._clock.time()):
            if creds is not None:
                self._publish(creds)
            return creds
        if self.needs_user and not creds.refresh_token:
            return creds  # nothing to do without the user; the server will say when it is rejected
        try:
            new = self._refresh(interactive=False, seen=creds)
        except BackingOff as exc:
            log.debug("%s", exc)
            return self._creds
        except FlyteAuthError as exc:
            log.warning("Could not renew the token for %s: %s", self.service, exc)
            return self._creds
        self._publish(new)
        return new

    @property
    def login_in_progress(self) -> bool:
        with self._flight_lock:
            return self._flight is not None

    def wait(self, timeout: float | None = None) -> Credentials | None:
        """Wait for the login or refresh in progress (if any), then return :meth:`get_credentials`.

        Raises that login's error, or LoginTimeoutError when it is still running after ``timeout`` s.
        """
        with self._flight_lock:
            flight = self._flight or self._interrupted
        if flight is not None:
            try:
                flight.future.result(timeout=timeout)
            except concurrent.futures.TimeoutError:
                raise LoginTimeoutError(
                    f"The sign-in for {self.service} is still in progress after {timeout:g} s."
                ) from None
        return self.get_credentials()

    def cancel(self) -> None:
        """Cancel the interactive login in progress, if any (safe from any thread)."""
        with self._state_lock:
            waiter = self._waiter
        if waiter is not None:
            waiter.cancel()

    # -- hooks for the authenticators ---------------------------------------------------------------
    def _login(self, waiter: Waiter) -> Credentials:
        """Obtain new credentials without a refresh token (the flow)."""
        raise AccessTokenNotFoundError(
            f"This authenticator for {self.service} cannot obtain new credentials; sign in with a login flow."
        )

    def _refresh_grant(self, creds: Credentials) -> Credentials | None:
        """New credentials from the refresh token, or None when this authenticator has no refresh grant."""
        return None

    def _login_deadline(self) -> float | None:
        return self.timeout

    def _revoke_all(self, held: list[Credentials]) -> bool:
        """Revoke the tokens in ``held``; True when the server confirmed (no revocation here)."""
        return False

    @contextlib.contextmanager
    def _service_lock(self) -> Iterator[None]:
        """The store's cross-process lock for this service, when it has one (best effort)."""
        lock = getattr(self._store, "lock", None)
        with contextlib.ExitStack() as stack:
            if callable(lock):
                try:
                    stack.enter_context(lock(self.service))
                except Exception as exc:  # noqa: BLE001
                    log.warning("Could not take the token lock for %s (%s); refreshing anyway", self.service, exc)
            yield

    def _adopt(self, creds: Credentials) -> Credentials:
        with self._state_lock:
            self._creds = creds
            self._loaded = True
        return creds

    # -- single flight ---------------------------------------------------------------------------------
    def _refresh(self, *, interactive: bool, seen: Credentials | None = None) -> Credentials:
        while True:
            leader = False
            with self._flight_lock:
                current = self._creds
                if seen is not None and current is not None and current is not seen and not needs_refresh(
                    current, self.clock.time()
                ):
                    return current  # someone refreshed since the caller looked
                flight = self._flight
                if flight is None:
                    flight = self._flight = Flight(interactive, self._epoch)
                    self._interrupted = None
                    leader = True
            if leader:
                return self._lead(flight)
            compatible = flight.interactive or not interactive
            try:
                return flight.future.result()
            except BaseException:
                if compatible:
                    raise
            # We need a login, the flight we waited for could not do one: start our own.

    def _lead(self, flight: Flight) -> Credentials:
        try:
            flight.future.set_result(self._obtain(flight.interactive, flight.epoch))
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of this flight
            flight.future.set_exception(exc)
        finally:
            with self._flight_lock:
                self._flight = None
        return flight.future.result()

    def _obtain(self, interactive: bool, epoch: int = 0) -> Credentials:
        current = self._current()  # what we hold before waiting for the lock
        with self._service_lock():
            stored = self._store_call("load")  # re-read: a sibling may have refreshed meanwhile
            if stored is not None and stored.access_token and (
                current is None
                or stored.access_token != current.access_token
                or stored.refresh_token != current.refresh_token
            ):
                if current is None or stored.access_token != current.access_token:
                    if not needs_refresh(stored, self.clock.time()):
                        log.debug("adopting the token another process stored for %s", self.service)
                        return self._commit(stored, epoch, save=False)
                if stored.refresh_token:
                    current = stored  # ours may have been rotated away by a sibling
            if current is not None and current.refresh_token:
                new = self._try_refresh_grant(current, interactive)
                if new is not None:
                    self._commit(new, epoch, save=True, previous=current)
                    self._notify_succeeded("refresh", new)
                    return new
        if self.needs_user and not interactive:
            raise AccessTokenNotFoundError(
                f"The sign-in for {self.service} has expired and cannot be renewed without you; "
                "run %flyte_login (or refresh_credentials()) to sign in again."
            )
        silent = not self.needs_user  # a renewal by the flow itself (the Hub, client credentials, a command)
        if silent and not interactive:
            self._check_backoff()
        try:
            new = self._run_login(epoch)
        except FlyteAuthError as exc:
            if silent and not isinstance(exc, LoginCancelledError):
                self._back_off()
            raise
        with self._service_lock():
            # a new login replaces the whole entry: nothing of an earlier grant (another user's
            # refresh or id token) may stay beside it
            self._commit(new, epoch, save=True, replace=True)
        if silent:
            self._renewed(new)
        self._notify_succeeded(self.flow_name, new)
        return new

    # -- backoff of silent renewals ---------------------------------------------------------------------
    def _check_backoff(self) -> None:
        """Raise BackingOff while the backoff after the last silent renewal lasts."""
        now = self.clock.time()
        if self._retry_at is not None and now < self._retry_at:
            raise BackingOff(
                f"The token for {self.service} could not be renewed a moment ago; trying again in "
                f"{self._retry_at - now:.0f} s."
            )

    def _back_off(self) -> None:
        """One more renewal in a row without a fresh token: wait 1 s, 2 s, 4 s ... 60 s before the next."""
        self._failures += 1
        self._retry_at = self.clock.time() + min(MAX_RETRY_BACKOFF, 2.0 ** (self._failures - 1))

    def _renewed(self, new: Credentials) -> None:
        """A renewal answered: the backoff ends when it brought a fresh token; one that is still due
        (the Hub handed back the token it had, as near its expiry as before) counts as no progress."""
        if needs_refresh(new, self.clock.time()):
            log.debug("the renewed token for %s is still due for renewal; backing off", self.service)
            self._back_off()
        else:
            self._failures, self._retry_at = 0, None

    def _try_refresh_grant(self, current: Credentials, interactive: bool) -> Credentials | None:
        """The refresh grant for ``current``; None when this authenticator has none or the token is dead.

        Only a grant-ending answer (``invalid_grant`` and equivalents) drops the refresh token; a
        transient failure (``temporarily_unavailable``, a 5xx, the network) is raised and keeps it,
        and background refreshes back off (1 s, 2 s, 4 s, ... 60 s) before the next attempt.
        """
        if not interactive:
            self._check_backoff()
        try:
            new = self._refresh_grant(current)
        except GRANT_ENDING_ERRORS as exc:
            log.info("The refresh token for %s was refused (%s); a new sign-in is needed", self.service, exc.error)
            # the panel of the sign-in that follows says why it asks again (issue 17.7)
            notify(self.observer, SavedSignInRefused(endpoint=self.service, error=exc.error or type(exc).__name__))
            self._store_call("delete")  # dead (expired, revoked, replayed): nobody may use it
            self._adopt(dataclasses.replace(current, refresh_token=None))
            self._failures, self._retry_at = 0, None
            return None
        except FlyteAuthError:
            self._back_off()
            raise
        if new is not None:
            self._renewed(new)
        return new

    def _commit(
        self,
        new: Credentials,
        epoch: int,
        *,
        save: bool,
        replace: bool = False,
        previous: Credentials | None = None,
    ) -> Credentials:
        """Store (``save``) and hold ``new``, unless logout() ran since the flight began (``epoch``):
        then nothing is written, a refresh token obtained is revoked, and LoginCancelledError raised."""
        with self._state_lock:
            signed_out = self._epoch != epoch
            if not signed_out:
                if save:
                    if replace:
                        self._store_call("delete")
                    self._store_call("save", new)
                self._creds = new
                self._loaded = True
        if signed_out:
            if save and new.refresh_token and (previous is None or new.refresh_token != previous.refresh_token):
                self._revoke_all([new])
            raise LoginCancelledError(
                f"You signed out of {self.service} while its tokens were being renewed; the new ones were discarded."
            )
        return new

    def _notify_succeeded(self, flow: str, creds: Credentials) -> None:
        notify(
            self.observer,
            Succeeded(
                flow=flow,
                endpoint=self.service,
                expires_at=creds.expires_at,
                subject=creds.subject,
                scopes=creds.scopes,
            ),
        )

    def _run_login(self, epoch: int | None = None) -> Credentials:
        """The interactive flow (the caller commits its result and reports Succeeded)."""
        waiter = Waiter(self._login_deadline(), what=self._waiting_for(), clock=self.clock)
        with self._state_lock:
            self._waiter = waiter
            if epoch is not None and epoch != self._epoch:
                waiter.cancel()  # logout() ran before this waiter could be cancelled: stop at once
        notify(self.observer, FlowStarted(flow=self.flow_name, endpoint=self.service))
        try:
            return self._login(waiter)
        except LoginCancelledError:
            notify(self.observer, Cancelled(flow=self.flow_name))
            raise
        except BaseException as exc:
            notify(self.observer, Failed(flow=self.flow_name, message=str(exc), error=exc))
            raise
        finally:
            with self._state_lock:
                if self._waiter is waiter:
                    self._waiter = None

    def _waiting_for(self) -> str:
        return "the sign-in"
