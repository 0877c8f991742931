"""Where an authenticator's OAuth settings come from: ``ClientConfig`` and the stores that supply it.

``ClientConfig`` keeps flytekit's fields and defaults (plus ``revocation_endpoint`` and ``issuer``).
``StaticClientConfigStore`` returns a given config. ``RemoteClientConfigStore`` reads FlyteAdmin's
HTTP metadata, ``GET {endpoint}/config/v1/flyte_client`` and ``GET
{endpoint}/.well-known/oauth-authorization-server`` with ``Accept: application/json``, accepting
snake_case and lowerCamelCase names, empty strings meaning absent (pinned 11); FlyteAdmin's relayed
document is taken as served (pinned 12). For fields it lacks (revocation, device endpoint) it reads the
issuer's own ``/.well-known/openid-configuration`` and uses it only when that document's ``issuer``
equals the issuer (RFC 8414 section 3.3). Results are cached per endpoint (5 minutes), thread-safe.
Every URL the documents advertise passes ``endpoint.check_server_url`` (HTTPS unless loopback or
``insecure``), and one fetch of the configuration has one overall deadline (``deadline=``, default
40 s) covering all its documents and retries: a server that accepts and never answers ends in a
``TransportTimeoutError`` naming host:port.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from .control import at_fork_in_child
from .endpoint import check_server_url, parse_endpoint, shown
from .errors import ConfigurationError, FlyteAuthError, ProtocolError, TransportTimeoutError
from .validate import scope_list
from .transport.http import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, Transport, call_deadline

log = logging.getLogger(__name__)

CLIENT_CONFIG_PATH = "/config/v1/flyte_client"
OAUTH_METADATA_PATH = "/.well-known/oauth-authorization-server"
OIDC_METADATA_PATH = "/.well-known/openid-configuration"
CACHE_TTL = 300.0


@dataclass
class ClientConfig:
    """Client configuration needed by the authenticators (flytekit's fields, order and defaults)."""

    token_endpoint: str
    authorization_endpoint: str
    redirect_uri: str
    client_id: str
    device_authorization_endpoint: str | None = None
    scopes: list[str] = None  # type: ignore[assignment]  # flytekit's default
    header_key: str = "authorization"
    audience: str | None = None
    revocation_endpoint: str | None = field(default=None, kw_only=True)
    issuer: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if isinstance(self.scopes, str):  # "openid offline_access" is two scopes, not its characters
            self.scopes = list(scope_list(self.scopes))


class ClientConfigStore(ABC):
    """Something that can produce a ClientConfig (flytekit's interface)."""

    @abstractmethod
    def get_client_config(self) -> ClientConfig:
        """The client configuration."""


class StaticClientConfigStore(ClientConfigStore):
    """Returns the ClientConfig it was given."""

    def __init__(self, cfg: ClientConfig) -> None:
        self._cfg = cfg

    def get_client_config(self) -> ClientConfig:
        return self._cfg

    def __repr__(self) -> str:
        return f"StaticClientConfigStore({self._cfg!r})"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def doc_str(doc: Mapping[str, Any], name: str) -> str | None:
    """A string field by its snake_case or lowerCamelCase name; empty strings mean absent."""
    for key in (name, camel(name)):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def doc_list(doc: Mapping[str, Any], name: str) -> list[str] | None:
    """A list-of-strings field (snake or camel); empty entries dropped; None when absent or empty."""
    for key in (name, camel(name)):
        value = doc.get(key)
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        if isinstance(value, (list, tuple)):
            items = [str(v).strip() for v in value if isinstance(v, str) and v.strip()]
            if items:
                return items
    return None


def config_from_documents(
    client_doc: Mapping[str, Any],
    metadata: Mapping[str, Any],
    issuer_metadata: Mapping[str, Any] | None = None,
    *,
    where: str = "the server",
    insecure: bool = False,
) -> ClientConfig:
    """Build a ClientConfig from FlyteAdmin's two documents (and the issuer's, for missing fields).

    Every advertised endpoint must be https (or loopback, or ``insecure``): ProtocolError otherwise."""
    extra = issuer_metadata or {}

    def endpoint(name: str) -> str | None:
        url = doc_str(metadata, name) or doc_str(extra, name)
        if url is None:
            return None
        return check_server_url(url, what=name.replace("_", " "), where=where, insecure=insecure)

    token_endpoint = endpoint("token_endpoint")
    if not token_endpoint:
        raise ProtocolError(f"{where} does not advertise a token endpoint; authentication may be disabled there, so check the endpoint.")
    return ClientConfig(
        token_endpoint=token_endpoint,
        authorization_endpoint=endpoint("authorization_endpoint"),  # type: ignore[arg-type]
        redirect_uri=doc_str(client_doc, "redirect_uri"),  # type: ignore[arg-type]
        client_id=doc_str(client_doc, "client_id"),  # type: ignore[arg-type]
        device_authorization_endpoint=endpoint("device_authorization_endpoint"),
        scopes=doc_list(client_doc, "scopes"),  # type: ignore[arg-type]
        header_key=doc_str(client_doc, "authorization_metadata_key") or "authorization",
        audience=doc_str(client_doc, "audience"),
        revocation_endpoint=endpoint("revocation_endpoint"),
        issuer=doc_str(metadata, "issuer") or doc_str(extra, "issuer"),
    )


_cache: dict[tuple[Any, ...], tuple[float, ClientConfig]] = {}
_cache_locks: dict[tuple[Any, ...], threading.Lock] = {}
_cache_guard = threading.Lock()


def _forget_locks_after_fork() -> None:
    """A forked child: a parent thread may have held these during a fetch (issue 16.8)."""
    global _cache_guard
    _cache_locks.clear()
    _cache_guard = threading.Lock()


at_fork_in_child(_forget_locks_after_fork)


class RemoteClientConfigStore(ClientConfigStore):
    """Reads the client configuration from FlyteAdmin's HTTP metadata endpoints (cached per endpoint)."""

    def __init__(
        self,
        endpoint: str,
        *,
        insecure: bool = False,
        verify: bool | str | None = None,
        http_proxy_url: str | None = None,
        session: requests.Session | None = None,
        transport: Transport | None = None,
        ttl: float = CACHE_TTL,
        use_issuer_metadata: bool = True,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        self._endpoint = parse_endpoint(endpoint, insecure=insecure)
        self._insecure = insecure
        self._deadline = deadline
        self._transport = transport or Transport(
            session, http_proxy_url=http_proxy_url, verify=verify, timeout=timeout, deadline=deadline
        )
        self._ttl = ttl
        self._use_issuer_metadata = use_issuer_metadata
        # an injected transport (tests, custom HTTP) gets its own cache entry
        injected = id(transport) if transport is not None else None
        self._key = (self._endpoint.url, repr(verify), http_proxy_url, use_issuer_metadata, injected)

    @property
    def endpoint(self) -> str:
        return self._endpoint.url

    def __repr__(self) -> str:
        return f"RemoteClientConfigStore(endpoint={self._endpoint.url!r})"

    @classmethod
    def clear_cache(cls) -> None:
        """Forget every cached configuration (e.g. after the deployment changed)."""
        with _cache_guard:
            _cache.clear()

    def get_client_config(self) -> ClientConfig:
        with _cache_guard:
            lock = _cache_locks.setdefault(self._key, threading.Lock())
            hit = _cache.get(self._key)
        if hit and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        with lock:  # one fetch per endpoint at a time; others wait and share its result
            with _cache_guard:
                hit = _cache.get(self._key)
            if hit and time.monotonic() - hit[0] < self._ttl:
                return hit[1]
            cfg = self._fetch()
            with _cache_guard:
                _cache[self._key] = (time.monotonic(), cfg)
            return cfg

    # -- fetching ---------------------------------------------------------------------------------
    def _fetch_doc(self, path: str, what: str) -> dict[str, Any]:
        response = self._transport.get_json(self._endpoint.url + path)
        if not response.ok:
            hint = (
                "authentication may be disabled on this deployment"
                if response.status in (404, 501)
                else "check the endpoint and try again later"
            )
            raise ProtocolError(
                f"{response.where} did not serve its {what} (HTTP {response.status}); {hint}.", status=response.status
            )
        return response.data

    def _fetch(self) -> ClientConfig:
        try:
            with call_deadline(self._deadline):  # one deadline for all the documents and their retries
                return self._fetch_all()
        except TransportTimeoutError as exc:
            raise TransportTimeoutError(
                f"{self._endpoint.service} did not serve its OAuth configuration within {self._deadline:g} s; "
                "check the endpoint and that the server is running, then try again."
            ) from exc

    def _fetch_all(self) -> ClientConfig:
        client_doc = self._fetch_doc(CLIENT_CONFIG_PATH, "client configuration")
        metadata = self._fetch_doc(OAUTH_METADATA_PATH, "OAuth metadata")
        issuer = doc_str(metadata, "issuer")
        extra: dict[str, Any] | None = None
        lacking = not doc_str(metadata, "revocation_endpoint") or not doc_str(metadata, "device_authorization_endpoint")
        if self._use_issuer_metadata and issuer and lacking:
            extra = self._issuer_metadata(issuer)
        return config_from_documents(
            client_doc, metadata, extra, where=self._endpoint.service, insecure=self._insecure
        )

    def _issuer_metadata(self, issuer: str) -> dict[str, Any] | None:
        """The issuer's OIDC discovery document, used only when its ``issuer`` matches exactly."""
        try:
            check_server_url(issuer, what="issuer", where=self._endpoint.service, insecure=self._insecure)
            url = issuer.rstrip("/") + OIDC_METADATA_PATH
            response = self._transport.get_json(url)
        except TransportTimeoutError:
            raise
        except (FlyteAuthError, ConfigurationError) as exc:
            log.info("issuer metadata unavailable (%s); using FlyteAdmin's document alone", type(exc).__name__)
            return None
        if not response.ok:
            log.info("issuer metadata answered HTTP %s; using FlyteAdmin's document alone", response.status)
            return None
        if doc_str(response.data, "issuer") != issuer:
            log.warning(
                "ignoring the metadata at %s: its issuer differs from %s (RFC 8414 section 3.3)",
                response.where,
                shown(issuer),
            )
            return None
        return response.data


__all__ = [
    "ClientConfig",
    "ClientConfigStore",
    "RemoteClientConfigStore",
    "StaticClientConfigStore",
    "config_from_documents",
    "doc_list",
    "doc_str",
]
