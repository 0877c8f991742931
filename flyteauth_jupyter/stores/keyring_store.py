"""Tokens in the system keyring, in flytekit's and the Flyte 2 SDK's layouts (:class:`KeyringStore`;
the layouts and how the two are reconciled: the package docstring)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..credentials import DEFAULT_ENDPOINT, Credentials, jwt_times
from ..endpoint import Endpoint
from ..errors import scrub
from ..validate import epoch_seconds
from .base import (
    ACCESS_TOKEN,
    ALL_USERNAMES,
    DEFAULT_LOCK_TIMEOUT,
    EXPIRES_AT,
    EXPIRES_IN,
    FILE_CACHE_HINT,
    FLYTE2_TOKENS,
    ID_TOKEN,
    PAIR_MARK,
    REFRESH_TOKEN,
    service_name,
    _lifetime,
    _parse_lifetime,
)
from .lock import process_lock
from .memory import MemoryStore, process_fallback

logger = logging.getLogger("flyteauth_jupyter.stores")


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
    """Tokens in the system keyring, in flytekit's and the Flyte 2 SDK's layouts (see module doc).

    ``keyring``: a ``keyring.backend.KeyringBackend``; default: the configured one, looked up at each
    use (so ``keyring.set_keyring`` is honoured). ``flyte2``: also write/read/delete the Flyte 2 SDK
    entry. ``fallback``: the memory store used once the keyring fails (default: one per process).
    """

    def __init__(
        self,
        *,
        keyring: Any = None,
        flyte2: bool = True,
        fallback: MemoryStore | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self._backend = keyring
        self.flyte2 = flyte2
        self._fallback = process_fallback() if fallback is None else fallback
        self.lock_timeout = lock_timeout
        self.fallback_reason: str | None = None
        self._guard = threading.RLock()

    # -- backend access ----------------------------------------------------------------------------
    @property
    def using_fallback(self) -> bool:
        return self.fallback_reason is not None

    def backend(self) -> Any:
        """The keyring backend in use (resolving the configured one when none was given)."""
        if self._backend is not None:
            return self._backend
        import keyring  # lazy: `import flyteauth_jupyter` stays fast

        return keyring.get_keyring()

    def _checked_backend(self) -> Any:
        backend = self.backend()
        module = type(backend).__module__
        if module.startswith("keyring.backends.null"):
            raise _Disabled("the configured keyring backend is the null backend, which stores nothing")
        if module.startswith("keyring.backends.fail"):
            raise _Disabled("no keyring backend is available on this machine")
        if _is_flyte2_plaintext(backend):
            raise _Disabled(FLYTE2_PLAINTEXT)
        return backend

    def _fall_back(self, service: str, exc: BaseException, secrets: tuple[str | None, ...] = ()) -> None:
        with self._guard:
            if self.fallback_reason is not None:
                return
            if isinstance(exc, _Disabled):
                what = str(exc)
            else:
                detail = _clean_text(str(exc), secrets)
                what = f"the system keyring failed ({type(exc).__name__}{': ' + detail if detail else ''})"
            self.fallback_reason = (
                f"Tokens for {service} are kept in memory because {what}; they will last only for this kernel; "
                f"{FILE_CACHE_HINT}"
            )
            if self._fallback.note_warning(self.fallback_reason):  # once per kernel and reason
                logger.warning("%s", self.fallback_reason)

    # -- protocol ------------------------------------------------------------------------------------
    def load(self, service: str | Endpoint) -> Credentials | None:
        """The stored credentials for ``service`` (flytekit layout first, then Flyte 2), or None."""
        name = service_name(service)
        if self.using_fallback:
            return self._fallback.load(name)
        try:
            backend = self._checked_backend()
            kit = self._load_flytekit(backend, name)
            if not self.flyte2:
                return kit
            creds, heal = _reconcile(kit, self._load_flyte2(backend, name), backend.get_password(name, PAIR_MARK))
            if heal and creds is not None:  # the newer pair, in both layouts, before the old one is sent
                self._save_keyring(backend, name, creds)
            return creds
        except Exception as exc:  # noqa: BLE001 - any keyring trouble means memory, never a failed login
            self._fall_back(name, exc)
            return self._fallback.load(name)

    def save(self, service: str | Endpoint, creds: Credentials) -> None:
        """Write ``creds`` in both layouts; a missing refresh/id token keeps the stored one."""
        name = service_name(service)
        secrets = (creds.access_token, creds.refresh_token, creds.id_token)
        if not self.using_fallback:
            try:
                self._save_keyring(self._checked_backend(), name, creds)
                return
            except Exception as exc:  # noqa: BLE001
                self._fall_back(name, exc, secrets)
        self._fallback.save(name, creds)

    @_ClassOrInstanceMethod
    def delete(self, service: str | Endpoint) -> None:
        """Remove every entry for ``service`` in both layouts (and in the memory fallback)."""
        name = service_name(service)
        self._fallback.delete(name)
        if self.using_fallback:
            return
        try:
            backend = self._checked_backend()
            from keyring.errors import PasswordDeleteError

            for username in ALL_USERNAMES if self.flyte2 else ALL_USERNAMES[:-1]:
                try:
                    backend.delete_password(name, username)
                except PasswordDeleteError:
                    pass
        except Exception as exc:  # noqa: BLE001
            self._fall_back(name, exc)

    def lock(self, service: str | Endpoint, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """Cross-process lock for refreshing ``service``'s tokens (see :func:`process_lock`)."""
        return process_lock(service, timeout=self.lock_timeout if timeout is None else timeout)

    # -- flytekit-compatible static helpers ----------------------------------------------------------
    @staticmethod
    def store(credentials: Credentials) -> Credentials:
        """flytekit's ``KeyringStore.store``: save under ``credentials.for_endpoint``; return them."""
        KeyringStore().save(credentials.for_endpoint or DEFAULT_ENDPOINT, credentials)
        return credentials

    @staticmethod
    def retrieve(for_endpoint: str) -> Credentials | None:
        """flytekit's ``KeyringStore.retrieve``."""
        return KeyringStore().load(for_endpoint)

    # -- layouts -------------------------------------------------------------------------------------
    @staticmethod
    def _load_flytekit(backend: Any, name: str) -> Credentials | None:
        access = backend.get_password(name, ACCESS_TOKEN)
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

    def _save_keyring(self, backend: Any, name: str, creds: Credentials) -> None:
        from keyring.errors import PasswordDeleteError

        refresh = creds.refresh_token
        if refresh:
            backend.set_password(name, REFRESH_TOKEN, refresh)
        if creds.access_token:
            backend.set_password(name, ACCESS_TOKEN, creds.access_token)
        else:
            with contextlib.suppress(PasswordDeleteError):
                backend.delete_password(name, ACCESS_TOKEN)
        if creds.id_token:
            backend.set_password(name, ID_TOKEN, creds.id_token)
        if creds.expires_at is not None:
            backend.set_password(name, EXPIRES_AT, _format_epoch(creds.expires_at))
        else:
            with contextlib.suppress(PasswordDeleteError):
                backend.delete_password(name, EXPIRES_AT)
        lifetime = _lifetime(creds)
        if lifetime is not None:  # without it a reader assumes a long life and refreshes short tokens at once
            backend.set_password(name, EXPIRES_IN, str(lifetime))
        else:
            with contextlib.suppress(PasswordDeleteError):
                backend.delete_password(name, EXPIRES_IN)
        if self.flyte2:
            if not refresh:  # keep whichever refresh token is stored
                refresh = backend.get_password(name, REFRESH_TOKEN) or None
            payload = {"access_token": creds.access_token or "", "refresh_token": refresh}
            backend.set_password(name, FLYTE2_TOKENS, json.dumps(payload))
            backend.set_password(name, PAIR_MARK, _pair_mark(creds.access_token, refresh))

    def __repr__(self) -> str:
        try:
            backend = type(self.backend()).__name__ if self._backend is not None else "default"
        except Exception:  # noqa: BLE001
            backend = "unavailable"
        state = "memory fallback" if self.using_fallback else "keyring"
        return f"KeyringStore(backend={backend}, flyte2={self.flyte2}, state={state!r})"


#: The Flyte 2 SDK registers ``flyte._keyring.file.SimplePlainTextKeyring`` (entry point
#: ``flyte_keyring_file``): base64 in ``~/.flyte/keyring.cfg``, chosen inside IPython when no other
#: backend exists. We never write tokens there silently: it is a fallback reason like "no backend".
FLYTE2_PLAINTEXT = (
    "the only keyring here is the Flyte 2 SDK's plaintext file (~/.flyte/keyring.cfg, tokens merely base64-encoded)"
)


def _is_flyte2_plaintext(backend: Any) -> bool:
    backends = getattr(backend, "backends", None)  # keyring's ChainerBackend
    members = list(backends) if isinstance(backends, (list, tuple)) and backends else [backend]
    return any(type(b).__module__.startswith("flyte._keyring.file") for b in members)


class _Disabled(Exception):
    """The keyring backend cannot store anything (fail/null backend); carries a phrase, not a secret."""


def _pair_mark(access: str | None, refresh: str | None) -> str:
    """A fingerprint of a token pair (not reversible; safe beside the tokens themselves)."""
    return hashlib.sha256(f"{access or ''}\n{refresh or ''}".encode("utf-8")).hexdigest()[:32]


def _issued(creds: Credentials) -> tuple[float, float] | None:
    iat, exp = jwt_times(creds.access_token)
    return None if iat is None and exp is None else (iat or 0.0, exp or 0.0)


def _reconcile(kit: Credentials | None, two: Credentials | None, mark: str | None) -> tuple[Credentials | None, bool]:
    """The newer of the flytekit pair and the Flyte 2 pair, and whether the layouts must be rewritten."""
    if kit is not None and mark is not None and mark != _pair_mark(kit.access_token, kit.refresh_token):
        # flytekit rewrote its entries since our save: our expiry entry describes an older token
        kit.expires_at = jwt_times(kit.access_token)[1]
        kit.expires_in = None
    if two is None:
        return kit, False
    if kit is None:
        return two, True
    refresh_two = two.refresh_token or kit.refresh_token  # flyte's ExternalCommand stores no refresh token
    if two.access_token == kit.access_token and refresh_two == kit.refresh_token:
        return kit, False
    kit_mark = _pair_mark(kit.access_token, kit.refresh_token)
    two_mark = _pair_mark(two.access_token, refresh_two)
    if mark == kit_mark and mark != two_mark:
        flyte2_newer = True
    elif mark == two_mark and mark != kit_mark:
        flyte2_newer = False
    else:  # both written since our save (or never by us): the tokens' own times, else flytekit's layout
        kit_time, two_time = _issued(kit), _issued(two)
        flyte2_newer = kit_time is not None and two_time is not None and two_time > kit_time
    if not flyte2_newer:
        return kit, True
    winner = Credentials(
        access_token=two.access_token, refresh_token=refresh_two, for_endpoint=kit.for_endpoint,
        id_token=kit.id_token,
    )
    return winner, True


def _format_epoch(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
