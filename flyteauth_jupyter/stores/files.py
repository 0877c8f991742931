"""Tokens in private files (:class:`FileStore`): the default where no usable keyring exists, the
keyring's fallback when it fails, and the explicit ``FLYTEAUTH_TOKEN_CACHE=file``.

A sign-out leaves no file holding a token: ``delete`` unlinks the service's file (it is never
emptied in place) and any temporary file a writer left behind for that service (a write goes through
``.tmp-<service hash>-*.json`` and ``os.replace``; one killed between the two leaves its temp file,
which the next save removes once it is a minute old and the next sign-out at once).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..credentials import Credentials
from ..endpoint import Endpoint
from ..errors import TokenStoreError
from ..validate import epoch_seconds
from .base import (
    ACCESS_TOKEN,
    DEFAULT_LOCK_TIMEOUT,
    EXPIRES_AT,
    EXPIRES_IN,
    ID_TOKEN,
    REFRESH_TOKEN,
    service_name,
    short_path,
    token_dir,
    _lifetime,
    _parse_lifetime,
)
from .grants import merge_saved

if TYPE_CHECKING:
    from .memory import MemoryStore
# .lock, .memory and tempfile are imported where they are used: reading a file (the token command's
# fast path) needs none of them.

logger = logging.getLogger("flyteauth_jupyter.stores")


_FILE_FORMAT = 1
#: a temporary file older than this is a dead writer's (a write takes milliseconds)
STALE_TEMP_SECONDS = 60.0


class FileStore:
    """Tokens in private files: one JSON file per service, named by the sha256 of the service name.

    ``directory`` (default :func:`token_dir`) is created 0700; files are written 0600 through a
    temporary file in the same directory and ``os.replace``, so a reader never sees a partial file. A
    directory or file that other users can read or write, that another user owns, or that is a symlink
    is refused with :class:`TokenStoreError`. A corrupt file counts as absent (logged without its
    content). Merge rule of every store (:func:`.grants.merge_saved`): a save without a refresh/id
    token keeps the stored one only when both belong to one grant.

    ``fallback``: a memory store to use once the file cache is refused (then ``fallback_reason`` says
    why, once, as a logged warning too); None (the default): the refusal is raised. ``refused_keyring``:
    the phrase saying which keyring was declined in favour of this file cache (the panel's notice).
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT, fallback: MemoryStore | None = None,
                 refused_keyring: str | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory is not None else token_dir()
        self.lock_timeout = lock_timeout
        self._fallback = fallback
        self._refusal: str | None = None  # the sentence saying the file cache was refused (then: memory)
        self.refusal_why: str | None = None  # ... and the phrase saying why
        self.refused_keyring = refused_keyring

    @property
    def notice(self) -> str:
        """One line for the login panel: where the tokens are kept."""
        return self.fallback_reason or (
            f"Tokens are kept in a private file cache in {self.directory} (readable only by you)."
        )

    @property
    def fallback_reason(self) -> str | None:
        """Why tokens are not in the keyring or not in this file cache (None: nothing to say)."""
        if self._refusal is not None:
            return self._refusal
        if self.refused_keyring:
            return (
                f"Tokens are kept in the private file cache in {short_path(self.directory)} (readable only by you) "
                f"because {self.refused_keyring}; that keyring is never written."
            )
        return None

    @property
    def using_fallback(self) -> bool:
        return self._refusal is not None

    def describe(self, service: str | Endpoint) -> str:
        """``the private file ~/.cache/flyteauth_jupyter/tokens/ab12cd34….json``, or, once the file
        cache was refused, ``memory only (this kernel; the private file cache was refused)``."""
        if self._refusal is not None:
            return "memory only (this kernel; the private file cache was refused)"
        name = self.path_for(service).name
        return f"the private file {short_path(self.directory)}{os.sep}{name[:8]}\u2026.json"

    # -- paths and checks ----------------------------------------------------------------------------
    def path_for(self, service: str | Endpoint) -> Path:
        return self.directory / (_digest(service_name(service)) + ".json")

    def _temp_prefix(self, name: str) -> str:
        return f".tmp-{_digest(name)[:16]}-"

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
        if self._refusal is None:
            try:
                return self._load_file(name)
            except TokenStoreError as exc:
                self._refuse(name, exc)
        return self._memory().load(name)

    def discard(self, service: str | Endpoint) -> None:
        """Remove ``service``'s file (and, once the file cache was refused, its memory entry); never
        raises, never falls back."""
        name = service_name(service)
        if self._fallback is not None and self._refusal is not None:
            self._fallback.delete(name)
        with contextlib.suppress(Exception):
            self._delete_file(name)

    def peek(self, service: str | Endpoint) -> Credentials | None:
        """The file's credentials for ``service``, or None; never raises, never falls back, never
        logs (the keyring store's look for tokens parked here while it failed)."""
        try:
            return self._load_file(service_name(service))
        except Exception:  # noqa: BLE001 - a refused or unreadable file holds nothing for a peek
            return None

    def save(self, service: str | Endpoint, creds: Credentials) -> None:
        name = service_name(service)
        if self._refusal is None:
            try:
                self._save_file(name, creds)
                return
            except TokenStoreError as exc:
                self._refuse(name, exc)
        self._memory().save(name, creds)

    def delete(self, service: str | Endpoint) -> None:
        name = service_name(service)
        if self._fallback is not None:
            self._fallback.delete(name)
        if self._refusal is not None:
            return
        try:
            self._delete_file(name)
        except TokenStoreError as exc:
            self._refuse(name, exc)

    def lock(self, service: str | Endpoint, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """Cross-process lock for refreshing ``service``'s tokens (see :func:`process_lock`)."""
        from .lock import process_lock

        return process_lock(service, timeout=self.lock_timeout if timeout is None else timeout)

    # -- the fallback --------------------------------------------------------------------------------
    def _refuse(self, name: str, exc: TokenStoreError) -> None:
        """Switch to memory (warned once per process and reason), or raise ``exc`` without a fallback."""
        if self._fallback is None:
            raise exc
        if self._refusal is None:
            why = str(exc).rstrip(".") or type(exc).__name__
            self.refusal_why = why[:1].lower() + why[1:]
            self._refusal = (
                f"Tokens for {name} are kept in memory because the private file cache was refused "
                f"({self.refusal_why}); they will last only for this kernel."
            )
            from .memory import warn_once

            warn_once(self._refusal, self._fallback)

    def _memory(self) -> MemoryStore:
        assert self._fallback is not None  # _refuse raised otherwise
        return self._fallback

    # -- the file ------------------------------------------------------------------------------------
    def _load_file(self, name: str) -> Credentials | None:
        if not self._check_directory(create=False):
            return None
        return self._read(name, self.path_for(name))

    def _delete_file(self, name: str) -> None:
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
        self._sweep_temps(name, older_than=None)

    def _sweep_temps(self, name: str, *, older_than: float | None) -> None:
        """Remove temporary files a writer for ``name`` left behind (all of them, or those older than
        ``older_than`` seconds); best effort."""
        prefix = self._temp_prefix(name)
        try:
            with os.scandir(self.directory) as listing:
                entries = [entry for entry in listing if entry.name.startswith(prefix)]
        except OSError:
            return
        now = time.time()
        for entry in entries:
            with contextlib.suppress(OSError):
                if older_than is None or now - entry.stat(follow_symlinks=False).st_mtime > older_than:
                    os.unlink(entry.path)

    def _save_file(self, name: str, creds: Credentials) -> None:
        self._check_directory(create=True)
        path = self.path_for(name)
        merged = merge_saved(self._read(name, path), creds)
        payload = {
            "format": _FILE_FORMAT,
            "service": name,
            ACCESS_TOKEN: merged.access_token,
            REFRESH_TOKEN: merged.refresh_token,
            ID_TOKEN: merged.id_token,
            EXPIRES_AT: merged.expires_at,
            EXPIRES_IN: _lifetime(merged),
            "scopes": list(merged.scopes or ()),
        }
        self._sweep_temps(name, older_than=STALE_TEMP_SECONDS)
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=self._temp_prefix(name), suffix=".json", dir=self.directory)  # 0600
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


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


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
        expires_at=epoch_seconds(expires_at),  # the one expiry parser (NaN, absurd: unknown)
        expires_in=_parse_lifetime(data.get(EXPIRES_IN)) if expires_at is not None else None,
        scopes=tuple(scopes),
    )
