"""Transport layer: HTTP (``http``: Session, timeouts, retries, proxy, TLS, error translation) and the
RFC 8252 loopback redirect receiver (``loopback``). No protocol logic lives here.

The names below are imported on first use, so importing one submodule (``transport.relay``) does not
import requests and urllib3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

if TYPE_CHECKING:
    from .http import DEFAULT_TIMEOUT, JsonResponse, Transport, build_session, host_port
    from .loopback import AuthorizationResponse, LoopbackReceiver

_LAZY = {
    "DEFAULT_TIMEOUT": ".http",
    "JsonResponse": ".http",
    "Transport": ".http",
    "build_session": ".http",
    "host_port": ".http",
    "AuthorizationResponse": ".loopback",
    "LoopbackReceiver": ".loopback",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = attach(__name__, _LAZY, globals())
