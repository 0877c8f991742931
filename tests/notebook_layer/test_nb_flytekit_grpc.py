"""flytekit end to end through its own gRPC client, against the FlyteAdmin gRPC stand-in and the real IdP.

In a real InteractiveShell: ``%flyte_login``, then ``FlyteRemote(...).list_projects()`` as a user
writes it; flytekit's own ``AuthUnaryInterceptor`` adds the metadata and, on UNAUTHENTICATED, calls
``refresh_credentials()``. IdP traffic is counted by the rig's forwarder (``idp_connections``):
everything a client sends to the IdP's token or device endpoints goes through it.
"""

from __future__ import annotations

import concurrent.futures
import time

import keyring
import pytest
from nb_fakes import wait_until

from flyteauth_jupyter import DeviceCodeAuthenticator
from flyteauth_jupyter.errors import AccessTokenNotFoundError
from flyteauth_jupyter.stores import MemoryStore

pytestmark = pytest.mark.idp
AT_TTL = 3  # seconds: access tokens of the short-lived provider expire while a test waits


@pytest.fixture(scope="module")
def short_admin():
    """One provider with short-lived access tokens (and its gRPC stand-in) for this module's expiry tests."""
    from rig.grpc_admin import start_grpc_admin, stop_grpc_admin
    from rig.idp import IdP, ensure_node_modules

    ensure_node_modules()
    with IdP(at_ttl=AT_TTL, device_interval=1) as idp:
        admin, _ = start_grpc_admin(idp)
        yield admin
        stop_grpc_admin(admin)

REMOTE = """
from flytekit.configuration import Config, PlatformConfig
from flytekit.remote import FlyteRemote
remote = FlyteRemote(Config(platform=PlatformConfig(endpoint={endpoint!r}, insecure=True, auth_mode={mode!r})))
projects = [p.id for p in remote.list_projects()]
"""


def list_projects(ip, admin, mode: str = "notebook") -> list[str]:
    result = ip.run_cell(REMOTE.format(endpoint=admin.endpoint, mode=mode))
    result.raise_error()
    return ip.user_ns["projects"]


def device_login(ip, admin, device_user):
    ip.run_cell(f"%flyte_login --endpoint {admin.url} --flow device").raise_error()
    session = ip.user_ns["flyte_auth"]
    wait_until(lambda: session.view.user_code is not None, 20, "the user code")
    view = session.view
    assert device_user.complete(view.verification_uri, view.user_code)["status"] == "approved"
    session.wait(30)
    return session


def test_flyteremote_through_the_plugin_uses_the_notebook_login(nb, grpc_admin, device_user):
    ip, _ = nb
    session = device_login(ip, grpc_admin, device_user)
    after_login = grpc_admin.idp_connections
    grpc_admin.reset_counts()
    assert list_projects(ip, grpc_admin) == ["flytesnacks", "notebooks"]
    # flytekit's interceptor sent the notebook's token under the server's key; nobody asked the IdP again
    assert grpc_admin.accepted == [("alice", "flyte-authorization")]
    assert grpc_admin.unauthenticated["ListProjects"] == 0
    assert grpc_admin.idp_connections == after_login
    assert session.status == "signed_in" and session._attempts == 1


@pytest.mark.parametrize("mode", ["Pkce", "DeviceFlow"])
def test_flytekits_own_modes_use_the_shared_keyring(nb, grpc_admin, device_user, mode, monkeypatch):
    ip, _ = nb
    monkeypatch.setenv("BROWSER", "false")  # flytekit's Pkce would open a browser if it had to sign in
    device_login(ip, grpc_admin, device_user)
    after_login = grpc_admin.idp_connections
    grpc_admin.reset_counts()
    assert list_projects(ip, grpc_admin, mode) == ["flytesnacks", "notebooks"]
    assert [who for who, _ in grpc_admin.accepted] == ["alice"]
    assert grpc_admin.unauthenticated["ListProjects"] == 0
    assert grpc_admin.idp_connections == after_login  # zero requests to the IdP


def _flytekit_layout_tokens(idp_admin, device_user, *, refresh: bool = True) -> tuple[str, str | None]:
    """A real sign-in, kept as flytekit keeps it: raw tokens in the keyring, no expiry known."""
    from flytekit.clients.auth.keyring import Credentials as FlytekitCredentials, KeyringStore as FlytekitKeyring

    auth = DeviceCodeAuthenticator(idp_admin.url, None, store=MemoryStore(), timeout=60,
                                   observer=lambda event: _approve(event, device_user))
    creds = auth.refresh_credentials()
    FlytekitKeyring.store(FlytekitCredentials(creds.access_token, creds.refresh_token if refresh else None,
                                              idp_admin.service))
    return creds.access_token, creds.refresh_token


def _approve(event, device_user) -> None:
    if getattr(event, "user_code", None):
        device_user.complete_in_thread(event.verification_uri, event.user_code)


def _expire(admin, token: str, ttl: float) -> None:
    """Wait (bounded) until the IdP itself says the access token is no longer active."""
    deadline = time.monotonic() + ttl + 20
    while admin.http.validate(token) is not None:
        assert time.monotonic() < deadline, "the access token did not expire at the IdP"
        time.sleep(0.25)


def test_expiry_mid_session_unauthenticated_then_silent_refresh(nb, short_admin, device_user):
    ip, _ = nb
    admin = short_admin
    access, _ = _flytekit_layout_tokens(admin, device_user)
    ip.run_cell(f"%flyte_login --endpoint {admin.url} --flow device").raise_error()
    session = ip.user_ns["flyte_auth"]
    session.wait(30)
    assert session.view.flow == "cached"  # the saved token, no prompt
    admin.reset_counts()
    before = admin.idp_connections
    assert list_projects(ip, admin) == ["flytesnacks", "notebooks"]
    _expire(admin, access, AT_TTL)
    assert list_projects(ip, admin) == ["flytesnacks", "notebooks"]
    # the server refused the expired token once; flytekit's retry renewed it silently
    assert admin.unauthenticated["ListProjects"] == 1 and len(admin.accepted) == 2
    assert admin.idp_connections > before  # the refresh grant
    assert session._attempts == 1 and session.status == "signed_in"  # no new sign-in was started
    assert keyring.get_password(admin.service, "access_token") not in (None, access)


def test_refresh_impossible_says_run_flyte_login(nb, short_admin, device_user):
    ip, _ = nb
    admin = short_admin
    idp = admin.idp
    access, refresh_token = _flytekit_layout_tokens(admin, device_user)
    import requests

    revoked = requests.post(idp.revocation_endpoint, data={"token": refresh_token, "client_id": "jupyter-native",
                                                           "token_type_hint": "refresh_token"}, timeout=10)
    assert revoked.status_code == 200
    ip.run_cell(f"%flyte_login --endpoint {admin.url} --flow device").raise_error()
    session = ip.user_ns["flyte_auth"]
    session.wait(30)
    _expire(admin, access, AT_TTL)
    result = ip.run_cell(REMOTE.format(endpoint=admin.endpoint, mode="notebook"))
    # flytekit wraps whatever its interceptors raise in FlyteSystemException (after its own retries);
    # ours is the cause, and flytekit's message quotes it
    shown = result.error_in_exec
    error = shown if isinstance(shown, AccessTokenNotFoundError) else shown.__cause__
    assert isinstance(error, AccessTokenNotFoundError), repr(shown)
    message = str(error)
    assert "%flyte_login" in message and admin.service in message and message.count(". ") == 0
    assert message in str(shown)
    assert access not in str(shown) and refresh_token not in str(shown)
    assert session._attempts == 1 and session.view.user_code is None  # no hidden sign-in in this cell


def test_interactive_refresh_when_allowed_signs_in_again_in_this_cell(nb, short_admin, device_user):
    ip, _ = nb
    admin = short_admin
    access, _ = _flytekit_layout_tokens(admin, device_user, refresh=False)
    ip.run_line_magic("config", "FlyteAuthMagics.interactive_refresh = True")
    ip.run_cell(f"%flyte_login --endpoint {admin.url} --flow device").raise_error()
    session = ip.user_ns["flyte_auth"]
    session.wait(30)
    assert session.interactive_refresh is True
    _expire(admin, access, AT_TTL)
    admin.reset_counts()

    def approve_the_new_sign_in() -> str:
        wait_until(lambda: session._attempts == 2 and session.view.user_code is not None, 30, "a new sign-in")
        return device_user.complete(session.view.verification_uri, session.view.user_code)["status"]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        approval = pool.submit(approve_the_new_sign_in)
        assert list_projects(ip, admin) == ["flytesnacks", "notebooks"]
        assert approval.result(30) == "approved"
    assert admin.unauthenticated["ListProjects"] == 1 and session.status == "signed_in"
