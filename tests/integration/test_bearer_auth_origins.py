"""``BearerAuth`` (DESIGN.md, pinned 16) against real local servers and real tokens from the IdP.

Two HTTP servers on 127.0.0.1 play the deployment ("own", the authenticator's endpoint) and another
origin ("other"). Each records the headers and body of every request it receives. The own server
accepts only tokens the IdP says are active (introspection), so a 401 there is a real rejection.
The authenticator is a real ``ClientCredentialsAuthenticator`` whose refresh asks the IdP.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
import requests

from flyteauth_jupyter import ClientConfig, ClientCredentialsAuthenticator, Credentials, StaticClientConfigStore
from flyteauth_jupyter.clients import BearerAuth
from flyteauth_jupyter.errors import ConfigurationError

pytestmark = pytest.mark.idp


class Recorder:
    """A real HTTP server: ``routes[path] = (status, headers)``; ``/api`` checks the bearer at the IdP."""

    def __init__(self, idp: Any, header_key: str) -> None:
        self.idp = idp
        self.header_key = header_key
        self.routes: dict[str, tuple[int, dict[str, str]]] = {}
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _active(self, value: str | None) -> bool:
        if not value or not value.lower().startswith("bearer "):
            return False
        r = requests.post(self.idp.introspection_endpoint, data={"token": value[7:]},
                          auth=("jupyter-confidential", "confidential-secret"), timeout=10)
        return r.status_code == 200 and r.json().get("active") is True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with recorder._lock:
                    recorder.seen.append({"method": self.command, "path": path, "body": body,
                                          "headers": {k.lower(): v for k, v in self.headers.items()}})
                if path == "/api":
                    status, headers = (200, {}) if recorder._active(self.headers.get(recorder.header_key)) else (401, {})
                else:
                    status, headers = recorder.routes.get(path, (404, {}))
                data = json.dumps({"path": path}).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _any

        return Handler


class CountingAuthenticator(ClientCredentialsAuthenticator):
    """The real authenticator, counting how often a refresh was asked for."""

    refreshes = 0

    def refresh_credentials(self, *, interactive: bool = True) -> Credentials:
        self.refreshes += 1
        return super().refresh_credentials(interactive=interactive)


@pytest.fixture
def servers(idp, request) -> Iterator[tuple[Recorder, Recorder, CountingAuthenticator]]:
    header_key = getattr(request, "param", "flyte-authorization")
    own, other = Recorder(idp, header_key).start(), Recorder(idp, header_key).start()
    config = ClientConfig(token_endpoint=idp.token_endpoint, authorization_endpoint=idp.authorization_endpoint,
                          redirect_uri="http://127.0.0.1:53593/callback", client_id="jupyter-confidential",
                          scopes=["api:read"])
    auth = CountingAuthenticator(own.url, "jupyter-confidential", "confidential-secret",
                                 StaticClientConfigStore(config), header_key=header_key)
    yield own, other, auth
    own.stop()
    other.stop()


def _no_token(seen: list[dict[str, Any]], token: str) -> bool:
    return all(token not in v and not v.lower().startswith("bearer") for r in seen for v in r["headers"].values())


@pytest.mark.parametrize("servers", ["flyte-authorization", "authorization"], indirect=True)
@pytest.mark.parametrize("status, method", [(302, "GET"), (307, "POST")])
def test_cross_origin_redirect_carries_no_token_and_causes_no_refresh(servers, status, method):
    own, other, auth = servers
    token = auth.get_credentials() or auth.refresh_credentials()
    auth.refreshes = 0
    own.routes["/start"] = (status, {"Location": f"{other.url}/landing"})
    other.routes["/landing"] = (401, {"WWW-Authenticate": "Bearer"})
    response = requests.request(method, f"{own.url}/start", data=b"payload" if method == "POST" else None,
                                auth=BearerAuth(auth), timeout=10)
    assert response.status_code == 401 and response.url == f"{other.url}/landing"
    assert own.seen[0]["headers"][auth.header_key] == f"Bearer {token.access_token}"  # our origin got it
    assert [r["path"] for r in other.seen] == ["/landing"]  # the other origin was asked once ...
    assert _no_token(other.seen, token.access_token)  # ... with no token under any header name
    assert auth.refreshes == 0  # and its 401 did not make us refresh


def test_redirect_back_to_own_origin_gets_the_token_again(servers):
    own, other, auth = servers
    token = auth.refresh_credentials()
    own.routes["/start"] = (302, {"Location": f"{other.url}/hop"})
    other.routes["/hop"] = (302, {"Location": f"{own.url}/api"})
    response = requests.get(f"{own.url}/start", auth=BearerAuth(auth), timeout=10)
    assert response.status_code == 200 and _no_token(other.seen, token.access_token)
    assert own.seen[-1]["path"] == "/api"


def test_request_to_another_origin_never_asks_for_a_token(servers):
    own, other, auth = servers
    other.routes["/x"] = (401, {})
    response = requests.get(f"{other.url}/x", auth=BearerAuth(auth), timeout=10)
    assert response.status_code == 401 and auth.refreshes == 0 and auth.get_credentials() is None
    assert _no_token(other.seen, "never-a-token")


def test_extra_origins_receive_the_token(servers):
    own, other, auth = servers
    token = auth.refresh_credentials()
    other.routes["/x"] = (200, {})
    requests.get(f"{other.url}/x", auth=BearerAuth(auth, origins=[other.url]), timeout=10)
    assert other.seen[0]["headers"][auth.header_key] == f"Bearer {token.access_token}"
    with pytest.raises(ConfigurationError):
        BearerAuth(auth, origins=["ftp://127.0.0.1"])


def test_same_origin_401_refreshes_once_and_resends_the_body_once(servers):
    own, _, auth = servers
    auth._set_credentials(Credentials("revoked-or-expired-token", expires_in=3600))
    response = requests.post(f"{own.url}/api", data=b'{"n": 1}', auth=BearerAuth(auth), timeout=10)
    assert response.status_code == 200 and [r.status_code for r in response.history] == [401]
    assert auth.refreshes == 1
    assert [(r["method"], r["body"]) for r in own.seen] == [("POST", b'{"n": 1}'), ("POST", b'{"n": 1}')]
    assert own.seen[1]["headers"][auth.header_key] == f"Bearer {auth.get_credentials().access_token}"


def test_a_second_401_is_returned_not_retried_again(servers, idp):
    own, _, auth = servers
    own.routes["/always-401"] = (401, {})
    auth._set_credentials(Credentials("stale-token", expires_in=3600))
    response = requests.get(f"{own.url}/always-401", auth=BearerAuth(auth), timeout=10)
    assert response.status_code == 401 and auth.refreshes == 1 and len(own.seen) == 2


def test_an_authenticator_without_an_endpoint_needs_origins():
    class NoEndpoint:
        def fetch_grpc_call_auth_metadata(self):
            return ("authorization", "Bearer x")

    with pytest.raises(ConfigurationError):
        BearerAuth(NoEndpoint())
    assert BearerAuth(NoEndpoint(), origins=["http://127.0.0.1:9"]).allows("http://127.0.0.1:9/a")
    assert not BearerAuth(NoEndpoint(), origins=["http://127.0.0.1:9"]).allows("https://127.0.0.1:9/a")
