"""The gRPC FlyteAdmin stand-in itself (tests/rig/grpc_admin.py): flyteidl's services, tokens checked at the IdP."""

from __future__ import annotations

import grpc
import pytest
import requests
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc, auth_pb2, auth_pb2_grpc

pytestmark = pytest.mark.idp


def _client_token(grpc_admin) -> str:
    r = requests.post(grpc_admin.counted_idp.base + "/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                      auth=("jupyter-confidential", "confidential-secret"), timeout=10)
    r.raise_for_status()
    return r.json()["access_token"]


def test_metadata_is_anonymous_and_matches_the_http_documents(grpc_admin):
    with grpc.insecure_channel(grpc_admin.endpoint) as channel:
        stub = auth_pb2_grpc.AuthMetadataServiceStub(channel)
        client = stub.GetPublicClientConfig(auth_pb2.PublicClientAuthConfigRequest(), timeout=10)
        oauth = stub.GetOAuth2Metadata(auth_pb2.OAuth2MetadataRequest(), timeout=10)
    http = requests.get(grpc_admin.url + "/config/v1/flyte_client", timeout=10).json()  # same port
    assert client.client_id == http["client_id"] and client.authorization_metadata_key == "flyte-authorization"
    assert oauth.issuer == grpc_admin.idp.issuer and oauth.token_endpoint.startswith(grpc_admin.counted_idp.base)


@pytest.mark.parametrize("key, accepted", [("flyte-authorization", True), ("authorization", True), ("x-token", False)])
def test_admin_calls_need_an_active_token_under_a_known_key(grpc_admin, key, accepted):
    token = _client_token(grpc_admin)
    grpc_admin.reset_counts()
    with grpc.insecure_channel(grpc_admin.endpoint) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        with pytest.raises(grpc.RpcError) as missing:
            stub.ListProjects(project_pb2.ProjectListRequest(), timeout=10)
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        call = lambda: stub.ListProjects(project_pb2.ProjectListRequest(), metadata=[(key, f"Bearer {token}")], timeout=10)  # noqa: E731
        if accepted:
            assert [p.id for p in call().projects] == ["flytesnacks", "notebooks"]
            assert grpc_admin.accepted == [("jupyter-confidential", key)]
        else:
            with pytest.raises(grpc.RpcError) as wrong:
                call()
            assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert grpc_admin.calls["ListProjects"] == 2
    assert grpc_admin.unauthenticated["ListProjects"] == (1 if accepted else 2)


def test_the_accept_mode_takes_every_call_without_asking_the_idp(grpc_admin):
    """``token_check="accept"`` (make bench's whole-RPC row): a call with any bearer header, or none, is
    answered, and which header came is recorded; nothing is checked, so no introspection is timed."""
    from rig.grpc_admin import GrpcAdminStandIn

    with pytest.raises(ValueError):
        GrpcAdminStandIn(grpc_admin.http, token_check="maybe")
    with GrpcAdminStandIn(grpc_admin.http, token_check="accept") as bench_admin:
        with grpc.insecure_channel(f"127.0.0.1:{bench_admin.grpc_port}") as channel:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            for metadata in ([("flyte-authorization", "Bearer not-a-token")], None):
                assert [p.id for p in stub.ListProjects(project_pb2.ProjectListRequest(), metadata=metadata,
                                                        timeout=10).projects] == ["flytesnacks", "notebooks"]
        assert bench_admin.accepted == [("", "flyte-authorization"), ("", "")]
        assert sum(bench_admin.unauthenticated.values()) == 0


#: A client that keeps its channel alive with pings while it makes no call, as flytekit's does
#: (flytekit/clients/raw.py: keepalive every 30 s, also without calls), at the fastest pace grpc core
#: sends them (one a second). It makes one call, then idles with the channel open.
KEEPALIVE_CLIENT = """
import sys, threading, grpc
from flyteidl.service import auth_pb2, auth_pb2_grpc
options = [("grpc.keepalive_time_ms", 100), ("grpc.keepalive_timeout_ms", 10000),
           ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]
channel = grpc.insecure_channel(sys.argv[1], options=options)
auth_pb2_grpc.AuthMetadataServiceStub(channel).GetPublicClientConfig(auth_pb2.PublicClientAuthConfigRequest(), timeout=10)
threading.Event().wait(120)
"""
PINGS = 5  # more than the 2 ping strikes grpc core's default server policy tolerates


def test_keepalive_pings_of_an_idle_channel_are_welcome(grpc_admin):
    """Issue 17: a FlyteRemote left open in a notebook got ``GOAWAY ... too_many_pings`` (printed in red
    in whatever cell ran next), because grpc core's server default refuses pings on a connection
    without calls. The stand-in accepts them, as a deployment behind a load balancer does."""
    import os
    import queue
    import subprocess
    import sys
    import threading
    import time

    env = {**os.environ, "GRPC_TRACE": "http_keepalive", "GRPC_VERBOSITY": "debug"}
    proc = subprocess.Popen([sys.executable, "-c", KEEPALIVE_CLIENT, grpc_admin.endpoint], env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    acked, seen = 0, []
    deadline = time.monotonic() + 60
    try:
        while acked < PINGS and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            assert "too_many_pings" not in line and "GOAWAY" not in line, line
            acked += "Finish keepalive ping" in line
    finally:
        proc.kill()
        proc.wait(10)
    assert acked >= PINGS, "".join(seen[-20:])
