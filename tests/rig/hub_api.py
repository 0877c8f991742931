"""A stand-in for JupyterHub's REST API (``GET /hub/api/users/<name>`` with the user's auth_state), for
tests of the Hub sign-in that need real HTTP but not a whole Hub (the real Hub is tests/rig/hub.py).
It answers only the server's own token (``token server-token``), on 127.0.0.1, and counts requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVER_TOKEN = "server-token"


class HubAPIStandIn:
    """``GET /hub/api/users/<user>`` answering ``{"name", "auth_state"}`` (``auth_state`` is settable);
    ``.env`` is a single-user server's environment pointing at it; ``.count()`` the requests so far."""

    def __init__(self, auth_state: dict[str, Any] | None, env: Mapping[str, str] | None = None,
                 user: str = "alice") -> None:
        self.auth_state = auth_state
        self.user = user
        self.requests = 0
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet; never log headers
                pass

            def do_GET(self) -> None:  # noqa: N802
                with stand_in.lock:
                    stand_in.requests += 1
                    state = stand_in.auth_state
                ok = (self.path == f"/hub/api/users/{stand_in.user}"
                      and self.headers.get("Authorization") == f"token {SERVER_TOKEN}")
                body = json.dumps({"name": stand_in.user, "auth_state": state} if ok else {"status": 403}).encode()
                self.send_response(200 if ok else 403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.env = {**(env or {}), "JUPYTERHUB_API_TOKEN": SERVER_TOKEN, "JUPYTERHUB_USER": user,
                    "JUPYTERHUB_API_URL": f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"}

    def count(self) -> int:
        with self.lock:
            return self.requests

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
