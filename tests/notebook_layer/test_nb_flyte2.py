"""The Flyte 2 SDK (``flyte``) end to end: ``%flyte_login`` in a real InteractiveShell against tests/idp,
then ``flyte.init`` and one authenticated ConnectRPC call to the stand-in (rig.connect_admin), with
zero prompts: through flyte's own keyring entry, and through ``auth_type="ExternalCommand"`` running
``flyteauth-token``. Also: tokens flyte stored are used by ours; a rotation in one layout then a call
through the other keeps the grant alive (pinned 18, rotation and replay detection on in tests/idp).

The keyring is the rig's file keyring (shared with the token command's subprocess); HOME is empty.
"""

from __future__ import annotations

import json
import os
import sys
import webbrowser
from pathlib import Path

import pytest
import requests
from IPython.utils.capture import capture_output
from rig.connect_admin import connect_call
from rig.file_keyring import FileKeyring
from rig.idp import CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET

from flyteauth_jupyter import stores
from flyteauth_jupyter.stores import FLYTE2_TOKENS, KeyringStore
from test_nb_idp import code_shown, login

pytestmark = pytest.mark.idp

flyte = pytest.importorskip("flyte")  # in the test extra; a clear skip only where it is not installed
TESTS = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("flyteauth-token")


@pytest.fixture
def f2(shell, tmp_path, monkeypatch):
    """The shell with the widget, a file keyring this process and a token-command child share."""
    import keyring

    path = tmp_path / "keyring.json"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "rig.file_keyring.FileKeyring")
    monkeypatch.setenv("FLYTEAUTH_RIG_KEYRING", str(path))
    previous = keyring.get_keyring()
    backend = FileKeyring(path)
    keyring.set_keyring(backend)
    stores.PROCESS_FALLBACK.clear()

    def no_browser(*args, **kwargs):
        raise AssertionError("a browser was opened: the SDK started an interactive login")

    monkeypatch.setattr(webbrowser, "open", no_browser)
    shell.run_line_magic("config", "FlyteAuthMagics.display = 'widget'")
    with capture_output(display=True):
        yield shell, backend
    keyring.set_keyring(previous)
    stores.PROCESS_FALLBACK.clear()


def device_login(ip, admin, device_user, *, ca_cert: str | None = "admin"):
    tls = f" --ca-cert {admin.ca_cert}" if ca_cert else ""
    session = login(ip, f"--endpoint {admin.endpoint}{tls} --flow device")
    view = code_shown(session)
    assert device_user.complete(view.verification_uri, view.user_code,
                                verification_uri_complete=view.verification_uri_complete)["status"] == "approved"
    return session, session.wait(30)


def introspect(idp, token: str) -> dict:
    r = requests.post(idp.introspection_endpoint, data={"token": token},
                      auth=(CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET), timeout=10)
    return r.json()


def flyte_projects(admin, **kwargs) -> list[str]:
    flyte.init(endpoint=kwargs.pop("endpoint", admin.endpoint), ca_cert_file_path=admin.ca_cert, **kwargs)
    return sorted(p.pb2.name for p in flyte.remote.Project.listall())


def flyte_refresh() -> None:
    """flyte's own refresh (what its interceptor runs on UNAUTHENTICATED), on flyte's event loop."""
    from flyte._initialize import get_client
    from flyte.syncify import syncify

    interceptor = next(i for i in get_client().session_config.interceptors if type(i).__name__ == "AuthUnaryInterceptor")

    @syncify
    async def refresh() -> None:
        await interceptor.authenticator.refresh_credentials()

    refresh()


def pair(backend, service):
    tokens = json.loads(backend.get_password(service, FLYTE2_TOKENS))
    return ((backend.get_password(service, "access_token"), backend.get_password(service, "refresh_token")),
            (tokens["access_token"], tokens["refresh_token"]))


# ------------------------------------------------------------------------------------------------
def test_flyte_uses_the_notebook_login_through_its_keyring_entry(f2, connect_admin, device_user):
    ip, backend = f2
    _, creds = device_login(ip, connect_admin, device_user)
    assert pair(backend, connect_admin.service)[1] == (creds.access_token, creds.refresh_token)
    connect_admin.reset_calls()
    assert flyte_projects(connect_admin) == ["flytesnacks", "notebooks"]
    # zero prompts: one accepted call, no rejection, no auth metadata read (flyte reads it only to log in)
    assert dict(connect_admin.calls) == {"ListProjects": 1}
    # dns:/// and bare host:port name the same keyring entry
    assert flyte_projects(connect_admin, endpoint=f"dns:///{connect_admin.service}") == ["flytesnacks", "notebooks"]
    assert dict(connect_admin.calls) == {"ListProjects": 2}


def test_flyte_external_command_runs_the_token_command(f2, connect_admin, device_user, monkeypatch):
    ip, backend = f2
    _, creds = device_login(ip, connect_admin, device_user)
    # the command reads flyte's own configuration (its CA for a refresh) when given no --endpoint
    monkeypatch.setenv("FLYTE_ADMIN_ENDPOINT", f"dns:///{connect_admin.service}")
    monkeypatch.setenv("FLYTE_ADMIN_CACERTFILEPATH", connect_admin.ca_cert)
    connect_admin.reset_calls()
    projects = flyte_projects(connect_admin, auth_type="ExternalCommand", command=[str(SCRIPT)],
                              disable_keyring=True)  # so flyte cannot use its entry and must run the command
    assert projects == ["flytesnacks", "notebooks"]
    # flyte tried without a token, ran the command on UNAUTHENTICATED, then succeeded with our token
    assert dict(connect_admin.calls) == {"ListProjects:unauthenticated": 1, "ListProjects": 1}
    assert introspect(connect_admin.idp, creds.access_token)["active"] is True


def raw_device_grant(idp, device_user) -> dict:
    """A pair from the IdP's device grant, obtained with plain HTTP as flyte's DeviceFlow does (not by us)."""
    import time

    start = requests.post(idp.device_authorization_endpoint, timeout=10, data={
        "client_id": "jupyter-native", "scope": "openid offline_access api:read"}).json()
    assert device_user.complete(start["verification_uri"], start["user_code"])["status"] == "approved"
    for _ in range(30):  # bounded: the user has approved, the next poll or two answers
        r = requests.post(idp.token_endpoint, timeout=10, data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": start["device_code"],
            "client_id": "jupyter-native"})
        if r.status_code == 200:
            return r.json()
        assert r.json().get("error") in ("authorization_pending", "slow_down"), r.text
        time.sleep(start.get("interval", 1))  # the server's polling interval (RFC 8628), not a guess
    raise AssertionError("the device grant never completed")


def test_tokens_flyte_stored_are_used_by_ours(f2, connect_admin, device_user):
    from flyte.remote._client.auth._keyring import Credentials as FlyteCredentials
    from flyte.remote._client.auth._keyring import KeyringStore as FlyteKeyringStore

    ip, backend = f2
    tokens = raw_device_grant(connect_admin.idp, device_user)
    FlyteKeyringStore.store(FlyteCredentials(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
                                             for_endpoint=connect_admin.endpoint))  # flyte's own code and layout
    assert backend.get_password(connect_admin.service, "access_token") is None
    session = login(ip, f"--endpoint {connect_admin.endpoint} --ca-cert {connect_admin.ca_cert} --flow device")
    found = session.wait(30)
    assert session.view.flow == "cached" and found.access_token == tokens["access_token"]  # no device code
    key, value = session.fetch_grpc_call_auth_metadata()
    assert connect_call(connect_admin, headers={key: value})[0] == 200
    # and flytekit's layout now holds it too
    assert backend.get_password(connect_admin.service, "refresh_token") == tokens["refresh_token"]


def test_rotation_in_one_layout_then_a_call_through_the_other(f2, connect_admin, device_user):
    ip, backend = f2
    service = connect_admin.service
    session, first = device_login(ip, connect_admin, device_user)
    assert flyte_projects(connect_admin) == ["flytesnacks", "notebooks"]

    # 1. flyte refreshes and rotates; it rewrites only its `tokens` entry
    flyte_refresh()
    kit, two = pair(backend, service)
    assert kit == (first.access_token, first.refresh_token) and two[1] != first.refresh_token
    # ours (the kernel's session still holds the old pair) refreshes without sending the superseded token
    renewed = session.refresh_credentials(interactive=False)
    assert renewed.refresh_token not in (None, first.refresh_token)
    assert introspect(connect_admin.idp, renewed.access_token)["active"] is True  # the grant lives
    key, value = session.fetch_grpc_call_auth_metadata()
    assert connect_call(connect_admin, headers={key: value})[0] == 200
    kit, two = pair(backend, service)
    assert kit == two  # one truth again

    # 2. the other way: flytekit's own PKCE authenticator refreshes and rewrites only flytekit's entries
    from flytekit.clients.auth.authenticator import PKCEAuthenticator as FlytekitPKCE

    from flyteauth_jupyter import RemoteClientConfigStore

    flytekit_auth = FlytekitPKCE(service, RemoteClientConfigStore(connect_admin.endpoint, verify=connect_admin.ca_cert))
    flytekit_auth.refresh_credentials()  # the refresh grant with the current token, as flytekit does on UNAUTHENTICATED
    assert pair(backend, service)[0][1] not in (kit[1], None)
    kit, two = pair(backend, service)
    assert kit != two
    KeyringStore().load(service)  # any reader of ours (the token command, a new kernel) heals flyte's entry
    assert pair(backend, service)[1] == kit
    flyte_projects(connect_admin)  # a new flyte client reads its entry ...
    flyte_refresh()  # ... and its refresh spends the current refresh token, not the superseded one
    kit, two = pair(backend, service)
    assert introspect(connect_admin.idp, two[0])["active"] is True


def test_flyte_plaintext_keyring_is_named_in_the_panel_and_never_written(shell, flyteadmin, isolated_config, monkeypatch,
                                                                         device_user):
    """flyte registers a base64 file keyring that becomes the keyring inside IPython when nothing else
    exists: it is refused, the tokens go to the private file cache (the default without a usable
    keyring, pinned 19), the panel says so in one sentence naming both; nothing goes to flyte's file."""
    import keyring
    from flyte._keyring import file as flyte_file
    from flyte._keyring.file import SimplePlainTextKeyring

    # its path is fixed when flyte is first imported: point it into this test's HOME whatever the order
    monkeypatch.setattr(flyte_file, "_FLYTE_KEYRING_PATH", isolated_config / ".flyte" / "keyring.cfg")
    from importlib.metadata import entry_points

    previous = keyring.get_keyring()
    plaintext = SimplePlainTextKeyring()
    # the premise: flyte registers it for keyring's discovery, ranked above "fail" inside IPython
    assert "flyte_keyring_file" in {ep.name for ep in entry_points(group="keyring.backends")}
    assert plaintext.priority == 0.5
    keyring.set_keyring(plaintext)
    stores.PROCESS_FALLBACK.clear()
    monkeypatch.delenv(stores.TOKEN_CACHE_ENV, raising=False)
    try:
        shell.run_line_magic("config", "FlyteAuthMagics.display = 'widget'")
        with capture_output(display=True):
            session, creds = device_login(shell, flyteadmin, device_user, ca_cert=None)
        assert session.status == "signed_in" and creds.access_token
        notice = session.view.notice or ""
        assert "Flyte 2 SDK's plaintext file" in notice and "private file cache" in notice
        assert notice.count(". ") == 0 and len(notice) <= 500  # one sentence
        assert "plaintext file" in session.widget.notice.value
        assert not plaintext.file_path.exists()  # nothing written there, silently or otherwise
        assert stores.FileStore().load(flyteadmin.service).access_token == creds.access_token  # but here
        assert plaintext.file_path.is_relative_to(isolated_config)  # (HOME is the test's empty folder)
    finally:
        keyring.set_keyring(previous)
        stores.PROCESS_FALLBACK.clear()
