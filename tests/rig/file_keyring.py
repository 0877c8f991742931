"""A keyring backend in one JSON file, for kernels started by tests (never the machine's real keyring).

Select it in a child process with::

    PYTHONPATH=<repo>/tests
    PYTHON_KEYRING_BACKEND=rig.file_keyring.FileKeyring
    FLYTEAUTH_RIG_KEYRING=<tmp>/keyring.json

(``child_env(path, home=..., cache_home=...)`` is such an environment.)

Entries live in ``FLYTEAUTH_RIG_KEYRING`` as ``{service: {username: password}}`` (0600); every write
is made under an ``flock`` and replaces the file atomically (a temporary file in the same directory
and ``os.replace``), so several kernels can share it. A deleted entry is gone from the file.

Only when ``FLYTEAUTH_RIG_KEYRING_RECORD=1`` is set (the test harnesses of tests/notebooks and
tests/browser, through rig.isolation, in a per-run temporary directory) is each value ever written
also appended to ``<file>.history``, so that a test can learn the real tokens a kernel obtained (to
hand them to the secret scanner) even after a logout deleted them. ``make demo`` never sets it: a
history there kept every token after the sign-out (issue 17.9). Nothing here prints or logs a value.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

ENV = "FLYTEAUTH_RIG_KEYRING"
#: "1": keep a history of every value written (test harnesses only, see the module doc)
RECORD_ENV = "FLYTEAUTH_RIG_KEYRING_RECORD"
TESTS = Path(__file__).resolve().parents[1]


def child_env(path: str | Path, *, home: str | Path, cache_home: str | Path,
              backend: str = "rig.file_keyring.FileKeyring") -> dict[str, str]:
    """The environment of a child process (``flyteauth-token``, a kernel) whose token cache is this
    keyring in ``path``: ``backend`` (this class or a subclass), HOME and XDG_CACHE_HOME as given (a
    test that shares the lock directory with the child passes its own), loopback without a proxy, and
    none of the machine's Flyte or keyring settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYTE", "UCTL", "_FLYTE", "PYTHON_KEYRING"))}
    env.update({
        "HOME": str(home), "XDG_CACHE_HOME": str(cache_home),
        "PYTHONPATH": os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "PYTHON_KEYRING_BACKEND": backend, ENV: str(path),
        "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", "FLYTEAUTH_TOKEN_CACHE": "keyring",
    })
    return env


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
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)  # 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def get_password(self, service: str, username: str) -> str | None:
        with self._locked() as data:
            return data.get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._locked() as data:
            data.setdefault(service, {})[username] = password
            self._write(data)
            if os.environ.get(RECORD_ENV) == "1":
                fd = os.open(history_path(self.path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as hist:
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
