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
