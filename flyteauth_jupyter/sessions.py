"""The process-wide registry of logged-in notebook sessions, keyed by endpoint service (``host[:port]``).

The notebook layer registers the authenticator that ``%flyte_login`` bound; the flytekit plugin
factories (``flytekit_plugin``) look it up so that ``FlyteRemote`` in the same kernel reuses that login
instead of starting another one. ``%flyte_logout`` forgets it. Lookups tolerate the usual spellings
of one endpoint: host case, and ``host`` versus ``host:443``.

The notebook layer may also install an observer factory (``set_observer_factory``): authenticators
that the plugin builds when no session is registered then report their progress (device code, browser
sign-in) to the notebook UI instead of only to the log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .endpoint import Endpoint

_SESSIONS: dict[str, Any] = {}
_GUARD = threading.Lock()
_OBSERVER_FACTORY: Callable[[str], Any] | None = None


def service_name(service: str | Endpoint) -> str:
    """stores.service_name, imported on first use (loading the extension imports no store)."""
    from .stores import service_name as name

    return name(service)


def _canonical(service: str) -> str:
    """One spelling per endpoint: lower-case host, no ``:443``."""
    host, sep, port = service.rpartition(":")
    if not sep or not port.isdigit():
        host, port = service, ""
    host = host.lower()
    return host if port in ("", "443") else f"{host}:{port}"


def register_session(service: str | Endpoint, authenticator: Any) -> None:
    """Make ``authenticator`` the session for ``service`` (an endpoint URL or ``host[:port]``)."""
    name = service_name(service)
    with _GUARD:
        for key in [k for k in _SESSIONS if _canonical(k) == _canonical(name)]:
            del _SESSIONS[key]
        _SESSIONS[name] = authenticator


def get_session(service: str | Endpoint) -> Any | None:
    """The registered authenticator for ``service``, or None."""
    name = service_name(service)
    with _GUARD:
        if name in _SESSIONS:
            return _SESSIONS[name]
        for key, value in _SESSIONS.items():
            if _canonical(key) == _canonical(name):
                return value
    return None


def forget_session(service: str | Endpoint, authenticator: Any = None) -> Any | None:
    """Remove the session for ``service`` (only if it is ``authenticator``, when given); return it."""
    name = service_name(service)
    with _GUARD:
        for key in list(_SESSIONS):
            if _canonical(key) == _canonical(name) and (authenticator is None or _SESSIONS[key] is authenticator):
                return _SESSIONS.pop(key)
    return None


def sessions() -> dict[str, Any]:
    """A snapshot of the registry (service -> authenticator)."""
    with _GUARD:
        return dict(_SESSIONS)


def set_observer_factory(factory: Callable[[str], Any] | None) -> None:
    """Install ``factory(service) -> observer`` for authenticators the flytekit plugin builds."""
    global _OBSERVER_FACTORY
    _OBSERVER_FACTORY = factory


def observer_for(service: str) -> Any | None:
    """The observer the installed factory gives for ``service`` (None without a factory or on error)."""
    factory = _OBSERVER_FACTORY
    if factory is None:
        return None
    try:
        return factory(service)
    except Exception:  # noqa: BLE001 - a UI problem must not break authentication
        return None


__all__ = [
    "register_session",
    "get_session",
    "forget_session",
    "sessions",
    "set_observer_factory",
    "observer_for",
]
