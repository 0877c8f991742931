"""Issue 16.1, "Keyring reads race a save", with two real processes, the real provider (refresh-token
rotation and replay detection on) and one keyring file they share (tests/rig/pausing_keyring.py).

A kernel (process W) refreshes and saves the new pair; it stops after writing flytekit's entries,
before the Flyte 2 ``tokens`` entry. ``flyteauth-token`` (process R) reads the keyring for the first
time meanwhile and stops right after reading the (still old) ``tokens`` entry. W finishes; then R
reads on. Before the fix R took the old pair for the newer one and "healed" both layouts with it:
the spent refresh token was back in the keyring, and the next refresh (by anyone) replayed it, which
made the provider revoke the whole grant. Now R writes nothing without the lock and never takes a
pair with one layout mid-write as the newer one: the keyring keeps W's pair, R prints W's token, and
the next refresh succeeds with the grant intact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from rig.file_keyring import FileKeyring, child_env
from rig.pausing_keyring import POINT_ENV, SOCKET_ENV, PauseControl
from rig.sign_in import device_login

from flyteauth_jupyter import DeviceCodeAuthenticator, RemoteClientConfigStore
from flyteauth_jupyter.stores import ACCESS_TOKEN, FLYTE2_TOKENS, REFRESH_TOKEN, KeyringStore, MemoryStore
from rig import rules

pytestmark = pytest.mark.idp

RUN_TIMEOUT = 90

#: process W: a kernel whose token is refreshed and saved (the default store: the keyring)
REFRESHING_KERNEL = textwrap.dedent(
    """
    import sys
    from flyteauth_jupyter import DeviceCodeAuthenticator, RemoteClientConfigStore
    from flyteauth_jupyter.stores import make_store

    endpoint = sys.argv[1]
    auth = DeviceCodeAuthenticator(endpoint, RemoteClientConfigStore(endpoint), store=make_store())
    auth.refresh_credentials(interactive=False)
    print("refreshed", flush=True)
    """
)


def layouts(backend: FileKeyring, service: str) -> tuple[tuple[str | None, str | None], tuple[str | None, str | None]]:
    """(flytekit's access and refresh token, the Flyte 2 entry's), as the keyring file holds them now."""
    raw = backend.get_password(service, FLYTE2_TOKENS)
    two = json.loads(raw) if raw else {}
    kit = (backend.get_password(service, ACCESS_TOKEN), backend.get_password(service, REFRESH_TOKEN))
    return kit, (two.get("access_token"), two.get("refresh_token"))


def test_a_first_read_during_a_save_never_heals_with_the_spent_pair(make_idp, make_flyteadmin, device_user,
                                                                      tmp_path, reliability_rule):
    idp = make_idp(rt_rotation="always")
    admin = make_flyteadmin(idp)
    path = tmp_path / "keyring.json"
    backend = FileKeyring(path)
    store = KeyringStore(keyring=backend, fallback=MemoryStore())
    first = device_login(admin, device_user, store)
    service = admin.service
    assert layouts(backend, service) == ((first.access_token, first.refresh_token),) * 2

    env = child_env(path, home=tmp_path, cache_home=os.environ["XDG_CACHE_HOME"],  # one lock directory for all
                    backend="rig.pausing_keyring.PausingFileKeyring")
    before = idp.grants()
    with PauseControl() as control:
        env[SOCKET_ENV] = control.path
        writer = subprocess.Popen([sys.executable, "-c", REFRESHING_KERNEL, admin.endpoint], cwd=tmp_path,
                                  env={**env, POINT_ENV: "before set tokens"}, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        reader = None
        try:
            writer_paused, point = control.wait_paused()
            assert point == "before set tokens"
            reader = subprocess.Popen([sys.executable, "-m", "flyteauth_jupyter.token", "--endpoint", admin.endpoint],
                                      cwd=tmp_path, env={**env, POINT_ENV: "after get tokens"},
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
            reader_paused, point = control.wait_paused()
            assert point == "after get tokens"
            # the premise: flytekit's entries hold the new pair, the Flyte 2 entry the old one
            (kit_at, new_rt), two = layouts(backend, service)
            assert new_rt != first.refresh_token and two == (first.access_token, first.refresh_token)

            control.release(writer_paused)
            out, err = writer.communicate(timeout=RUN_TIMEOUT)
            assert writer.returncode == 0 and out.strip() == "refreshed", err[-1500:]
            written = layouts(backend, service)
            assert written == ((kit_at, new_rt),) * 2

            control.release(reader_paused)
            out, err = reader.communicate(timeout=RUN_TIMEOUT)
            assert reader.returncode == 0, err[-1500:]
        finally:
            for proc in (writer, reader):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)

    assert out.strip() == kit_at  # the reader printed the newer token
    assert layouts(backend, service) == written  # and wrote nothing over it: no spent refresh token came back
    assert idp.grants()["success"].get("refresh_token", 0) == before["success"].get("refresh_token", 0) + 1

    # the next refresh, from what the keyring holds now, succeeds: no replay, the grant lives on
    again = DeviceCodeAuthenticator(admin.endpoint, RemoteClientConfigStore(admin.endpoint),
                                    store=KeyringStore(keyring=backend, fallback=MemoryStore()))
    assert again.refresh_credentials(interactive=False).refresh_token not in (first.refresh_token, new_rt)
    after = idp.grants()
    assert after["revoked"] == before["revoked"] and after["error"].get("invalid_grant", 0) == before["error"].get(
        "invalid_grant", 0)
    reliability_rule(rules.KEYRING_RACE, "flyteauth-token reads while another process saves a refresh (paused "
                     "between the two layouts; node-oidc-provider, rotation on)",
                     "printed the newer token, wrote nothing; the next refresh succeeds, 0 grants revoked")
