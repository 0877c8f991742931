"""An in-process keyring backend for tests: a dict that also records its calls (never the values)."""

from __future__ import annotations

import keyring.errors
from keyring.backend import KeyringBackend


class MemoryKeyring(KeyringBackend):
    """A dict-backed keyring backend that counts its calls; install it with ``keyring.set_keyring``."""

    priority = -5  # type: ignore[assignment]  # below fail (0) and null (-1): never anyone's default backend

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, str, str]] = []

    def get_password(self, service, username):
        self.calls.append(("get", service, username))
        return self.entries.get((service, username))

    def set_password(self, service, username, password):
        self.calls.append(("set", service, username))
        self.entries[(service, username)] = password

    def delete_password(self, service, username):
        self.calls.append(("delete", service, username))
        if (service, username) not in self.entries:
            raise keyring.errors.PasswordDeleteError("not found")
        del self.entries[(service, username)]
