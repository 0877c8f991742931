"""The names and places every token store shares: the keyring usernames of both layouts, the
service name of an endpoint, the cache directories, the :class:`TokenStore` protocol."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..credentials import Credentials
from ..endpoint import Endpoint, parse_endpoint
from ..errors import ConfigurationError

logger = logging.getLogger("flyteauth_jupyter.stores")


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
#: Environment variable choosing the token store: ``auto`` (the default: the keyring where a usable
#: one exists, else the private file cache) | ``keyring`` | ``file`` | ``memory``.
TOKEN_CACHE_ENV = "FLYTEAUTH_TOKEN_CACHE"
TOKEN_CACHE_KINDS = ("auto", "keyring", "file", "memory")
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


def _cache_base() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flyteauth_jupyter"


def lock_dir() -> Path:
    """``$XDG_CACHE_HOME/flyteauth_jupyter/locks`` (default ``~/.cache/...``)."""
    return _cache_base() / "locks"


def token_dir() -> Path:
    """``$XDG_CACHE_HOME/flyteauth_jupyter/tokens`` (default ``~/.cache/...``): :class:`FileStore`'s home."""
    return _cache_base() / "tokens"


@runtime_checkable
class TokenStore(Protocol):
    """What authenticators need from a token store.

    ``save`` is called with ``lock(service)`` held (the lifecycle refreshes and saves under it), so
    that a reader holding the lock never sees a write of ours half done. ``fallback_reason`` is None,
    or one secret-free sentence saying why the tokens are not where they would normally be kept (a
    keyring that failed or was refused); ``describe(service)`` is the short phrase naming where they
    are kept now ("the keyring (SecretService)", "the private file ~/.cache/...json", "memory only
    (this kernel)"), reflecting any fallback that happened; neither ever holds a secret.
    """

    @property
    def fallback_reason(self) -> str | None: ...

    def load(self, service: str) -> Credentials | None: ...

    def save(self, service: str, creds: Credentials) -> None: ...

    def delete(self, service: str) -> None: ...

    def lock(self, service: str) -> contextlib.AbstractContextManager[None]: ...

    def describe(self, service: str) -> str: ...


def describe_store(store: Any, service: str | Endpoint) -> str:
    """``store.describe(service)``, for any store (one without ``describe`` is named by its class);
    never raises."""
    try:
        return str(store.describe(service_name(service)))
    except Exception:  # noqa: BLE001 - a phrase for a status line never breaks anything
        return "memory only (this kernel)" if store is None else f"a {type(store).__name__}"


def short_path(path: Path) -> str:
    """``path`` with the home directory written as ``~`` (a status line's form of a path)."""
    home = os.path.expanduser("~")
    text = str(path)
    if home and home != "/" and (text == home or text.startswith(home.rstrip(os.sep) + os.sep)):
        return "~" + text[len(home.rstrip(os.sep)):]
    return text


def _copy(creds: Credentials, service: str) -> Credentials:
    return dataclasses.replace(creds, for_endpoint=service, expires_at=creds.expires_at)


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
