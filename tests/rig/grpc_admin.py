"""A FlyteAdmin gRPC stand-in: flyteidl's own services on grpcio, 127.0.0.1, checking tokens at the IdP.

FlyteAdmin serves gRPC and its HTTP documents on one port; so does this stand-in:

- ``GrpcAdminStandIn(http_admin)`` runs a grpcio server (flyteidl's generated servicers) on an
  internal port and a front port (``.endpoint`` = ``127.0.0.1:<port>``, flytekit's form) that routes
  each TCP connection by its first bytes: the HTTP/2 preface (``PRI ...``) to gRPC, anything else to
  the HTTP stand-in (``tests/rig/flyteadmin.py``). So ``%flyte_login --endpoint http://127.0.0.1:<port>``
  and ``PlatformConfig(endpoint="127.0.0.1:<port>", insecure=True)`` meet at one keyring service, as
  against a real deployment.
- ``AuthMetadataService`` (anonymous): ``GetOAuth2Metadata`` and ``GetPublicClientConfig``, the same
  documents the HTTP stand-in serves (one source of truth).
- ``AdminService``: ``ListProjects`` and ``GetDomains``; every call's ``Bearer`` token is checked at
  the IdP (introspection: active and not expired; JWT access tokens against the JWKS), else
  ``UNAUTHENTICATED``. The token is read, as FlyteAdmin does, from the configured metadata key (the
  HTTP stand-in's ``authorization_metadata_key``, default ``flyte-authorization``) or else the
  standard ``authorization``. Other AdminService methods answer ``UNIMPLEMENTED``.
- Behind an identity-aware proxy (the HTTP stand-in's ``proxy`` gate, tests/rig/proxy.py): every call,
  the anonymous ``AuthMetadataService`` ones too, needs the gate's ``proxy-authorization`` metadata,
  else UNAUTHENTICATED before the service sees it (recorded in the gate's ``.seen`` as ``"grpc"``).
- Counters: ``.calls`` (method name -> calls), ``.unauthenticated`` (method -> rejected calls),
  ``.accepted`` (``(subject, metadata key)`` of each accepted call, in order).
- ``token_check="accept"`` (``make bench``'s whole-RPC row only): every AdminService call is accepted
  without asking the IdP, with or without a bearer header (recorded in ``.accepted`` as ``("", key)``,
  ``key`` empty when none came), so that a timed RPC measures the client's auth cost and not an
  introspection round trip. The default, ``"introspect"``, checks every token as above.

``CountedIdP(idp)`` puts a counting TCP forwarder in front of the IdP and rewrites the relayed
endpoints (not the issuer) to it, so ``.connections`` counts every connection a *client* opened to
the IdP (the stand-in's own introspection goes direct). Zero connections proves zero requests.
"""

from __future__ import annotations

import collections
import concurrent.futures
import socket
import threading
import time
from typing import Any, Callable

import grpc
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc, auth_pb2, auth_pb2_grpc

from .flyteadmin import PROJECTS, FlyteAdminStandIn
from .idp import IdP

HOST = "127.0.0.1"
#: Keepalive pings are welcome, also on a connection with no call in flight. flytekit's channel pings
#: every 30 s, also while idle (flytekit/clients/raw.py); grpc core's server default counts each such
#: ping as a strike and after two answers ``GOAWAY too_many_pings``, which grpc prints in red into
#: whatever notebook cell runs next (issue 17). A deployment behind a load balancer never says that to
#: a client, so the stand-in does not either.
SERVER_OPTIONS = [("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_ping_strikes", 0)]
PEEK_TIMEOUT = 10.0
HTTP2_PREFACE = b"PRI"
#: endpoint fields of the relayed metadata that ``CountedIdP`` points at its forwarder
REWRITTEN = ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint", "revocation_endpoint",
             "userinfo_endpoint", "end_session_endpoint", "pushed_authorization_request_endpoint")


# --------------------------------------------------------------------------------------- TCP
class Forwarder:
    """A TCP front on 127.0.0.1 that sends each connection to ``route(first_bytes) -> (name, port)``."""

    def __init__(self, route: Callable[[bytes], tuple[str, int]], *, name: str = "forwarder", port: int = 0) -> None:
        self._route = route
        self.name = name
        self.connections: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server((HOST, port))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"{name}-{self.port}", daemon=True)

    def start(self) -> Forwarder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._listener.close()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():  # bounded by stop(): each turn waits at most 0.2 s
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), name=f"{self.name}-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        try:
            client.settimeout(PEEK_TIMEOUT)
            first = client.recv(len(HTTP2_PREFACE), socket.MSG_PEEK)
            deadline = time.monotonic() + PEEK_TIMEOUT
            while first and len(first) < len(HTTP2_PREFACE) and time.monotonic() < deadline:
                more = client.recv(len(HTTP2_PREFACE), socket.MSG_PEEK)
                if len(more) == len(first):
                    time.sleep(0.005)  # bytes still in flight; bounded by the deadline
                first = more
            if not first:
                _close(client)
                return
            name, port = self._route(first)
            with self._lock:
                self.connections[name] += 1
            upstream = socket.create_connection((HOST, port), timeout=PEEK_TIMEOUT)
        except OSError:
            _close(client)
            return
        self._track(upstream)
        client.settimeout(None)
        upstream.settimeout(None)
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:  # ends at EOF or when stop() closes the sockets
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


class CountedIdP:
    """The IdP as clients see it through a relayed document: its endpoints behind a counting forwarder.

    Everything else (``issuer``, ``introspection_endpoint``, ``jwks_uri``, ...) is the real IdP's."""

    def __init__(self, idp: IdP) -> None:
        self.idp = idp
        self._forwarder = Forwarder(lambda first: ("idp", idp.port), name="idp-counter")  # type: ignore[arg-type]
        self.base = f"http://{HOST}:{self._forwarder.port}"

    def start(self) -> CountedIdP:
        self._forwarder.start()
        return self

    def stop(self) -> None:
        self._forwarder.stop()

    @property
    def connections(self) -> int:
        """Connections clients opened to the IdP through the relayed endpoints."""
        return self._forwarder.connections["idp"]

    @property
    def metadata(self) -> dict[str, Any]:
        doc = dict(self.idp.metadata)
        for name in REWRITTEN:
            value = doc.get(name)
            if isinstance(value, str) and value.startswith(self.idp.issuer):
                doc[name] = self.base + value[len(self.idp.issuer):]
        return doc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.idp, name)


# -------------------------------------------------------------------------------------- gRPC
class _AuthMetadata(auth_pb2_grpc.AuthMetadataServiceServicer):
    def __init__(self, admin: GrpcAdminStandIn) -> None:
        self.admin = admin

    def GetOAuth2Metadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.admin._count("GetOAuth2Metadata")
        self.admin._through_proxy("GetOAuth2Metadata", context)
        doc = self.admin.http.oauth_metadata()
        fields = {f.name for f in auth_pb2.OAuth2MetadataResponse.DESCRIPTOR.fields}
        return auth_pb2.OAuth2MetadataResponse(**{k: v for k, v in _snake(doc).items() if k in fields})

    def GetPublicClientConfig(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.admin._count("GetPublicClientConfig")
        self.admin._through_proxy("GetPublicClientConfig", context)
        doc = self.admin.http.client_config()
        fields = {f.name for f in auth_pb2.PublicClientAuthConfigResponse.DESCRIPTOR.fields}
        return auth_pb2.PublicClientAuthConfigResponse(**{k: v for k, v in _snake(doc).items() if k in fields})


def _snake(doc: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in doc.items():
        out["".join("_" + c.lower() if c.isupper() else c for c in key)] = value
    return out


class _Admin(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, admin: GrpcAdminStandIn) -> None:
        self.admin = admin

    def ListProjects(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.admin._authorize("ListProjects", context)
        return project_pb2.Projects(projects=[
            project_pb2.Project(id=p["id"], name=p["name"], description=p["description"]) for p in PROJECTS
        ])

    def GetDomains(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.admin._authorize("GetDomains", context)
        return project_pb2.GetDomainsResponse(domains=[
            project_pb2.Domain(id=d, name=d) for d in ("development", "staging", "production")
        ])


class GrpcAdminStandIn:
    """FlyteAdmin over gRPC (and its HTTP documents, on the same port) for ``http_admin``'s IdP."""

    def __init__(self, http_admin: FlyteAdminStandIn, *, workers: int = 8, port: int = 0,
                 token_check: str = "introspect") -> None:
        if token_check not in ("introspect", "accept"):
            raise ValueError(f"token_check must be 'introspect' or 'accept', not {token_check!r}")
        self.token_check = token_check
        self.http = http_admin
        self.idp = http_admin.idp
        self.header_key = (http_admin.authorization_metadata_key or "authorization").lower()
        self.calls: collections.Counter[str] = collections.Counter()
        self.unauthenticated: collections.Counter[str] = collections.Counter()
        self.accepted: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=workers), options=SERVER_OPTIONS)
        auth_pb2_grpc.add_AuthMetadataServiceServicer_to_server(_AuthMetadata(self), self._server)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(_Admin(self), self._server)
        self.grpc_port = self._server.add_insecure_port(f"{HOST}:0")
        self._front = Forwarder(self._route, name="flyteadmin-mux", port=port)
        self.port = self._front.port
        self.endpoint = f"{HOST}:{self.port}"  # flytekit's PlatformConfig form (insecure=True)
        self.service = self.endpoint
        self.url = f"http://{self.endpoint}"  # for %flyte_login --endpoint and the HTTP documents
        self._started = False

    def _route(self, first: bytes) -> tuple[str, int]:
        return ("grpc", self.grpc_port) if first.startswith(HTTP2_PREFACE) else ("http", self.http.port)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> GrpcAdminStandIn:
        if not self._started:
            self._server.start()
            self._front.start()
            self._started = True
        return self

    def stop(self) -> None:
        self._front.stop()
        self._server.stop(grace=None).wait(5)
        self._started = False

    def __enter__(self) -> GrpcAdminStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"GrpcAdminStandIn(endpoint={self.endpoint!r}, header_key={self.header_key!r})"

    # ------------------------------------------------------------------ knobs for tests
    @property
    def idp_connections(self) -> int:
        """Connections clients opened to the IdP through the relayed endpoints (``CountedIdP``)."""
        counted = getattr(self, "counted_idp", None)
        return counted.connections if counted is not None else 0

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.unauthenticated.clear()
            self.accepted.clear()

    def _count(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1

    def _through_proxy(self, method: str, context: Any) -> None:
        """The identity-aware proxy's check (the HTTP stand-in's gate), before the service sees the call."""
        gate = self.http.proxy
        if gate is None:
            return
        value = next((v for k, v in context.invocation_metadata() if k.lower() == "proxy-authorization"
                      and isinstance(v, str)), None)
        if not gate.admits("grpc", method, value):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "the identity-aware proxy refused the call")

    def _authorize(self, method: str, context: Any) -> dict[str, Any]:
        self._count(method)
        self._through_proxy(method, context)
        token, used = None, ""
        metadata = [(k.lower(), v) for k, v in context.invocation_metadata() if isinstance(v, str)]
        for wanted in (self.header_key, "authorization"):
            for key, value in metadata:
                if token is None and key == wanted and value[:7].lower() == "bearer " and value[7:].strip():
                    token, used = value[7:].strip(), key
        if self.token_check == "accept":  # make bench: no introspection, a call without a token too
            with self._lock:
                self.accepted.append(("", used))
            return {}
        claims = self.http.validate(token) if token else None
        if claims is not None and isinstance(claims.get("exp"), (int, float)) and claims["exp"] <= time.time():
            claims = None
        if claims is None:
            with self._lock:
                self.unauthenticated[method] += 1
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing, expired or invalid bearer token")
        with self._lock:
            self.accepted.append((str(claims.get("sub") or claims.get("client_id") or ""), used))
        return claims


def start_grpc_admin(idp: IdP, *, count_idp: bool = True, port: int = 0,
                     **http_kwargs: Any) -> tuple[GrpcAdminStandIn, CountedIdP | None]:
    """A started gRPC stand-in (with its HTTP stand-in behind the same port) for ``idp``.

    ``count_idp``: relay the IdP's endpoints through a counting forwarder (``.idp_connections``);
    False relays them as the IdP publishes them (the notebooks and the demo). ``port``: the front
    port (0: any free one; the demo's is fixed). Stop with :func:`stop_grpc_admin`."""
    counted = CountedIdP(idp).start() if count_idp else None
    http_admin = FlyteAdminStandIn(counted or idp, **http_kwargs).start()  # type: ignore[arg-type]
    admin = GrpcAdminStandIn(http_admin, port=port).start()
    admin.counted_idp = counted  # type: ignore[attr-defined]
    return admin, counted


def stop_grpc_admin(admin: GrpcAdminStandIn) -> None:
    admin.stop()
    admin.http.stop()
    counted = getattr(admin, "counted_idp", None)
    if counted is not None:
        counted.stop()
