"""HTTP for every flow: one requests Session with timeouts, safe retries, proxy and TLS, and error translation.

This module owns how we talk HTTP, not what we say: ``get_json`` (metadata documents) and
``post_form`` (token, device and revocation endpoints). Every call has a timeout (10 s to connect,
30 s to read) and one overall deadline (40 s) that covers the call with its retries, backoff and
``Retry-After`` waits: each attempt's timeouts are cut to what is left (:class:`DeadlineTimeout`) and
the retry policy stops once it has passed. Bodies are streamed and read up to ``MAX_BODY`` bytes
(larger: ``ProtocolError``), each read bounded by what is left of the deadline, and parsed by the
strict ``validate.loads``; a body sent as ``application/x-www-form-urlencoded`` (GitHub's answers to a
request without ``Accept: application/json``, which we always send) is decoded as a form. urllib3
retries only idempotent requests (GET/HEAD); a token POST is never re-sent automatically, since a code or rotated refresh token must not be spent twice. ``requests``
exceptions become :class:`TransportError` / :class:`TransportTimeoutError` naming host:port; a body
that is not JSON becomes :class:`ProtocolError` naming host:port and the HTTP status (never the
body); an OAuth error body becomes the matching :class:`OAuthError` subclass. Nothing here logs a
URL query, a form body or a header value.

Behind an identity-aware proxy, ``Transport(proxy_auth=...)`` (a ``requests`` auth:
:class:`flyteauth_jupyter.proxy.ProxyAuth`, which decides per request and per redirect hop which
origins get ``proxy-authorization``) is applied to every request, beside a request's own auth (a
client secret), so one Transport can serve the deployment (header sent) and the identity provider
(never sent: another origin). When the proxy still refuses after its one renewal (HTTP 407, or a 401
the proxy marked as its own), the answer is one sentence saying so, not "not JSON".
"""

from __future__ import annotations

import contextlib
import logging
import math
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import (
    ConfigurationError,
    FlyteAuthError,
    OAuthError,
    ProtocolError,
    TransportError,
    TransportTimeoutError,
    oauth_error,
)
from ..validate import NotJSON, loads

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
DEFAULT_TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)
#: one call (with its retries, backoff and Retry-After waits) ends within this many seconds
DEFAULT_DEADLINE = 40.0
#: the largest body we read; token and metadata documents are a few kilobytes
MAX_BODY = 1024 * 1024
RETRY_AFTER_MAX = 10.0
_CHUNK = 16 * 1024

_call = threading.local()  # the deadline (monotonic time) of the call this thread is making


def _remaining() -> float | None:
    ends_at = getattr(_call, "ends_at", None)
    return None if ends_at is None else ends_at - time.monotonic()


@contextlib.contextmanager
def call_deadline(seconds: float) -> Iterator[None]:
    """One deadline for several requests made in this block by this thread (e.g. the documents of one
    configuration fetch): each request also keeps its own, the earlier one wins."""
    outer = getattr(_call, "ends_at", None)
    ends_at = time.monotonic() + seconds
    _call.ends_at = ends_at if outer is None else min(outer, ends_at)
    try:
        yield
    finally:
        _call.ends_at = outer


class DeadlineTimeout(urllib3.Timeout):
    """A urllib3 Timeout whose connect and read timeouts, at every attempt (urllib3 clones the
    timeout for each one), are cut to what is left of the call's deadline."""

    def __init__(self, connect: float | None, read: float | None, ends_at: float) -> None:
        super().__init__(connect=connect, read=read)
        self.ends_at = ends_at

    def clone(self) -> urllib3.Timeout:
        left = max(0.001, self.ends_at - time.monotonic())
        connect = self._connect if isinstance(self._connect, (int, float)) else None
        read = self._read if isinstance(self._read, (int, float)) else None
        return urllib3.Timeout(
            connect=left if connect is None else min(connect, left),
            read=left if read is None else min(read, left),
            total=left,
        )
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
USER_AGENT = "flyteauth-jupyter"


#: GCP IAP marks every response it generates itself with this header (Google's IAP documentation,
#: "Detecting responses from IAP"; see flyteauth_jupyter.proxy)
IAP_GENERATED = "X-Goog-IAP-Generated-Response"


def proxy_refused(response: requests.Response) -> bool:
    """True when an identity-aware proxy refused ``response``'s request: HTTP 407 (RFC 9110 15.5.8), or a
    401 the proxy marked as its own (``X-Goog-IAP-Generated-Response``, or ``Proxy-Authenticate``).
    Any other 401 is the deployment's. The one rule, for the Transport and flyteauth_jupyter.proxy."""
    status = response.status_code
    return status == 407 or (
        status == 401 and (IAP_GENERATED in response.headers or "Proxy-Authenticate" in response.headers)
    )


class _Chain(requests.auth.AuthBase):
    """Several ``requests`` auths applied in turn (the proxy's, then the request's own)."""

    def __init__(self, *auths: Any) -> None:
        self.auths = auths

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        for auth in self.auths:
            request = auth(request)
        return request


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


FORM_TYPE = "application/x-www-form-urlencoded"
#: a token or device answer has a handful of fields; more in a form-encoded body is not one
MAX_FORM_FIELDS = 64


def _form_body(content: bytes, *, where: str, status: int) -> dict[str, str]:
    """A form-encoded answer (GitHub's default without ``Accept: application/json``) as a dict of strings;
    numbers stay strings (``validate`` reads numeric strings), repeated names keep the first value."""
    try:
        pairs = parse_qsl(content.decode("utf-8", errors="replace"), keep_blank_values=True,
                          max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise ProtocolError(
            f"{where} sent a form-encoded body with more than {MAX_FORM_FIELDS} fields (HTTP {status}), which no "
            "OAuth answer has; check the endpoint URL.",
            status=status,
        ) from None
    data: dict[str, str] = {}
    for name, value in pairs:
        data.setdefault(name, value)
    return data


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
        left = _remaining()
        if left is not None and left <= 0.05:  # the call's deadline has passed: no further attempt
            return Retry(total=0, raise_on_status=False, raise_on_redirect=False).increment(method, url, *args, **kwargs)
        return super().increment(method, url, *args, **kwargs)

    def sleep(self, response: Any = None) -> None:
        """Back off (or honour Retry-After, at most RETRY_AFTER_MAX), never past the call's deadline."""
        wait: float | None = None
        if self.respect_retry_after_header and response is not None:
            try:
                wait = self.get_retry_after(response)
            except Exception:  # noqa: BLE001 - a malformed Retry-After header means "no advice"
                wait = None
        if wait is None or not math.isfinite(wait):
            wait = self.get_backoff_time()
        wait = min(max(wait, 0.0), RETRY_AFTER_MAX)
        left = _remaining()
        if left is not None:
            wait = min(wait, max(left, 0.0))
        if wait > 0:
            time.sleep(wait)


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
        backoff_max=RETRY_AFTER_MAX,
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
        """The OAuthError this body describes, or None when it has no ``error`` field.

        A 2xx body counts only without an ``access_token``: some servers answer
        ``{"error": "authorization_pending"}`` with HTTP 200, and that is the OAuth error it says.
        """
        error = self.data.get("error")
        if not isinstance(error, str) or not error:
            return None
        if self.ok and "access_token" in self.data:
            return None
        description = self.data.get("error_description")
        return oauth_error(
            error,
            description if isinstance(description, str) else None,
            status=self.status,
            where=self.where,
        )

    def raise_for_error(self, what: str = "request") -> JsonResponse:
        """Return self when 2xx without an OAuth error; else raise the OAuth error, or a ProtocolError naming the status."""
        error = self.oauth_error()
        if error is not None:
            raise error
        if self.ok:
            return self
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
        deadline: float = DEFAULT_DEADLINE,
        max_body: int = MAX_BODY,
        proxy_auth: requests.auth.AuthBase | None = None,
    ) -> None:
        self.session = session if session is not None else build_session(http_proxy_url=http_proxy_url)
        #: the identity-aware proxy's credential (flyteauth_jupyter.proxy.ProxyAuth): applied to every
        #: request, and it alone decides which origins get its header
        self.proxy_auth = proxy_auth
        self.http_proxy_url = http_proxy_url or None
        self.verify = verify
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        for value in (connect, read, deadline):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigurationError("HTTP timeouts and the deadline must be finite numbers of seconds above 0.")
        self.timeout = (float(connect), float(read)) if isinstance(timeout, tuple) else float(timeout)
        self.deadline = float(deadline)
        self.max_body = int(max_body)

    def __repr__(self) -> str:
        proxy = host_port(self.http_proxy_url) if self.http_proxy_url else None
        behind = ", proxy_auth" if self.proxy_auth is not None else ""
        return (
            f"Transport(proxy={proxy!r}, verify={self.verify!r}, timeout={self.timeout!r}, "
            f"deadline={self.deadline!r}{behind})"
        )

    # -- public helpers ---------------------------------------------------------------------------
    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> JsonResponse:
        """GET ``url`` with ``Accept: application/json``; any status, JSON body required."""
        hdrs = {"Accept": "application/json"}
        hdrs.update(headers or {})
        return self._send("GET", url, headers=hdrs)

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
        return self._send("POST", url, headers=hdrs, data=body, auth=req_auth, allow_redirects=False, allow_empty=allow_empty)

    # -- internals ----------------------------------------------------------------------------------
    def _send(self, method: str, url: str, **kwargs: Any) -> JsonResponse:
        """Send, read the body (capped) and parse it, all within one deadline."""
        allow_empty = kwargs.pop("allow_empty", False)
        where = host_port(url)
        if self.verify is not None:
            kwargs["verify"] = self.verify
        if self.http_proxy_url:
            kwargs["proxies"] = {"http": self.http_proxy_url, "https": self.http_proxy_url}
        if self.proxy_auth is not None:
            own = kwargs.get("auth") or self.session.auth  # a request's auth would replace the session's
            if isinstance(own, tuple):
                own = requests.auth.HTTPBasicAuth(*own)
            kwargs["auth"] = self.proxy_auth if own is None else _Chain(self.proxy_auth, own)
        ends_at = time.monotonic() + self.deadline
        connect, read = self.timeout if isinstance(self.timeout, tuple) else (self.timeout, self.timeout)
        outer = getattr(_call, "ends_at", None)
        _call.ends_at = ends_at if outer is None else min(outer, ends_at)
        try:
            try:
                response = self.session.request(
                    method, url, timeout=DeadlineTimeout(connect, read, _call.ends_at), stream=True, **kwargs  # type: ignore[arg-type]  # a urllib3 Timeout: requests passes it through
                )
            except requests.exceptions.RequestException as exc:
                left = _remaining()
                if left is not None and left <= 0.05 and not isinstance(exc, requests.exceptions.SSLError):
                    raise TransportTimeoutError(
                        f"{where} did not answer within {self.deadline:g} s (with retries); "
                        "check the endpoint and your network, then try again."
                    ) from exc
                raise
            content = self._read_body(response, where)
            return self._parse(response, content, url, method, allow_empty=allow_empty)
        except FlyteAuthError:
            raise
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
        except urllib3.exceptions.HTTPError as exc:  # e.g. a malformed header urllib3 refuses
            raise TransportError(f"The answer from {where} could not be read ({type(exc).__name__}); try again.") from exc
        finally:
            _call.ends_at = outer

    def _read_body(self, response: requests.Response, where: str) -> bytes:
        """The body, at most ``max_body`` bytes, each read bounded by what is left of the deadline."""
        status = response.status_code
        try:
            if response._content is not False:  # already read (a custom adapter)
                content = response._content or b""
                if len(content) > self.max_body:
                    raise ProtocolError(
                        f"{where} sent a body larger than {self.max_body // 1024} KiB (HTTP {status}); "
                        "it is not a token or metadata document, so check the endpoint URL.",
                        status=status,
                    )
                return content
            length = response.headers.get("Content-Length", "")
            if length.strip().isdigit() and int(length) > self.max_body:
                raise ProtocolError(
                    f"{where} announced a body of {int(length) // 1024} KiB (HTTP {status}), more than the "
                    f"{self.max_body // 1024} KiB a token or metadata document may have; check the endpoint URL.",
                    status=status,
                )
            raw = response.raw
            chunks: list[bytes] = []
            size = 0
            while True:
                left = _remaining()
                if left is not None and left <= 0:
                    raise TransportTimeoutError(f"{where} did not finish its answer in time (HTTP {status}); try again later.")
                sock = getattr(getattr(raw, "connection", None), "sock", None)
                if sock is not None and left is not None:
                    current = sock.gettimeout()
                    sock.settimeout(left if current is None else min(current, left))
                chunk = raw.read1(_CHUNK, decode_content=True) if hasattr(raw, "read1") else raw.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_body:
                    raise ProtocolError(
                        f"{where} sent a body larger than {self.max_body // 1024} KiB (HTTP {status}); "
                        "it is not a token or metadata document, so check the endpoint URL.",
                        status=status,
                    )
                chunks.append(chunk)
            return b"".join(chunks)
        except (ProtocolError, TransportError):
            raise
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            raise TransportTimeoutError(f"{where} did not finish its answer in time (HTTP {status}); try again later.") from exc
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError, ValueError) as exc:
            raise TransportError(f"The answer from {where} was cut off (HTTP {status}); try again.") from exc
        finally:
            if response.raw is not None:
                response.close()

    @staticmethod
    def _parse(
        response: requests.Response, content: bytes, url: str, method: str, *, allow_empty: bool = False
    ) -> JsonResponse:
        where = host_port(url)
        status = response.status_code
        path = urlsplit(url).path or "/"
        if proxy_refused(response):
            raise ProtocolError(
                f"{where} answered {method} {path} with HTTP {status} from the identity-aware proxy in front of it, "
                "which refused the request's proxy credential; check the proxy command (--proxy-command, "
                "admin.proxyCommand) and that its token is for this deployment.",
                status=status,
            )
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        data: Any = None
        if content and ctype == FORM_TYPE:
            data = _form_body(content, where=where, status=status)
        elif content and ctype not in ("text/html", "application/xhtml+xml"):
            try:
                data = loads(content.decode("utf-8-sig", errors="replace"), where=where)
            except NotJSON:
                data = None  # described below (HTML, a redirect, not JSON)
            except ProtocolError as exc:  # JSON with NaN/Infinity or nested too deep
                raise ProtocolError(f"{exc} (HTTP {status})", status=status) from None
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
    "DEFAULT_DEADLINE",
    "MAX_BODY",
    "DeadlineTimeout",
    "IdempotentRetry",
    "JsonResponse",
    "Transport",
    "build_session",
    "call_deadline",
    "default_retry",
    "host_port",
    "proxy_refused",
]
