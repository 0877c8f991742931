"""Tokens in private files, the opt-in for machines without a keyring (:class:`FileStore`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ..credentials import Credentials
from ..endpoint import Endpoint
from ..errors import TokenStoreError
from .base import (
    ACCESS_TOKEN,
    DEFAULT_LOCK_TIMEOUT,
    EXPIRES_AT,
    EXPIRES_IN,
    ID_TOKEN,
    REFRESH_TOKEN,
    service_name,
    token_dir,
    _lifetime,
    _parse_lifetime,
)
from .lock import process_lock

logger = logging.getLogger("flyteauth_jupyter.stores")


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
