"""Every sign-out that removes a refresh token revokes it first, whatever flow the session used
(issue 16.5), against the real provider: its introspection says which tokens still work.

A JupyterHub session (``--flow hub``) holds the Hub's token, which it must never revoke; an earlier
sign-in of the same endpoint left its refresh token in the file cache. ``%flyte_logout`` (the
session's ``logout()``) used to delete that entry without revoking it."""

from __future__ import annotations

import pytest
from rig.hub_api import HubAPIStandIn
from rig.sign_in import device_login
from rig.user import DeviceUser

from flyteauth_jupyter.stores import FileStore, MemoryStore

pytestmark = pytest.mark.idp


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_logging_out_of_a_hub_session_revokes_an_earlier_sign_ins_refresh_token(flyteadmin, idp, cache_env, device_user):
    from flyteauth_jupyter.authenticators import HubAuthenticator
    from flyteauth_jupyter.notebook.session import LoginSession, Prepared

    earlier = device_login(flyteadmin, device_user, FileStore())  # the file cache of $XDG_CACHE_HOME
    # the Hub's sign-in is another browser: with device_user's IdP session both would share one grant,
    # and revoking the earlier refresh token would revoke the Hub's tokens with it
    hubs = device_login(flyteadmin, DeviceUser(), MemoryStore())  # what the Hub's authenticator keeps
    assert earlier.refresh_token and earlier.id_token
    assert hubs.refresh_token and hubs.id_token
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
