"""A deployment behind an identity-aware proxy (issue 18.6, flyte#3965), against real local servers.

The FlyteAdmin stand-ins (HTTP, and gRPC on the same port) sit behind ``ProxyGate`` (tests/rig/proxy.py):
without the proxy's ``proxy-authorization`` every request is refused (407, or as GCP IAP does, a 401
marked ``X-Goog-IAP-Generated-Response``). The identity provider is the real tests/idp on the same host
(127.0.0.1) on another port, i.e. another origin; it records the header names of every request it
receives (GET /rig/requests), so "the IdP never saw the proxy's header" is read from the IdP's side.
Tokens are real: client credentials from the IdP, checked by the stand-in at the IdP. The proxy command
is tests/rig/proxy_token.py, which counts its own runs.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from rig.idp import CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, NATIVE_CLIENT
from rig.proxy import ProxyGate, proxy_command, runs

from flyteauth_jupyter import ClientCredentialsAuthenticator, Credentials, RemoteClientConfigStore
from flyteauth_jupyter.clients import BearerAuth
from flyteauth_jupyter.errors import ProtocolError
from flyteauth_jupyter.flows.client_auth import ClientSecretBasic
from flyteauth_jupyter.flows.client_credentials import fetch_client_credentials_token
from flyteauth_jupyter.flows.device import request_device_code
from flyteauth_jupyter.flows.refresh import revoke_token
from flyteauth_jupyter.proxy import ProxyAuth, ProxyCredential
from flyteauth_jupyter.transport.http import Transport

pytestmark = pytest.mark.idp


def _with_proxy_header(seen: list[dict[str, Any]]) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in seen if "proxy-authorization" in r["headers"]]


def _grants(idp: Any) -> int:
    return int(idp.grants()["success"].get("client_credentials", 0))


@pytest.fixture
def behind_proxy(make_flyteadmin, idp, tmp_path):
    """A FlyteAdmin stand-in behind a proxy gate, the proxy credential for it, and the command's argv."""
    gate = ProxyGate()
    admin = make_flyteadmin(idp, proxy=gate, device_endpoint=False)  # no device endpoint: issuer discovery runs
    command = proxy_command(tmp_path)
    proxy = ProxyAuth(credential=ProxyCredential(command), endpoint=admin.endpoint)
    RemoteClientConfigStore.clear_cache()
    yield admin, gate, proxy, command
    RemoteClientConfigStore.clear_cache()


def test_the_metadata_goes_through_the_proxy_and_the_issuers_discovery_never_carries_its_header(
    behind_proxy, idp, reliability_rule
):
    admin, gate, proxy, command = behind_proxy
    with pytest.raises(ProtocolError) as refused:
        RemoteClientConfigStore(admin.endpoint).get_client_config()
    text = str(refused.value)
    assert refused.value.status == 407 and admin.service in text and "identity-aware proxy" in text
    assert "--proxy-command" in text and len(text) <= 500
    mark = idp.last_request()

    cfg = RemoteClientConfigStore(admin.endpoint, proxy_auth=proxy).get_client_config()

    assert cfg.token_endpoint == idp.token_endpoint and cfg.header_key == "flyte-authorization"
    assert cfg.device_authorization_endpoint == idp.device_authorization_endpoint  # from the IdP's own document
    token = proxy.credential.token()
    assert gate.tokens("http") == [None, token, token] and runs(command) == 1
    seen = idp.requests_seen(mark)
    assert "GET /.well-known/openid-configuration" in [f"{r['method']} {r['path']}" for r in seen]
    assert _with_proxy_header(seen) == []
    reliability_rule("The identity-aware proxy's credential goes to the deployment only, never to the identity provider.",
                     "FlyteAdmin's two documents, then the issuer's discovery on the same host, another port",
                     "header on the documents, none at the IdP")


def test_token_device_and_revocation_requests_to_the_idp_carry_no_proxy_header(behind_proxy, idp):
    """One Transport with the proxy credential serves both: the deployment gets the header, the IdP
    (same host, another port) never does, and a request's own client authentication stays."""
    admin, gate, proxy, _ = behind_proxy
    transport = Transport(proxy_auth=proxy)
    mark = idp.last_request()

    assert transport.get_json(admin.url("/config/v1/flyte_client")).ok
    creds = fetch_client_credentials_token(transport, idp.token_endpoint, client_id=CONFIDENTIAL_CLIENT,
                                           client_secret=CONFIDENTIAL_SECRET, endpoint=admin.service,
                                           scopes=["api:read"])
    device = request_device_code(transport, idp.device_authorization_endpoint, client_id=NATIVE_CLIENT,
                                 scopes=["openid"])
    revoke_token(transport, idp.revocation_endpoint, creds.access_token or "", token_type_hint="access_token",
                 auth=ClientSecretBasic(CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET))
    # a request's own requests auth is kept beside the proxy's (chained, not replaced)
    own_auth = transport.post_form(idp.token_endpoint, {"grant_type": "client_credentials", "scope": "api:read"},
                                   auth=requests.auth.HTTPBasicAuth(CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET))
    assert own_auth.ok and own_auth.data["access_token"]

    assert device.user_code and gate.tokens("http") == [proxy.credential.token()]
    seen = idp.requests_seen(mark)
    paths = [f"{r['method']} {r['path']}" for r in seen]
    assert {"POST /token", "POST /device/auth", "POST /token/revocation"} <= set(paths), paths
    assert _with_proxy_header(seen) == []
    assert all("authorization" in r["headers"] for r in seen if r["path"] in ("/token", "/token/revocation"))


@pytest.fixture
def signed_in(behind_proxy):
    """A real confidential client signed in through the proxy, and BearerAuth with both headers."""
    admin, gate, proxy, command = behind_proxy
    store = RemoteClientConfigStore(admin.endpoint, proxy_auth=proxy)
    auth = ClientCredentialsAuthenticator(admin.endpoint, CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, store,
                                          scopes=["api:read"])
    return admin, gate, proxy, command, auth, BearerAuth(auth, proxy_auth=proxy)


def test_a_protected_api_behind_the_proxy_with_both_refusals_each_answered_once(signed_in, idp):
    admin, gate, proxy, command, auth, bearer = signed_in
    mark, grants = idp.last_request(), _grants(idp)
    url = admin.url("/api/v1/projects")

    # no bearer token yet: the deployment's own 401 (unmarked) gets a sign-in, never a proxy command run
    first = requests.get(url, auth=bearer, timeout=20)
    assert first.status_code == 200 and [r.status_code for r in first.history] == [401]
    assert runs(command) == 1 and _grants(idp) == grants + 1

    # the proxy refuses its token (407): the command runs again, the bearer token is not refreshed
    gate.refuse(proxy.credential.token())
    second = requests.get(url, auth=bearer, timeout=20)
    assert second.status_code == 200 and [r.status_code for r in second.history] == [407]
    assert runs(command) == 2 and _grants(idp) == grants + 1

    # as IAP does it: a 401 the proxy marked as its own is the proxy's too
    gate.status = 401
    gate.refuse(proxy.credential.token())
    third = requests.get(url, auth=bearer, timeout=20)
    assert third.status_code == 200 and [r.status_code for r in third.history] == [401]
    assert third.history[0].headers.get("X-Goog-IAP-Generated-Response") == "true"
    assert runs(command) == 3 and _grants(idp) == grants + 1

    # both at once: the proxy's refusal, then the deployment's; each renewed once, in that order
    gate.status = 407
    gate.refuse(proxy.credential.token())
    auth._set_credentials(Credentials("a-stale-bearer-token-0123456789", expires_in=3600))
    fourth = requests.get(admin.url("/me"), auth=bearer, timeout=20)
    assert [r.status_code for r in fourth.history] == [407, 401]
    assert runs(command) == 4 and _grants(idp) == grants + 2

    # refused again after its renewal: the proxy's answer is returned, not retried without end
    gate.closed = True
    last = requests.get(url, auth=bearer, timeout=20)
    assert last.status_code == 407 and [r.status_code for r in last.history] == [407]
    assert runs(command) == 5 and _grants(idp) == grants + 2
    assert _with_proxy_header(idp.requests_seen(mark)) == []


def test_redirects_keep_the_header_on_the_deployment_and_strip_it_elsewhere(signed_in, idp):
    admin, gate, proxy, command, auth, bearer = signed_in
    auth.refresh_credentials()
    admin.set_response("/out", 302, "", headers={"Location": f"{idp.issuer}/.well-known/openid-configuration"})
    admin.set_response("/back", 302, "", headers={"Location": admin.url("/config/v1/flyte_client")})
    mark = idp.last_request()

    out = requests.get(admin.url("/out"), auth=bearer, timeout=20)
    assert out.status_code == 200 and out.json()["issuer"] == idp.issuer
    (hop,) = idp.requests_seen(mark)
    assert hop["path"] == "/.well-known/openid-configuration"
    assert "proxy-authorization" not in hop["headers"] and "flyte-authorization" not in hop["headers"]

    # requests drops Proxy-Authorization from every redirect hop (Session.rebuild_proxies): the hop to
    # the deployment is refused without it and sent again with it, the command is not run again
    gate.seen.clear()
    back = requests.get(admin.url("/back"), auth=proxy, timeout=20)  # ProxyAuth alone is requests auth too
    assert back.status_code == 200 and "client_id" in back.json()
    token = proxy.credential.token()
    assert gate.tokens("http") == [token, None, token] and runs(command) == 1


def test_grpc_calls_carry_the_proxy_pair_beside_the_bearer_pair(make_grpc_admin, idp, tmp_path):
    grpc = pytest.importorskip("grpc")
    from flyteidl.admin import project_pb2
    from flyteidl.service import admin_pb2_grpc, auth_pb2, auth_pb2_grpc

    from flyteauth_jupyter.clients import grpc_call_credentials

    gate = ProxyGate()
    admin = make_grpc_admin(idp, proxy=gate)
    command = proxy_command(tmp_path)
    proxy = ProxyAuth(credential=ProxyCredential(command), endpoint=admin.url)
    RemoteClientConfigStore.clear_cache()
    store = RemoteClientConfigStore(admin.url, proxy_auth=proxy)
    auth = ClientCredentialsAuthenticator(admin.url, CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, store,
                                          scopes=["api:read"])
    auth.refresh_credentials()

    def channel(with_proxy: bool) -> Any:
        call = grpc_call_credentials(auth, proxy_auth=proxy if with_proxy else None)
        credentials = grpc.composite_channel_credentials(
            grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP), call)
        return grpc.secure_channel(admin.endpoint, credentials)

    with channel(False) as plain:
        with pytest.raises(grpc.RpcError) as refused:
            admin_pb2_grpc.AdminServiceStub(plain).ListProjects(project_pb2.ProjectListRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "identity-aware proxy" in (refused.value.details() or "")
    with channel(True) as proxied:
        projects = admin_pb2_grpc.AdminServiceStub(proxied).ListProjects(project_pb2.ProjectListRequest(), timeout=10)
        config = auth_pb2_grpc.AuthMetadataServiceStub(proxied).GetPublicClientConfig(
            auth_pb2.PublicClientAuthConfigRequest(), timeout=10)
    assert [p.id for p in projects.projects] == ["flytesnacks", "notebooks"] and config.client_id
    token = proxy.credential.token()
    assert gate.tokens("grpc") == [None, token, token] and runs(command) == 1
    assert admin.accepted and admin.accepted[-1][1] == "flyte-authorization"
    RemoteClientConfigStore.clear_cache()
