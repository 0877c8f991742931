"""The relay's tornado handler (imports jupyter_server; nothing imports this module but the extension).

The handler needs Jupyter's login (``@tornado.web.authenticated``) and Jupyter's authorizer's consent
to ``execute`` on ``kernels`` (``@authorized``: the code is handed to a kernel). It relays only to a
state a kernel registered as waiting (else "No sign-in is waiting for this", nothing written), and
the access-log line of its requests carries the parameter names only, never a value
(:func:`scrub_relay_log`, wrapped around the application's ``log_function``).
"""

from __future__ import annotations

import html
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join

from ..transport.relay import FIELDS, RELAY_PATH, sweep, write_redirect

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1 id="relay-title">{title}</h1><p id="relay-message">{message}</p></body></html>"""


class RedirectRelayHandler(JupyterHandler):
    """GET <base_url>flyteauth/callback?code=...&state=... from the identity provider's redirect."""

    auth_resource = "kernels"

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
    """Wrap the application's access-log function: a relay request is logged with its query values
    replaced by ``[secret]`` (code, state, and the provider's texts alike)."""

    def log_request(handler: Any) -> None:
        if isinstance(handler, RedirectRelayHandler):
            request = handler.request
            if request.query:
                names = [name for name, _ in parse_qsl(request.query, keep_blank_values=True)]
                request.uri = f"{request.path}?{urlencode([(name[:40], '[secret]') for name in names], safe='[]')}"
            request.headers.pop("Referer", None)  # the provider's page may carry its own parameters
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
