"""The relay's tornado handler (imports jupyter_server; nothing imports this module but the extension).

The handler needs Jupyter's login (``@tornado.web.authenticated``) and Jupyter's authorizer's consent
to ``execute`` on ``kernels`` (``@authorized``: the code is handed to a kernel). It relays only to a
state a kernel registered as waiting (else "No sign-in is waiting for this", nothing written).

No log line carries a query value of a relay request (the code, the state, the provider's texts),
whatever the outcome. Three paths write the request: the access log (the application's
``log_function``, wrapped by :func:`scrub_relay_log`), tornado's error log of an uncaught exception or
an ``HTTPError`` (``log_exception``, which also writes the request's repr) and tornado's request
summary (``_request_summary``, used by both); the handler overrides the last two, and the wrapper
also covers the login page Jupyter sends a signed-out user to (its ``?next=`` is the relay address).
Values become ``[secret]``; a ``Referer`` that names the relay is dropped.
"""

from __future__ import annotations

import html
import traceback
from types import TracebackType
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlencode

import tornado.web
from tornado.log import app_log, gen_log
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join

from ..transport.relay import FIELDS, RELAY_PATH, sweep, write_redirect

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1 id="relay-title">{title}</h1><p id="relay-message">{message}</p></body></html>"""


def scrubbed_uri(uri: str) -> str:
    """``uri`` with every query value replaced by ``[secret]`` (names kept, clipped to 40 characters)."""
    path, _, query = uri.partition("?")
    if not query:
        return path
    names = [name for name, _ in parse_qsl(query, keep_blank_values=True)][:32]
    return f"{path}?{urlencode([(name[:40], '[secret]') for name in names], safe='[]')}"


def _mentions_relay(text: str | None) -> bool:
    """True when ``text`` (a URI or a Referer, %-encoded up to three times or not) names the relay address."""
    for _ in range(4):
        if not text or RELAY_PATH in text:
            return bool(text)
        text = unquote(text)
    return False


class RedirectRelayHandler(JupyterHandler):
    """GET <base_url>flyteauth/callback?code=...&state=... from the identity provider's redirect."""

    auth_resource = "kernels"

    # -- logging: tornado's own paths, each without a query value ------------------------------------
    def _request_summary(self) -> str:  # tornado's access and error lines use this
        return f"{self.request.method} {scrubbed_uri(self.request.uri or '')} ({self.request.remote_ip})"

    def _secret_values(self) -> list[str]:
        values = {unquote(v) for _, v in parse_qsl(self.request.query or "", keep_blank_values=True)}
        values |= {v for _, v in parse_qsl(self.request.query or "", keep_blank_values=True)}
        return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)

    def log_exception(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        """tornado's, without the request's repr (which holds the whole URI) and with every query value
        of the request scrubbed from the message and the traceback text."""
        if isinstance(value, tornado.web.HTTPError):
            message = value.get_message()
            if message:
                gen_log.warning("%d %s: %s", value.status_code, self._request_summary(), self._scrub(message))
            return
        text = "".join(traceback.format_exception(typ, value, tb)) if typ is not None else ""
        app_log.error("Uncaught exception %s\n%s", self._request_summary(), self._scrub(text).rstrip())

    def _scrub(self, text: str) -> str:
        for secret in self._secret_values():
            text = text.replace(secret, "[secret]")
        return text

    @tornado.web.authenticated
    @authorized(action="execute")
    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        query = {key: self.get_query_argument(key, "") for key in FIELDS}
        if not query["state"]:
            self.set_status(400)
            self.finish(PAGE.format(title="Sign-in link incomplete", message="This page expects a sign-in redirect with a state."))
            return
        if write_redirect(query) is None:
            self.set_status(400)
            self.finish(PAGE.format(
                title="No sign-in is waiting for this",
                message="No sign-in is waiting for this address (it was used already, has expired, or was started "
                "elsewhere); start the sign-in again from your notebook.",
            ))
            return
        if query["error"]:
            title = "Sign-in was not completed"
            message = f"The identity provider said: {html.escape(query['error_description'] or query['error'])}. Return to your notebook."
        else:
            title = "Signed in"
            message = "You can close this tab and return to your notebook."
        self.finish(PAGE.format(title=html.escape(title), message=message))


def scrub_relay_log(log_function: Callable[[Any], None]) -> Callable[[Any], None]:
    """Wrap the application's access-log function: a relay request, and any request whose address names
    the relay's (Jupyter's login page with ``?next=<relay address>``), is logged with its query values
    replaced by ``[secret]`` (code, state, and the provider's texts alike), and without a ``Referer``
    that names the relay or comes to the relay (the provider's page may carry its own parameters)."""

    def log_request(handler: Any) -> None:
        request = getattr(handler, "request", None)
        relay = isinstance(handler, RedirectRelayHandler)
        if request is not None and (relay or _mentions_relay(request.uri)):
            request.uri = scrubbed_uri(request.uri or "")
        if request is not None and (relay or _mentions_relay(request.headers.get("Referer"))):
            request.headers.pop("Referer", None)
        log_function(handler)

    log_request.__wrapped__ = log_function  # type: ignore[attr-defined]
    return log_request


def _default_log_function() -> Callable[[Any], None]:
    from jupyter_server.log import log_request

    return log_request


def setup_handlers(web_app: Any) -> None:
    base_url = web_app.settings.get("base_url", "/")
    web_app.add_handlers(".*$", [(url_path_join(base_url, RELAY_PATH), RedirectRelayHandler)])
    current = web_app.settings.get("log_function") or _default_log_function()
    if not hasattr(current, "__wrapped__"):
        web_app.settings["log_function"] = scrub_relay_log(current)
    sweep()  # files a previous server left behind
