"""Tokens in the system keyring, in flytekit's and the Flyte 2 SDK's layouts (:class:`KeyringStore`;
the layouts: the package docstring; how a read of both becomes one pair, and when a read may write:
:mod:`.layouts`; which backend counts as a keyring: :mod:`.backends`)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..credentials import DEFAULT_ENDPOINT, Credentials, jwt_times
from ..endpoint import Endpoint
from ..validate import epoch_seconds
from ..errors import TokenStoreError, scrub
from .backends import FLYTE2_PLAINTEXT, Unusable, backend_label, usable_backend
from .base import (
    ACCESS_TOKEN,
    DEFAULT_LOCK_TIMEOUT,
    EXPIRES_AT,
    EXPIRES_IN,
    FILE_CACHE_HINT,
    FLYTE2_TOKENS,
    ID_TOKEN,
    PAIR_MARK,
    REFRESH_TOKEN,
    service_name,
    short_path,
    _lifetime,
    _parse_lifetime,
)
from .files import FileStore
from .grants import merge_saved
from .layouts import DELETING, PENDING, Snapshot, decide, pair_mark

if TYPE_CHECKING:
    from .memory import MemoryStore
# .lock and .memory are imported where they are used: reading the keyring (the token command's fast
# path) needs neither.

logger = logging.getLogger("flyteauth_jupyter.stores")

__all__ = ["FLYTE2_PLAINTEXT", "KeyringStore"]

#: how long a sign-out waits for a refresh in another process to finish writing before it clears anyway
DELETE_LOCK_WAIT = 10.0


class _ClassOrInstanceMethod:
    """``KeyringStore.delete(endpoint)`` (flytekit's static call) and ``store.delete(service)`` both work."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __get__(self, obj: Any, cls: type | None = None) -> Callable[..., Any]:
        if obj is None:
            assert cls is not None

            @functools.wraps(self.func)
            def on_default_store(*args: Any, **kwargs: Any) -> Any:
                return self.func(cls(), *args, **kwargs)

            return on_default_store
        return self.func.__get__(obj, cls)


def _clean_text(text: str, secrets: tuple[str | None, ...]) -> str:
    """A backend's error message fit for a log: known secrets and anything token-like removed."""
    return scrub(text, secrets, limit=160)


class KeyringStore:
    """Tokens in the system keyring, in flytekit's and the Flyte 2 SDK's layouts (see the package doc).

    ``keyring``: a ``keyring.backend.KeyringBackend``; default: the configured one, looked up at each
    use (so ``keyring.set_keyring`` is honoured). ``flyte2``: also write/read/delete the Flyte 2 SDK
    entry. ``fallback``: where tokens go once the keyring fails or is refused; default: the private
    file cache (:class:`FileStore`), which falls back to this process's memory when it is refused
    itself. Tokens parked in the fallback while the keyring failed are read before the keyring (they
    are newer) and removed by the next successful save to the keyring.
    """

    def __init__(
        self,
        *,
        keyring: Any = None,
        flyte2: bool = True,
        fallback: FileStore | MemoryStore | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        if fallback is None:
            from .memory import process_fallback

            fallback = FileStore(fallback=process_fallback(), lock_timeout=lock_timeout)
        self._backend = keyring
        self.flyte2 = flyte2
        self._fallback: FileStore | MemoryStore = fallback
        self.lock_timeout = lock_timeout
        self._reason: str | None = None
        self._what: str | None = None  # the phrase in the reason: what went wrong with the keyring
        self._failed_for: str | None = None  # ... and for which service it was first noticed
        self._refused = False  # the keyring was never usable (fail/null/refused backend), not broken
        self._guard = threading.RLock()

    # -- state -----------------------------------------------------------------------------------------
    @property
    def using_fallback(self) -> bool:
        return self._reason is not None

    @property
    def fallback_reason(self) -> str | None:
        """None while the keyring works; else one sentence: where the tokens are now, and why."""
        fallback = self._fallback
        if self._reason is not None and isinstance(fallback, FileStore) and fallback.using_fallback:
            return (
                f"Tokens for {self._failed_for} are kept in memory because {self._what}, and the private file "
                f"cache was refused ({fallback.refusal_why}); they will last only for this kernel."
            )
        return self._reason

    def describe(self, service: str | Endpoint) -> str:
        """``the keyring (SecretService)``; after a fallback, the fallback's phrase saying so."""
        fallback = self._fallback
        refused = self._refused
        if self._reason is None:
            try:
                return f"the keyring ({backend_label(usable_backend(self.backend()))})"
            except Unusable:  # not used yet, and it will not be: say where the tokens will go
                refused = True
            except Exception:  # noqa: BLE001 - a backend that cannot even be named: the plain phrase
                return "the keyring"
        failed = "no usable keyring" if refused else "the keyring failed"
        if isinstance(fallback, FileStore) and not fallback.using_fallback:
            return f"{fallback.describe(service)} ({failed})"
        if isinstance(fallback, FileStore):
            return f"memory only (this kernel; {failed} and the private file cache was refused)"
        return f"memory only (this kernel; {failed})"

    def backend(self) -> Any:
        """The keyring backend configured (resolving keyring's default when none was given)."""
        if self._backend is not None:
            return self._backend
        import keyring  # lazy: `import flyteauth_jupyter` stays fast

        return keyring.get_keyring()

    def _checked_backend(self) -> Any:
        """The backend to use (see :mod:`.backends`); raises :class:`.backends.Unusable` when there is none."""
        return usable_backend(self.backend())

    def _fall_back(self, service: str, exc: BaseException, secrets: tuple[str | None, ...] = ()) -> None:
        with self._guard:
            if self._reason is not None:
                return
            if isinstance(exc, Unusable):
                what = str(exc)
                self._refused = True
            else:
                detail = _clean_text(str(exc), secrets)
                what = f"the system keyring failed ({type(exc).__name__}{': ' + detail if detail else ''})"
            self._what, self._failed_for = what, service
            fallback = self._fallback
            if isinstance(fallback, FileStore):
                self._reason = (
                    f"Tokens for {service} are kept in the private file cache in {short_path(fallback.directory)} "
                    f"(readable only by you) because {what}."
                )
                registry = fallback._fallback
            else:
                self._reason = (
                    f"Tokens for {service} are kept in memory because {what}; they will last only for this kernel; "
                    f"{FILE_CACHE_HINT}"
                )
                registry = fallback
            from .memory import warn_once

            warn_once(self._reason, registry)  # once per kernel and reason

    # -- protocol ------------------------------------------------------------------------------------
    def load(self, service: str | Endpoint) -> Credentials | None:
        """The stored credentials for ``service``: tokens parked in the fallback while the keyring
        failed, else both keyring layouts read as one pair (:mod:`.layouts`). A read writes only to
        reconcile the layouts, and only under the cross-process lock, after reading again."""
        name = service_name(service)
        if self.using_fallback:
            return self._fallback.load(name)
        parked = self._fallback.peek(name)
        if parked is not None:
            return parked
        try:
            return self._read(self._checked_backend(), name)
        except Exception as exc:  # noqa: BLE001 - any keyring trouble means the fallback, never a failed login
            self._fall_back(name, exc)
            return self._fallback.load(name)

    def save(self, service: str | Endpoint, creds: Credentials) -> None:
        """Write ``creds`` in both layouts (the caller holds ``lock(service)``, as the lifecycle does);
        a missing refresh/id token keeps the stored one when both belong to one grant."""
        name = service_name(service)
        secrets = (creds.access_token, creds.refresh_token, creds.id_token)
        if not self.using_fallback:
            backend = None
            try:
                backend = self._checked_backend()
                stored = None if creds.refresh_token and creds.id_token else self._load_flytekit(backend, name)
                self._write(backend, name, merge_saved(stored, creds))
            except Exception as exc:  # noqa: BLE001
                self._fall_back(name, exc, secrets)
                if backend is not None:  # what a half-done write left must not outlive it (a stale refresh token)
                    self._clear_quietly(backend, name)
            else:
                self._fallback.discard(name)  # tokens parked there while the keyring failed are older now
                return
        self._fallback.save(name, creds)

    @_ClassOrInstanceMethod
    def delete(self, service: str | Endpoint) -> None:
        """Remove every entry for ``service`` in both layouts and in the fallback (file and memory)."""
        name = service_name(service)
        self._fallback.discard(name)
        if self.using_fallback:  # a refused backend is never touched, a failed one was cleared when it failed
            return
        try:
            backend = self._checked_backend()
        except Exception as exc:  # noqa: BLE001
            self._fall_back(name, exc)
            return
        with self._held_if_possible(name, DELETE_LOCK_WAIT):
            try:
                self._clear(backend, name)
            except Exception as exc:  # noqa: BLE001
                self._fall_back(name, exc)

    def lock(self, service: str | Endpoint, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """Cross-process lock for refreshing ``service``'s tokens (see :func:`process_lock`)."""
        from .lock import process_lock

        return process_lock(service, timeout=self.lock_timeout if timeout is None else timeout)

    @contextlib.contextmanager
    def _held_if_possible(self, name: str, wait: float) -> Iterator[bool]:
        """The lock when it comes within ``wait`` seconds (re-entrant); else go on without it."""
        from .lock import process_lock

        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(process_lock(name, timeout=min(self.lock_timeout, wait)))
                held = True
            except TokenStoreError:
                held = False
            yield held

    # -- flytekit-compatible static helpers ----------------------------------------------------------
    @staticmethod
    def store(credentials: Credentials) -> Credentials:
        """flytekit's ``KeyringStore.store``: save under ``credentials.for_endpoint``; return them."""
        store, name = KeyringStore(), service_name(credentials.for_endpoint or DEFAULT_ENDPOINT)
        with store.lock(name):
            store.save(name, credentials)
        return credentials

    @staticmethod
    def retrieve(for_endpoint: str) -> Credentials | None:
        """flytekit's ``KeyringStore.retrieve``."""
        return KeyringStore().load(for_endpoint)

    # -- reading ---------------------------------------------------------------------------------------
    def _read(self, backend: Any, name: str) -> Credentials | None:
        decision = decide(self._snapshot(backend, name))
        if not decision.rewrite:
            return decision.creds
        # The layouts disagree, or a write of ours was in progress: rewrite them only when the lock
        # can be had at once (re-entrant), after reading again. A holder elsewhere is writing them.
        with self._held_if_possible(name, 0.0) as held:
            if not held:
                return decision.creds
            decision = decide(self._snapshot(backend, name))
            if decision.rewrite:
                if decision.creds is None:
                    self._clear(backend, name)
                else:
                    self._write(backend, name, decision.creds)
            return decision.creds

    def _snapshot(self, backend: Any, name: str) -> Snapshot:
        if not self.flyte2:
            return Snapshot(self._load_flytekit(backend, name), None)
        before = backend.get_password(name, PAIR_MARK)
        kit = self._load_flytekit(backend, name)
        two = self._load_flyte2(backend, name)
        return Snapshot(kit, two, before, backend.get_password(name, PAIR_MARK))

    @staticmethod
    def _load_flytekit(backend: Any, name: str) -> Credentials | None:
        access = backend.get_password(name, ACCESS_TOKEN)  # first: a writer of ours writes it last
        if not access:
            return None
        refresh = backend.get_password(name, REFRESH_TOKEN)
        id_token = backend.get_password(name, ID_TOKEN)
        expires_at = jwt_times(access)[1]  # the token's own claim beats a possibly stale side entry
        if expires_at is None:
            expires_at = epoch_seconds(backend.get_password(name, EXPIRES_AT))
        return Credentials(
            access_token=access,
            refresh_token=refresh or None,
            for_endpoint=name,
            id_token=id_token or None,
            expires_at=expires_at,
            expires_in=_parse_lifetime(backend.get_password(name, EXPIRES_IN)) if expires_at is not None else None,
        )

    @staticmethod
    def _load_flyte2(backend: Any, name: str) -> Credentials | None:
        raw = backend.get_password(name, FLYTE2_TOKENS)
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            logger.debug("The Flyte 2 keyring entry for %s is not JSON; ignoring it.", name)
            return None
        if not isinstance(data, dict):
            return None
        access = data.get("access_token") if isinstance(data.get("access_token"), str) else None
        refresh = data.get("refresh_token") if isinstance(data.get("refresh_token"), str) else None
        if not access and not refresh:
            return None
        return Credentials(access_token=access or None, refresh_token=refresh or None, for_endpoint=name)

    # -- writing (with the lock held) ------------------------------------------------------------------
    def _write(self, backend: Any, name: str, creds: Credentials) -> None:
        """Both layouts hold exactly ``creds`` afterwards (see :mod:`.layouts` for the order)."""
        mark = pair_mark(creds.access_token, creds.refresh_token)
        if self.flyte2:
            backend.set_password(name, PAIR_MARK, PENDING + mark)
        _put(backend, name, REFRESH_TOKEN, creds.refresh_token)
        _put(backend, name, ID_TOKEN, creds.id_token)
        _put(backend, name, EXPIRES_AT, None if creds.expires_at is None else _format_epoch(creds.expires_at))
        lifetime = _lifetime(creds)  # without it a reader assumes a long life and refreshes short tokens at once
        _put(backend, name, EXPIRES_IN, None if lifetime is None else str(lifetime))
        _put(backend, name, ACCESS_TOKEN, creds.access_token)
        if self.flyte2:
            payload = {"access_token": creds.access_token or "", "refresh_token": creds.refresh_token}
            backend.set_password(name, FLYTE2_TOKENS, json.dumps(payload))
            backend.set_password(name, PAIR_MARK, mark)

    def _clear(self, backend: Any, name: str) -> None:
        """Remove every entry of both layouts; readers see ``w:-`` (a sign-out) until the last is gone."""
        marked = self.flyte2 and backend.get_password(name, PAIR_MARK) is not None
        if marked:
            backend.set_password(name, PAIR_MARK, DELETING)
        usernames = (ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, EXPIRES_AT, EXPIRES_IN)
        for username in usernames + ((FLYTE2_TOKENS,) if self.flyte2 else ()) + (PAIR_MARK,):
            _put(backend, name, username, None)

    def _clear_quietly(self, backend: Any, name: str) -> None:
        """:meth:`_clear` entry by entry, ignoring every error (a keyring that just failed)."""
        for username in (ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, EXPIRES_AT, EXPIRES_IN, FLYTE2_TOKENS, PAIR_MARK):
            if username != FLYTE2_TOKENS or self.flyte2:
                with contextlib.suppress(Exception):
                    _put(backend, name, username, None)

    def __repr__(self) -> str:
        try:
            backend = type(self.backend()).__name__ if self._backend is not None else "default"
        except Exception:  # noqa: BLE001
            backend = "unavailable"
        if not self.using_fallback:
            state = "keyring"
        elif isinstance(self._fallback, FileStore) and not self._fallback.using_fallback:
            state = "file fallback"
        else:
            state = "memory fallback"
        return f"KeyringStore(backend={backend}, flyte2={self.flyte2}, state={state!r})"


def _put(backend: Any, name: str, username: str, value: str | None) -> None:
    """Set ``username`` to ``value``, or remove it when ``value`` is empty."""
    if value:
        backend.set_password(name, username, value)
        return
    from keyring.errors import PasswordDeleteError

    with contextlib.suppress(PasswordDeleteError):
        backend.delete_password(name, username)



def _format_epoch(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
