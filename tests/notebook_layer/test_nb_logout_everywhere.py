"""%flyte_logout clears every entry for the endpoint in every store it can reach (DESIGN.md pinned 14),
whatever store the bound session used (issue 10): alice signs in with the keyring, bob with
--no-cache, and after %flyte_logout the next %flyte_login prompts again instead of finding alice."""

from __future__ import annotations

import pytest
from nb_fakes import wait_until
from rig.user import DeviceUser

from flyteauth_jupyter.notebook.session import LoginSession

pytestmark = pytest.mark.idp


def device_login(ip, device_user, line: str, username: str) -> LoginSession:
    ip.run_cell(f"%flyte_login {line}").raise_error()
    session = ip.user_ns["flyte_auth"]
    wait_until(lambda: session.view.user_code is not None, 20, "the user code")
    view = session.view
    password = {"alice": "wonderland", "bob": "builder"}[username]
    outcome = device_user.complete(view.verification_uri, view.user_code, username=username, password=password)
    assert outcome["status"] == "approved"
    session.wait(30)
    assert session.view.subject == username
    return session


def test_logout_after_a_no_cache_login_clears_the_saved_sign_in_too(nb, flyteadmin, idp, device_user, memory_keyring,
                                                                     capsys):
    ip, _ = nb
    alice = device_login(ip, device_user, f"--endpoint {flyteadmin.endpoint} --flow device", "alice")
    alice_refresh = alice.get_credentials().refresh_token
    assert (flyteadmin.service, "refresh_token") in memory_keyring.entries
    device_login(ip, DeviceUser(), f"--endpoint {flyteadmin.endpoint} --flow device --no-cache", "bob")  # own cookies

    capsys.readouterr()
    ip.run_line_magic("flyte_logout", "")
    ip.run_line_magic("flyte_status", "")
    out = capsys.readouterr().out
    assert f"Signed out of {flyteadmin.service}" in out and "Not signed in" in out
    assert not [key for key in memory_keyring.entries if key[0] == flyteadmin.service], "alice's entry survived"
    assert idp.introspect(alice_refresh).get("active") is False  # and her grant was revoked, not just forgotten

    ip.run_cell(f"%flyte_login --endpoint {flyteadmin.endpoint} --flow device").raise_error()
    again = ip.user_ns["flyte_auth"]
    wait_until(lambda: again.view.user_code is not None or again.done, 20, "a prompt (or a cached sign-in)")
    assert again.view.flow != "cached" and again.view.user_code is not None, "signed in from a cache after logout"
    again.cancel()
