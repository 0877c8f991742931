"""Transport layer: HTTP (``http``: Session, timeouts, retries, proxy, TLS, error translation) and the
RFC 8252 loopback redirect receiver (``loopback``). No protocol logic lives here."""

from .http import DEFAULT_TIMEOUT, JsonResponse, Transport, build_session, host_port
from .loopback import AuthorizationResponse, LoopbackReceiver

__all__ = [
    "DEFAULT_TIMEOUT",
    "JsonResponse",
    "Transport",
    "build_session",
    "host_port",
    "AuthorizationResponse",
    "LoopbackReceiver",
]
