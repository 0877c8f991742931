"""The relay's tornado handler (imports jupyter_server; nothing imports this module but the extension)."""

from __future__ import annotations

import html
from typing import Any

import tornado.web
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join

from ..transport.relay import FIELDS, RELAY_PATH, write_redirect

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1 id="relay-title">{title}</h1><p id="relay-message">{message}</p></body></html>"""


class RedirectRelayHandler(JupyterHandler):
    """GET <base_url>flyteauth/callback?code=...&state=... from the identity provider's redirect."""

    auth_resource = "kernels"

    def log_request(self) -> None:  # the query holds an authorization code: never log the request line
        return

    @tornado.web.authenticated
    def get(self) -> None:
        query = {key: self.get_query_argument(key, "") for key in FIELDS}
        if not query["state"]:
            self.set_status(400)
            self.finish(PAGE.format(title="Sign-in link incomplete", message="This page expects a sign-in redirect with a state."))
            return
        write_redirect(query)
        if query["error"]:
            title = "Sign-in was not completed"
            message = f"The identity provider said: {html.escape(query['error_description'] or query['error'])}. Return to your notebook."
        else:
            title = "Signed in"
            message = "You can close this tab and return to your notebook."
        self.set_header("Cache-Control", "no-store")
        self.finish(PAGE.format(title=html.escape(title), message=message))


def setup_handlers(web_app: Any) -> None:
    base_url = web_app.settings.get("base_url", "/")
    web_app.add_handlers(".*$", [(url_path_join(base_url, RELAY_PATH), RedirectRelayHandler)])
