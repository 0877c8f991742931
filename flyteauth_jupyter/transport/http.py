"""HTTP for every flow: one requests Session with timeouts, safe retries, proxy and TLS, and error translation.

This module owns how we talk HTTP, not what we say: ``get_json`` (metadata documents) and
``post_form`` (token, device and revocation endpoints). Every call has a timeout (10 s to connect,
30 s to read). urllib3 retries only idempotent requests (GET/HEAD); a token POST is never re-sent
automatically, since a code or rotated refresh token must not be spent twice. ``requests``
exceptions become :class:`TransportError` / :class:`TransportTimeoutError` naming host:port; a body
that is not JSON becomes :class:`ProtocolError` naming host:port and the HTTP status (never the
body); an OAuth error body becomes the matching :class:`OAuthError` subclass. Nothing here logs a
URL query, a form body or a header value.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import (
    ConfigurationError,
    OAuthError,
    ProtocolError,
    TransportError,
    TransportTimeoutError,
    oauth_error,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
DEFAULT_TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
USER_AGENT = "flyteauth-jupyter"


def host_port(url: str) -> str:
    """``host:port`` of ``url`` (default port filled in), for messages; never the path or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return "the server"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


def cert_not_verified(exc: BaseException) -> bool:
    """True when ``exc`` (a requests SSLError) comes from certificate verification, not another TLS failure."""
    todo: list[BaseException] = [exc]
    for _ in range(32):  # the chain is requests -> urllib3 MaxRetryError -> urllib3 SSLError -> ssl error
        if not todo:
            break
        err = todo.pop()
        if isinstance(err, ssl.SSLCertVerificationError):
            return True
        todo.extend(a for a in err.args if isinstance(a, BaseException))
        for linked in (getattr(err, "reason", None), err.__cause__, err.__context__):
            if isinstance(linked, BaseException):
                todo.append(linked)
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


class IdempotentRetry(Retry):
    """urllib3 Retry that never re-sends a non-idempotent request, not even after a connect error,
    and never retries a TLS failure (a certificate that fails now fails again: say so at once)."""

    def increment(  # type: ignore[override]  # urllib3's own signature, passed through as *args/**kwargs
        self, method: str | None = None, url: str | None = None, *args: Any, **kwargs: Any
    ) -> Retry:
        error = kwargs.get("error", args[1] if len(args) > 1 else None)
        tls_failure = isinstance(error, urllib3.exceptions.SSLError)
        if tls_failure or (method is not None and method.upper() not in IDEMPOTENT_METHODS):
            return Retry(total=0, raise_on_status=False, raise_on_redirect=False).increment(method, url, *args, **kwargs)
        return super().increment(method, url, *args, **kwargs)


def default_retry() -> Retry:
    return IdempotentRetry(
        total=3,
        connect=2,
        read=2,
        status=2,
        backoff_factor=0.3,
        status_forcelist=(502, 503, 504),
        allowed_methods=IDEMPOTENT_METHODS,
        raise_on_status=False,
        respect_retry_after_header=True,
    )


def build_session(*, http_proxy_url: str | None = None, retry: Retry | None = None) -> requests.Session:
    """A new Session with safe retries mounted and, when given, the proxy for http and https."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry if retry is not None else default_retry())
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if http_proxy_url:
        session.proxies.update({"http": http_proxy_url, "https": http_proxy_url})
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclass(frozen=True)
class JsonResponse:
    """A parsed JSON answer: HTTP ``status``, the decoded object ``data`` and ``where`` (host:port)."""

    status: int
    data: dict[str, Any] = field(repr=False)
    where: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def oauth_error(self) -> OAuthError | None:
        """The OAuthError this body describes, or None when it has no ``error`` field."""
        error = self.data.get("error")
        if not isinstance(error, str) or not error:
            return None
        description = self.data.get("error_description")
        return oauth_error(
            error,
            description if isinstance(description, str) else None,
            status=self.status,
            where=self.where,
        )

    def raise_for_error(self, what: str = "request") -> JsonResponse:
        """Return self when 2xx; else raise the OAuth error, or a ProtocolError naming the status."""
        if self.ok:
            return self
        error = self.oauth_error()
        if error is not None:
            raise error
        raise ProtocolError(
            f"{self.where} answered the {what} with HTTP {self.status} and no OAuth error; "
            "check the endpoint and try again later.",
            status=self.status,
        )


class Transport:
    """JSON-over-HTTP with timeouts, proxy and TLS settings; wraps a Session (given or built)."""

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        http_proxy_url: str | None = None,
        verify: bool | str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.session = session if session is not None else build_session(http_proxy_url=http_proxy_url)
        self.http_proxy_url = http_proxy_url or None
        self.verify = verify
        self.timeout = timeout

    def __repr__(self) -> str:
        proxy = host_port(self.http_proxy_url) if self.http_proxy_url else None
        return f"Transport(proxy={proxy!r}, verify={self.verify!r}, timeout={self.timeout!r})"

    # -- public helpers ---------------------------------------------------------------------------
    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> JsonResponse:
        """GET ``url`` with ``Accept: application/json``; any status, JSON body required."""
        hdrs = {"Accept": "application/json"}
        hdrs.update(headers or {})
        response = self._send("GET", url, headers=hdrs)
        return self._parse(response, url, "GET")

    def post_form(
        self,
        url: str,
        data: Mapping[str, Any],
        auth: str | requests.auth.AuthBase | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        allow_empty: bool = False,
    ) -> JsonResponse:
        """POST ``data`` form-encoded (never retried); ``auth`` is an Authorization value or AuthBase.

        ``allow_empty``: a 2xx answer without a body is fine (RFC 7009 revocation) and gives ``data={}``.
        """
        hdrs = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            "Cache-Control": "no-cache",
        }
        hdrs.update(headers or {})
        req_auth = None
        if isinstance(auth, str):
            hdrs["Authorization"] = auth
        elif auth is not None:
            req_auth = auth
        body = {k: v for k, v in data.items() if v is not None}
        response = self._send("POST", url, headers=hdrs, data=body, auth=req_auth, allow_redirects=False)
        return self._parse(response, url, "POST", allow_empty=allow_empty)

    # -- internals ----------------------------------------------------------------------------------
    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        where = host_port(url)
        if self.verify is not None:
            kwargs["verify"] = self.verify
        if self.http_proxy_url:
            kwargs["proxies"] = {"http": self.http_proxy_url, "https": self.http_proxy_url}
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            raise TransportTimeoutError(
                f"Timed out connecting to {where}; check the address, your network and any proxy settings."
            ) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise TransportTimeoutError(f"{where} did not answer in time; try again later.") from exc
        except requests.exceptions.SSLError as exc:
            if not cert_not_verified(exc):
                raise TransportError(
                    f"The TLS handshake with {where} failed; check that it really serves HTTPS "
                    "(for plain HTTP use an http:// URL or --insecure)."
                ) from exc
            raise TransportError(
                f"The TLS certificate of {where} could not be verified; pass the CA bundle that signed it "
                "(ca_cert / --ca-cert) or add that CA to your trust store (--insecure-skip-verify only for a "
                "test deployment)."
            ) from exc
        except requests.exceptions.ProxyError as exc:
            proxy = f"the proxy {host_port(self.http_proxy_url)}" if self.http_proxy_url else "the configured proxy"
            raise TransportError(
                f"Could not reach {where} through {proxy}; check the proxy URL, that the proxy is running "
                "and that it lets this host through."
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise TransportError(
                f"Could not connect to {where}; check the endpoint address and that the server is running."
            ) from exc
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema) as exc:
            raise ConfigurationError(f"The URL for {where} is not valid; check the endpoint configuration.") from exc
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"The request to {where} failed ({type(exc).__name__}); try again.") from exc
        except OSError as exc:  # e.g. a CA bundle path that does not exist
            raise ConfigurationError(
                f"Could not prepare the TLS connection to {where} ({type(exc).__name__}); check the CA bundle path."
            ) from exc

    @staticmethod
    def _parse(response: requests.Response, url: str, method: str, *, allow_empty: bool = False) -> JsonResponse:
        where = host_port(url)
        status = response.status_code
        path = urlsplit(url).path or "/"
        try:
            content = response.content
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"The answer from {where} was cut off (HTTP {status}); try again.") from exc
        finally:
            response.close()
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        data: Any = None
        if content and ctype not in ("text/html", "application/xhtml+xml"):
            try:
                data = json.loads(content.decode(response.encoding or "utf-8", errors="replace"))
            except ValueError:
                data = None
        if data is None and allow_empty and 200 <= status < 300 and not content.strip():
            data = {}
        if not isinstance(data, dict):
            kind = "an HTML page" if ctype in ("text/html", "application/xhtml+xml") else "a body that is not a JSON object"
            if 300 <= status < 400:
                kind = "a redirect"
            raise ProtocolError(
                f"{where} answered {method} {path} with HTTP {status} and {kind} instead of JSON; "
                "check the endpoint URL (a proxy or login page may be in the way).",
                status=status,
            )
        return JsonResponse(status=status, data=data, where=where)


__all__ = [
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "IdempotentRetry",
    "JsonResponse",
    "Transport",
    "build_session",
    "default_retry",
    "host_port",
]
