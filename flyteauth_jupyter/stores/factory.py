"""Choosing a store (:func:`make_store`, DESIGN.md pinned 19) and listing every store a sign-out
must clear (:func:`reachable_stores`, pinned 14).

The default (``auto``): the keyring when a usable one exists (:mod:`.backends`), else the private
file cache. No keyring is the normal case in containers, JupyterHub images and Colab: the file
cache then keeps a sign-in across new notebooks and kernel restarts, and nothing is said beyond the
store's ``describe()``; a keyring we refuse (the Flyte 2 SDK's plaintext file, keyrings.alt's file
backends) is named once in the store's ``fallback_reason``. ``keyring`` asks for the keyring: when
there is none, the file cache is used and the reason says so. ``file`` is the file cache, ``memory``
the strict opt-out (this process only). Every choice that writes files falls back to memory only
when the file cache itself is refused (a shared or symlinked path), said once.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from ..errors import ConfigurationError
from .backends import Unusable, usable_backend
from .base import TOKEN_CACHE_ENV, TOKEN_CACHE_KINDS, TokenStore
from .files import FileStore
from .keyring_store import KeyringStore
from .memory import MemoryStore, process_fallback

logger = logging.getLogger("flyteauth_jupyter.stores")


def token_cache_kind(kind: str | None = None) -> str:
    """``kind`` or ``$FLYTEAUTH_TOKEN_CACHE`` normalised (``auto`` when neither is set); an unknown
    value from the environment is warned about and means ``auto``; an explicit one raises."""
    explicit = kind is not None
    raw = (kind if explicit else os.environ.get(TOKEN_CACHE_ENV, "")) or ""
    value = raw.strip().lower() or "auto"
    if value not in TOKEN_CACHE_KINDS:
        if explicit:
            raise ConfigurationError(f"The token cache must be auto, keyring, file or memory, not {raw!r}.")
        logger.warning("%s=%r is not auto, keyring, file or memory; using the default.", TOKEN_CACHE_ENV, raw[:40])
        value = "auto"
    return value


def make_store(kind: str | None = None) -> TokenStore:
    """The token store named ``kind`` (default: ``$FLYTEAUTH_TOKEN_CACHE``, else ``auto``).

    ``auto``: a :class:`KeyringStore` when the configured keyring is usable, else a :class:`FileStore`
    in :func:`token_dir`; ``keyring``: a :class:`KeyringStore` whatever the keyring (its fallback says
    why when it is unusable); ``file``: a :class:`FileStore`; ``memory``: this process's shared
    memory store. Keyring and file stores fall back to the file cache, then to memory, on their own.
    """
    value = token_cache_kind(kind)
    if value == "memory":
        return process_fallback()
    if value == "file":
        return FileStore(fallback=process_fallback())
    store = KeyringStore()
    if value == "keyring":
        return store
    try:
        store._checked_backend()
    except Unusable as problem:
        logger.debug("No usable keyring (%s); keeping tokens in the private file cache.", problem)
        return FileStore(fallback=process_fallback(), refused_keyring=str(problem) if problem.refused else None)
    except Exception as exc:  # noqa: BLE001 - a backend that cannot even be looked up: the file cache
        logger.debug("The keyring could not be looked up (%s); keeping tokens in the private file cache.",
                     type(exc).__name__)
        return FileStore(fallback=process_fallback())
    return store


def reachable_stores(own: Any = None) -> list[Any]:
    """Every token store this process can reach besides ``own``, for a complete sign-out (pinned 14):
    the keyring (when a usable one is configured), the private file cache and process memory. Each
    is a fresh store that raises nothing on ``load`` for an absent entry; ``delete`` may raise
    :class:`TokenStoreError` (a refused file cache), for the caller to report."""
    found: list[Any] = []
    with contextlib.suppress(Exception):
        usable_backend(KeyringStore().backend())
        found.append(KeyringStore(fallback=MemoryStore()))  # its own fallback: nothing else touched
    found.append(FileStore())
    found.append(process_fallback())
    return [store for store in found if store is not own]
