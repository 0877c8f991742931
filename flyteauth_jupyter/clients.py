"""SDK plug-ins for any authenticator (ours, the notebook's session, or flytekit's): requests and gRPC.

* :class:`BearerAuth` is a ``requests.auth.AuthBase`` (DESIGN.md, pinned 16). It sets the
  authenticator's header (``fetch_grpc_call_auth_metadata()``) only on requests to the
  authenticator's own origin (scheme, host, port) or to ``origins=[...]``. On every redirect it
  re-decides for the next hop: the header is stripped when the redirect leads to another origin,
  whatever the header's name (requests itself strips only ``Authorization``). A 401 from its own
  origin refreshes once (``refresh_credentials()``, single-flight in the authenticator) and resends
  once with the original body; a 401 from any other origin is returned as it is, with no refresh. A
  body that cannot be replayed (a consumed stream) is not resent.
* :func:`grpc_auth_plugin` / :func:`grpc_call_credentials` make a ``grpc.AuthMetadataPlugin`` (grpc is
  imported only when they are called): the plug-in adds the same metadata to calls whose authority
  (``host:port``) is the authenticator's (or in ``origins``), nothing to others; a failure reaches
  grpc as one secret-free sentence. The authority is read from the front of the runtime's
  ``service_url`` (``scheme://authority/service``), never searched for in the rest, which is the
  call's method path and the caller's to choose. gRPC sends call credentials only on secure channels
  (TLS or ``grpc.local_channel_credentials()``).
* Behind an identity-aware proxy (``proxy_auth=``, default: the authenticator's own; see
  :mod:`flyteauth_jupyter.proxy`) both also send ``proxy-authorization`` to the origins the proxy
  credential names (the deployment's), by the same rules: never on a redirect to another origin, never
  to another authority. :class:`OriginBoundAuth` is the one engine under ``BearerAuth`` and
  ``ProxyAuth``: per-origin headers, re-decided per redirect hop, and one renewal and resend per
  header on that header's own refusal (the proxy's: 407, or a 401 it marked; the bearer's: any other
  401), proxy first.

Both compare origins in one normal form (IDNA host, lower case, explicit port:
:func:`flyteauth_jupyter.endpoint.origin`, DESIGN.md pinned 22), so an internationalised endpoint
matches the punycode host requests and gRPC actually connect to.

``fetch_grpc_call_auth_metadata()`` on the notebook's session waits for a login in progress, so a
client built before the login finished simply waits on its first call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol
from urllib.parse import urljoin

import requests
from requests.auth import AuthBase

from .endpoint import DEFAULT_PORTS, Origin, origin, parse_endpoint
from .errors import ConfigurationError, FlyteAuthError

log = logging.getLogger(__name__)

#: requests to these statuses (from the authenticator's own origin) trigger one refresh and one resend
RETRY_STATUSES = (401,)


def _metadata(authenticator: Any) -> tuple[str, str] | None:
    metadata = authenticator.fetch_grpc_call_auth_metadata()
    if not metadata:
        return None
    key, value = metadata
    return str(key), str(value)


def origin_of(url: str) -> Origin | None:
    """``(scheme, host, port)`` of an absolute http(s) URL in the one normal form (IDNA host, lower case,
    default port filled in: :func:`flyteauth_jupyter.endpoint.origin`), else None."""
    return origin(url)


def authenticator_url(authenticator: Any) -> str | None:
    """The base URL of the deployment an authenticator signs in to, when it can be told.

    The notebook's session says it (``endpoint_url``); ours keep the parsed endpoint; a bare
    ``host:port`` (flytekit's) means HTTPS unless the authenticator is ``insecure``."""
    for name in ("endpoint_url",):
        value = getattr(authenticator, name, None)
        if isinstance(value, str) and value:
            return value
    inner = getattr(authenticator, "authenticator", None) or getattr(authenticator, "inner", None)
    for candidate in (authenticator, inner):
        if candidate is None:
            continue
        parsed = getattr(candidate, "_parsed", None)
        url = getattr(parsed, "url", None)
        if isinstance(url, str) and url:
            return url
    for candidate in (inner, authenticator):
        raw = getattr(candidate, "_endpoint", None) if candidate is not None else None
        if isinstance(raw, str) and raw:
            try:
                return parse_endpoint(raw, insecure=bool(getattr(candidate, "_insecure", False))).url
            except ConfigurationError:
                return None
    return None


class _FromAuthenticator:
    def __repr__(self) -> str:
        return "FROM_AUTHENTICATOR"


#: default of ``proxy_auth=``: the authenticator's own ``proxy_auth`` (see :func:`proxy_auth_of`)
FROM_AUTHENTICATOR: Any = _FromAuthenticator()


def proxy_auth_of(authenticator: Any) -> Any:
    """The identity-aware proxy credential an authenticator carries (its ``proxy_auth``, or that of the
    authenticator it wraps: the notebook's session), else None."""
    inner = getattr(authenticator, "authenticator", None) or getattr(authenticator, "inner", None)
    for candidate in (authenticator, inner):
        value = getattr(candidate, "proxy_auth", None) if candidate is not None else None
        if value is not None:
            return value
    return None


class HeaderGrant(Protocol):
    """One header an :class:`OriginBoundAuth` manages: which URLs may carry it, its current value, which
    refusals are its own, and how to renew it (a bearer token, the identity-aware proxy's credential)."""

    def allows(self, url: str) -> bool:
        """True when a request to ``url`` may carry this header."""

    def current(self) -> tuple[str, str] | None:
        """``(header name, value)`` now, or None when there is nothing to send."""

    def claims(self, response: requests.Response) -> bool:
        """True when ``response`` is a refusal of this header (it is renewed once and the request resent)."""

    def renew(self, sent: str | None) -> None:
        """Obtain a new value; ``sent`` is the one the refused request carried (single flight by value)."""


class OriginBoundAuth(AuthBase):
    """``requests`` auth for a list of :class:`HeaderGrant`: each header only on the origins it allows,
    re-decided on every redirect hop; a refusal the first claiming grant owns renews that grant once
    and resends once (at most once per grant, so a proxy refusal and then a bearer refusal of the same
    request are each answered once). One hook does it all, so a resend and the redirect that may
    follow it are handled on the request object requests follows the redirect from. requests removes
    ``Proxy-Authorization`` from every redirect hop (``Session.rebuild_proxies``) after the hook put it
    back: a refusal of a hop that lacks a header its grant had set is answered by sending it again
    with the current value, without a renewal."""

    _grants: tuple[HeaderGrant, ...] = ()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        state: dict[str, Any] = {"sent": {}, "keys": {}, "retried": set(), "body_pos": _body_position(request)}
        self._apply_all(request, request.url or "", state, strict=True)
        request.register_hook("response", lambda response, **kwargs: self._handle(response, state, **kwargs))
        return request

    def _apply_all(self, request: requests.PreparedRequest, url: str, state: dict[str, Any], *, strict: bool) -> None:
        """Strip every managed header from ``request`` and set each one ``url`` may carry, with its
        current value. ``strict``: a grant's failure propagates (the caller's request); else it is
        logged and that header stays off (a redirect hop)."""
        for index, grant in enumerate(self._grants):
            for key in state["keys"].get(index, ()):
                request.headers.pop(key, None)
            state["sent"][index] = None
            if not grant.allows(url):
                continue
            try:
                metadata = grant.current()
            except FlyteAuthError as exc:
                if strict:
                    raise
                log.debug("no %s header for the redirect to %s: %s", type(grant).__name__, url, exc)
                continue
            if metadata is None:
                continue
            key, value = metadata
            state["keys"].setdefault(index, set()).add(key)
            request.headers[key] = value
            state["sent"][index] = value

    def _handle(self, response: requests.Response, state: dict[str, Any], **kwargs: Any) -> requests.Response:
        followed = response.request  # what requests copies for a redirect's next hop
        if response.is_redirect:
            self._next_hop(followed, response, state)
            return response
        for _ in range(2 * len(self._grants)):  # each grant: at most one re-send of a stripped header, one renewal
            url = response.url or response.request.url or ""
            index = next((i for i, g in enumerate(self._grants) if g.claims(response)), None)
            if index is None or not self._grants[index].allows(url):
                return response  # nobody's refusal, or another origin's
            stripped = self._stripped(response.request, index, state)
            if not stripped:
                if index in state["retried"]:
                    return response  # already renewed once for this request
                state["retried"].add(index)
            second = self._resend(response, index, state, renew=not stripped, **kwargs)
            if second is None:
                return response
            if second.is_redirect:
                # requests follows this redirect from the request it sent first: same rule
                self._next_hop(followed, second, state)
                return second
            response = second
        return response

    @staticmethod
    def _stripped(request: requests.PreparedRequest, index: int, state: dict[str, Any]) -> bool:
        """True when ``request`` lacks the header grant ``index`` set for it: requests removes
        ``Proxy-Authorization`` from every redirect hop (``Session.rebuild_proxies``), after the hook
        had put it back, so a hop to the deployment reaches the proxy without it."""
        keys = state["keys"].get(index)
        return bool(keys) and state["sent"].get(index) is not None and not any(k in request.headers for k in keys)

    def _resend(
        self, response: requests.Response, index: int, state: dict[str, Any], *, renew: bool, **kwargs: Any
    ) -> requests.Response | None:
        """Send the request again once, with grant ``index`` renewed first (``renew``) or, when the header
        was stripped on the way, simply with its current value; None when that cannot help."""
        request = response.request
        if not _rewind(request, state["body_pos"]):
            return None
        old = state["sent"].get(index)
        if renew:
            try:
                self._grants[index].renew(old)
            except Exception:  # noqa: BLE001 - the refusal is the answer the caller sees
                log.debug("renewing the %s header failed", type(self._grants[index]).__name__, exc_info=True)
                return None
        retry = request.copy()
        try:
            self._apply_all(retry, retry.url or "", state, strict=True)
        except FlyteAuthError:
            return None
        new = state["sent"].get(index)
        if new is None or (renew and new == old):
            return None  # nothing new to send: resending would only repeat the refusal
        response.content  # noqa: B018 - drain the body so the connection can be reused
        response.close()
        # re-run cookie extraction as requests' own auth handlers do
        from requests.cookies import extract_cookies_to_jar

        extract_cookies_to_jar(retry._cookies, request, response.raw)  # type: ignore[attr-defined,arg-type]
        retry.prepare_cookies(retry._cookies)  # type: ignore[attr-defined]
        second = response.connection.send(retry, **kwargs)
        second.history = [*response.history, response]  # flat, as requests keeps it: [407, 401] after two
        second.request = retry
        return second

    def _next_hop(self, request: requests.PreparedRequest, response: requests.Response, state: dict[str, Any]) -> None:
        """Before requests follows ``response``'s redirect (it copies ``request`` for the next hop):
        each header stays only when the next hop is an origin its grant allows, with its current value
        (a resend may have renewed it since ``request`` was sent)."""
        target = urljoin(response.url or request.url or "", response.headers.get("location", ""))
        self._apply_all(request, target, state, strict=False)


class _Bearer:
    """The authenticator's header, as a :class:`HeaderGrant` of :class:`BearerAuth`."""

    def __init__(self, auth: BearerAuth) -> None:
        self._auth = auth

    def allows(self, url: str) -> bool:
        return self._auth.allows(url)

    def current(self) -> tuple[str, str] | None:
        metadata = _metadata(self._auth.authenticator)
        if metadata is None:
            return None
        key, value = metadata
        return self._auth.header or key, value

    def claims(self, response: requests.Response) -> bool:
        return response.status_code in RETRY_STATUSES

    def renew(self, sent: str | None) -> None:
        self._auth.authenticator.refresh_credentials()


class BearerAuth(OriginBoundAuth):
    """``requests`` auth: the authenticator's header on its own origin only; refresh once on its 401.

    Parameters
    ----------
    authenticator:
        Anything with ``fetch_grpc_call_auth_metadata()`` and ``refresh_credentials()``.
    header:
        Send the token under this header instead of the authenticator's key (e.g. ``authorization``
        for a plain OAuth resource server; FlyteAdmin accepts its ``flyte-authorization`` key as well).
    origins:
        More origins (``https://api.example.com``, ``http://127.0.0.1:8080``) that may receive the
        token. The authenticator's own origin is always included; when it cannot be told (an object
        with no endpoint), ``origins`` is required.
    proxy_auth:
        The identity-aware proxy's credential (:class:`flyteauth_jupyter.proxy.ProxyAuth`), sent as
        ``proxy-authorization`` on the origins it names (the deployment's), renewed once on the
        proxy's refusal (407, or a 401 the proxy marked as its own) before the bearer token is
        refreshed for the deployment's own 401. Default: the authenticator's ``proxy_auth``, if any.
    """

    def __init__(self, authenticator: Any, *, header: str | None = None, origins: Iterable[str] = (),
                 proxy_auth: Any = FROM_AUTHENTICATOR) -> None:
        self.authenticator = authenticator
        self.header = header
        extra: set[Origin] = set()
        for url in origins:
            origin = origin_of(url)
            if origin is None:
                raise ConfigurationError(f"BearerAuth origins must be http(s)://host[:port] URLs, not {url!r}.")
            extra.add(origin)
        self._extra = frozenset(extra)
        if not self._extra and self._own_origin() is None:
            raise ConfigurationError(
                "BearerAuth cannot tell which origin this authenticator's token is for; pass origins=[...]."
            )
        self.proxy_auth = proxy_auth_of(authenticator) if proxy_auth is FROM_AUTHENTICATOR else proxy_auth
        # the proxy first: its refusal (407 / a 401 it marked) is answered before a bearer refresh
        self._grants = (*((self.proxy_auth,) if self.proxy_auth is not None else ()), _Bearer(self))

    # -- which requests may carry the token -------------------------------------------------------------
    def _own_origin(self) -> Origin | None:
        url = authenticator_url(self.authenticator)
        return origin_of(url) if url else None

    def allows(self, url: str) -> bool:
        """True when a request to ``url`` may carry the token (its origin is the authenticator's or listed)."""
        origin = origin_of(url)
        return origin is not None and (origin in self._extra or origin == self._own_origin())

    def __repr__(self) -> str:
        proxy = ", proxy" if self.proxy_auth is not None else ""
        return f"BearerAuth({type(self.authenticator).__name__}{proxy})"


def _body_position(request: requests.PreparedRequest) -> int | None:
    body = request.body
    if body is None or isinstance(body, (bytes, str)):
        return None
    tell = getattr(body, "tell", None)
    if tell is None:
        return -1  # a generator or other one-shot iterable
    try:
        return int(tell())
    except OSError:
        return -1


def _rewind(request: requests.PreparedRequest, position: int | None) -> bool:
    """True when the request can be sent again (its body rewound if it is a file)."""
    if position is None:
        return True
    if position < 0:
        return False
    try:
        request.body.seek(position)  # type: ignore[union-attr]
    except (AttributeError, OSError):
        return False
    return True


def session_with(authenticator: Any, *, header: str | None = None, origins: Iterable[str] = (),
                 session: requests.Session | None = None, proxy_auth: Any = FROM_AUTHENTICATOR) -> requests.Session:
    """A ``requests.Session`` whose requests carry the authenticator's token (see :class:`BearerAuth`)."""
    session = session or requests.Session()
    session.auth = BearerAuth(authenticator, header=header, origins=origins, proxy_auth=proxy_auth)
    return session


def _authority(value: str) -> str | None:
    """``host:port`` in the one normal form (IDNA, lower case, explicit port: :func:`~flyteauth_jupyter.endpoint.origin`)
    of a URL, of a bare ``host[:port]`` (HTTPS's port when none is given), or of what the gRPC runtime
    hands a plug-in: ``service_url`` is ``scheme://authority/service`` (``://authority/service`` on local
    channels). The authority is read from the front, once: the service part is the call's method path,
    which the caller chooses and may itself contain ``://host:port/``."""
    if value.startswith("dns:///"):
        value = value[len("dns:///"):]
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    elif "/" in scheme or "?" in scheme or "@" in scheme:
        return None  # no URL starts like this; refuse rather than guess
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        return None
    scheme = scheme.lower() if scheme.lower() in DEFAULT_PORTS else "https"
    found = origin(f"{scheme}://{authority}")
    return _authority_of(found) if found is not None else None


def _authority_of(origin: Origin) -> str:
    _, host, port = origin
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def grpc_auth_plugin(authenticator: Any, *, origins: Iterable[str] = (), proxy_auth: Any = FROM_AUTHENTICATOR) -> Any:
    """A ``grpc.AuthMetadataPlugin`` adding the authenticator's metadata to calls to its own authority.

    ``origins``: more ``host:port`` (or URLs) whose calls may carry the token. ``proxy_auth``: the
    identity-aware proxy's credential (default: the authenticator's ``proxy_auth``); its
    ``proxy-authorization`` pair goes beside the bearer pair on calls to the authorities it names."""
    import grpc

    own = authenticator_url(authenticator)
    allowed = {a for a in [_authority(own) if own else None, *(_authority(o) for o in origins)] if a}
    if not allowed:
        raise ConfigurationError(
            "grpc_call_credentials cannot tell which server this authenticator's token is for; pass origins=[...]."
        )
    proxy = proxy_auth_of(authenticator) if proxy_auth is FROM_AUTHENTICATOR else proxy_auth
    proxied = frozenset(_authority_of(o) for o in proxy.origins) if proxy is not None else frozenset()

    class _Plugin(grpc.AuthMetadataPlugin):  # type: ignore[misc]
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __call__(self, context: Any, callback: Any) -> None:
            target = _authority(getattr(context, "service_url", "") or "")
            pairs: list[tuple[str, str]] = []
            try:
                if target is not None and target in proxied:
                    pairs.append(proxy.current())
                metadata = _metadata(self._inner) if target in allowed else None
            except Exception as exc:  # noqa: BLE001 - handed to grpc, which fails the call with its text
                text = str(exc) if isinstance(exc, FlyteAuthError) else f"no token ({type(exc).__name__})"
                callback((), FlyteAuthError(text))
                return
            if metadata is not None:
                pairs.append(metadata)
            if any("\n" in value or "\r" in value for _, value in pairs):
                callback((), FlyteAuthError("The token contains a line break and cannot be sent as gRPC metadata."))
                return
            callback(tuple((key.lower(), value) for key, value in pairs), None)  # another server: ()

        def __repr__(self) -> str:
            return f"grpc_auth_plugin({type(self._inner).__name__})"

    return _Plugin(authenticator)


def grpc_call_credentials(authenticator: Any, *, origins: Iterable[str] = (), proxy_auth: Any = FROM_AUTHENTICATOR) -> Any:
    """``grpc.CallCredentials`` from :func:`grpc_auth_plugin` (combine with TLS or local channel credentials).

    Behind an identity-aware proxy the calls also carry ``proxy-authorization`` (``proxy_auth``,
    default: the authenticator's own)."""
    import grpc

    plugin = grpc_auth_plugin(authenticator, origins=origins, proxy_auth=proxy_auth)
    return grpc.metadata_call_credentials(plugin, name="flyteauth")


__all__ = [
    "BearerAuth",
    "FROM_AUTHENTICATOR",
    "HeaderGrant",
    "OriginBoundAuth",
    "authenticator_url",
    "grpc_auth_plugin",
    "grpc_call_credentials",
    "origin_of",
    "proxy_auth_of",
    "session_with",
]
