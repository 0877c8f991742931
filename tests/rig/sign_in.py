"""A real device-code sign-in by our authenticator, for tests that need a signed-in cache first.

``device_sign_in(admin, device_user, store)`` starts :class:`DeviceCodeAuthenticator` against a
FlyteAdmin stand-in (``admin.endpoint``, its config read from the server) in the background, lets
``device_user`` (rig.user.DeviceUser) approve the code it shows, and returns the authenticator and the
credentials it saved in ``store``. Every wait is bounded (30 s each, the flow 60 s in all).
"""

from __future__ import annotations

import threading
from typing import Any

from flyteauth_jupyter import Credentials, DeviceCodeAuthenticator, RemoteClientConfigStore
from flyteauth_jupyter.flows.events import DeviceCodeIssued


def device_sign_in(admin: Any, device_user: Any, store: Any, *, username: str = "alice",
                   password: str = "wonderland") -> tuple[DeviceCodeAuthenticator, Credentials]:
    """Sign in to ``admin`` as ``username``; the authenticator and its new credentials."""
    issued = threading.Event()
    events: list[Any] = []

    def observer(event: Any) -> None:
        events.append(event)
        if isinstance(event, DeviceCodeIssued):
            issued.set()

    auth = DeviceCodeAuthenticator(admin.endpoint, RemoteClientConfigStore(admin.endpoint), observer=observer,
                                   timeout=60, store=store)
    future = auth.refresh_in_background()
    assert issued.wait(30)
    code = next(e for e in events if isinstance(e, DeviceCodeIssued))
    outcome = device_user.complete(code.verification_uri, code.user_code, username=username, password=password)
    assert outcome["status"] == "approved"
    return auth, future.result(timeout=30)


def device_login(admin: Any, device_user: Any, store: Any, **user: str) -> Credentials:
    """:func:`device_sign_in`'s credentials alone."""
    return device_sign_in(admin, device_user, store, **user)[1]
