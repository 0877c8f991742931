"""A keyring backend in one JSON file, for kernels started by tests (never the machine's real keyring).

Select it in a child process with::

    PYTHONPATH=<repo>/tests
    PYTHON_KEYRING_BACKEND=rig.file_keyring.FileKeyring
    FLYTEAUTH_RIG_KEYRING=<tmp>/keyring.json

Entries live in ``FLYTEAUTH_RIG_KEYRING`` as ``{service: {username: password}}``; every write is made
under an ``flock`` and replaces the file atomically, so several kernels can share it. Each value ever
written is also appended to ``<file>.history`` (one JSON object a line), so that a test can learn the
real tokens a kernel obtained (to hand them to the secret scanner) even after a logout deleted them.
Both files are in a per-run temporary directory; nothing here prints or logs a value.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

ENV = "FLYTEAUTH_RIG_KEYRING"


def history_path(path: str | Path) -> Path:
    return Path(f"{path}.history")


def read_history(path: str | Path) -> list[dict[str, str]]:
    """Every ``{"service", "username", "password"}`` written to the keyring file at ``path``."""
    hist = history_path(path)
    if not hist.exists():
        return []
    return [json.loads(line) for line in hist.read_text(encoding="utf-8").splitlines() if line.strip()]


class FileKeyring(KeyringBackend):
    """``{service: {username: password}}`` in the JSON file named by ``$FLYTEAUTH_RIG_KEYRING``."""

    priority = -1  # type: ignore[assignment]  # chosen explicitly, never by keyring's discovery

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        location = path or os.environ.get(ENV)
        if not location:
            raise RuntimeError(f"FileKeyring needs a file: set {ENV}.")
        self.path = Path(location)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, str]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self._read()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_name(f"{self.path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)

    def get_password(self, service: str, username: str) -> str | None:
        with self._locked() as data:
            return data.get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._locked() as data:
            data.setdefault(service, {})[username] = password
            self._write(data)
            with open(history_path(self.path), "a", encoding="utf-8") as hist:
                hist.write(json.dumps({"service": service, "username": username, "password": password}) + "\n")

    def delete_password(self, service: str, username: str) -> None:
        with self._locked() as data:
            entries = data.get(service, {})
            if username not in entries:
                raise PasswordDeleteError(f"no {username} entry for {service}")
            del entries[username]
            if not entries:
                data.pop(service, None)
            self._write(data)

    def __repr__(self) -> str:
        return f"FileKeyring({self.path.name})"
