"""gRPC call credentials send the token only to the authenticator's own server (DESIGN.md pinned 16, 22).

Two real grpcio servers on 127.0.0.1 with local (secure) credentials: "own" is the deployment the
authenticator signs in to, "other" is any other server. Each records the metadata of every call it
receives, whatever the method's name. The authority a call goes to is what the gRPC runtime hands
the plug-in (``AuthMetadataContext.service_url``: ``scheme://authority/service``), so a method path
that itself contains ``://<deployment host:port>/`` must not make a call to "other" carry the token.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Iterator

import pytest
from rig import rules

grpc = pytest.importorskip("grpc")

from flyteauth_jupyter.clients import grpc_call_credentials  # noqa: E402

TOKEN = "Bearer deployment-token-0123456789"


class Recording(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Answers every method with ``ok`` and keeps its metadata."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def service(self, details: Any) -> Any:
        def unary(request: bytes, context: Any) -> bytes:
            with self.lock:
                self.seen.append((details.method, dict(context.invocation_metadata())))
            return b"ok"

        return grpc.unary_unary_rpc_method_handler(unary)


class LocalServer:
    def __init__(self) -> None:
        self.handler = Recording()
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers((self.handler,))
        self.port = self.server.add_secure_port(
            "127.0.0.1:0", grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        )
        self.server.start()

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def servers() -> Iterator[tuple[LocalServer, LocalServer]]:
    own, other = LocalServer(), LocalServer()
    yield own, other
    own.server.stop(None)
    other.server.stop(None)


class Deployment:
    """An authenticator for ``own`` (only what the plug-in reads)."""

    def __init__(self, authority: str) -> None:
        self.endpoint_url = f"https://{authority}"
        self.fetches = 0

    def fetch_grpc_call_auth_metadata(self) -> tuple[str, str]:
        self.fetches += 1
        return ("authorization", TOKEN)


def _call(target: LocalServer, auth: Any, method: str) -> bytes:
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP), grpc_call_credentials(auth)
    )
    with grpc.secure_channel(target.authority, credentials) as channel:
        return channel.unary_unary(method)(b"hi", timeout=10)


def test_a_method_path_naming_the_deployment_does_not_send_its_token_to_another_server(servers, reliability_rule):
    own, other = servers
    auth = Deployment(own.authority)
    hostile = f"/x://{own.authority}/flyteidl.service.AdminService/ListProjects"
    assert _call(other, auth, hostile) == b"ok"
    (method, metadata), = other.handler.seen
    assert method == hostile  # the call really went out with that path, to the other server
    assert "authorization" not in metadata and TOKEN not in metadata.values()
    assert auth.fetches == 0  # the token was not even asked for
    # the deployment itself still gets it, on an ordinary method and on the odd one alike
    assert _call(own, auth, "/flyteidl.service.AdminService/ListProjects") == b"ok"
    assert _call(own, auth, hostile) == b"ok"
    assert [m["authorization"] for _, m in own.handler.seen] == [TOKEN, TOKEN]
    reliability_rule(
        rules.ORIGINS,
        "gRPC call to another server whose method path contains ://deployment-host:port/",
        "no token sent (none even fetched); the deployment's own calls carry it",
    )


def test_the_authority_is_read_from_the_front_of_the_service_url():
    from flyteauth_jupyter.clients import _authority

    assert _authority("https://127.0.0.1:9/x://127.0.0.1:8/S") == "127.0.0.1:9"
    assert _authority("://127.0.0.1:9/x://127.0.0.1:8/S") == "127.0.0.1:9"
    assert _authority("https://flyte.example.com/flyteidl.service.AdminService") == "flyte.example.com:443"
    assert _authority("http://Flyte.Example.com/S") == "flyte.example.com:80"
    assert _authority("https://bücher.example/S") == "xn--bcher-kva.example:443"
    assert _authority("127.0.0.1:9") == "127.0.0.1:9"

