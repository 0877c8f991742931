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

Where each part lives: :mod:`.base` (the usernames of both layouts, service names, the cache
directories, the :class:`TokenStore` protocol), :mod:`.lock` (the cross-process lock),
:mod:`.memory`, :mod:`.keyring_store` (the layouts and their reconciliation), :mod:`.files` (the
file cache) and :mod:`.factory` (``make_store``). Import from this package: its names are the API.
"""

from __future__ import annotations

import json  # noqa: F401 - the package exposes the modules its stores use (tests patch them here)
import os  # noqa: F401

try:  # POSIX only; elsewhere lock() is an in-process lock. lock.py reads this switch at each use.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

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
    TOKEN_CACHE_ENV,
    TOKEN_CACHE_KINDS,
    TokenStore,
    lock_dir,
    service_name,
    token_dir,
)
from .factory import make_store, token_cache_kind
from .files import FileStore
from .keyring_store import FLYTE2_PLAINTEXT, KeyringStore
from .lock import LOCK_POLL_INTERVAL, process_lock
from .memory import PROCESS_FALLBACK, MemoryStore

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
