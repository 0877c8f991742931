"""Choosing a store by name or ``$FLYTEAUTH_TOKEN_CACHE`` (:func:`make_store`)."""

from __future__ import annotations

import logging
import os

from ..errors import ConfigurationError
from .base import TOKEN_CACHE_ENV, TOKEN_CACHE_KINDS, TokenStore
from .files import FileStore
from .keyring_store import KeyringStore
from .memory import process_fallback

logger = logging.getLogger("flyteauth_jupyter.stores")


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
        return process_fallback()
    return KeyringStore()
