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
``TransportTimeoutError`` naming host:port. Behind an identity-aware proxy (``proxy_auth=``: a
:class:`flyteauth_jupyter.proxy.ProxyAuth` for the deployment) FlyteAdmin's two documents carry
``proxy-authorization``; the issuer's own discovery document never does (another origin, so the
transport leaves it off).

``IssuerClientConfigStore(issuer, client_id, ...)`` serves any OIDC-protected API without FlyteAdmin
(DESIGN.md pinned 20): it reads the issuer's OpenID Connect discovery document, else its RFC 8414
document (path insertion for issuers with a path), refuses a document whose ``issuer`` is another
(pinned 12: this check applies to metadata fetched from the issuer itself), checks every URL the same
way, and takes explicit overrides (device authorization endpoint, scopes, audience, redirect URI).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from .control import at_fork_in_child
from .endpoint import check_server_url, check_user_url, issuer_service, parse_endpoint, shown
from .errors import ConfigurationError, FlyteAuthError, ProtocolError, TransportTimeoutError
from .validate import scope_list
from .transport.http import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, JsonResponse, Transport, call_deadline

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
    #: RFC 8414 metadata: None when the server does not say (PKCE is still used; basic auth is assumed)
    code_challenge_methods_supported: list[str] | None = field(default=None, kw_only=True)
    token_endpoint_auth_methods_supported: list[str] | None = field(default=None, kw_only=True)
    #: the browser sign-in's ``prompt``: None = OIDC Core 11's rule (consent with offline_access),
    #: a string = sent as given, "" = never sent (flows.authcode.prompt_value)
    prompt: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if isinstance(self.scopes, str):  # "openid offline_access" is two scopes, not its characters
            self.scopes = list(scope_list(self.scopes))


class ClientConfigStore(ABC):
    """Something that can produce a ClientConfig (flytekit's interface)."""

    @abstractmethod
    def get_client_config(self) -> ClientConfig:
        """The client configuration."""


class StaticClientConfigStore(ClientConfigStore):
    """Returns the ClientConfig it was given (with ``prompt=`` set on it, when given)."""

    def __init__(self, cfg: ClientConfig, *, prompt: str | None = None) -> None:
        self._cfg = dataclasses.replace(cfg, prompt=prompt) if prompt is not None else cfg

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
        code_challenge_methods_supported=doc_list(metadata, "code_challenge_methods_supported")
        or doc_list(extra, "code_challenge_methods_supported"),
        token_endpoint_auth_methods_supported=doc_list(metadata, "token_endpoint_auth_methods_supported")
        or doc_list(extra, "token_endpoint_auth_methods_supported"),
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


def _store_transport(
    transport: Transport | None,
    session: requests.Session | None,
    *,
    http_proxy_url: str | None,
    verify: bool | str | None,
    timeout: float | tuple[float, float],
    deadline: float,
    proxy_auth: requests.auth.AuthBase | None,
) -> Transport:
    """What a config store fetches with: the ``transport`` passed (whose ``proxy_auth`` must be the one
    passed beside it, if any), else a new one from the other settings."""
    if transport is None:
        return Transport(session, http_proxy_url=http_proxy_url, verify=verify, timeout=timeout, deadline=deadline,
                         proxy_auth=proxy_auth)
    if proxy_auth is not None and transport.proxy_auth is not proxy_auth:
        raise ConfigurationError("Give proxy_auth to the Transport you pass (Transport(proxy_auth=...)), not beside it.")
    return transport


class RemoteClientConfigStore(ClientConfigStore):
    """Reads the client configuration from FlyteAdmin's HTTP metadata endpoints (cached per endpoint).

    ``prompt``: the browser sign-in's ``prompt`` (``ClientConfig.prompt``; FlyteAdmin serves none).
    ``proxy_auth``: the identity-aware proxy's credential, sent with FlyteAdmin's two documents.
    """

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
        proxy_auth: requests.auth.AuthBase | None = None,
        prompt: str | None = None,
    ) -> None:
        self._endpoint = parse_endpoint(endpoint, insecure=insecure)
        self._prompt = prompt
        self._insecure = insecure
        self._deadline = deadline
        self._transport = _store_transport(transport, session, http_proxy_url=http_proxy_url, verify=verify,
                                           timeout=timeout, deadline=deadline, proxy_auth=proxy_auth)
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
        cfg = self._cached_config()
        return dataclasses.replace(cfg, prompt=self._prompt) if self._prompt is not None else cfg

    def _cached_config(self) -> ClientConfig:
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
        lacking = any(not doc_str(metadata, name) for name in FILLED_FROM_SECOND)
        if self._use_issuer_metadata and issuer and lacking:
            extra = self._issuer_metadata(issuer)
        return config_from_documents(
            client_doc, metadata, extra, where=self._endpoint.service, insecure=self._insecure
        )

    def _issuer_metadata(self, issuer: str) -> dict[str, Any] | None:
        """The issuer's OIDC discovery document, used only when its ``issuer`` matches exactly."""
        try:
            check_server_url(issuer, what="issuer", where=self._endpoint.service, insecure=self._insecure)
        except FlyteAuthError:
            log.info("FlyteAdmin names an issuer that is no usable URL; using its document alone")
            return None
        response = _optional_document(self._transport, issuer.rstrip("/") + OIDC_METADATA_PATH)
        if response is None:
            return None
        if doc_str(response.data, "issuer") != issuer:
            log.warning(
                "ignoring the metadata at %s: its issuer differs from %s (RFC 8414 section 3.3)",
                response.where,
                shown(issuer),
            )
            return None
        return response.data


# ------------------------------------------------------------------------------------------------
# Any OIDC-protected API: the issuer's own discovery document, no FlyteAdmin (DESIGN.md pinned 20)
# ------------------------------------------------------------------------------------------------
#: the loopback redirect URI used when none is given (RFC 8252 section 7.3: an IP literal, any free
#: port when this one is busy; register http://127.0.0.1/callback with any port where the provider allows)
ISSUER_REDIRECT_URI = "http://127.0.0.1:53593/callback"


def _optional_document(transport: Transport, url: str) -> JsonResponse | None:
    """The JSON document at ``url`` when the server has one; None (logged) when it answers otherwise
    or the request fails: a document that only adds to another. A TransportTimeoutError (the fetch's
    one deadline) still ends the whole fetch."""
    try:
        response = transport.get_json(url)
    except TransportTimeoutError:
        raise
    except FlyteAuthError as exc:
        log.info("no document at %s (%s)", shown(url), type(exc).__name__)
        return None
    if not response.ok:
        log.info("no document at %s (HTTP %s)", response.where, response.status)
        return None
    return response


def same_issuer(advertised: Any, issuer: str) -> bool:
    """RFC 8414 section 3.3: the document's ``issuer`` is the one it was fetched for (a trailing slash
    on either side aside: ``https://host`` and ``https://host/`` name the same issuer)."""
    return isinstance(advertised, str) and advertised.rstrip("/") == issuer.rstrip("/")


#: endpoints the issuer store takes from the second discovery document when the first has none
FILLED_FROM_SECOND = ("revocation_endpoint", "device_authorization_endpoint")


def discovery_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be, in the order tried: OpenID Connect Discovery 1.0 section 4
    (``/.well-known/openid-configuration`` appended to the issuer), then RFC 8414 section 3.1
    (``/.well-known/oauth-authorization-server`` inserted between the host and the issuer's path)."""
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    return [origin + path + OIDC_METADATA_PATH, origin + OAUTH_METADATA_PATH + path]


class IssuerClientConfigStore(ClientConfigStore):
    """The client configuration from an issuer's own discovery document (any OIDC API; no FlyteAdmin).

    The OpenID Connect document is read first, else the RFC 8414 one (path insertion for issuers
    with a path: Okta's custom servers, Cognito's user pools, Keycloak's realms); the first one found
    must name exactly this ``issuer`` (RFC 8414 section 3.3), or the store refuses it. Every URL it
    advertises passes ``endpoint.check_server_url``; all the documents of one fetch share one deadline
    (``deadline=``, a ``TransportTimeoutError`` naming host:port when it passes). Explicit settings win
    over the document: ``device_authorization_endpoint`` (for a provider whose metadata has none),
    ``scopes`` (default: ``openid``, plus ``offline_access`` when the document lists it, so a refresh
    token is asked for where one is offered), ``audience``, ``redirect_uri``, ``header_key``, and
    ``prompt`` (kept in the config for the browser sign-in: docs/identity-providers.md). The result
    is cached for ``ttl`` seconds. ``proxy_auth``: an identity-aware proxy's credential, sent only when
    the issuer is one of the origins it names (flyteauth_jupyter.proxy).
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        device_authorization_endpoint: str | None = None,
        scopes: list[str] | str | None = None,
        audience: str | None = None,
        redirect_uri: str = ISSUER_REDIRECT_URI,
        header_key: str = "authorization",
        prompt: str | None = None,
        insecure: bool = False,
        verify: bool | str | None = None,
        http_proxy_url: str | None = None,
        session: requests.Session | None = None,
        transport: Transport | None = None,
        ttl: float = CACHE_TTL,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        proxy_auth: requests.auth.AuthBase | None = None,
    ) -> None:
        if not isinstance(client_id, str) or not client_id.strip():
            raise ConfigurationError("A sign-in to an issuer needs a client id; pass the one registered with the provider.")
        self.issuer = check_user_url(issuer, "issuer", insecure=insecure, issuer=True)
        self.client_id = client_id.strip()
        self._insecure = insecure
        self._device = (
            check_user_url(device_authorization_endpoint, "device authorization endpoint", insecure=insecure)
            if device_authorization_endpoint else None
        )
        self._scopes = list(scope_list(scopes)) or None
        self._audience = audience or None
        self._redirect_uri = redirect_uri
        self._header_key = header_key or "authorization"
        self._prompt = prompt
        self._deadline = deadline
        self._transport = _store_transport(transport, session, http_proxy_url=http_proxy_url, verify=verify,
                                           timeout=timeout, deadline=deadline, proxy_auth=proxy_auth)
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, ClientConfig] | None = None

    @property
    def where(self) -> str:
        """The issuer's host:port, for messages."""
        return urlsplit(self.issuer).netloc

    @property
    def service(self) -> str:
        """The name tokens of this sign-in are kept under when there is no API endpoint (an authenticator
        built with no endpoint takes it, see authenticators/base.py): the issuer without its scheme, and
        the client id, ``login.example.com/realms/x (client jupyter)``. Not a ``host:port``, so neither
        SDK mistakes it for a Flyte endpoint, and two clients of one issuer keep their tokens apart."""
        return issuer_service(self.issuer, self.client_id)

    def __repr__(self) -> str:
        return f"IssuerClientConfigStore(issuer={self.issuer!r}, client_id={self.client_id!r})"

    def get_client_config(self) -> ClientConfig:
        with self._lock:  # one fetch at a time; others wait and share its result
            hit = self._cached
            if hit and time.monotonic() - hit[0] < self._ttl:
                return hit[1]
            try:
                with call_deadline(self._deadline):
                    doc = self._metadata()
            except TransportTimeoutError as exc:
                raise TransportTimeoutError(
                    f"{self.where} did not serve its OAuth metadata within {self._deadline:g} s; check the issuer URL "
                    "and that the provider is reachable, then try again."
                ) from exc
            cfg = self._config(doc)
            self._cached = (time.monotonic(), cfg)
            return cfg

    def _metadata(self) -> dict[str, Any]:
        """The first discovery document that exists, checked against the issuer (RFC 8414 section 3.3),
        with the endpoints it lacks (:data:`FILLED_FROM_SECOND`) taken from the other document when that
        one exists and names the same issuer: django-oauth-toolkit's OpenID document, for one, has no
        ``revocation_endpoint``, which its RFC 8414 document has."""
        statuses: list[str] = []
        urls = discovery_urls(self.issuer)
        for index, url in enumerate(urls):
            try:
                response = self._transport.get_json(url)
            except ProtocolError as exc:  # an HTML 404 page, a redirect to a login page: not this document
                statuses.append(f"HTTP {exc.status}" if exc.status else "no JSON")
                continue
            if not response.ok:
                statuses.append(f"HTTP {response.status}")
                continue
            if not same_issuer(response.data.get("issuer"), self.issuer):
                raise ProtocolError(
                    f"{response.where} serves OAuth metadata for another issuer than {shown(self.issuer, 120)} "
                    "(RFC 8414 section 3.3 requires the same); check the issuer URL, including its path."
                )
            lacking = [name for name in FILLED_FROM_SECOND
                       if not doc_str(response.data, name) and not (self._device and "device" in name)]
            if lacking and index + 1 < len(urls):
                return {**self._second_document(urls[index + 1], lacking), **response.data}
            return response.data
        raise ProtocolError(
            f"{self.where} serves no OpenID Connect or OAuth metadata for {shown(self.issuer, 120)} "
            f"({', '.join(statuses)}); check the issuer URL, including its path."
        )

    def _second_document(self, url: str, names: list[str]) -> dict[str, Any]:
        """``names`` from the other discovery document, when it exists and names this issuer; {} else
        (its absence is normal: most providers serve one of the two)."""
        response = _optional_document(self._transport, url)
        if response is None or not same_issuer(response.data.get("issuer"), self.issuer):
            return {}
        return {name: response.data[name] for name in names if doc_str(response.data, name)}

    def _config(self, doc: Mapping[str, Any]) -> ClientConfig:
        where = self.where

        def url(name: str) -> str | None:
            value = doc_str(doc, name)
            return check_server_url(value, what=name.replace("_", " "), where=where, insecure=self._insecure) if value else None

        token_endpoint = url("token_endpoint")
        if not token_endpoint:
            raise ProtocolError(f"{where} advertises no token endpoint in its metadata; check the issuer URL.")
        scopes = self._scopes
        if scopes is None:
            offered = doc_list(doc, "scopes_supported") or []
            scopes = ["openid", "offline_access"] if "offline_access" in offered else ["openid"]
        return ClientConfig(
            token_endpoint=token_endpoint,
            authorization_endpoint=url("authorization_endpoint"),  # type: ignore[arg-type]  # None: device only
            redirect_uri=self._redirect_uri,
            client_id=self.client_id,
            device_authorization_endpoint=self._device or url("device_authorization_endpoint"),
            scopes=scopes,
            header_key=self._header_key,
            audience=self._audience,
            revocation_endpoint=url("revocation_endpoint"),
            issuer=doc_str(doc, "issuer"),
            code_challenge_methods_supported=doc_list(doc, "code_challenge_methods_supported"),
            token_endpoint_auth_methods_supported=doc_list(doc, "token_endpoint_auth_methods_supported"),
            prompt=self._prompt,
        )


__all__ = [
    "ClientConfig",
    "ClientConfigStore",
    "ISSUER_REDIRECT_URI",
    "IssuerClientConfigStore",
    "discovery_urls",
    "same_issuer",
    "RemoteClientConfigStore",
    "StaticClientConfigStore",
    "config_from_documents",
    "doc_list",
    "doc_str",
]
