"""Token stores: where authenticators keep ``Credentials`` between calls, kernels and SDKs.

The protocol (:class:`TokenStore`) is six members: ``load(service)``, ``save(service, creds)`` (with
``lock(service)`` held), ``delete(service)``, ``lock(service)`` (a context manager serialising
refreshes across processes), ``fallback_reason`` (None, or one sentence saying why the tokens are
not where they would normally be) and ``describe(service)`` (the short phrase naming where they are
kept: "the keyring (SecretService)", "the private file ~/.cache/flyteauth_jupyter/tokens/ab12….json",
"memory only (this kernel)"; :func:`describe_store` for any store). Neither phrase holds a secret.

Which store (DESIGN.md pinned 19, :func:`make_store`, ``$FLYTEAUTH_TOKEN_CACHE`` or
``%config FlyteAuthMagics.token_cache``): by default the keyring where a usable one exists
(:mod:`.backends` says which count), else the private 0600 file cache, one file per endpoint
(:class:`FileStore`); ``memory`` is the strict opt-out. A keyring that fails later (locked, raises,
value too large) falls back to the file cache, said once; memory only when the file cache itself
is refused (a shared or symlinked path).

:class:`KeyringStore` writes two layouts under the keyring service = the endpoint without scheme
(``host[:port]``, DESIGN.md pinned 2), so one login serves flytekit, the Flyte 2 SDK and us:

============  ================  ==============================================================
layout        username          value
============  ================  ==============================================================
flytekit      ``access_token``  raw token (flytekit ``KeyringStore``: read by flytekit as is)
flytekit      ``refresh_token`` raw token (absent when the pair has none)
flytekit      ``id_token``      raw token
ours (extra)  ``expires_at``    epoch seconds as text (flytekit ignores extra usernames)
ours (extra)  ``expires_in``    the token's lifetime in seconds, so a reader knows its refresh margin
Flyte 2 SDK   ``tokens``        JSON ``{"access_token": ..., "refresh_token": ...}``
ours (extra)  ``flyteauth_pair``  fingerprint of the pair last written to both layouts; ``w:...``
                                while a write of ours is in progress (:mod:`.layouts`)
============  ================  ==============================================================

Two layouts, one truth (pinned 18, issues 16.1 and 16.2; the rules: :mod:`.layouts`): ``load``
reads both and the marker twice, takes the newer whole pair, and combines tokens of the two layouts
only when they belong to one grant (:mod:`.grants`). A read never writes, except to rewrite
disagreeing layouts under the store's cross-process lock, taken without waiting, after reading
again; a pair with one layout mid-write is never taken as the newer one. Any keyring problem never
breaks a login. Nothing here ever logs, reprs or raises a token.

Where each part lives: :mod:`.base` (usernames, service names, directories, the protocol),
:mod:`.grants` (which tokens belong together), :mod:`.layouts` (both layouts as one pair),
:mod:`.backends` (which keyring backends count), :mod:`.lock` (the cross-process lock),
:mod:`.memory`, :mod:`.keyring_store`, :mod:`.files` and :mod:`.factory` (``make_store``,
``reachable_stores``). Import from this package: its names are the API (each imported on first use).
"""

from __future__ import annotations

import json  # noqa: F401 - the package exposes the modules its stores use (tests patch them here)
import os  # noqa: F401
from typing import TYPE_CHECKING

from .._lazy import attach

try:  # POSIX only; elsewhere lock() is an in-process lock. lock.py reads this switch at each use.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:  # the names below, for type checkers; at run time see __getattr__
    from .backends import FLYTE2_PLAINTEXT, usable_backend
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
        describe_store,
        lock_dir,
        service_name,
        token_dir,
    )
    from .factory import make_store, reachable_stores, token_cache_kind
    from .files import FileStore
    from .grants import merge_saved, same_grant
    from .keyring_store import KeyringStore
    from .lock import LOCK_POLL_INTERVAL, process_lock
    from .memory import PROCESS_FALLBACK, MemoryStore

#: Public name -> the submodule that defines it, imported on first use (PEP 562): the token command's
#: fast path (flyteauth_jupyter.token) reads one store without importing the others (and keyring's
#: helpers, the lock's threads module, the factory).
_LAZY = {
    **dict.fromkeys(("FLYTE2_PLAINTEXT", "usable_backend"), ".backends"),
    **dict.fromkeys((
        "ACCESS_TOKEN", "ALL_USERNAMES", "DEFAULT_LOCK_TIMEOUT", "EXPIRES_AT", "EXPIRES_IN", "FILE_CACHE_HINT",
        "FLYTE2_TOKENS", "ID_TOKEN", "PAIR_MARK", "REFRESH_TOKEN", "TOKEN_CACHE_ENV", "TOKEN_CACHE_KINDS",
        "TokenStore", "describe_store", "lock_dir", "service_name", "token_dir",
    ), ".base"),
    **dict.fromkeys(("make_store", "reachable_stores", "token_cache_kind"), ".factory"),
    "FileStore": ".files",
    **dict.fromkeys(("merge_saved", "same_grant"), ".grants"),
    "KeyringStore": ".keyring_store",
    **dict.fromkeys(("LOCK_POLL_INTERVAL", "process_lock"), ".lock"),
    **dict.fromkeys(("PROCESS_FALLBACK", "MemoryStore"), ".memory"),
}


__getattr__, __dir__ = attach(__name__, _LAZY, globals())


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
    "reachable_stores",
    "describe_store",
    "same_grant",
    "merge_saved",
    "usable_backend",
    "token_cache_kind",
    "token_dir",
    "TOKEN_CACHE_ENV",
    "PROCESS_FALLBACK",
    "process_lock",
    "lock_dir",
    "service_name",
]
