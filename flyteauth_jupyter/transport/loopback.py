"""The RFC 8252 loopback redirect receiver for one browser sign-in attempt.

It listens on the loopback address of the redirect URI: 127.0.0.1 (or [::1]) for an IP literal; for
``localhost`` on both 127.0.0.1 and [::1] on the same port (the URI is kept as registered), because
a browser may resolve ``localhost`` to either, and a port left free on the other family could be
taken by another local user to receive the redirect; when [::1] is taken the sign-in is refused
(where the machine has no IPv6 loopback, 127.0.0.1 alone is bound). It uses the redirect URI's port,
or any free port when that port is busy and the host is a loopback IP literal (RFC 8252 section 7.3). It serves in its own thread; only the redirect path
counts (stray requests such as /favicon.ico get 404), the ``state`` is checked before anything else
(a wrong one gets 400 and is remembered, and the receiver keeps waiting for the right one),
``?error=`` becomes the matching OAuth error, and the browser gets a small, escaped HTML page. One
receiver per attempt, closed afterwards; the request line (which holds the code) is never logged.

Paste-back (VS Code remote, SSH, containers): the browser on the user's laptop is redirected to
``http://127.0.0.1:<port>/callback?...`` *there* and shows a connection error, but the address bar
still holds the redirect. :meth:`LoopbackReceiver.submit_redirect` takes that address (or just its
query), checks the state first, and completes the wait exactly as a received redirect would. A
refused paste (wrong state, wrong path, no code) raises and the receiver keeps waiting; the pasted
text is never logged or quoted in a message (it holds the code).
"""

from __future__ import annotations

import errno
import hmac
import html
import ipaddress
import logging
import re
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..control import Waiter
from ..endpoint import origin
from ..errors import (
    ConfigurationError,
    FlyteAuthError,
    LoginTimeoutError,
    OAuthError,
    ProtocolError,
    StateMismatchError,
    oauth_error,
)

log = logging.getLogger(__name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}}
h1{{font-size:1.4em}}</style></head>
<body><h1 id="{ident}">{title}</h1><p>{text}</p></body></html>
"""


def render_page(title: str, text: str, ident: str = "message") -> bytes:
    """A small self-contained HTML page; every piece of text is escaped."""
    return _PAGE.format(title=html.escape(title), text=html.escape(text), ident=html.escape(ident)).encode("utf-8")


@dataclass(frozen=True)
class AuthorizationResponse:
    """What the redirect carried: the authorization ``code`` (a secret), ``state`` and ``iss``."""

    code: str = field(repr=False)
    state: str = field(repr=False)
    iss: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True  # lets a new attempt bind right after the last one closed (TIME_WAIT)
    timeout = 0.5  # handle_request(): a connection that vanished before accept() does not block the loop

    def __init__(self, address: tuple[str, int], family: int, receiver: LoopbackReceiver) -> None:
        self.address_family = family
        self.receiver = receiver
        self._wake_r, self._wake_w = socket.socketpair()  # closed by server_close(), also on a failed bind
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        super().__init__(address, _Handler)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until :meth:`shutdown`, blocked on the listening socket and a wake-up socket pair.

        No polling: ``shutdown()`` returns at once, so the sign-in does not wait up to a poll interval
        between its redirect and the code exchange (bench: PKCE row). ``poll_interval`` is ignored.
        """
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while not self._stopping.is_set():
                    for key, _ in selector.select():
                        if key.fileobj is self and not self._stopping.is_set():
                            self.handle_request()
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        self._stopping.set()
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass
        self._stopped.wait()

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # an idle (pre)connection may not hold a handler thread for long
    server_version = "flyteauth"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the request line holds the code
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        status, title, text, ident = self.server.receiver._handle(self.path)
        body = render_page(title, text, ident)
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass
        self.close_connection = True


def _bind_address(host: str) -> tuple[str, int]:
    """The address literal and family to bind for a redirect host (loopback only)."""
    bare = host.strip("[]").lower()
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        ip = None
    if ip is not None:
        if not ip.is_loopback:
            raise ConfigurationError(
                f"The redirect URI's host {host} is not a loopback address; a local login needs http://127.0.0.1:<port>/<path>."
            )
        return str(ip), socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    if bare in ("localhost", "localhost.localdomain"):
        return "127.0.0.1", socket.AF_INET
    raise ConfigurationError(
        f"The redirect URI's host {host} is not a loopback address; a local login needs http://127.0.0.1:<port>/<path>."
    )


class RedirectReceiver:
    """What the loopback and the relay receivers share: the context-manager lifecycle, the ``done``
    event, and paste-back (the user pastes the address the browser ended on when the redirect itself
    cannot reach the kernel).

    A receiver provides ``start()``, ``close()``, ``_state``, ``_expected_issuer``, ``_site`` (the
    endpoint's host:port, for messages, or None), ``_lock``,
    ``_done``, ``_closed``, ``_result``, ``_error``, ``completed_by``, ``refused_paste_count`` and
    ``_path_ok(path)``.
    """

    _state: str
    _expected_issuer: str | None
    _site: str | None
    _lock: threading.Lock
    _done: threading.Event
    _closed: bool
    _result: AuthorizationResponse | None
    _error: FlyteAuthError | None
    completed_by: str | None
    refused_paste_count: int

    def start(self):  # pragma: no cover - every receiver defines it
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - every receiver defines it
        raise NotImplementedError

    def _path_ok(self, path: str) -> bool:  # pragma: no cover - every receiver defines it
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def done(self) -> threading.Event:
        return self._done

    def submit_redirect(self, url: str) -> None:
        """Complete the wait with a redirect address the user pasted (any thread).

        ``url`` is the whole address the browser ended on, or just its query string. The state is
        compared first; a refused paste raises :class:`StateMismatchError` or :class:`ProtocolError`
        and the receiver keeps waiting. An accepted paste (our state, and a code or an OAuth error)
        ends the wait exactly as the redirect itself would have.
        """
        outcome = accept_pasted_redirect(
            url,
            state=self._state,
            path_ok=self._path_ok,
            expected_issuer=self._expected_issuer,
            on_refused=self._count_refused_paste,
            where=self._site,
        )
        with self._lock:
            if self._done.is_set():
                raise ProtocolError("This sign-in has already received its redirect; nothing more needs to be pasted.")
            if self._closed:
                raise ProtocolError("This sign-in is no longer waiting for a redirect; start the login again.")
            self._result, self._error = outcome
            self.completed_by = "paste"
            self._done.set()
        log.info("the sign-in redirect was pasted in (%s)", "code" if outcome[0] is not None else "error")

    def _count_refused_paste(self) -> None:
        with self._lock:
            self.refused_paste_count += 1


class LoopbackReceiver(RedirectReceiver):
    """Receives one authorization response on a loopback redirect URI.

    ``state`` is the value this attempt sent; ``expected_issuer`` (optional) is compared with the
    ``iss`` parameter when the server sends one (RFC 9207). ``site`` names what the user signs in
    to, for the page. Use as a context manager or call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        redirect_uri: str,
        *,
        state: str,
        expected_issuer: str | None = None,
        site: str | None = None,
    ) -> None:
        parts = urlsplit(redirect_uri)
        if parts.scheme.lower() != "http":
            raise ConfigurationError(
                f"The redirect URI must be http://127.0.0.1:<port>/<path> for a local login, not {parts.scheme or 'a relative URI'}."
            )
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError("The redirect URI has an invalid port.") from exc
        host = parts.hostname or ""
        self._bind_host, self._family = _bind_address(host)
        self._ip_literal = host.strip("[]").lower() not in ("localhost", "localhost.localdomain")
        self.registered_uri = redirect_uri
        self.redirect_uri = redirect_uri
        self.path = parts.path or "/"
        self._parts = parts
        self._wanted_port = port or 0
        self._state = state
        self._expected_issuer = expected_issuer.rstrip("/") if expected_issuer else None
        self._site = site
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._result: AuthorizationResponse | None = None
        self._error: FlyteAuthError | None = None
        self.wrong_state_count = 0
        self.stray_count = 0
        self.refused_paste_count = 0
        #: how the wait was completed: "redirect" (the browser reached us) or "paste" (submit_redirect)
        self.completed_by: str | None = None
        self._closed = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._twin: _Server | None = None  # [::1] on the same port, for a ``localhost`` redirect URI
        self._twin_thread: threading.Thread | None = None
        self.port: int | None = None

    def __repr__(self) -> str:
        return f"LoopbackReceiver(redirect_uri={self.redirect_uri!r}, listening={self._server is not None})"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> LoopbackReceiver:
        """Bind and start serving; the effective ``redirect_uri`` is known afterwards."""
        if self._server is not None:
            return self
        try:
            server = _Server((self._bind_host, self._wanted_port), self._family, self)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or not self._wanted_port:
                raise ConfigurationError(
                    f"Could not listen on {self._bind_host}:{self._wanted_port} for the sign-in redirect "
                    f"({exc.strerror or type(exc).__name__})."
                ) from exc
            if not self._ip_literal:
                raise ConfigurationError(
                    f"Port {self._wanted_port} on 127.0.0.1 (from the redirect URI {self.registered_uri}) is in use, "
                    "probably by another sign-in or program; close it, or register a redirect URI on "
                    "http://127.0.0.1/... so any free port can be used."
                ) from exc
            log.info("redirect port %s is busy; using a free port (RFC 8252 section 7.3)", self._wanted_port)
            server = _Server((self._bind_host, 0), self._family, self)
        if not self._ip_literal:
            server = self._bind_twin(server)
        self._server = server
        self.port = server.server_address[1]
        if self.port != self._parts.port:  # a free port was used: say which in the redirect URI
            host = self._parts.hostname or self._bind_host
            netloc_host = f"[{host}]" if ":" in host else host
            self.redirect_uri = urlunsplit(
                (self._parts.scheme, f"{netloc_host}:{self.port}", self._parts.path, self._parts.query, "")
            )
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="flyteauth-loopback", daemon=True
        )
        self._thread.start()
        if self._twin is not None:
            self._twin_thread = threading.Thread(
                target=self._twin.serve_forever, kwargs={"poll_interval": 0.1}, name="flyteauth-loopback6", daemon=True
            )
            self._twin_thread.start()
        return self

    def _bind_twin(self, server: _Server) -> _Server:
        """For ``localhost``: also bind [::1] on ``server``'s port (retrying other free ports when the
        URI has none); refuse when [::1] on the registered port is taken. No IPv6 loopback: IPv4 only."""
        for _ in range(8):
            port = server.server_address[1]
            try:
                self._twin = _Server(("::1", port), socket.AF_INET6, self)
                return server
            except OSError as exc:
                if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
                    log.debug("no IPv6 loopback on this machine; the redirect is received on 127.0.0.1 only")
                    return server
                if exc.errno != errno.EADDRINUSE or self._wanted_port:
                    server.server_close()
                    raise ConfigurationError(
                        f"Port {port} on [::1] (from the redirect URI {self.registered_uri}) is in use, possibly by "
                        "another user waiting to receive your sign-in; close it, or register a redirect URI on "
                        "http://127.0.0.1/... instead."
                    ) from exc
            server.server_close()  # any free port: try another pair
            server = _Server((self._bind_host, 0), self._family, self)
        server.server_close()
        raise ConfigurationError("Could not find a port free on both 127.0.0.1 and [::1] for the sign-in redirect.")

    def close(self) -> None:
        """Stop serving and release the port; idempotent, safe from any thread."""
        with self._lock:
            self._closed = True
        twin, self._twin = self._twin, None
        if twin is not None:
            try:
                if self._twin_thread is not None and self._twin_thread.is_alive():
                    twin.shutdown()
            finally:
                twin.server_close()
                if self._twin_thread is not None:
                    self._twin_thread.join(timeout=2)
        server, self._server = self._server, None
        if server is None:
            return
        try:
            if self._thread is not None and self._thread.is_alive():
                server.shutdown()
        finally:
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=2)

    # -- waiting ---------------------------------------------------------------------------------
    def wait(self, waiter: Waiter) -> AuthorizationResponse:
        """Block until the redirect with our state arrives, the deadline passes or the flow is cancelled."""
        try:
            waiter.wait_for(self._done)
        except LoginTimeoutError as exc:
            if self.wrong_state_count:
                raise LoginTimeoutError(
                    f"{exc} A redirect with a different state arrived (a stale browser tab or another sign-in) "
                    "and was refused; use the newest sign-in link."
                ) from None
            raise
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def _path_ok(self, path: str) -> bool:
        return path == self.path

    # -- the request handler's logic (pure: path in, page out) ------------------------------------
    def _handle(self, raw_path: str) -> tuple[int, str, str, str]:
        parts = urlsplit(raw_path)
        if parts.path != self.path:
            with self._lock:
                self.stray_count += 1
            return 404, "Not found", "This address only receives the sign-in redirect.", "not-found"
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode("utf-8", "replace"), self._state.encode("utf-8")):
            with self._lock:
                self.wrong_state_count += 1
            return (
                400,
                "Sign-in link not recognised",
                "This response does not belong to the sign-in in progress (a stale tab or another login). "
                "Use the newest sign-in link from the notebook.",
                "state-mismatch",
            )
        with self._lock:
            if self._done.is_set():
                return 400, "Already handled", "This sign-in was already completed; return to the notebook.", "already"
            self._result, self._error = interpret_redirect(params, self._expected_issuer, where=self._site)
            self.completed_by = "redirect"
            self._done.set()
        if self._result is not None:
            where = f" to {self._site}" if self._site else ""
            return 200, "Signed in", f"You are signed in{where}. You can close this tab and return to the notebook.", "done"
        if isinstance(self._error, ProtocolError):
            return 400, "Sign-in failed", "The response did not complete the sign-in.", "error"
        denied = params.get("error") == "access_denied"
        return (
            200,
            "Sign-in denied" if denied else "Sign-in failed",
            ("The sign-in was denied. " if denied else "The sign-in did not complete. ")
            + "You can close this tab and return to the notebook.",
            "denied" if denied else "error",
        )


def interpret_redirect(
    params: dict[str, str], expected_issuer: str | None, *, where: str | None = None
) -> tuple[AuthorizationResponse | None, FlyteAuthError | None]:
    """What an authorization response whose state already matched means: a code, or the error to raise.

    Shared by the loopback receiver and the Jupyter relay receiver (RFC 6749 4.1.2, RFC 9207), for a
    redirect that arrived and for one pasted. Every error names ``where`` (the endpoint's host:port the
    sign-in is for; else the expected issuer's host:port), as every message does (pinned 7).
    """
    where = where or _issuer_host_port(expected_issuer)
    for_site = f" for {where}" if where else ""
    iss = params.get("iss") or None
    if iss and expected_issuer and iss.rstrip("/") != expected_issuer.rstrip("/"):
        return None, ProtocolError(
            f"The sign-in redirect{for_site} came from a different authorization server than the one asked "
            "(RFC 9207 iss mismatch); sign in again."
        )
    if "error" in params:
        return None, oauth_error(params["error"], params.get("error_description"), where=where)
    if params.get("code"):
        return AuthorizationResponse(code=params["code"], state=params.get("state", ""), iss=iss), None
    return None, ProtocolError(f"The sign-in redirect{for_site} carried neither a code nor an error; sign in again.")


def _issuer_host_port(issuer: str | None) -> str | None:
    found = origin(issuer) if issuer else None
    if found is None:
        return None
    _, host, port = found
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: a pasted address longer than this is not a redirect (real ones are well under 2 KB)
MAX_PASTE = 8192


def read_pasted_redirect(text: str) -> tuple[str | None, dict[str, str]]:
    """``(path, params)`` of a pasted redirect address; ``path`` is None when only a query was pasted.

    Accepts ``http://127.0.0.1:53593/callback?code=...&state=...``, the same without the scheme
    (``127.0.0.1:53593/callback?...``), a path with its query (``/callback?...``), or the query alone
    (``?code=...&state=...`` or ``code=...&state=...``). Whitespace anywhere is dropped (a wrapped
    line). Raises ProtocolError for text that cannot be a redirect; no message quotes the text.
    """
    if not isinstance(text, str):
        raise ProtocolError("Paste the address your browser ended on as text.")
    text = "".join(text.split())
    if not text:
        raise ProtocolError("Nothing was pasted; paste the whole address your browser ended on after signing in.")
    if len(text) > MAX_PASTE:
        raise ProtocolError("The pasted text is too long to be the sign-in redirect; paste only the address from the browser's address bar.")
    path: str | None
    if _SCHEME.match(text):
        parts = urlsplit(text)
        path, query = parts.path or "/", parts.query
    elif text.startswith("/"):
        parts = urlsplit(text)
        path, query = parts.path, parts.query
    elif text.startswith("?"):
        path, query = None, text[1:]
    elif "?" in text and "=" not in text.split("?", 1)[0]:  # host:port/path?query, as some address bars show it
        parts = urlsplit("http://" + text)
        path, query = parts.path or "/", parts.query
    else:
        path, query = None, text
    query = query.split("#", 1)[0]
    try:
        pairs = parse_qs(query, keep_blank_values=True, max_num_fields=64)
    except ValueError:
        raise ProtocolError("The pasted text is not a sign-in redirect address; paste the whole address from the browser's address bar.") from None
    return path, {key: values[0] for key, values in pairs.items()}


def accept_pasted_redirect(
    text: str,
    *,
    state: str,
    path_ok: Callable[[str], bool],
    expected_issuer: str | None,
    on_refused: Callable[[], None] | None = None,
    where: str | None = None,
) -> tuple[AuthorizationResponse | None, FlyteAuthError | None]:
    """Check a pasted redirect for the receiver waiting on ``state``; return :func:`interpret_redirect`'s outcome.

    The state is compared (in constant time) before anything else. Raises, leaving the sign-in
    waiting, for a paste that must not complete it: StateMismatchError (no or another state),
    ProtocolError (not the redirect path, or neither a code nor an error in it). Shared by the
    loopback and relay receivers.
    """
    try:
        path, params = read_pasted_redirect(text)
        pasted_state = params.get("state")
        if not pasted_state:
            raise StateMismatchError(
                "The pasted address has no state in it; copy the whole address from your browser's address bar."
            )
        if not hmac.compare_digest(pasted_state.encode("utf-8", "replace"), state.encode("utf-8")):
            raise StateMismatchError(
                "The pasted address belongs to another sign-in (its state does not match); paste the address "
                "from the tab of the newest sign-in link."
            )
        if path is not None and not path_ok(path):
            raise ProtocolError(
                "The pasted address is not the sign-in redirect (wrong path); paste the address your browser "
                "ended on after signing in, not the sign-in link."
            )
        result, error = interpret_redirect(params, expected_issuer, where=where)
        if error is not None and not isinstance(error, OAuthError):
            if "code" not in params and "error" not in params:
                raise ProtocolError(
                    "The pasted address has no code in it; copy the whole address from your browser's address bar."
                )
            raise error
    except ProtocolError:
        if on_refused is not None:
            on_refused()
        raise
    return result, error


__all__ = [
    "AuthorizationResponse",
    "LoopbackReceiver",
    "RedirectReceiver",
    "accept_pasted_redirect",
    "interpret_redirect",
    "read_pasted_redirect",
    "render_page",
]
