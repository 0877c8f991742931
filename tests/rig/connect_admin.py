"""A Flyte 2 control-plane stand-in: ConnectRPC over HTTPS on 127.0.0.1, as the ``flyte`` SDK calls it.

The Flyte 2 SDK (``flyte``) talks to its platform with ConnectRPC (the ``connectrpc`` package, over
pyqwest) using the stubs in ``flyteidl2``; it reads the auth configuration from
``flyteidl2.auth.AuthMetadataService`` and installs its auth interceptors only when the endpoint is
not ``insecure`` (plain HTTP means "no auth" to it). So this stand-in serves TLS with a throwaway CA
(``rig.netparts.make_tls_material``; hand ``.ca_cert`` to ``flyte.init(ca_cert_file_path=...)`` and to
``%flyte_login --ca-cert``), built from ``flyteidl2``'s own WSGI applications:

- ``/flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata`` and ``/GetPublicClientConfig``: the
  test IdP's endpoints and the public client's settings (no token needed, as in Flyte).
- ``/flyteidl2.project.ProjectService/ListProjects`` and ``/GetProject``: protected; the bearer token
  in the configured header key (default ``flyte-authorization``) or ``authorization`` is checked at
  the IdP (introspection with the confidential client: active and not expired; JWT access tokens
  against the IdP's JWKS), else ``UNAUTHENTICATED``.
- ``GET /config/v1/flyte_client`` and ``GET /.well-known/oauth-authorization-server``: the same
  documents FlyteAdmin's HTTP gateway serves (so ``%flyte_login --endpoint`` and the token command
  configure themselves from the same host, as against a real deployment).

``.calls`` counts every RPC by method name and outcome (``"ListProjects"``, ``"ListProjects:unauthenticated"``),
``.tokens_seen`` how many distinct access tokens were accepted. Documents and the token check are
those of :class:`rig.flyteadmin.FlyteAdminStandIn` (the gRPC/HTTP stand-in), reused, not copied.
Nothing here logs a header or a token.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from flyteidl2.auth import auth_service_pb2
from flyteidl2.auth.auth_service_connect import AuthMetadataServiceWSGIApplication
from flyteidl2.project import project_service_pb2
from flyteidl2.project.project_service_connect import ProjectServiceWSGIApplication

from .background import Background
from .flyteadmin import DEFAULT_REDIRECT_URI, PROJECTS, FlyteAdminStandIn
from .idp import IdP
from .netparts import make_tls_material

HOST = "127.0.0.1"
MAX_BODY = 1 << 20


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet: tests assert on counters
        pass


class _Handler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:  # never log request lines or headers
        pass


class ConnectAdmin(Background):
    """The Flyte 2 platform's auth metadata and project services for ``idp``, over TLS."""

    name = "connect-admin"

    def __init__(
        self,
        idp: IdP,
        tls_dir: str | Path,
        *,
        client_id: str = "jupyter-native",
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        scopes: Iterable[str] = ("openid", "offline_access", "api:read"),
        authorization_metadata_key: str = "flyte-authorization",
        port: int = 0,
    ) -> None:
        self.idp = idp
        # The documents and the token check of the HTTP stand-in (its own socket is never served).
        self._docs = FlyteAdminStandIn(
            idp, client_id=client_id, redirect_uri=redirect_uri, scopes=scopes,
            authorization_metadata_key=authorization_metadata_key, port=0,
        )
        self._docs._server.server_close()
        self.authorization_metadata_key = authorization_metadata_key
        self.tls = make_tls_material(Path(tls_dir))
        self.ca_cert = str(self.tls.ca_cert)
        self.calls: collections.Counter[str] = collections.Counter()
        self._accepted: set[str] = set()
        self._lock = threading.Lock()
        apps = [
            AuthMetadataServiceWSGIApplication(_AuthMetadata(self)),
            ProjectServiceWSGIApplication(_Projects(self)),
        ]
        self._routes = {app.path: app for app in apps}
        self._server = _Server((HOST, port), _Handler)
        self._server.set_app(self._app)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.tls.server_cert), str(self.tls.server_key))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.endpoint = f"https://{HOST}:{self.port}"
        self.service = f"{HOST}:{self.port}"

    # ------------------------------------------------------------------ lifecycle (rig.background)
    def stop(self) -> None:
        super().stop()
        self._docs._session.close()

    def __repr__(self) -> str:
        return f"ConnectAdmin(endpoint={self.endpoint!r}, idp={self.idp.issuer!r})"

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    @property
    def tokens_seen(self) -> int:
        with self._lock:
            return len(self._accepted)

    # ------------------------------------------------------------------ token check
    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1

    def check(self, method: str, ctx: Any) -> dict[str, Any]:
        """The caller's claims, or ConnectError(UNAUTHENTICATED); counts the call either way."""
        headers = ctx.request_headers()
        token = None
        for key in (self.authorization_metadata_key, "authorization"):
            value = headers.get(key) if key else None
            if value and value[:7].lower() == "bearer " and value[7:].strip():
                token = value[7:].strip()
                break
        claims = self._docs.validate(token) if token else None
        if claims is None:
            self._count(f"{method}:unauthenticated")
            raise ConnectError(Code.UNAUTHENTICATED, "missing or invalid bearer token")
        self._count(method)
        with self._lock:
            self._accepted.add(hashlib.sha256(token.encode()).hexdigest())
        return claims

    # ------------------------------------------------------------------ WSGI
    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "GET" and path in (
            "/config/v1/flyte_client", "/.well-known/oauth-authorization-server",
        ):
            self._count(path)
            doc = self._docs.client_config() if path.startswith("/config") else self._docs.oauth_metadata()
            body = json.dumps(doc).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                      ("Cache-Control", "no-store")])
            return [body]
        # A bounded, fully read body: connectrpc drains wsgi.input to EOF after an error, which on a
        # kept-alive socket would wait for the client to hang up.
        try:
            length = max(0, min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY))
        except ValueError:
            length = 0
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length) if length else b"")
        service = "/" + path.lstrip("/").split("/", 1)[0]
        app = self._routes.get(service)
        if app is None:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
            return [b"not found"]
        return app(environ, start_response)


class _AuthMetadata:
    """flyteidl2.auth.AuthMetadataService: open, as in Flyte (the client needs it to sign in)."""

    def __init__(self, admin: ConnectAdmin) -> None:
        self.admin = admin

    def get_o_auth2_metadata(self, request: Any, ctx: Any) -> auth_service_pb2.GetOAuth2MetadataResponse:
        self.admin._count("GetOAuth2Metadata")
        md = self.admin._docs.oauth_metadata()
        return auth_service_pb2.GetOAuth2MetadataResponse(
            issuer=md["issuer"], authorization_endpoint=md["authorization_endpoint"],
            token_endpoint=md["token_endpoint"], response_types_supported=md["response_types_supported"],
            scopes_supported=md["scopes_supported"],
            token_endpoint_auth_methods_supported=md["token_endpoint_auth_methods_supported"],
            jwks_uri=md["jwks_uri"], code_challenge_methods_supported=md["code_challenge_methods_supported"],
            grant_types_supported=md["grant_types_supported"],
            device_authorization_endpoint=md["device_authorization_endpoint"],
        )

    def get_public_client_config(self, request: Any, ctx: Any) -> auth_service_pb2.GetPublicClientConfigResponse:
        self.admin._count("GetPublicClientConfig")
        cfg = self.admin._docs.client_config()
        return auth_service_pb2.GetPublicClientConfigResponse(
            client_id=cfg["client_id"], redirect_uri=cfg["redirect_uri"], scopes=cfg["scopes"],
            authorization_metadata_key=cfg["authorization_metadata_key"], audience=cfg["audience"],
        )


class _Projects:
    """flyteidl2.project.ProjectService: ListProjects and GetProject behind the token check."""

    def __init__(self, admin: ConnectAdmin) -> None:
        self.admin = admin

    @staticmethod
    def _project(entry: dict[str, str]) -> project_service_pb2.Project:
        return project_service_pb2.Project(id=entry["id"], name=entry["name"], description=entry["description"])

    def list_projects(self, request: Any, ctx: Any) -> project_service_pb2.ListProjectsResponse:
        self.admin.check("ListProjects", ctx)
        return project_service_pb2.ListProjectsResponse(
            projects=project_service_pb2.Projects(projects=[self._project(p) for p in PROJECTS]),
        )

    def get_project(self, request: Any, ctx: Any) -> project_service_pb2.GetProjectResponse:
        self.admin.check("GetProject", ctx)
        for entry in PROJECTS:
            if entry["id"] == request.id:
                return project_service_pb2.GetProjectResponse(project=self._project(entry))
        raise ConnectError(Code.NOT_FOUND, f"project {request.id!r} not found")

    def create_project(self, request: Any, ctx: Any) -> Any:
        self.admin.check("CreateProject", ctx)
        raise ConnectError(Code.UNIMPLEMENTED, "the stand-in has a fixed project list")

    update_project = create_project


def connect_call(admin: ConnectAdmin, method: str = "ListProjects", headers: dict[str, str] | None = None,
                 body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """One Connect unary call with the JSON codec, as any HTTP client can make it: ``(status, body)``.

    ``ProjectService`` methods only; 200 with the response message, 401 ``{"code": "unauthenticated"}``.
    """
    import requests

    with requests.Session() as session:
        session.trust_env = False
        r = session.post(
            f"{admin.endpoint}/flyteidl2.project.ProjectService/{method}", data=json.dumps(body or {}),
            headers={"Content-Type": "application/json", "Connect-Protocol-Version": "1", **(headers or {})},
            verify=admin.ca_cert, timeout=10,
        )
        return r.status_code, r.json()
