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

Both compare origins in one normal form (IDNA host, lower case, explicit port:
:func:`flyteauth_jupyter.endpoint.origin`, DESIGN.md pinned 22), so an internationalised endpoint
matches the punycode host requests and gRPC actually connect to.

``fetch_grpc_call_auth_metadata()`` on the notebook's session waits for a login in progress, so a
client built before the login finished simply waits on its first call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
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


class BearerAuth(AuthBase):
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
    """

    def __init__(self, authenticator: Any, *, header: str | None = None, origins: Iterable[str] = ()) -> None:
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

    # -- which requests may carry the token -------------------------------------------------------------
    def _own_origin(self) -> Origin | None:
        url = authenticator_url(self.authenticator)
        return origin_of(url) if url else None

    def allows(self, url: str) -> bool:
        """True when a request to ``url`` may carry the token (its origin is the authenticator's or listed)."""
        origin = origin_of(url)
        return origin is not None and (origin in self._extra or origin == self._own_origin())

    def _apply(self, request: requests.PreparedRequest, state: dict[str, Any]) -> str | None:
        metadata = _metadata(self.authenticator)
        if metadata is None:
            return None
        key, value = metadata
        key = self.header or key
        state["keys"].add(key)
        request.headers[key] = value
        return value

    @staticmethod
    def _strip(request: requests.PreparedRequest, state: dict[str, Any]) -> None:
        for key in state["keys"]:
            request.headers.pop(key, None)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        state: dict[str, Any] = {"sent": None, "retried": False, "keys": set(), "body_pos": _body_position(request)}
        if self.allows(request.url or ""):
            state["sent"] = self._apply(request, state)
        request.register_hook("response", lambda response, **kwargs: self._handle(response, state, **kwargs))
        return request

    # -- responses: redirects and 401 -----------------------------------------------------------------------
    def _next_hop(self, request: requests.PreparedRequest, response: requests.Response, state: dict[str, Any]) -> None:
        """Before requests follows ``response``'s redirect (it copies ``request`` for the next hop):
        the header stays only when the next hop is an allowed origin."""
        target = urljoin(response.url or request.url or "", response.headers.get("location", ""))
        self._strip(request, state)
        if self.allows(target):
            try:  # the current token (a resend may have refreshed it since ``request`` was sent)
                state["sent"] = self._apply(request, state)
            except FlyteAuthError as exc:
                log.debug("no token for the redirect to %s: %s", target, exc)

    def _handle(self, response: requests.Response, state: dict[str, Any], **kwargs: Any) -> requests.Response:
        request = response.request
        if response.is_redirect:
            self._next_hop(request, response, state)
            return response
        if response.status_code not in RETRY_STATUSES or state["retried"]:
            return response
        if not self.allows(response.url or request.url or ""):
            return response  # another origin's 401 says nothing about our token
        state["retried"] = True
        if not _rewind(request, state["body_pos"]):
            return response
        try:
            self.authenticator.refresh_credentials()
        except Exception:  # noqa: BLE001 - the 401 is the answer the caller sees
            log.debug("refresh after 401 failed", exc_info=True)
            return response
        retry = request.copy()
        new_value = self._apply(retry, state)
        if new_value is None or new_value == state["sent"]:
            return response  # nothing new to send: resending would only repeat the 401
        state["sent"] = new_value
        response.content  # noqa: B018 - drain the body so the connection can be reused
        response.close()
        # re-run cookie extraction as requests' own auth handlers do
        from requests.cookies import extract_cookies_to_jar

        extract_cookies_to_jar(retry._cookies, response.request, response.raw)  # type: ignore[attr-defined,arg-type]
        retry.prepare_cookies(retry._cookies)  # type: ignore[attr-defined]
        second = response.connection.send(retry, **kwargs)
        second.history.append(response)
        second.request = retry
        if second.is_redirect:
            # requests follows this redirect from the request it sent first (``request``): same rule
            self._next_hop(request, second, state)
        return second

    def __repr__(self) -> str:
        return f"BearerAuth({type(self.authenticator).__name__})"


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
                 session: requests.Session | None = None) -> requests.Session:
    """A ``requests.Session`` whose requests carry the authenticator's token (see :class:`BearerAuth`)."""
    session = session or requests.Session()
    session.auth = BearerAuth(authenticator, header=header, origins=origins)
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
    if found is None:
        return None
    _, host, port = found
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def grpc_auth_plugin(authenticator: Any, *, origins: Iterable[str] = ()) -> Any:
    """A ``grpc.AuthMetadataPlugin`` adding the authenticator's metadata to calls to its own authority.

    ``origins``: more ``host:port`` (or URLs) whose calls may carry the token."""
    import grpc

    own = authenticator_url(authenticator)
    allowed = {a for a in [_authority(own) if own else None, *(_authority(o) for o in origins)] if a}
    if not allowed:
        raise ConfigurationError(
            "grpc_call_credentials cannot tell which server this authenticator's token is for; pass origins=[...]."
        )

    class _Plugin(grpc.AuthMetadataPlugin):  # type: ignore[misc]
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __call__(self, context: Any, callback: Any) -> None:
            target = _authority(getattr(context, "service_url", "") or "")
            if target not in allowed:
                callback((), None)  # another server: no token
                return
            try:
                metadata = _metadata(self._inner)
            except Exception as exc:  # noqa: BLE001 - handed to grpc, which fails the call with its text
                text = str(exc) if isinstance(exc, FlyteAuthError) else f"no token ({type(exc).__name__})"
                callback((), FlyteAuthError(text))
                return
            if metadata is None:
                callback((), None)
                return
            key, value = metadata
            if "\n" in value or "\r" in value:
                callback((), FlyteAuthError("The token contains a line break and cannot be sent as gRPC metadata."))
                return
            callback(((key.lower(), value),), None)

        def __repr__(self) -> str:
            return f"grpc_auth_plugin({type(self._inner).__name__})"

    return _Plugin(authenticator)


def grpc_call_credentials(authenticator: Any, *, origins: Iterable[str] = ()) -> Any:
    """``grpc.CallCredentials`` from :func:`grpc_auth_plugin` (combine with TLS or local channel credentials)."""
    import grpc

    return grpc.metadata_call_credentials(grpc_auth_plugin(authenticator, origins=origins), name="flyteauth")


__all__ = ["BearerAuth", "session_with", "grpc_auth_plugin", "grpc_call_credentials", "origin_of", "authenticator_url"]
