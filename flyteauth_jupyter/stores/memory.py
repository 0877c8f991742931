"""Tokens in process memory (:class:`MemoryStore`) and the process's shared fallback store."""

from __future__ import annotations

import contextlib
import logging
import threading

from ..credentials import Credentials
from ..endpoint import Endpoint
from .base import DEFAULT_LOCK_TIMEOUT, service_name, _copy
from .grants import merge_saved
from .lock import process_lock

logger = logging.getLogger("flyteauth_jupyter.stores")


class MemoryStore:
    """Tokens in process memory (thread-safe). Same merge rule as every store (:func:`.grants.merge_saved`):
    a save without a refresh or id token keeps the stored one only when both belong to one grant."""

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
            self._data[name] = _copy(merge_saved(self._data.get(name), creds), name)

    def delete(self, service: str | Endpoint) -> None:
        name = service_name(service)
        with self._guard:
            self._data.pop(name, None)

    #: a look without side effects, and a removal that never raises (the keyring store's parked tokens)
    peek = load
    discard = delete

    def describe(self, service: str | Endpoint) -> str:
        """Where the tokens are kept: ``memory only (this kernel)``."""
        return "memory only (this kernel)"

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


def process_fallback() -> MemoryStore:
    """The process's shared fallback store: ``flyteauth_jupyter.stores.PROCESS_FALLBACK``, read there at
    each use (replacing it there replaces it for every store)."""
    from . import PROCESS_FALLBACK

    return PROCESS_FALLBACK


def warn_once(text: str, registry: MemoryStore | None = None) -> None:
    """Log ``text`` as a warning the first time ``registry`` (default: the process's fallback store)
    sees it: once per kernel and reason."""
    if (registry if registry is not None else process_fallback()).note_warning(text):
        logger.warning("%s", text)
