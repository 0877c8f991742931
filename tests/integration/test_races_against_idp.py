"""Logout during a refresh in flight, and identities sharing one store, against the real provider.

The provider is the judge: its introspection endpoint says which refresh tokens still work. The only
seam is a pause in our own transport after the provider has answered a refresh (so the rotated token
exists at the provider while the user signs out); unit versions: tests/unit/test_lifecycle_races.py.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest

from flyteauth_jupyter import (
    ClientCredentialsAuthenticator,
    PKCEAuthenticator,
    RemoteClientConfigStore,
    StaticClientConfigStore,
)
from flyteauth_jupyter.control import Clock
from flyteauth_jupyter.stores import KeyringStore, MemoryStore
from rig.memory_keyring import MemoryKeyring

pytestmark = pytest.mark.idp

CONFIDENTIAL = ("jupyter-confidential", "confidential-secret")


def pkce_login(admin: Any, user: Any, store: Any, **kwargs: Any) -> PKCEAuthenticator:
    def browser(url: str) -> bool:
        threading.Thread(target=user.follow, args=(url,), daemon=True).start()
        return True

    auth = PKCEAuthenticator(admin.endpoint, None, open_browser=browser, store=store, timeout=30, **kwargs)
    assert auth.refresh_credentials().refresh_token
    return auth


def test_logout_while_the_provider_rotates_the_refresh_token(oauth_admin, oauth_server, auth_code_user):
    flyteadmin, idp = oauth_admin, oauth_server  # both test IdPs (tests/conftest.py)
    store = MemoryStore()
    auth = pkce_login(flyteadmin, auth_code_user, store)
    old = auth.get_credentials()
    real_post = auth._transport.post_form
    answered, release = threading.Event(), threading.Event()
    rotated: list[str] = []

    def paused_post(url: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        response = real_post(url, data, *args, **kwargs)
        if data.get("grant_type") == "refresh_token":
            rotated.append(response.data["refresh_token"])
            answered.set()
            assert release.wait(30), "never released"
        return response

    auth._transport.post_form = paused_post  # the seam: pause after the provider answered
    outcome: list[BaseException] = []

    def refresh() -> None:
        try:
            auth.refresh_credentials(interactive=False)
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    refresher = threading.Thread(target=refresh, daemon=True)
    refresher.start()
    assert answered.wait(20)
    assert idp.introspect(rotated[0]).get("active") is True  # the provider has issued the new token
    signed_out = threading.Event()
    threading.Thread(target=lambda: (auth.logout(), signed_out.set()), daemon=True).start()
    deadline = time.monotonic() + 10
    while getattr(auth, "_epoch", 0) == 0 and not signed_out.is_set() and time.monotonic() < deadline:
        time.sleep(0.005)  # until logout has begun (it then waits for the refresh)
    release.set()
    assert signed_out.wait(30)
    refresher.join(30)
    assert [type(e).__name__ for e in outcome] == ["LoginCancelledError"]  # "you signed out meanwhile"
    assert store.load(flyteadmin.service) is None and auth.get_credentials() is None
    assert idp.introspect(rotated[0]).get("active") is False, "the rotated refresh token outlived the logout"
    assert idp.introspect(old.refresh_token).get("active") is False


def test_a_robot_login_replaces_alices_entry_and_the_next_refresh_stays_the_robot(flyteadmin, auth_code_user):
    backend = MemoryKeyring()
    store = KeyringStore(keyring=backend, fallback=MemoryStore())
    alice = pkce_login(flyteadmin, auth_code_user, store).get_credentials()
    assert alice.subject == "alice" and store.load(flyteadmin.service).refresh_token

    robot = ClientCredentialsAuthenticator(flyteadmin.endpoint, *CONFIDENTIAL, None, store=store)
    robot.refresh_credentials()
    saved = store.load(flyteadmin.service)
    assert saved.refresh_token is None and saved.id_token is None, "alice's tokens stayed beside the robot's"
    assert saved.subject != "alice"
    # a later kernel reading the store refreshes as the robot or not at all, never as alice
    later = PKCEAuthenticator(flyteadmin.endpoint, None, store=store, open_browser=False)
    assert later.get_credentials().access_token == saved.access_token
    assert later.get_credentials().subject != "alice"


class SkewedClock(Clock):
    offset = 0.0

    def time(self) -> float:
        return super().time() + self.offset


def test_a_503_on_refresh_keeps_the_grant_and_the_next_call_after_the_backoff_succeeds(flyteadmin, idp, auth_code_user):
    """The token endpoint behind a real socket that answers 503 temporarily_unavailable once."""
    from faults.servers import FaultServer, relay, respond

    store = MemoryStore()
    first = pkce_login(flyteadmin, auth_code_user, store).get_credentials()
    real = RemoteClientConfigStore(flyteadmin.endpoint).get_client_config()
    with FaultServer(respond(503, '{"error": "temporarily_unavailable", "error_description": "try later"}')) as fault:
        cfg = dataclasses.replace(real, token_endpoint=f"{fault.url}/token")
        clock = SkewedClock()
        clock.offset = 7200.0  # the token looks expired
        auth = PKCEAuthenticator(flyteadmin.endpoint, StaticClientConfigStore(cfg), store=store, open_browser=False,
                                 clock=clock)
        assert auth.get_credentials().access_token == first.access_token  # the error is logged, nothing dropped
        assert auth._creds.refresh_token == first.refresh_token
        assert store.load(flyteadmin.service).refresh_token == first.refresh_token
        fault.behaviour = relay(idp.port)  # the provider is back
        hits = fault.hits
        assert auth.get_credentials().access_token == first.access_token  # within the backoff: no request
        assert fault.hits == hits
        clock.offset += 2.0  # past the first backoff step (1 s)
        renewed = auth.get_credentials()
    assert renewed.access_token != first.access_token and renewed.refresh_token != first.refresh_token
    assert idp.introspect(renewed.refresh_token).get("active") is True
