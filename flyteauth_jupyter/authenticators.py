"""The authenticators: flytekit's public classes, re-implemented on top of the flows.

Each class takes the seed's parameters (flytekit's names, order and defaults) and keyword-only
extras (``observer=``, ``timeout=``, ``store=``, ``clock=``, ``insecure=``, and for the browser and
device logins ``client_id=``, ``redirect_uri=``, ``open_browser=``, ``audience=``). This module owns
the token lifecycle around the flows:

* ``get_credentials()``: the current Credentials or None before any login (pinned 10), refreshed
  first (without user interaction) when less than min(60 s, half the lifetime) is left (pinned 5); a
  token of unknown expiry is used until the server rejects it; a JWT's ``exp`` schedules it (pinned 4).
* ``refresh_credentials(*, interactive=True)``: the refresh grant when possible, else the interactive
  flow if allowed (else AccessTokenNotFoundError). Overlapping calls from any number of threads share
  one request and its result (single flight); across processes the store's ``lock(service)`` is
  held and the store re-read, so a fresher token a sibling wrote is adopted instead of refreshing.
* ``fetch_grpc_call_auth_metadata()``: ``(header_key, "Bearer <token>")`` or None; the header key is
  the argument, else the server's ``authorization_metadata_key``, else ``authorization`` (pinned 3).
* ``cancel()`` ends an interactive login in progress (any thread); ``logout()`` revokes (RFC 7009)
  when a revocation endpoint is known and clears the store.
* ``PKCEAuthenticator.submit_redirect(url)`` hands the waiting browser sign-in the address the user's
  browser ended on, when the redirect cannot reach this machine (paste-back; any thread).

Progress goes to the observer as events (flows.events); nothing prints. Reprs redact every secret.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import threading
import time as _time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import requests

from .config import ClientConfig, ClientConfigStore, RemoteClientConfigStore
from .control import SYSTEM_CLOCK, Clock, Waiter, run_in_background
from .credentials import DEFAULT_ENDPOINT, Credentials, jwt_claims
from .validate import scope_list
from .endpoint import parse_endpoint
from .errors import (
    AccessDeniedError,
    AccessTokenNotFoundError,
    AuthenticationError,
    ConfigurationError,
    ExpiredTokenError,
    FlyteAuthError,
    InvalidGrantError,
    LoginCancelledError,
    LoginTimeoutError,
    OAuthError,
    TokenStoreError,
)
from .flows import authcode, client_credentials, device, refresh
from .flows import command as command_flow
from .flows.events import Cancelled, Failed, FlowStarted, Observer, Succeeded, notify
from .transport.http import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, Transport

log = logging.getLogger(__name__)

DEFAULT_HEADER_KEY = "authorization"
MAX_REFRESH_MARGIN = 60.0
INFINITY = float("inf")

#: the hot path's cache: (fresh until, epoch seconds; the credentials; their metadata tuple)
_Hot = tuple[float, Credentials, tuple[str, str]]


def refresh_margin(creds: Credentials) -> float:
    """Seconds before expiry at which to refresh: min(60 s, half the token's lifetime) (pinned 5)."""
    lifetime: float | None = None
    if creds.expires_in:
        lifetime = float(creds.expires_in)
    else:
        claims = jwt_claims(creds.access_token)
        exp, iat = claims.get("exp"), claims.get("iat")
        if isinstance(exp, (int, float)) and isinstance(iat, (int, float)) and exp > iat:
            lifetime = float(exp - iat)
    if lifetime is None:
        return MAX_REFRESH_MARGIN
    return min(MAX_REFRESH_MARGIN, lifetime / 2.0)


def needs_refresh(creds: Credentials | None, now: float) -> bool:
    """True when ``creds`` has no access token or is within its refresh margin of expiry."""
    if creds is None or not creds.access_token:
        return True
    left = creds.lifetime_left(now)
    if left is None:
        return False  # unknown expiry: use it until the server rejects it (pinned 4)
    return left < refresh_margin(creds)


def _default_store() -> Any:
    """The store ``$FLYTEAUTH_TOKEN_CACHE`` names (default: the keyring, memory fallback built in);
    memory when stores cannot be imported."""
    try:
        from .stores import make_store

        return make_store()
    except Exception:  # noqa: BLE001 - a store problem never breaks a login
        log.warning("the keyring token store is unavailable; tokens are kept in memory for this kernel")
        return _memory_store()


def reachable_stores(own: Any = None) -> list[Any]:
    """Every token store this process can reach besides ``own``: the system keyring (when a working
    backend is configured), the private file cache and process memory (for a complete sign-out)."""
    try:
        from . import stores
    except Exception:  # noqa: BLE001
        return []
    found: list[Any] = []
    with contextlib.suppress(Exception):
        keyring_store = stores.KeyringStore(fallback=stores.MemoryStore())
        keyring_store._checked_backend()  # a fail/null backend has nothing to clear
        found.append(keyring_store)
    found.append(stores.FileStore())
    found.append(stores.PROCESS_FALLBACK)
    return [store for store in found if store is not own]


def _memory_store() -> Any:
    try:
        from .stores import MemoryStore

        return MemoryStore()
    except Exception:  # noqa: BLE001
        return _PlainMemoryStore()


class _PlainMemoryStore:
    """Minimal in-memory store (used only if stores.py cannot be imported)."""

    fallback_reason: str | None = None

    def __init__(self) -> None:
        self._data: dict[str, Credentials] = {}
        self._guard = threading.Lock()

    def load(self, service: str) -> Credentials | None:
        with self._guard:
            return self._data.get(service)

    def save(self, service: str, creds: Credentials) -> None:
        with self._guard:
            self._data[service] = creds

    def delete(self, service: str) -> None:
        with self._guard:
            self._data.pop(service, None)


class _Flight:
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
#: How long logout() waits for a refresh in flight to end (its requests have their own timeouts).
LOGOUT_FLIGHT_WAIT = 45.0


class Authenticator:
    """Base authenticator (flytekit's constructor: endpoint, header_key, credentials, http_proxy_url, verify).

    On its own it only serves the credentials it was given; subclasses know how to get new ones.
    """

    #: Name of the flow in events ('device', 'pkce', 'client-credentials', 'command').
    flow_name = "login"
    #: True when obtaining new credentials needs a person (browser or device login).
    needs_user = False
    #: True when, without a cfg_store, the endpoint's metadata is read (RemoteClientConfigStore).
    discovers_config = False

    def __init__(
        self,
        endpoint: str,
        header_key: str,
        credentials: Credentials = None,  # type: ignore[assignment]  # flytekit's signature
        http_proxy_url: str | None = None,
        verify: bool | str | None = None,
        *,
        observer: Observer | None = None,
        timeout: float | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any = None,
        clock: Clock | None = None,
        insecure: bool = False,
        session: requests.Session | None = None,
        cfg_store: ClientConfigStore | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._insecure = insecure
        self._parsed = parse_endpoint(endpoint, insecure=insecure) if endpoint else None
        self.service = self._parsed.service if self._parsed else DEFAULT_ENDPOINT
        self._header_key_arg = header_key or None
        self._http_proxy_url = http_proxy_url or None
        self._verify = verify
        self._session = session
        # http_timeout (connect, read) and http_deadline (one call with its retries): small in tests
        self._http_options = {"timeout": http_timeout, "deadline": http_deadline}
        self._transport = Transport(session, http_proxy_url=self._http_proxy_url, verify=verify, **self._http_options)
        self._cfg_store = cfg_store
        self._cfg: ClientConfig | None = None
        self._cfg_lock = threading.Lock()
        self.observer = observer
        self.timeout = timeout
        self._hot: _Hot | None = None
        self._held: Credentials | None = None
        self._held_version = 0
        self.clock = clock or SYSTEM_CLOCK
        self._store = store
        self._creds = credentials
        self._loaded = credentials is not None or store is None
        self._state_lock = threading.RLock()
        self._flight_lock = threading.Lock()
        self._flight: _Flight | None = None
        self._waiter: Waiter | None = None
        self._store_warning: str | None = None
        self._epoch = 0  # sign-outs so far (logout bumps it; a flight from before writes nothing)
        self._failures = 0  # transient refresh failures in a row
        self._retry_at: float | None = None  # no background refresh grant before this time (backoff)

    # -- flytekit's surface ------------------------------------------------------------------------
    # The hot path (every SDK call): one clock read against a precomputed "fresh until" instant and a
    # cached header tuple; no lock, no store, no network. Anything else takes the slow path below.
    def get_credentials(self) -> Credentials | None:
        """The current credentials (None before any login), refreshed first when about to expire."""
        hot = self._hot
        if hot is not None and self._now() < hot[0]:
            return hot[1]
        return self._get_credentials()

    def fetch_grpc_call_auth_metadata(self) -> tuple[str, str] | None:
        """``(header_key, "Bearer <access token>")``, or None without an access token."""
        hot = self._hot
        if hot is not None and self._now() < hot[0]:
            return hot[2]
        creds = self.get_credentials()
        if creds is None or not creds.access_token:
            return None
        return self.header_key, f"Bearer {creds.access_token}"

    def refresh_credentials(self, *, interactive: bool = True) -> Credentials:
        """Obtain new credentials: refresh grant if possible, else the interactive flow (if allowed).

        Blocks until done; overlapping calls share one request and its result.
        """
        return self._refresh(interactive=interactive)

    def _get_credentials(self) -> Credentials | None:
        creds = self._current()
        if creds is None or not needs_refresh(creds, self.clock.time()):
            if creds is not None:
                self._publish_hot(creds)
            return creds
        if self.needs_user and not creds.refresh_token:
            return creds  # nothing to do without the user; the server will say when it is rejected
        try:
            return self._refresh(interactive=False, seen=creds)
        except FlyteAuthError as exc:
            log.warning("Could not renew the token for %s: %s", self.service, exc)
            return self._creds

    # -- the hot path's cache ---------------------------------------------------------------------
    @property
    def _creds(self) -> Credentials | None:
        return self._held

    @_creds.setter
    def _creds(self, creds: Credentials | None) -> None:
        self._held = creds
        self._held_version += 1
        self._hot = None  # last: _publish_hot re-checks the version after publishing

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock
        # the system clock's time() is time.time: call it directly (one C call on the hot path)
        self._now = _time.time if type(clock) is Clock else clock.time
        self._hot = None

    def _publish_hot(self, creds: Credentials) -> None:
        """Cache ``creds`` (held, fresh) with its header for the hot path, until its refresh instant.

        Lock-free: a concurrent change of the credentials (the ``_creds`` setter) either is seen here
        or clears what was published; the header is cached only once its key cannot change.
        """
        version = self._held_version
        if creds is not self._held or not creds.access_token:
            return
        key = self._settled_header_key()
        if key is None:
            return
        fresh_until = INFINITY if creds.expires_at is None else creds.expires_at - refresh_margin(creds)
        self._hot = (fresh_until, creds, (key, f"Bearer {creds.access_token}"))
        if self._held_version != version or self._held is not creds:
            self._hot = None

    def _settled_header_key(self) -> str | None:
        """The header key when it is final (None while the server's configuration is still unknown)."""
        if self._header_key_arg:
            return self._header_key_arg
        key = self.header_key
        if self._cfg is None and (self._cfg_store is not None or (self.discovers_config and self._endpoint)):
            return None  # the configuration could not be read yet: its key may still differ
        return key

    # -- extras --------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str | None:
        return self._endpoint

    @property
    def header_key(self) -> str:
        """The metadata key: the argument, else the server's, else 'authorization' (pinned 3)."""
        if self._header_key_arg:
            return self._header_key_arg
        server_key = self._server_header_key()
        return server_key or DEFAULT_HEADER_KEY

    @property
    def store(self) -> Any:
        return self._store

    @property
    def fallback_reason(self) -> str | None:
        """Why tokens are only kept in memory (None when the store works)."""
        return self._store_warning or getattr(self._store, "fallback_reason", None)

    @property
    def login_in_progress(self) -> bool:
        with self._flight_lock:
            return self._flight is not None

    def refresh_in_background(self, *, interactive: bool = True) -> concurrent.futures.Future[Credentials]:
        """Start :meth:`refresh_credentials` in a daemon thread; the Future carries its outcome."""
        return run_in_background(
            self.refresh_credentials, interactive=interactive, name=f"flyteauth-{self.flow_name}"
        )

    def wait(self, timeout: float | None = None) -> Credentials | None:
        """Wait for the login or refresh in progress (if any), then return :meth:`get_credentials`.

        Raises that login's error, or LoginTimeoutError when it is still running after ``timeout`` s.
        """
        with self._flight_lock:
            flight = self._flight
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

    def logout(self, *, everywhere: bool = False) -> bool:
        """Revoke (RFC 7009, when a revocation endpoint is known) and forget the tokens.

        A refresh or login in flight is cancelled or waited for (at most LOGOUT_FLIGHT_WAIT s) and
        writes nothing afterwards; a refresh token it obtained is revoked, never stored.
        ``everywhere=True`` also revokes and clears what every other token store this process can
        reach holds for the endpoint (the keyring, the file cache, process memory: pinned 14).
        Returns True when the server confirmed the revocation.
        """
        with self._state_lock:
            self._epoch += 1
        self.cancel()
        with self._flight_lock:
            flight = self._flight
        if flight is not None and flight.thread != threading.get_ident():
            with contextlib.suppress(BaseException):
                flight.future.result(timeout=LOGOUT_FLIGHT_WAIT)
        creds = self._current()
        held = [creds] if creds is not None else []
        others = reachable_stores(self._store) if everywhere else []
        for other in others:
            with contextlib.suppress(Exception):
                found = other.load(self.service)
                if found is not None:
                    held.append(found)
        revoked = self._revoke_all(held)
        with self._state_lock:
            self._creds = None
            self._loaded = True
            self._failures, self._retry_at = 0, None
            self._store_call("delete")
        for other in others:
            try:
                other.delete(self.service)
            except Exception as exc:  # noqa: BLE001 - one unreachable store never stops a sign-out
                log.warning("Could not clear the saved tokens for %s in %s (%s).", self.service,
                            type(other).__name__, type(exc).__name__)
        return revoked

    def _revoke_all(self, held: list[Credentials]) -> bool:
        """Revoke each distinct token in ``held`` (its refresh token, else its access token)."""
        endpoint = self._revocation_endpoint() if held else None
        if not endpoint:
            return False
        revoked, seen = False, set()
        for creds in held:
            token, hint = (
                (creds.refresh_token, "refresh_token") if creds.refresh_token else (creds.access_token, "access_token")
            )
            if not token or token in seen:
                continue
            seen.add(token)
            try:
                refresh.revoke_token(
                    self._transport,
                    endpoint,
                    token,
                    token_type_hint=hint,
                    client_id=self._revocation_client_id(),
                    auth=self._client_auth(),
                )
                revoked = True
            except FlyteAuthError as exc:
                log.warning("Could not revoke the token for %s: %s", self.service, exc)
        return revoked

    def _set_credentials(self, creds: Credentials | None) -> None:
        with self._state_lock:
            self._creds = creds
            self._loaded = True

    def _set_header_key(self, header_key: str | None) -> None:
        self._header_key_arg = header_key or None
        self._hot = None

    # -- hooks for subclasses --------------------------------------------------------------------------
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

    def _client_auth(self) -> Any:
        return None

    def _revocation_client_id(self) -> str | None:
        return None

    def _revocation_endpoint(self) -> str | None:
        cfg = self._config_or_none()
        return cfg.revocation_endpoint if cfg is not None else None

    def _server_header_key(self) -> str | None:
        cfg = self._config_or_none()
        return cfg.header_key if cfg is not None else None

    # -- configuration -----------------------------------------------------------------------------------
    def _config(self) -> ClientConfig:
        """The client configuration (fetched once per authenticator; the remote store caches too)."""
        if self._cfg is not None:
            return self._cfg
        with self._cfg_lock:
            if self._cfg is None:
                store = self._cfg_store
                if store is None:
                    if not self.discovers_config or not self._endpoint:
                        raise ConfigurationError("No endpoint and no client configuration were given.")
                    store = self._cfg_store = RemoteClientConfigStore(
                        self._endpoint,
                        insecure=self._insecure,
                        verify=self._verify,
                        http_proxy_url=self._http_proxy_url,
                        session=self._session,
                        **self._http_options,
                    )
                self._cfg = store.get_client_config()
            return self._cfg

    def _config_or_none(self) -> ClientConfig | None:
        if self._cfg_store is None and not (self.discovers_config and self._endpoint):
            return None
        try:
            return self._config()
        except FlyteAuthError as exc:
            log.info("client configuration for %s unavailable: %s", self.service, exc)
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
                    flight = self._flight = _Flight(interactive, self._epoch)
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

    def _lead(self, flight: _Flight) -> Credentials:
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
        new = self._run_login(epoch)
        with self._service_lock():
            # a new login replaces the whole entry: nothing of an earlier grant (another user's
            # refresh or id token) may stay beside it
            self._commit(new, epoch, save=True, replace=True)
        self._notify_succeeded(self.flow_name, new)
        return new

    def _try_refresh_grant(self, current: Credentials, interactive: bool) -> Credentials | None:
        """The refresh grant for ``current``; None when this authenticator has none or the token is dead.

        Only a grant-ending answer (``invalid_grant`` and equivalents) drops the refresh token; a
        transient failure (``temporarily_unavailable``, a 5xx, the network) is raised and keeps it,
        and background refreshes back off (1 s, 2 s, 4 s, ... 60 s) before the next attempt.
        """
        now = self.clock.time()
        if not interactive and self._retry_at is not None and now < self._retry_at:
            raise AuthenticationError(
                f"Renewing the token for {self.service} failed a moment ago; trying again in "
                f"{self._retry_at - now:.0f} s."
            )
        try:
            new = self._refresh_grant(current)
        except GRANT_ENDING_ERRORS as exc:
            log.info("The refresh token for %s was refused (%s); a new sign-in is needed", self.service, exc.error)
            self._store_call("delete")  # dead (expired, revoked, replayed): nobody may use it
            self._adopt(dataclasses.replace(current, refresh_token=None))
            self._failures, self._retry_at = 0, None
            return None
        except FlyteAuthError:
            self._failures += 1
            self._retry_at = self.clock.time() + min(MAX_RETRY_BACKOFF, 2.0 ** (self._failures - 1))
            raise
        self._failures, self._retry_at = 0, None
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

    # -- reprs ------------------------------------------------------------------------------------------
    def _repr_fields(self) -> list[str]:
        return [f"endpoint={self.service!r}", f"header_key={self._header_key_arg!r}"]

    def __repr__(self) -> str:
        creds = self._creds
        fields = self._repr_fields() + [f"credentials={creds!r}"]
        return f"{type(self).__name__}({', '.join(fields)})"

    __str__ = __repr__


class _ConfiguredAuthenticator(Authenticator):
    """Shared settings of the authenticators that read a ClientConfig."""

    discovers_config = True

    def __init__(
        self,
        endpoint: str,
        cfg_store: ClientConfigStore | None,
        *,
        header_key: str | None,
        scopes: Sequence[str] | None,
        audience: str | None,
        http_proxy_url: str | None,
        verify: bool | str | None,
        session: requests.Session | None,
        client_id: str | None,
        observer: Observer | None,
        timeout: float | None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any,
        clock: Clock | None,
        insecure: bool,
    ) -> None:
        super().__init__(
            endpoint,
            header_key,  # type: ignore[arg-type]
            None,
            http_proxy_url,
            verify,
            observer=observer,
            timeout=timeout,
            http_timeout=http_timeout,
            http_deadline=http_deadline,
            store=store,
            clock=clock,
            insecure=insecure,
            session=session,
            cfg_store=cfg_store,
        )
        self._scopes_arg = list(scope_list(scopes)) or None
        self._audience_arg = audience or None
        self._client_id_arg = client_id or None

    @property
    def scopes(self) -> list[str]:
        return list(self._scopes_arg or scope_list(self._config().scopes))

    @property
    def audience(self) -> str | None:
        return self._audience_arg or self._config().audience

    @property
    def client_id(self) -> str:
        client_id = self._client_id_arg or self._config().client_id
        if not client_id:
            raise ConfigurationError(f"{self.service} does not advertise a client id; pass client_id=.")
        return client_id

    def _revocation_client_id(self) -> str | None:
        try:
            return self.client_id
        except FlyteAuthError:
            return None

    def _refresh_grant(self, creds: Credentials) -> Credentials | None:
        cfg = self._config()
        return refresh.refresh_access_token(
            self._transport,
            cfg.token_endpoint,
            creds,
            client_id=self.client_id,
            endpoint=self.service,
            auth=self._client_auth(),
            clock=self.clock,
        )


class PKCEAuthenticator(_ConfiguredAuthenticator):
    """Browser sign-in: authorization code + PKCE with a loopback redirect (RFC 8252).

    Extras: ``client_id``/``redirect_uri`` override the server's, ``audience``, ``http_proxy_url``,
    ``open_browser`` (False, or a callable ``(url) -> bool``), ``timeout`` (default 300 s).
    :meth:`submit_redirect` is the paste-back fallback for a browser on another machine.
    """

    flow_name = "pkce"
    needs_user = True

    def __init__(
        self,
        endpoint: str,
        cfg_store: ClientConfigStore,
        scopes: list[str] | None = None,
        header_key: str | None = None,
        verify: bool | str | None = None,
        session: requests.Session | None = None,
        *,
        client_id: str | None = None,
        redirect_uri: str | None = None,
        audience: str | None = None,
        http_proxy_url: str | None = None,
        open_browser: bool | Callable[[str], bool] = True,
        observer: Observer | None = None,
        timeout: float | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any = None,
        clock: Clock | None = None,
        insecure: bool = False,
    ) -> None:
        super().__init__(
            endpoint,
            cfg_store,
            header_key=header_key,
            scopes=scopes,
            audience=audience,
            http_proxy_url=http_proxy_url,
            verify=verify,
            session=session,
            client_id=client_id,
            observer=observer,
            timeout=timeout,
            http_timeout=http_timeout,
            http_deadline=http_deadline,
            store=store if store is not None else _default_store(),
            clock=clock,
            insecure=insecure,
        )
        self._loaded = False
        self._redirect_uri_arg = redirect_uri or None
        self.open_browser = open_browser
        self._inbox = authcode.RedirectInbox(self.service)

    def submit_redirect(self, url: str) -> None:
        """Complete the waiting browser sign-in with the address the browser ended on (any thread).

        For a browser on another machine (VS Code remote, SSH, containers): the redirect to
        ``http://127.0.0.1:<port>/callback?code=...&state=...`` fails there, but its address can be
        pasted here (the whole address, or just its query). The state is checked first; a wrong or
        unusable paste raises StateMismatchError / ProtocolError and the sign-in keeps waiting; with
        no PKCE sign-in waiting, FlyteAuthError. Returns once the address is accepted; the code is
        exchanged by the sign-in itself (``refresh_credentials()`` returns or raises as usual).
        """
        self._inbox.submit(url)

    @property
    def awaiting_redirect(self) -> bool:
        """True while a browser sign-in waits for its redirect (so :meth:`submit_redirect` can complete it)."""
        return self._inbox.waiting

    @property
    def redirect_uri(self) -> str:
        uri = self._redirect_uri_arg or self._config().redirect_uri
        if not uri:
            raise ConfigurationError(f"{self.service} does not advertise a redirect URI; pass redirect_uri=.")
        return uri

    def _login_deadline(self) -> float | None:
        return self.timeout if self.timeout is not None else authcode.DEFAULT_TIMEOUT

    def _waiting_for(self) -> str:
        return "the browser sign-in"

    def _login(self, waiter: Waiter) -> Credentials:
        cfg = self._config()
        if not cfg.authorization_endpoint:
            raise ConfigurationError(f"{self.service} does not advertise an authorization endpoint for browser sign-in.")
        return authcode.run_authcode_flow(
            self._transport,
            authorization_endpoint=cfg.authorization_endpoint,
            token_endpoint=cfg.token_endpoint,
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            waiter=waiter,
            endpoint=self.service,
            scopes=self.scopes,
            audience=self.audience,
            observer=self.observer,
            open_browser=self.open_browser,
            issuer=cfg.issuer,
            inbox=self._inbox,
        )


class DeviceCodeAuthenticator(_ConfiguredAuthenticator):
    """Device sign-in (RFC 8628): show a code and a URL, poll until the user approves.

    Extras: ``client_id`` overrides the server's, ``timeout`` caps the wait (default: the code's life).
    """

    flow_name = "device"
    needs_user = True

    def __init__(
        self,
        endpoint: str,
        cfg_store: ClientConfigStore,
        header_key: str | None = None,
        audience: str | None = None,
        scopes: list[str] | None = None,
        http_proxy_url: str | None = None,
        verify: bool | str | None = None,
        session: requests.Session | None = None,
        *,
        client_id: str | None = None,
        observer: Observer | None = None,
        timeout: float | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any = None,
        clock: Clock | None = None,
        insecure: bool = False,
    ) -> None:
        super().__init__(
            endpoint,
            cfg_store,
            header_key=header_key,
            scopes=scopes,
            audience=audience,
            http_proxy_url=http_proxy_url,
            verify=verify,
            session=session,
            client_id=client_id,
            observer=observer,
            timeout=timeout,
            http_timeout=http_timeout,
            http_deadline=http_deadline,
            store=store if store is not None else _default_store(),
            clock=clock,
            insecure=insecure,
        )
        self._loaded = False

    def _waiting_for(self) -> str:
        return "the device sign-in"

    def _login(self, waiter: Waiter) -> Credentials:
        cfg = self._config()
        if not cfg.device_authorization_endpoint:
            raise AuthenticationError(
                f"{self.service} does not offer device sign-in (no device authorization endpoint); use the browser "
                "(PKCE) login instead."
            )
        return device.run_device_flow(
            self._transport,
            device_authorization_endpoint=cfg.device_authorization_endpoint,
            token_endpoint=cfg.token_endpoint,
            client_id=self.client_id,
            waiter=waiter,
            endpoint=self.service,
            scopes=self.scopes,
            audience=self.audience,
            observer=self.observer,
        )


class ClientCredentialsAuthenticator(_ConfiguredAuthenticator):
    """Machine sign-in with a client id and secret (client_secret_basic); tokens kept in memory."""

    flow_name = "client-credentials"
    needs_user = False

    def __init__(
        self,
        endpoint: str,
        client_id: str,
        client_secret: str,
        cfg_store: ClientConfigStore,
        header_key: str | None = None,
        scopes: list[str] | None = None,
        http_proxy_url: str | None = None,
        verify: bool | str | None = None,
        audience: str | None = None,
        session: requests.Session | None = None,
        *,
        observer: Observer | None = None,
        timeout: float | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any = None,
        clock: Clock | None = None,
        insecure: bool = False,
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigurationError("Client credentials need both a client id and a client secret.")
        super().__init__(
            endpoint,
            cfg_store,
            header_key=header_key,
            scopes=scopes,
            audience=audience,
            http_proxy_url=http_proxy_url,
            verify=verify,
            session=session,
            client_id=client_id,
            observer=observer,
            timeout=timeout,
            http_timeout=http_timeout,
            http_deadline=http_deadline,
            store=store,
            clock=clock,
            insecure=insecure,
        )
        self._loaded = store is None
        self._client_secret = client_secret

    def _client_auth(self) -> Any:
        return client_credentials.ClientSecretBasic(self.client_id, self._client_secret)

    def _refresh_grant(self, creds: Credentials) -> Credentials | None:
        return None  # a new client credentials token is as cheap as a refresh

    def _login(self, waiter: Waiter) -> Credentials:
        cfg = self._config()
        return client_credentials.fetch_client_credentials_token(
            self._transport,
            cfg.token_endpoint,
            client_id=self.client_id,
            client_secret=self._client_secret,
            endpoint=self.service,
            scopes=self.scopes,
            audience=self.audience,
            clock=self.clock,
        )

    def _repr_fields(self) -> list[str]:
        return super()._repr_fields() + [f"client_id={self._client_id_arg!r}", "client_secret=<redacted>"]


class CommandAuthenticator(Authenticator):
    """Token from an external command (argv list, no shell, stdin closed, timeout 60 s by default)."""

    flow_name = "command"
    needs_user = False

    def __init__(
        self,
        command: list[str],
        header_key: str = None,  # type: ignore[assignment]  # flytekit's signature
        *,
        timeout: float | None = None,
        observer: Observer | None = None,
        clock: Clock | None = None,
        env: dict[str, str] | None = None,
        endpoint: str | None = None,
    ) -> None:
        if not command:
            raise AuthenticationError("Command cannot be empty for command authenticator.")
        self._command = command_flow.normalise_command(command)
        super().__init__(
            endpoint,  # type: ignore[arg-type]
            header_key,
            observer=observer,
            timeout=timeout,
            clock=clock,
        )
        self._env = env

    @property
    def command(self) -> list[str]:
        return list(self._command)

    def _server_header_key(self) -> str | None:
        return None

    def _login(self, waiter: Waiter) -> Credentials:
        waiter.check()
        token = command_flow.run_token_command(
            self._command,
            timeout=self.timeout if self.timeout is not None else command_flow.DEFAULT_TIMEOUT,
            env=self._env,
        )
        return Credentials(token, for_endpoint=self.service)

    def _repr_fields(self) -> list[str]:
        program = self._command[0].rsplit("/", 1)[-1]
        return [f"command=[{program!r}, ...]", f"header_key={self._header_key_arg!r}"]


__all__ = [
    "Authenticator",
    "ClientCredentialsAuthenticator",
    "CommandAuthenticator",
    "DeviceCodeAuthenticator",
    "PKCEAuthenticator",
    "needs_refresh",
    "refresh_margin",
]
