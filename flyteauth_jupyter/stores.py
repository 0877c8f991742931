"""Token stores: where authenticators keep ``Credentials`` between calls, kernels and SDKs.

The protocol (:class:`TokenStore`) is five members: ``load(service)``, ``save(service, creds)``,
``delete(service)``, ``lock(service)`` (a context manager serialising refreshes across processes) and
``fallback_reason`` (None, or one sentence saying why tokens are only kept in memory).

:class:`KeyringStore` writes two layouts under the keyring service = the endpoint without scheme
(``host[:port]``, DESIGN.md pinned 2), so one login serves flytekit, the Flyte 2 SDK and us:

============  ================  ==============================================================
layout        username          value
============  ================  ==============================================================
flytekit      ``access_token``  raw token (flytekit ``KeyringStore``: read by flytekit as is)
flytekit      ``refresh_token`` raw token; never overwritten with "no refresh token"
flytekit      ``id_token``      raw token
ours (extra)  ``expires_at``    epoch seconds as text (flytekit ignores extra usernames)
ours (extra)  ``expires_in``    the token's lifetime in seconds, so a reader knows its refresh margin
Flyte 2 SDK   ``tokens``        JSON ``{"access_token": ..., "refresh_token": ...}``

ours (extra)  ``flyteauth_pair``  a fingerprint (sha256 prefix) of the pair last written to both layouts
============  ================  ==============================================================

Two layouts, one truth (DESIGN.md pinned 18): each SDK refreshes on its own and rewrites only its
own layout, so after a rotation one layout holds a superseded refresh token (with rotation and
replay detection, one use of it revokes the user's whole grant). ``load`` therefore reads both and,
when they disagree, takes the newer pair and writes it to both before anyone can send the old one.
"Newer" is decided without asking the IdP: the layout that no longer matches ``flyteauth_pair`` was
written after our last save, so it is the newer one; when neither matches (both SDKs wrote since),
the access tokens' JWT ``iat`` (then ``exp``) decide, and failing that the flytekit layout wins. An
``expires_at`` entry is trusted only while the flytekit pair still matches the fingerprint (flytekit
writes no expiry, so after its refresh the entry describes an older token).

Any keyring problem (no backend,
locked, D-Bus, value too large, a "fail" or "null" backend, any exception) never breaks a login: the
store switches to process memory, sets ``fallback_reason`` and logs one warning. Nothing here ever
logs, reprs or raises a token.

:class:`FileStore` is the explicit opt-in for machines without a keyring (Colab, containers, hub
images): one private JSON file per service. :func:`make_store` picks a store by name, by default from
``$FLYTEAUTH_TOKEN_CACHE`` (``keyring``, the default, | ``file`` | ``memory``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .control import SYSTEM_CLOCK, Clock
from .credentials import DEFAULT_ENDPOINT, Credentials, jwt_claims
from .endpoint import Endpoint, parse_endpoint
from .errors import ConfigurationError, TokenStoreError, scrub

try:  # POSIX only; elsewhere lock() is an in-process lock.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

ACCESS_TOKEN = "access_token"
REFRESH_TOKEN = "refresh_token"
ID_TOKEN = "id_token"
EXPIRES_AT = "expires_at"
EXPIRES_IN = "expires_in"
FLYTE2_TOKENS = "tokens"
#: Fingerprint of the pair last written to both layouts (pinned 18: tells which layout is newer).
PAIR_MARK = "flyteauth_pair"
#: Every username either layout uses under a service (delete clears them all; the Flyte 2 entry last).
ALL_USERNAMES = (ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, EXPIRES_AT, EXPIRES_IN, PAIR_MARK, FLYTE2_TOKENS)

#: Environment variable choosing the default token store: ``keyring`` (default) | ``file`` | ``memory``.
TOKEN_CACHE_ENV = "FLYTEAUTH_TOKEN_CACHE"
TOKEN_CACHE_KINDS = ("keyring", "file", "memory")
FILE_CACHE_HINT = (
    f"set {TOKEN_CACHE_ENV}=file (or %config FlyteAuthMagics.token_cache = 'file') to keep them in a private "
    "file instead."
)

DEFAULT_LOCK_TIMEOUT = 60.0  # one refresh: 10 s connect + 30 s read, with room to spare


def service_name(endpoint: str | Endpoint) -> str:
    """The keyring service for ``endpoint``: ``host[:port]`` without scheme (DESIGN.md, pinned 2).

    A URL (``https://h:p``, ``dns:///h:p``) is parsed; a bare service (``h:p``, ``flyte-default``) is
    taken verbatim, as flytekit does with ``PlatformConfig.endpoint``.
    """
    if isinstance(endpoint, Endpoint):
        return endpoint.service
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ConfigurationError("A token store needs an endpoint or service name, got none.")
    raw = endpoint.strip()
    if raw.startswith("dns:///"):
        raw = raw[len("dns:///") :]
    if "://" not in raw:
        return raw.rstrip("/")
    return parse_endpoint(raw, insecure=True).service


# --------------------------------------------------------------------------------------------------
# Cross-process lock
# --------------------------------------------------------------------------------------------------


def _cache_base() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flyteauth_jupyter"


def lock_dir() -> Path:
    """``$XDG_CACHE_HOME/flyteauth_jupyter/locks`` (default ``~/.cache/...``)."""
    return _cache_base() / "locks"


def token_dir() -> Path:
    """``$XDG_CACHE_HOME/flyteauth_jupyter/tokens`` (default ``~/.cache/...``): :class:`FileStore`'s home."""
    return _cache_base() / "tokens"


def _lock_file_name(service: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", service)[:80]
    digest = hashlib.sha256(service.encode("utf-8")).hexdigest()[:10]
    return f"{safe}-{digest}.lock"


class _ServiceLock:
    """One per service per process: a re-entrant thread lock, plus the flock while held."""

    def __init__(self) -> None:
        self.rlock = threading.RLock()
        self.depth = 0  # only touched by the thread holding rlock
        self.fd: int | None = None


_LOCKS: dict[str, _ServiceLock] = {}
_LOCKS_GUARD = threading.Lock()
_LOCK_DIR_WARNED = False


def _service_lock(service: str) -> _ServiceLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(service, _ServiceLock())


def _open_lock_file(service: str) -> int | None:
    """Open (create) the service's lock file; None when the cache dir is unusable (warned once)."""
    global _LOCK_DIR_WARNED
    directory = lock_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return os.open(directory / _lock_file_name(service), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        if not _LOCK_DIR_WARNED:
            _LOCK_DIR_WARNED = True
            logger.warning(
                "Cannot use the lock directory %s (%s); token refreshes are serialised within this "
                "process only.",
                directory,
                type(exc).__name__,
            )
        return None


@contextlib.contextmanager
def process_lock(
    service: str | Endpoint,
    *,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
    cross_process: bool = True,
    clock: Clock = SYSTEM_CLOCK,
) -> Iterator[None]:
    """Hold the lock for ``service`` (re-entrant within a thread), waiting at most ``timeout`` seconds.

    Across processes: ``fcntl.flock`` on a per-service file under :func:`lock_dir`. Where fcntl is
    missing (or ``cross_process=False``) only threads of this process are serialised. Raises
    :class:`TokenStoreError` when the lock is not obtained in time.
    """
    name = service_name(service)
    entry = _service_lock(name)
    started = clock.monotonic()
    if not entry.rlock.acquire(timeout=max(0.0, timeout)):
        raise _lock_timeout(name, timeout)
    try:
        if entry.depth == 0 and cross_process and fcntl is not None:
            entry.fd = _open_lock_file(name)
            if entry.fd is not None:
                _flock_with_deadline(entry.fd, name, timeout - (clock.monotonic() - started), timeout, clock)
        entry.depth += 1
        try:
            yield
        finally:
            entry.depth -= 1
            if entry.depth == 0 and entry.fd is not None:
                fd, entry.fd = entry.fd, None
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
    except BaseException:
        if entry.depth == 0 and entry.fd is not None:  # flock failed: do not leak the descriptor
            os.close(entry.fd)
            entry.fd = None
        raise
    finally:
        entry.rlock.release()


def _flock_with_deadline(fd: int, name: str, left: float, timeout: float, clock: Clock) -> None:
    ends = clock.monotonic() + max(0.0, left)
    step = 0.005
    idle = threading.Event()  # never set: clock.wait() on it is an interruptible pause
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:  # e.g. a filesystem without flock: degrade to the thread lock
            logger.debug("flock unavailable for the token lock (%s)", type(exc).__name__)
            return
        remaining = ends - clock.monotonic()
        if remaining <= 0:
            raise _lock_timeout(name, timeout)
        clock.wait(idle, min(step, remaining))
        step = min(step * 2, 0.1)


def _lock_timeout(name: str, timeout: float) -> TokenStoreError:
    return TokenStoreError(
        f"Another process kept the token lock for {name} longer than {timeout:g} s; "
        f"try again, or remove stale files in {lock_dir()}."
    )


# --------------------------------------------------------------------------------------------------
# The protocol and the in-memory store
# --------------------------------------------------------------------------------------------------


@runtime_checkable
class TokenStore(Protocol):
    """What authenticators need from a token store."""

    fallback_reason: str | None

    def load(self, service: str) -> Credentials | None: ...

    def save(self, service: str, creds: Credentials) -> None: ...

    def delete(self, service: str) -> None: ...

    def lock(self, service: str) -> contextlib.AbstractContextManager[None]: ...


def _copy(creds: Credentials, service: str) -> Credentials:
    return dataclasses.replace(creds, for_endpoint=service, expires_at=creds.expires_at)


class MemoryStore:
    """Tokens in process memory (thread-safe). Same merge rule as the keyring: a save without a
    refresh token keeps the stored one."""

    fallback_reason: str | None = None

    def __init__(self, *, cross_process_lock: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self._data: dict[str, Credentials] = {}
        self._warned: set[str] = set()
        self._guard = threading.Lock()
        self._cross_process_lock = cross_process_lock
        self.lock_timeout = lock_timeout

    def load(self, service: str | Endpoint) -> Credentials | None:
        name = service_name(service)
        with self._guard:
            creds = self._data.get(name)
            return None if creds is None else _copy(creds, name)

    def save(self, service: str | Endpoint, creds: Credentials) -> None:
        name = service_name(service)
        with self._guard:
            old = self._data.get(name)
            new = _copy(creds, name)
            if new.refresh_token is None and old is not None:
                new.refresh_token = old.refresh_token
            if new.id_token is None and old is not None:
                new.id_token = old.id_token
            self._data[name] = new

    def delete(self, service: str | Endpoint) -> None:
        name = service_name(service)
        with self._guard:
            self._data.pop(name, None)

    def clear(self) -> None:
        with self._guard:
            self._data.clear()
            self._warned.clear()

    def note_warning(self, text: str) -> bool:
        """Record a fallback warning about this store; True the first time ``text`` is seen."""
        with self._guard:
            if text in self._warned:
                return False
            self._warned.add(text)
            return True

    def lock(self, service: str | Endpoint, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        return process_lock(
            service,
            timeout=self.lock_timeout if timeout is None else timeout,
            cross_process=self._cross_process_lock,
        )

    def __contains__(self, service: object) -> bool:
        return isinstance(service, (str, Endpoint)) and service_name(service) in self._data

    def __repr__(self) -> str:
        with self._guard:
            return f"MemoryStore(services={sorted(self._data)!r})"


#: Where every KeyringStore of this process keeps tokens once its keyring failed, so that two
#: authenticators of one kernel still share a login.
PROCESS_FALLBACK = MemoryStore()


# --------------------------------------------------------------------------------------------------
# KeyringStore
# --------------------------------------------------------------------------------------------------


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
        self._fallback = PROCESS_FALLBACK if fallback is None else fallback
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
        expires_at: float | None = None
        exp = jwt_claims(access).get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            expires_at = float(exp)  # the token's own claim beats a possibly stale side entry
        else:
            expires_at = _parse_float(backend.get_password(name, EXPIRES_AT))
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


# --------------------------------------------------------------------------------------------------
# FileStore (explicit opt-in) and the store factory
# --------------------------------------------------------------------------------------------------

_FILE_FORMAT = 1


class FileStore:
    """Tokens in private files: one JSON file per service, named by the sha256 of the service name.

    ``directory`` (default :func:`token_dir`) is created 0700; files are written 0600 through a
    temporary file in the same directory and ``os.replace``, so a reader never sees a partial file. A
    directory or file that other users can read or write, that another user owns, or that is a symlink
    is refused with :class:`TokenStoreError`. A corrupt file counts as absent (logged without its
    content). Same merge rule as the keyring: a save without a refresh/id token keeps the stored one.
    """

    fallback_reason: str | None = None

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.directory = Path(directory).expanduser() if directory is not None else token_dir()
        self.lock_timeout = lock_timeout

    @property
    def notice(self) -> str:
        """One line for the login panel: where the tokens are kept."""
        return f"Tokens are kept in a private file cache in {self.directory} (readable only by you)."

    # -- paths and checks ----------------------------------------------------------------------------
    def path_for(self, service: str | Endpoint) -> Path:
        return self.directory / (hashlib.sha256(service_name(service).encode("utf-8")).hexdigest() + ".json")

    def _check_directory(self, *, create: bool) -> bool:
        """True when the directory exists and is private; False when absent (and not ``create``)."""
        directory = self.directory
        if create:
            try:
                directory.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                directory.mkdir(mode=0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                raise TokenStoreError(
                    f"Cannot create the token cache directory {directory} ({type(exc).__name__})."
                ) from None
        try:
            st = os.lstat(directory)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise TokenStoreError(f"Cannot read the token cache directory {directory} ({type(exc).__name__}).") from None
        if stat.S_ISLNK(st.st_mode):
            raise TokenStoreError(f"The token cache directory {directory} is a symlink; refusing to use it.")
        if not stat.S_ISDIR(st.st_mode):
            raise TokenStoreError(f"The token cache path {directory} is not a directory; refusing to use it.")
        _check_private(st, directory, "directory", "chmod 700")
        return True

    # -- protocol ------------------------------------------------------------------------------------
    def load(self, service: str | Endpoint) -> Credentials | None:
        name = service_name(service)
        if not self._check_directory(create=False):
            return None
        return self._read(name, self.path_for(name))

    def save(self, service: str | Endpoint, creds: Credentials) -> None:
        name = service_name(service)
        self._check_directory(create=True)
        path = self.path_for(name)
        old = self._read(name, path)
        refresh = creds.refresh_token or (old.refresh_token if old is not None else None)
        id_token = creds.id_token or (old.id_token if old is not None else None)
        payload = {
            "format": _FILE_FORMAT,
            "service": name,
            ACCESS_TOKEN: creds.access_token,
            REFRESH_TOKEN: refresh,
            ID_TOKEN: id_token,
            EXPIRES_AT: creds.expires_at,
            EXPIRES_IN: _lifetime(creds),
            "scopes": list(creds.scopes or ()),
        }
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.directory)  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise TokenStoreError(
                    f"Cannot write the token cache file in {self.directory} ({type(exc).__name__})."
                ) from None
            raise

    def delete(self, service: str | Endpoint) -> None:
        name = service_name(service)
        if not self._check_directory(create=False):
            return
        try:
            os.unlink(self.path_for(name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TokenStoreError(
                f"Cannot remove the token cache file in {self.directory} ({type(exc).__name__})."
            ) from None

    def lock(self, service: str | Endpoint, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """Cross-process lock for refreshing ``service``'s tokens (see :func:`process_lock`)."""
        return process_lock(service, timeout=self.lock_timeout if timeout is None else timeout)

    # -- reading -------------------------------------------------------------------------------------
    def _read(self, name: str, path: Path) -> Credentials | None:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise TokenStoreError(f"The token cache file {path} is a symlink; refusing to use it.")
            fd = os.open(path, flags)
        except FileNotFoundError:
            return None
        except TokenStoreError:
            raise
        except OSError as exc:
            raise TokenStoreError(f"Cannot read the token cache file {path} ({type(exc).__name__}).") from None
        with os.fdopen(fd, "r", encoding="utf-8") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise TokenStoreError(f"The token cache file {path} is not a regular file; refusing to use it.")
            _check_private(st, path, "file", "chmod 600")
            try:
                data = json.loads(handle.read())
                return _creds_from_file(data, name)
            except (ValueError, TypeError, KeyError) as exc:
                logger.warning("Ignoring the unreadable token cache file %s (%s).", path, type(exc).__name__)
                return None

    def __repr__(self) -> str:
        return f"FileStore(directory={str(self.directory)!r})"


def _check_private(st: os.stat_result, path: Path, what: str, fix: str) -> None:
    getuid = getattr(os, "getuid", None)
    if getuid is not None and st.st_uid != getuid():
        raise TokenStoreError(f"The token cache {what} {path} belongs to another user; refusing to use it.")
    if st.st_mode & 0o077:
        raise TokenStoreError(
            f"The token cache {what} {path} is accessible to other users (mode {stat.S_IMODE(st.st_mode):o}); "
            f"refusing to use it ({fix} it, or remove it)."
        )


def _creds_from_file(data: Any, name: str) -> Credentials | None:
    if not isinstance(data, dict) or data.get("service") != name:
        raise ValueError("not a token cache entry for this service")

    def text(key: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise TypeError(key)
        return value or None

    access, refresh = text(ACCESS_TOKEN), text(REFRESH_TOKEN)
    if not access and not refresh:
        return None
    expires_at = data.get(EXPIRES_AT)
    if expires_at is not None and (isinstance(expires_at, bool) or not isinstance(expires_at, (int, float))):
        raise TypeError(EXPIRES_AT)
    scopes = data.get("scopes") or []
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise TypeError("scopes")
    return Credentials(
        access_token=access,
        refresh_token=refresh,
        for_endpoint=name,
        id_token=text(ID_TOKEN),
        expires_at=None if expires_at is None else float(expires_at),
        expires_in=_parse_lifetime(data.get(EXPIRES_IN)) if expires_at is not None else None,
        scopes=tuple(scopes),
    )


def token_cache_kind(kind: str | None = None) -> str:
    """``kind`` or ``$FLYTEAUTH_TOKEN_CACHE`` normalised; an unknown value is warned about and means keyring."""
    explicit = kind is not None
    raw = (kind if explicit else os.environ.get(TOKEN_CACHE_ENV, "")) or ""
    value = raw.strip().lower() or "keyring"
    if value not in TOKEN_CACHE_KINDS:
        if explicit:
            raise ConfigurationError(f"The token cache must be keyring, file or memory, not {raw!r}.")
        logger.warning("%s=%r is not keyring, file or memory; using the keyring.", TOKEN_CACHE_ENV, raw[:40])
        value = "keyring"
    return value


def make_store(kind: str | None = None) -> TokenStore:
    """The token store named ``kind`` (default: ``$FLYTEAUTH_TOKEN_CACHE``, else ``keyring``).

    ``keyring``: :class:`KeyringStore` (memory fallback built in); ``file``: :class:`FileStore` in
    :func:`token_dir`; ``memory``: this process's shared memory store.
    """
    value = token_cache_kind(kind)
    if value == "file":
        return FileStore()
    if value == "memory":
        return PROCESS_FALLBACK
    return KeyringStore()


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
    claims = jwt_claims(creds.access_token) if creds.access_token else {}
    iat, exp = claims.get("iat"), claims.get("exp")
    numbers = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in (iat, exp)]
    return None if numbers == [None, None] else (float(numbers[0] or 0), float(numbers[1] or 0))


def _reconcile(kit: Credentials | None, two: Credentials | None, mark: str | None) -> tuple[Credentials | None, bool]:
    """The newer of the flytekit pair and the Flyte 2 pair, and whether the layouts must be rewritten."""
    if kit is not None and mark is not None and mark != _pair_mark(kit.access_token, kit.refresh_token):
        # flytekit rewrote its entries since our save: our expiry entry describes an older token
        claims_exp = jwt_claims(kit.access_token).get("exp") if kit.access_token else None
        kit.expires_at = float(claims_exp) if isinstance(claims_exp, (int, float)) and not isinstance(claims_exp, bool) else None
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


def _lifetime(creds: Credentials) -> int | None:
    """The token's lifetime in whole seconds (``expires_in``), when known and sane."""
    try:
        value = int(creds.expires_in) if creds.expires_in is not None else None
    except (TypeError, ValueError, OverflowError):
        return None
    return value if value is not None and 0 < value <= 10 * 365 * 86400 else None


def _parse_lifetime(value: Any) -> int | None:
    """A stored lifetime (text or number) back as seconds; None when absent or not a sane number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 < number <= 10 * 365 * 86400 else None


def _parse_float(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _format_epoch(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


__all__ = [
    "ACCESS_TOKEN",
    "REFRESH_TOKEN",
    "ID_TOKEN",
    "EXPIRES_AT",
    "EXPIRES_IN",
    "FLYTE2_TOKENS",
    "PAIR_MARK",
    "ALL_USERNAMES",
    "TokenStore",
    "MemoryStore",
    "KeyringStore",
    "FileStore",
    "make_store",
    "token_cache_kind",
    "token_dir",
    "TOKEN_CACHE_ENV",
    "PROCESS_FALLBACK",
    "process_lock",
    "lock_dir",
    "service_name",
]
