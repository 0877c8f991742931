"""Issue 16.2, "Identities mix across the two layouts", with real tokens: the provider issues JWT access
tokens (so a subject can be read), our notebook signs in as alice, and the Flyte 2 SDK's own
``KeyringStore`` then writes bob's sign-in (or a refresh of alice's grant) into its ``tokens`` entry.

A new kernel reading the keyring must show bob (not alice's id token beside bob's access token),
must never pair alice's refresh token with bob's access token, and must keep the id token when the
Flyte 2 entry is a refresh of alice's own grant. FlyteAdmin (which verifies the JWTs) says whose
token the kernel ends up sending.
"""

from __future__ import annotations

from typing import Any

import keyring
import pytest
import requests
from rig import rules
from rig.memory_keyring import MemoryKeyring
from rig.sign_in import device_login
from rig.user import DeviceUser

from flyteauth_jupyter import DeviceCodeAuthenticator, RemoteClientConfigStore
from flyteauth_jupyter.stores import KeyringStore, MemoryStore

pytestmark = pytest.mark.idp

flyte_keyring = pytest.importorskip("flyte.remote._client.auth._keyring")


@pytest.fixture
def backend():
    previous = keyring.get_keyring()
    fake = MemoryKeyring()
    keyring.set_keyring(fake)  # the Flyte 2 SDK writes through the keyring module, as on Linux
    yield fake
    keyring.set_keyring(previous)


@pytest.fixture
def admin(make_idp, make_flyteadmin):
    return make_flyteadmin(make_idp(at_format="jwt", rt_rotation="always"))


def flyte2_stores(admin: Any, access: str, refresh: str | None) -> None:
    """The Flyte 2 SDK's own KeyringStore.store, as after its sign-in or refresh."""
    flyte_keyring.KeyringStore.store(
        flyte_keyring.Credentials(access_token=access, refresh_token=refresh, for_endpoint=admin.endpoint))


def new_kernel(admin: Any, backend: Any) -> DeviceCodeAuthenticator:
    return DeviceCodeAuthenticator(admin.endpoint, RemoteClientConfigStore(admin.endpoint),
                                   store=KeyringStore(keyring=backend, fallback=MemoryStore()))


def subject_seen_by_flyteadmin(admin: Any, token: str) -> str:
    with requests.Session() as s:
        s.trust_env = False
        r = s.get(admin.url("/api/v1/projects"), headers={"flyte-authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.status_code
    return r.json()["subject"]


@pytest.mark.parametrize("bob_keeps_refresh", [True, False], ids=["with-refresh", "no-refresh"])
def test_bob_signed_in_with_the_flyte2_sdk_is_bob_everywhere(admin, backend, device_user, bob_keeps_refresh,
                                                            reliability_rule):
    alice = device_login(admin, device_user, KeyringStore(keyring=backend, fallback=MemoryStore()))
    assert alice.subject == "alice" and alice.id_token and alice.refresh_token
    bob = device_login(admin, DeviceUser(), MemoryStore(), username="bob", password="builder")  # a new browser
    assert bob.subject == "bob"
    flyte2_stores(admin, bob.access_token, bob.refresh_token if bob_keeps_refresh else None)

    kernel = new_kernel(admin, backend)
    creds = kernel.get_credentials()
    assert creds.access_token == bob.access_token
    assert creds.subject == "bob"  # what the panel and %flyte_status show
    assert creds.id_token is None  # alice's id token does not describe bob's grant
    assert creds.refresh_token == (bob.refresh_token if bob_keeps_refresh else None)
    assert subject_seen_by_flyteadmin(admin, creds.access_token) == "bob"
    # nothing of alice's grant stays in the keyring beside bob's pair, in either layout
    held = " ".join(backend.entries.values())
    assert alice.refresh_token not in held and alice.id_token not in held
    reliability_rule(rules.ONE_GRANT, "alice signed in here, then bob through the Flyte 2 SDK "
                     + ("(with a refresh token)" if bob_keeps_refresh else "(no refresh token in its entry)"),
                     "bob everywhere: none of alice's tokens kept beside bob's, in either layout")


def test_a_flyte2_refresh_of_alices_grant_keeps_her_id_token(admin, backend, device_user, reliability_rule):
    alice = device_login(admin, device_user, KeyringStore(keyring=backend, fallback=MemoryStore()))
    sdk = DeviceCodeAuthenticator(admin.endpoint, RemoteClientConfigStore(admin.endpoint), store=MemoryStore())
    sdk._set_credentials(alice)
    rotated = sdk.refresh_credentials(interactive=False)  # the Flyte 2 SDK refreshing the grant it read
    assert rotated.refresh_token != alice.refresh_token
    flyte2_stores(admin, rotated.access_token, rotated.refresh_token)

    kernel = new_kernel(admin, backend)
    creds = kernel.get_credentials()
    assert (creds.access_token, creds.refresh_token) == (rotated.access_token, rotated.refresh_token)
    assert creds.id_token == alice.id_token and creds.subject == "alice"  # one grant: combined
    again = kernel.refresh_credentials(interactive=False)  # the newest refresh token works: nothing replayed
    assert subject_seen_by_flyteadmin(admin, again.access_token) == "alice"
    reliability_rule(rules.ONE_GRANT, "the Flyte 2 SDK refreshed alice's grant",
                     "one grant: her id token kept with the rotated pair; the next refresh succeeds")
