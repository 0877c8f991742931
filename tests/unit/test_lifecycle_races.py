"""Token lifecycle under races and mixed identities (issue 10), with fakes for the clock and HTTP:

* logout() while a refresh is in flight: nothing is written after it, the rotated refresh token is
  revoked, never stored;
* a new login replaces the whole store entry (no refresh/id token of an earlier grant stays beside it);
* a transient OAuth error keeps the refresh token and is retried (with backoff) at the next call.

The same against the real provider: tests/integration/test_races_against_idp.py.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import pytest

from flyteauth_jupyter import ClientCredentialsAuthenticator, Credentials, DeviceCodeAuthenticator, StaticClientConfigStore
from flyteauth_jupyter.errors import FlyteAuthError
from flyteauth_jupyter.stores import KeyringStore, MemoryStore
from flow_fakes import FakeClock, oauth, ok
from rig.memory_keyring import MemoryKeyring

ENDPOINT = "http://127.0.0.1:30080"
SERVICE = "127.0.0.1:30080"
REVOKE = "https://idp.test/revoke"
TOKEN = "https://idp.test/token"
DEVICE = "https://idp.test/device"


def jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def config_store() -> StaticClientConfigStore:
    from flyteauth_jupyter import ClientConfig

    return StaticClientConfigStore(ClientConfig(
        token_endpoint=TOKEN, authorization_endpoint="https://idp.test/auth",
        redirect_uri="http://127.0.0.1:53593/callback", client_id="cli", device_authorization_endpoint=DEVICE,
        scopes=["openid", "offline_access"], header_key="flyte-authorization", audience=None,
        revocation_endpoint=REVOKE,
    ))


class RoutingTransport:
    """Answers POSTs by URL with a handler ``(url, data) -> JsonResponse`` (order-independent)."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def post_form(self, url: str, data: dict[str, Any], auth: Any = None, **kwargs: Any) -> Any:
        with self.lock:
            self.posts.append((url, dict(data)))
        answer = self.handler(url, data)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def revoked(self) -> list[str]:
        with self.lock:
            return [data["token"] for url, data in self.posts if url == REVOKE]


def device(store: Any, handler: Any, clock: FakeClock | None = None) -> tuple[DeviceCodeAuthenticator, RoutingTransport]:
    auth = DeviceCodeAuthenticator(ENDPOINT, config_store(), store=store, clock=clock or FakeClock())
    transport = RoutingTransport(handler)
    auth._transport = transport  # the HTTP seam
    return auth, transport


def wait_for(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


# ------------------------------------------------------------------------------ logout vs refresh
def test_logout_during_a_refresh_in_flight_writes_nothing_afterwards_and_revokes_the_new_token() -> None:
    store = MemoryStore()
    store.save(SERVICE, Credentials("AT-old-1234", "RT-old-1234", SERVICE, expires_at=0.0))
    in_flight, release = threading.Event(), threading.Event()

    def handler(url: str, data: dict[str, Any]) -> Any:
        if url == TOKEN:
            in_flight.set()
            assert release.wait(20), "the test never released the refresh"
            return ok({"access_token": "AT-new-5678", "refresh_token": "RT-new-5678", "expires_in": 300})
        return ok({})  # revocation

    auth, transport = device(store, handler)
    refresher = threading.Thread(target=auth.get_credentials, daemon=True)
    refresher.start()
    assert in_flight.wait(10)
    logout_done = threading.Event()
    threading.Thread(target=lambda: (auth.logout(), logout_done.set()), daemon=True).start()
    wait_for(lambda: getattr(auth, "_epoch", 0) == 1 or logout_done.is_set(), "logout to begin")
    release.set()  # the IdP answered with rotated tokens only after the user signed out
    assert logout_done.wait(20)
    refresher.join(20)
    assert not refresher.is_alive()
    assert store.load(SERVICE) is None, "a refresh that finished after logout wrote its tokens back"
    assert auth.get_credentials() is None
    assert "RT-new-5678" in transport.revoked(), "the rotated refresh token was never revoked"


def test_logout_cancels_a_login_in_flight_and_nothing_is_stored() -> None:
    store = MemoryStore()
    polled = threading.Event()

    def handler(url: str, data: dict[str, Any]) -> Any:
        if url == DEVICE:
            return ok({"device_code": "DC-secret-1234", "user_code": "AAAA-BBBB",
                       "verification_uri": "https://idp.test/device", "expires_in": 600, "interval": 1})
        if url == TOKEN:
            polled.set()
            return oauth("authorization_pending")
        return ok({})

    clock = FakeClock()
    auth, _ = device(store, handler, clock)
    clock.on_wait = lambda seconds: time.sleep(0.01)  # let the logout thread run between polls
    future = auth.refresh_in_background()
    assert polled.wait(10)
    auth.logout()
    with pytest.raises(FlyteAuthError):
        future.result(20)
    assert store.load(SERVICE) is None and auth.get_credentials() is None


# ------------------------------------------------------------------------------ identities
@pytest.mark.parametrize("kind", ["memory", "keyring"])
def test_a_new_login_replaces_the_whole_entry(kind: str) -> None:
    backend = MemoryKeyring()
    store: Any = MemoryStore() if kind == "memory" else KeyringStore(keyring=backend, fallback=MemoryStore())
    alice_id = jwt({"sub": "alice", "preferred_username": "alice"})
    store.save(SERVICE, Credentials("AT-alice-1234", "RT-alice-1234", SERVICE, id_token=alice_id, expires_at=0.0))

    def handler(url: str, data: dict[str, Any]) -> Any:
        assert url == TOKEN and data["grant_type"] == "client_credentials"
        return ok({"access_token": jwt({"sub": "robot"}), "expires_in": 300, "token_type": "Bearer"})

    robot = ClientCredentialsAuthenticator(ENDPOINT, "robot", "CS-secret-0000", config_store(), store=store,
                                           clock=FakeClock())
    robot._transport = RoutingTransport(handler)
    robot.refresh_credentials()
    saved = store.load(SERVICE)
    assert saved.subject == "robot"
    assert saved.refresh_token is None and saved.id_token is None, "alice's tokens were kept beside the robot's"
    if kind == "keyring":
        flyte2 = json.loads(backend.entries[(SERVICE, "tokens")])
        assert flyte2["refresh_token"] is None


def test_a_refresh_of_the_same_grant_still_keeps_the_refresh_and_id_token() -> None:
    store = MemoryStore()
    alice_id = jwt({"sub": "alice"})
    store.save(SERVICE, Credentials("AT-alice-1234", "RT-alice-1234", SERVICE, id_token=alice_id, expires_at=0.0))
    auth, _ = device(store, lambda url, data: ok({"access_token": "AT-alice-5678", "expires_in": 300}))
    assert auth.get_credentials().access_token == "AT-alice-5678"
    saved = store.load(SERVICE)
    assert saved.refresh_token == "RT-alice-1234" and saved.subject == "alice"


# ------------------------------------------------------------------------------ transient errors
def test_a_transient_oauth_error_keeps_the_refresh_token_and_is_retried_with_backoff() -> None:
    clock = FakeClock(start=10_000.0)
    store = MemoryStore()
    store.save(SERVICE, Credentials("AT-old-1234", "RT-old-1234", SERVICE, expires_at=9_000.0))
    answers = [oauth("temporarily_unavailable", "try later", status=503),
               ok({"access_token": "AT-new-5678", "refresh_token": "RT-new-5678", "expires_in": 300})]
    auth, transport = device(store, lambda url, data: answers.pop(0), clock)
    assert auth.get_credentials().access_token == "AT-old-1234"  # the error is logged, the old token returned
    assert auth._creds.refresh_token == "RT-old-1234"
    assert auth.get_credentials().access_token == "AT-old-1234"  # within the backoff: no request
    assert len(transport.posts) == 1
    clock.advance(2)
    assert auth.get_credentials().access_token == "AT-new-5678"
    assert len(transport.posts) == 2 and store.load(SERVICE).refresh_token == "RT-new-5678"


def test_after_a_transient_error_a_valid_token_in_the_store_is_adopted() -> None:
    clock = FakeClock(start=10_000.0)
    store = MemoryStore()
    store.save(SERVICE, Credentials("AT-old-1234", "RT-old-1234", SERVICE, expires_at=9_000.0))
    auth, transport = device(store, lambda url, data: oauth("temporarily_unavailable", status=503), clock)
    assert auth.get_credentials().access_token == "AT-old-1234"
    store.save(SERVICE, Credentials("AT-sibling-5678", "RT-sibling-5678", SERVICE, expires_at=20_000.0))
    assert auth.get_credentials().access_token == "AT-sibling-5678"  # a sibling kernel refreshed meanwhile
    assert len(transport.posts) == 1


def test_invalid_grant_still_ends_the_grant() -> None:
    store = MemoryStore()
    store.save(SERVICE, Credentials("AT-old-1234", "RT-old-1234", SERVICE, expires_at=0.0))
    auth, _ = device(store, lambda url, data: oauth("invalid_grant", "grant request is invalid"))
    assert auth.get_credentials().access_token == "AT-old-1234"
    assert auth._creds.refresh_token is None and store.load(SERVICE) is None



# ------------------------------------------------------------------------------ stored lifetime
@pytest.mark.parametrize("kind", ["keyring", "file"])
def test_a_short_lived_token_read_back_from_the_store_keeps_its_margin(kind: str, tmp_path) -> None:
    """Found by the two-kernel race: without the stored lifetime a reader assumed 60 s of margin, so a
    30 s token another kernel had just refreshed looked due at once and was refreshed a second time."""
    from flyteauth_jupyter.authenticators import needs_refresh, refresh_margin
    from flyteauth_jupyter.stores import FileStore

    store: Any = KeyringStore(keyring=MemoryKeyring(), fallback=MemoryStore()) if kind == "keyring" \
        else FileStore(tmp_path / "tokens")
    store.save(SERVICE, Credentials("AT-fresh-1234", "RT-fresh-1234", SERVICE, expires_in=30, expires_at=1030.0))
    loaded = store.load(SERVICE)
    assert loaded.expires_in == 30 and refresh_margin(loaded) == 15.0
    assert not needs_refresh(loaded, now=1000.0)
