"""SDK plug-ins: requests auth with refresh-once-on-401 (against the FlyteAdmin stand-in and the real IdP),
and the gRPC metadata plug-in (against a real local gRPC server)."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

from flyteauth_jupyter.clients import BearerAuth, grpc_auth_plugin, grpc_call_credentials, session_with


class ClientCredentialsDouble:
    """An authenticator whose first token is stale; refresh_credentials() gets a real one from the IdP."""

    def __init__(self, idp, *, stale: str = "stale-token-0123456789", refresh_works: bool = True,
                 endpoint_url: str | None = None) -> None:
        self.idp = idp
        self.endpoint_url = endpoint_url
        self.token = stale
        self.refreshes = 0
        self.refresh_works = refresh_works

    def fetch_grpc_call_auth_metadata(self):
        return ("flyte-authorization", f"Bearer {self.token}")

    def refresh_credentials(self):
        self.refreshes += 1
        if not self.refresh_works:
            return None
        response = requests.post(
            self.idp.token_endpoint,
            data={"grant_type": "client_credentials", "scope": "api:read"},
            auth=("jupyter-confidential", "confidential-secret"),
            timeout=10,
        )
        response.raise_for_status()
        self.token = response.json()["access_token"]


@pytest.mark.idp
def test_refresh_once_on_401_and_resend(idp, flyteadmin):
    auth = ClientCredentialsDouble(idp, endpoint_url=flyteadmin.endpoint)
    response = requests.get(flyteadmin.url("/api/v1/projects"), auth=BearerAuth(auth), timeout=10)
    assert response.status_code == 200 and auth.refreshes == 1
    assert [r.status_code for r in response.history] == [401]
    # the next request uses the fresh token at once
    again = session_with(auth).get(flyteadmin.url("/api/v1/projects"), timeout=10)
    assert again.status_code == 200 and auth.refreshes == 1 and not again.history


@pytest.mark.idp
def test_no_loop_when_refresh_gives_nothing_new(idp, flyteadmin):
    auth = ClientCredentialsDouble(idp, refresh_works=False, endpoint_url=flyteadmin.endpoint)
    response = requests.get(flyteadmin.url("/api/v1/projects"), auth=BearerAuth(auth), timeout=10)
    assert response.status_code == 401 and auth.refreshes == 1 and not response.history


@pytest.mark.idp
def test_one_shot_body_is_not_resent(idp, flyteadmin):
    auth = ClientCredentialsDouble(idp, endpoint_url=flyteadmin.endpoint)
    body = (chunk for chunk in [b"a", b"b"])
    response = requests.post(flyteadmin.url("/api/v1/projects"), data=body, auth=BearerAuth(auth), timeout=10)
    assert response.status_code in (401, 404, 405, 501) and auth.refreshes == 0


def test_header_override_and_repr():
    prepared = requests.Request("GET", "http://127.0.0.1:9/x").prepare()

    class Static:
        endpoint_url = "http://127.0.0.1:9"

        def fetch_grpc_call_auth_metadata(self):
            return ("flyte-authorization", "Bearer abc-SECRET")

    BearerAuth(Static(), header="authorization")(prepared)
    assert prepared.headers["authorization"] == "Bearer abc-SECRET"
    assert "SECRET" not in repr(BearerAuth(Static()))


def test_grpc_plugin_adds_metadata_on_a_real_channel():
    grpc = pytest.importorskip("grpc")

    seen: list[dict[str, str]] = []

    def echo(request: bytes, context) -> bytes:
        seen.append(dict(context.invocation_metadata()))
        return b"ok"

    handler = grpc.method_handlers_generic_handler(
        "flyteauth.Test", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP))
    server.start()
    try:
        class Static:
            endpoint_url = f"https://127.0.0.1:{port}"

            def fetch_grpc_call_auth_metadata(self):
                return ("Flyte-Authorization", "Bearer grpc-token-123")

        credentials = grpc.composite_channel_credentials(
            grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP), grpc_call_credentials(Static())
        )
        with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            call = channel.unary_unary("/flyteauth.Test/Echo")
            assert call(b"hi", timeout=10) == b"ok"
        assert seen and seen[0]["flyte-authorization"] == "Bearer grpc-token-123"
        assert "grpc_auth_plugin" in repr(grpc_auth_plugin(Static()))

        class Elsewhere(Static):  # a token for another server: this channel's calls get none
            endpoint_url = "https://127.0.0.1:9"

        for auth, origins, expected in ((Elsewhere(), (), None), (Elsewhere(), (f"127.0.0.1:{port}",), "Bearer grpc-token-123")):
            seen.clear()
            credentials = grpc.composite_channel_credentials(
                grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
                grpc_call_credentials(auth, origins=origins),
            )
            with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
                assert channel.unary_unary("/flyteauth.Test/Echo")(b"hi", timeout=10) == b"ok"
            assert seen[0].get("flyte-authorization") == expected
    finally:
        server.stop(None)
