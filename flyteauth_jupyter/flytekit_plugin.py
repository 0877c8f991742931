"""Factories for flytekit's authenticator plugin registry (``flytekit.auth`` entry points, flytekit >= 1.16.24).

With ``admin.authType: notebook`` (or ``notebook_device`` / ``notebook_pkce``) in the Flyte config,
stock flytekit calls one of the factories below as ``factory(PlatformConfig, ClientConfigStore)`` on
the first RPC of a client. The factory

1. reuses the notebook's logged-in session for that endpoint when ``%flyte_login`` registered one
   (``flyteauth_jupyter.sessions``), so ``FlyteRemote`` in the kernel needs no second login;
2. otherwise builds our ``DeviceCodeAuthenticator`` / ``PKCEAuthenticator`` from the PlatformConfig
   (endpoint, insecure, insecure_skip_verify -> ``verify=False``, ca_cert_file_path -> ``verify=path``,
   http_proxy_url, scopes, audience, client_id) and flytekit's own ClientConfigStore (gRPC metadata,
   fetched once and read by the rules of our HTTP store: ``""`` means absent, protobuf repeated fields
   become lists, advertised endpoints must be HTTPS unless loopback or ``insecure``). Behind an
   identity-aware proxy (``PlatformConfig.proxy_command``) it carries a ``ProxyAuth`` for the endpoint,
   so the deployment gets ``proxy-authorization`` and the identity provider never does (flytekit's own
   shared session would send it to the identity provider too).

Either way the result is wrapped in a subclass of flytekit's ``Authenticator`` (made on first use, so
flytekit is only imported here, inside the factories), which is what ``AuthUnaryInterceptor`` and
``AuthenticationHTTPAdapter`` expect: ``get_credentials()``, ``refresh_credentials()``,
``fetch_grpc_call_auth_metadata()``.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .config import ClientConfig, ClientConfigStore, config_from_documents
from .environment import browser_location
from .endpoint import parse_endpoint
from .errors import ConfigurationError, FlyteAuthError, TransportError, scrub
from .sessions import forget_session, get_session, observer_for, register_session
from .stores import service_name

logger = logging.getLogger(__name__)

#: entry-point name -> factory name in this module (mirrors pyproject.toml).
ENTRY_POINTS = {
    "notebook": "notebook_authenticator",
    "notebook_device": "notebook_device_authenticator",
    "notebook_pkce": "notebook_pkce_authenticator",
}


# --------------------------------------------------------------------------------------------------
# Factories
# --------------------------------------------------------------------------------------------------


def notebook_authenticator(cfg: Any, cfg_store: Any) -> Any:
    """``authType: notebook``: the notebook's session, else device flow on a remote kernel whose
    server offers it, else PKCE."""
    return _make(cfg, cfg_store, "auto")


def notebook_device_authenticator(cfg: Any, cfg_store: Any) -> Any:
    """``authType: notebook_device``: the notebook's session, else our DeviceCodeAuthenticator."""
    return _make(cfg, cfg_store, "device")


def notebook_pkce_authenticator(cfg: Any, cfg_store: Any) -> Any:
    """``authType: notebook_pkce``: the notebook's session, else our PKCEAuthenticator."""
    return _make(cfg, cfg_store, "pkce")


def register_with_flytekit() -> bool:
    """Register the three factories in flytekit's in-process registry; False when flytekit (or its
    plugin registry, flytekit < 1.16.24) is not available. Imports flytekit (slow): entry points
    already cover installed packages, so call this only where entry points are not seen."""
    if importlib.util.find_spec("flytekit") is None:
        return False
    try:
        from flytekit.clients.auth_helper import register_authenticator_plugin
    except ImportError:
        logger.debug("This flytekit has no authenticator plugin registry (needs >= 1.16.24).")
        return False
    module = sys.modules[__name__]
    for name, attr in ENTRY_POINTS.items():
        register_authenticator_plugin(name, getattr(module, attr))
    return True


def _make(cfg: Any, cfg_store: Any, flow: str) -> Any:
    service = service_name(cfg.endpoint)
    session = get_session(service)
    if session is not None:
        logger.debug("flytekit reuses the notebook session for %s", service)
        return as_flytekit_authenticator(session)
    return as_flytekit_authenticator(build_authenticator(cfg, cfg_store, flow))


# --------------------------------------------------------------------------------------------------
# Building our authenticators from flytekit's PlatformConfig
# --------------------------------------------------------------------------------------------------


def verify_from(cfg: Any) -> bool | str | None:
    """flytekit's rule: insecure_skip_verify -> False, else ca_cert_file_path, else None."""
    if getattr(cfg, "insecure_skip_verify", False):
        return False
    return getattr(cfg, "ca_cert_file_path", None) or None


def build_authenticator(cfg: Any, cfg_store: Any, flow: str = "auto") -> Any:
    """Our DeviceCodeAuthenticator or PKCEAuthenticator for a flytekit ``PlatformConfig``
    (``authenticators.authenticator_for`` builds it); ConfigurationError for another flow."""
    from .authenticators import authenticator_for

    if flow not in ("auto", "device", "pkce"):
        raise ConfigurationError(f"Unknown notebook flow {flow[:40]!r}; use auto, device or pkce.")
    endpoint = cfg.endpoint
    if endpoint.startswith("dns:///"):
        endpoint = endpoint[len("dns:///") :]
    insecure = bool(getattr(cfg, "insecure", False))
    store = (
        FlytekitConfigStore(cfg_store, where=service_name(endpoint), insecure=insecure)
        if cfg_store is not None
        else None
    )
    if flow == "auto":
        flow = choose_flow(store)
    parsed = parse_endpoint(endpoint, insecure=insecure)
    proxy_auth = None
    proxy_command = getattr(cfg, "proxy_command", None)
    if proxy_command:  # the deployment sits behind an identity-aware proxy
        from .proxy import ProxyAuth

        proxy_auth = ProxyAuth(list(proxy_command), endpoint=parsed.url, insecure=insecure)
    return authenticator_for(
        flow, parsed, store, scopes=list(cfg.scopes) if getattr(cfg, "scopes", None)
        else None, audience=cfg.audience or None, http_proxy_url=cfg.http_proxy_url or None, verify=verify_from(cfg),
        client_id=getattr(cfg, "client_id", None) or None, observer=observer_for(service_name(endpoint)),
        insecure=insecure, proxy_auth=proxy_auth,
    )


def running_remotely() -> bool:
    """A kernel whose browser is not on this machine (the same rules as ``%flyte_login --flow auto``)."""
    return not browser_location().local


def choose_flow(cfg_store: Any) -> str:
    """``device`` on a remote kernel when the server advertises a device endpoint, else ``pkce``."""
    if cfg_store is None or not running_remotely():
        return "pkce"
    try:
        config = cfg_store.get_client_config()
    except Exception:  # noqa: BLE001 - PKCE will report the problem itself
        return "pkce"
    return "device" if getattr(config, "device_authorization_endpoint", None) else "pkce"


class FlytekitConfigStore(ClientConfigStore):
    """Wraps flytekit's ClientConfigStore: fetched once (flytekit's makes 2 RPCs per call) and read by
    the rules of our own remote store (``config.config_from_documents``): ``""`` and values that are
    not strings mean absent (DESIGN.md, pinned 11), protobuf repeated fields become lists, and every
    advertised endpoint passes ``endpoint.check_server_url`` (HTTPS unless loopback or ``insecure``),
    with ``where`` (the deployment's host:port) named in the ProtocolError otherwise."""

    def __init__(self, flytekit_store: Any, *, where: str = "the server", insecure: bool = False) -> None:
        self._store = flytekit_store
        self._where = where
        self._insecure = insecure
        self._config: Any = None
        self._lock = threading.Lock()

    def get_client_config(self) -> Any:
        with self._lock:
            if self._config is None:
                try:
                    raw = self._store.get_client_config()
                except FlyteAuthError:
                    raise
                except Exception as exc:  # flytekit's read over gRPC: its failure reaches the user as ours
                    raise TransportError(
                        f"Could not read the sign-in configuration from {self._where} ({scrub(exc)}); check that "
                        "the endpoint is right and the deployment is up, then try again."
                    ) from exc
                self._config = _normalise(raw, where=self._where, insecure=self._insecure)
            return self._config

    def __repr__(self) -> str:
        return f"FlytekitConfigStore({type(self._store).__name__}, where={self._where!r})"


#: flytekit ``ClientConfig`` field -> its name in FlyteAdmin's client document (``/config/v1/flyte_client``)
_CLIENT_FIELDS = {
    "redirect_uri": "redirect_uri",
    "client_id": "client_id",
    "scopes": "scopes",
    "header_key": "authorization_metadata_key",
    "audience": "audience",
}
_METADATA_FIELDS = (
    "token_endpoint", "authorization_endpoint", "device_authorization_endpoint", "revocation_endpoint", "issuer",
)


def _field(raw: Any, name: str) -> Any:
    value = getattr(raw, name, None)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, list, tuple)):
        value = list(value)  # a protobuf repeated field (flytekit passes the gRPC answer's scopes through)
    return value


def _normalise(raw: Any, *, where: str = "the server", insecure: bool = False) -> ClientConfig:
    """flytekit's ClientConfig (the deployment's gRPC metadata) as ours, by the same rules as the HTTP
    documents: ProtocolError naming ``where`` for a missing token endpoint or an unusable one."""
    client_doc = {doc_name: _field(raw, name) for name, doc_name in _CLIENT_FIELDS.items()}
    metadata = {name: _field(raw, name) for name in _METADATA_FIELDS}
    return config_from_documents(client_doc, metadata, where=where, insecure=insecure)


# --------------------------------------------------------------------------------------------------
# The adapter flytekit's interceptor talks to
# --------------------------------------------------------------------------------------------------

_ADAPTER_CLASS: type | None = None
_ADAPTER_LOCK = threading.Lock()


def _adapter_class() -> type:
    global _ADAPTER_CLASS
    with _ADAPTER_LOCK:
        if _ADAPTER_CLASS is not None:
            return _ADAPTER_CLASS
        try:
            from flytekit.clients.auth.authenticator import Authenticator as base
        except ImportError:
            base = object

        class NotebookAuthenticator(base):  # type: ignore[valid-type,misc]
            """flytekit's ``Authenticator`` face of one of ours: every call goes to ``.inner``."""

            def __init__(self, inner: Any) -> None:
                object.__setattr__(self, "inner", inner)
                if base is not object:
                    endpoint = getattr(inner, "endpoint", None) or getattr(inner, "_endpoint", None)
                    base.__init__(self, endpoint, None)

            # flytekit's base keeps these two as plain attributes; ours live in ``inner``.
            @property
            def _creds(self) -> Any:
                return self.inner.get_credentials()

            @_creds.setter
            def _creds(self, value: Any) -> None:
                if value is not None:
                    self._set_credentials(value)

            @property
            def _header_key(self) -> str:
                metadata_key = getattr(self.inner, "header_key", None) or getattr(self.inner, "_header_key", None)
                return metadata_key or "authorization"

            @_header_key.setter
            def _header_key(self, value: str) -> None:
                pass  # the inner authenticator resolves its header key (DESIGN.md, pinned 3)

            def get_credentials(self) -> Any:
                return self.inner.get_credentials()

            def refresh_credentials(self) -> None:
                # flytekit calls this on UNAUTHENTICATED, inside whatever cell made the RPC: renew
                # silently; a new interactive sign-in only when allowed (see interactive_allowed).
                refresh_without_surprises(self.inner)

            def fetch_grpc_call_auth_metadata(self) -> tuple[str, str] | None:
                return self.inner.fetch_grpc_call_auth_metadata()

            def _set_credentials(self, creds: Any) -> None:
                setter = getattr(self.inner, "_set_credentials", None)
                if setter is not None:
                    setter(creds)

            def _set_header_key(self, h: str) -> None:
                setter = getattr(self.inner, "_set_header_key", None)
                if setter is not None:
                    setter(h)

            def __getattr__(self, name: str) -> Any:  # logout(), cancel(), wait(), ...
                if name == "inner":
                    raise AttributeError(name)
                return getattr(self.inner, name)

            def __repr__(self) -> str:
                return f"NotebookAuthenticator({self.inner!r})"

            __str__ = __repr__

        _ADAPTER_CLASS = NotebookAuthenticator
        return NotebookAuthenticator


def interactive_allowed(authenticator: Any) -> bool:
    """May flytekit's UNAUTHENTICATED retry start an interactive sign-in with ``authenticator``?

    The notebook's session says so itself (``interactive_refresh``, from
    ``%config FlyteAuthMagics.interactive_refresh``, default False). An authenticator the plugin
    built (no ``%flyte_login``) may sign in interactively only while it holds no credentials: that
    first sign-in is what the cell asked for; later, an expired sign-in is reported instead."""
    allowed = getattr(authenticator, "interactive_refresh", None)
    if isinstance(allowed, bool):
        return allowed
    try:
        return authenticator.get_credentials() is None
    except Exception:  # noqa: BLE001 - the refresh below reports the real problem
        return False


def refresh_without_surprises(authenticator: Any) -> Any:
    """``refresh_credentials(interactive=...)`` with :func:`interactive_allowed`; an authenticator with
    flytekit's bare signature is called as is. When renewing needs the user and that is not allowed,
    the authenticator raises ``AccessTokenNotFoundError`` saying to run ``%flyte_login``."""
    refresh = authenticator.refresh_credentials
    try:
        return refresh(interactive=interactive_allowed(authenticator))
    except TypeError as exc:
        if "interactive" not in str(exc):
            raise
        return refresh()


def as_flytekit_authenticator(authenticator: Any) -> Any:
    """``authenticator`` as an instance of flytekit's ``Authenticator`` (wrapped once)."""
    cls = _adapter_class()
    if isinstance(authenticator, cls):
        return authenticator
    return cls(authenticator)


__all__ = [
    "ENTRY_POINTS",
    "notebook_authenticator",
    "notebook_device_authenticator",
    "notebook_pkce_authenticator",
    "register_with_flytekit",
    "build_authenticator",
    "as_flytekit_authenticator",
    "interactive_allowed",
    "refresh_without_surprises",
    "choose_flow",
    "running_remotely",
    "verify_from",
    "FlytekitConfigStore",
    # re-exported from .sessions for the notebook layer
    "register_session",
    "get_session",
    "forget_session",
]
