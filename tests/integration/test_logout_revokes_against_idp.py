"""Every sign-out that removes a refresh token revokes it first, whatever flow the session used
(issue 16.5), against the real provider: its introspection says which tokens still work.

A JupyterHub session (``--flow hub``) holds the Hub's token, which it must never revoke; an earlier
sign-in of the same endpoint left its refresh token in the file cache. ``%flyte_logout`` (the
session's ``logout()``) used to delete that entry without revoking it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from rig.hub_api import HubAPIStandIn
from rig.user import DeviceUser

from flyteauth_jupyter import DeviceCodeAuthenticator
from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.flows.events import DeviceCodeIssued
from flyteauth_jupyter.stores import FileStore, MemoryStore

pytestmark = pytest.mark.idp


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def device_login(admin: Any, user: DeviceUser, store: Any) -> Credentials:
    issued = threading.Event()
    codes: list[DeviceCodeIssued] = []

    def observer(event: Any) -> None:
        if isinstance(event, DeviceCodeIssued):
            codes.append(event)
            issued.set()

    auth = DeviceCodeAuthenticator(admin.endpoint, None, store=store, observer=observer, timeout=60, insecure=True)
    future = auth.refresh_in_background()
    assert issued.wait(30)
    assert user.complete(codes[0].verification_uri, codes[0].user_code)["status"] == "approved"
    creds = future.result(30)
    assert creds.refresh_token and creds.id_token
    return creds


def test_logging_out_of_a_hub_session_revokes_an_earlier_sign_ins_refresh_token(flyteadmin, idp, cache_env):
    from flyteauth_jupyter.authenticators import HubAuthenticator
    from flyteauth_jupyter.notebook.session import LoginSession, Prepared

    earlier = device_login(flyteadmin, DeviceUser(), FileStore())  # the file cache of $XDG_CACHE_HOME
    hubs = device_login(flyteadmin, DeviceUser(), MemoryStore())  # what the Hub's authenticator keeps
    assert idp.introspect(earlier.refresh_token).get("active") is True
    hub = HubAPIStandIn({"access_token": hubs.access_token, "refresh_token": hubs.refresh_token,
                         "id_token": hubs.id_token})
    try:
        auth = HubAuthenticator(flyteadmin.endpoint, env=hub.env, insecure=True)
        session = LoginSession(lambda observer: Prepared(auth, "hub"), endpoint=flyteadmin.service, name="hub",
                               use_cache=False)
        session.start(None)
        assert session.wait(30).access_token == hubs.access_token
        session.logout()  # what %flyte_logout calls
    finally:
        hub.close()
    assert FileStore().load(flyteadmin.service) is None  # cleared ...
    assert idp.introspect(earlier.refresh_token).get("active") is False  # ... and revoked first
    assert idp.introspect(hubs.access_token).get("active") is True  # the Hub's own token: never revoked
    assert idp.introspect(hubs.refresh_token).get("active") is True
