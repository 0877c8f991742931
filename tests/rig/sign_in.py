"""Watching and driving our authenticators' sign-ins in tests (integration tests, real IdPs).

``Recorder`` is an observer that keeps the events a flow reports and signals the first of each kind
(``recorder.first(DeviceCodeIssued)`` waits, bounded, for it). ``device_sign_in(admin, device_user,
store)`` is a whole real device-code sign-in: :class:`DeviceCodeAuthenticator` against a FlyteAdmin
stand-in (``admin.endpoint``, its config read from the server) runs in the background,
``device_user`` (rig.user.DeviceUser) approves the code it shows, and the authenticator and the
credentials it saved in ``store`` come back. Every wait is bounded (30 s each, the flow 60 s in all).
"""

from __future__ import annotations

import threading
from typing import Any

from flyteauth_jupyter import Credentials, DeviceCodeAuthenticator, RemoteClientConfigStore
from flyteauth_jupyter.flows.events import DeviceCodeIssued


class Recorder:
    """Observer that keeps events and signals the first of each kind."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._signals: dict[type, threading.Event] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self.events.append(event)
            self._signal(type(event)).set()

    def _signal(self, kind: type) -> threading.Event:
        return self._signals.setdefault(kind, threading.Event())

    def first(self, kind: type, timeout: float = 15) -> Any:
        with self._lock:
            signal = self._signal(kind)
        assert signal.wait(timeout), f"no {kind.__name__} within {timeout} s"
        return next(e for e in self.events if isinstance(e, kind))


def device_sign_in(admin: Any, device_user: Any, store: Any, *, username: str = "alice",
                   password: str = "wonderland") -> tuple[DeviceCodeAuthenticator, Credentials]:
    """Sign in to ``admin`` as ``username``; the authenticator and its new credentials."""
    recorder = Recorder()
    auth = DeviceCodeAuthenticator(admin.endpoint, RemoteClientConfigStore(admin.endpoint), observer=recorder,
                                   timeout=60, store=store)
    future = auth.refresh_in_background()
    code = recorder.first(DeviceCodeIssued, 30)
    outcome = device_user.complete(code.verification_uri, code.user_code, username=username, password=password)
    assert outcome["status"] == "approved"
    return auth, future.result(timeout=30)


def device_login(admin: Any, device_user: Any, store: Any, **user: str) -> Credentials:
    """:func:`device_sign_in`'s credentials alone."""
    return device_sign_in(admin, device_user, store, **user)[1]
