"""The rig's file keyring (rig/file_keyring.py) that stops once, at a chosen call, until the test lets
it go: for races between processes that share one keyring (issue 16.1).

Select it in a child process with ``PYTHON_KEYRING_BACKEND=rig.pausing_keyring.PausingFileKeyring``,
``FLYTEAUTH_RIG_KEYRING`` as for the file keyring, and:

* ``FLYTEAUTH_RIG_PAUSE``: where to stop, ``"<before|after> <get|set|delete> <username>"``, e.g.
  ``after get tokens`` (a reader, between the Flyte 2 entry and what it reads next) or
  ``before set tokens`` (a writer, with flytekit's entries written and the Flyte 2 entry not yet);
* ``FLYTEAUTH_RIG_PAUSE_SOCKET``: a Unix socket the test listens on (:class:`PauseControl`).

At that call (the first time only) the backend connects to the socket, says ``paused <point>`` and
waits (at most 120 s, then it raises) until the test answers ``go``. Nothing else changes: values
are never sent over the socket.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from rig.file_keyring import FileKeyring

POINT_ENV = "FLYTEAUTH_RIG_PAUSE"
SOCKET_ENV = "FLYTEAUTH_RIG_PAUSE_SOCKET"
HOLD_LIMIT = 120.0


class PausingFileKeyring(FileKeyring):
    """A :class:`FileKeyring` that stops once at ``$FLYTEAUTH_RIG_PAUSE`` (see the module doc)."""

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__(path)
        self.point = os.environ.get(POINT_ENV, "").strip()
        self.socket_path = os.environ.get(SOCKET_ENV, "")
        self.armed = bool(self.point and self.socket_path)

    def _at(self, when: str, op: str, username: str) -> None:
        if not self.armed or self.point != f"{when} {op} {username}":
            return
        self.armed = False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(HOLD_LIMIT)
            conn.connect(self.socket_path)
            conn.sendall(f"paused {self.point}\n".encode())
            answer = conn.recv(16)
        if not answer.startswith(b"go"):
            raise RuntimeError(f"the test did not let the keyring go on after {self.point!r}")

    def get_password(self, service: str, username: str) -> str | None:
        self._at("before", "get", username)
        value = super().get_password(service, username)
        self._at("after", "get", username)
        return value

    def set_password(self, service: str, username: str, password: str) -> None:
        self._at("before", "set", username)
        super().set_password(service, username, password)
        self._at("after", "set", username)

    def delete_password(self, service: str, username: str) -> None:
        self._at("before", "delete", username)
        super().delete_password(service, username)
        self._at("after", "delete", username)


class PauseControl:
    """The test's end: a Unix socket in a short temporary directory (``path`` goes into the child's
    ``FLYTEAUTH_RIG_PAUSE_SOCKET``); :meth:`wait_paused` returns a handle, :meth:`release` lets it go."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="fa-pause-", dir="/tmp")  # AF_UNIX paths are short
        self.path = os.path.join(self._dir.name, "pause.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(4)

    def wait_paused(self, timeout: float = 60.0) -> tuple[socket.socket, str]:
        """The next backend that paused (its connection and its point), waiting at most ``timeout`` s."""
        self._server.settimeout(timeout)
        try:
            conn, _ = self._server.accept()
        except socket.timeout:
            raise AssertionError(f"no process paused at its keyring call within {timeout} s") from None
        conn.settimeout(timeout)
        line = b""
        while not line.endswith(b"\n"):
            chunk = conn.recv(256)
            if not chunk:
                break
            line += chunk
        return conn, line.decode().strip().removeprefix("paused ")

    @staticmethod
    def release(conn: socket.socket) -> None:
        with conn:
            conn.sendall(b"go\n")

    def close(self) -> None:
        self._server.close()
        self._dir.cleanup()

    def __enter__(self) -> "PauseControl":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
