"""SDK plug-ins for any authenticator (ours, the notebook's session, or flytekit's): requests and gRPC.

* :class:`BearerAuth` is a ``requests.auth.AuthBase``: it sets the header from
  ``authenticator.fetch_grpc_call_auth_metadata()`` on every request and, when the server answers
  401, refreshes once (``refresh_credentials()``, single-flight in the authenticator) and resends the
  request with the new token. A body that cannot be replayed (a consumed stream) is not resent.
* :func:`grpc_auth_plugin` / :func:`grpc_call_credentials` make a ``grpc.AuthMetadataPlugin`` (grpc is
  imported only when they are called): the plug-in adds the same metadata to every call.

``fetch_grpc_call_auth_metadata()`` on the notebook's session waits for a login in progress, so a
client built before the login finished simply waits on its first call.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from requests.auth import AuthBase

log = logging.getLogger(__name__)

#: requests to these statuses trigger one refresh and one resend
RETRY_STATUSES = (401,)


def _metadata(authenticator: Any) -> tuple[str, str] | None:
    metadata = authenticator.fetch_grpc_call_auth_metadata()
    if not metadata:
        return None
    key, value = metadata
    return str(key), str(value)


class BearerAuth(AuthBase):
    """``requests`` auth that takes its header from an authenticator and refreshes once on 401.

    Parameters
    ----------
    authenticator:
        Anything with ``fetch_grpc_call_auth_metadata()`` and ``refresh_credentials()``.
    header:
        Send the token under this header instead of the authenticator's key (e.g. ``authorization``
        for a plain OAuth resource server; FlyteAdmin accepts its ``flyte-authorization`` key as well).
    """

    def __init__(self, authenticator: Any, *, header: str | None = None) -> None:
        self.authenticator = authenticator
        self.header = header

    def _apply(self, request: requests.PreparedRequest) -> str | None:
        metadata = _metadata(self.authenticator)
        if metadata is None:
            return None
        key, value = metadata
        key = self.header or key
        request.headers[key] = value
        return value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        sent = self._apply(request)
        state = {"sent": sent, "retried": False, "body_pos": _body_position(request)}
        request.register_hook("response", lambda response, **kwargs: self._handle(response, state, **kwargs))
        return request

    def _handle(self, response: requests.Response, state: dict[str, Any], **kwargs: Any) -> requests.Response:
        if response.status_code not in RETRY_STATUSES or state["retried"]:
            return response
        state["retried"] = True
        request = response.request
        if not _rewind(request, state["body_pos"]):
            return response
        refresh = self.authenticator.refresh_credentials
        try:
            refresh()
        except Exception:  # noqa: BLE001 - the 401 is the answer the caller sees
            log.debug("refresh after 401 failed", exc_info=True)
            return response
        retry = request.copy()
        new_value = self._apply(retry)
        if new_value is None or new_value == state["sent"]:
            return response  # nothing new to send: resending would only repeat the 401
        response.content  # noqa: B018 - drain the body so the connection can be reused
        response.close()
        # re-run cookie extraction as requests' own auth handlers do
        from requests.cookies import extract_cookies_to_jar

        extract_cookies_to_jar(retry._cookies, response.request, response.raw)  # type: ignore[attr-defined,arg-type]
        retry.prepare_cookies(retry._cookies)  # type: ignore[attr-defined]
        second = response.connection.send(retry, **kwargs)
        second.history.append(response)
        second.request = retry
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


def session_with(authenticator: Any, *, header: str | None = None, session: requests.Session | None = None) -> requests.Session:
    """A ``requests.Session`` whose requests carry the authenticator's token."""
    session = session or requests.Session()
    session.auth = BearerAuth(authenticator, header=header)
    return session


def grpc_auth_plugin(authenticator: Any) -> Any:
    """A ``grpc.AuthMetadataPlugin`` adding the authenticator's metadata to every call."""
    import grpc

    class _Plugin(grpc.AuthMetadataPlugin):  # type: ignore[misc]
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __call__(self, context: Any, callback: Any) -> None:
            try:
                metadata = _metadata(self._inner)
            except Exception as exc:  # noqa: BLE001 - handed to grpc, which fails the call with it
                callback((), exc)
                return
            callback(((metadata[0].lower(), metadata[1]),) if metadata else (), None)

        def __repr__(self) -> str:
            return f"grpc_auth_plugin({type(self._inner).__name__})"

    return _Plugin(authenticator)


def grpc_call_credentials(authenticator: Any) -> Any:
    """``grpc.CallCredentials`` from :func:`grpc_auth_plugin` (combine with channel credentials)."""
    import grpc

    return grpc.metadata_call_credentials(grpc_auth_plugin(authenticator), name="flyteauth")


__all__ = ["BearerAuth", "session_with", "grpc_auth_plugin", "grpc_call_credentials"]
