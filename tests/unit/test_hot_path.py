"""The hot path (get_credentials / fetch_grpc_call_auth_metadata with a valid token): a clock read, a
compare and a cached value that never outlives the token's refresh instant or a change of
credentials, without taking a lock or reading the store (issue 12, issue 19.1, DESIGN.md pinned 21).
Nothing runs in the background for it. Behaviour only; the speed is measured in bench/."""

from __future__ import annotations

import time
from typing import Any

from flyteauth_jupyter.authenticators import Authenticator
from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.stores import MemoryStore

from flow_fakes import FakeClock

SERVICE = "localhost:30080"


class Refreshing(Authenticator):
    """Refresh grant that hands out numbered tokens (no network)."""

    def __init__(self, clock: FakeClock, store: Any = None, **kwargs: Any) -> None:
        super().__init__(SERVICE, "authorization", insecure=True, clock=clock, store=store, **kwargs)
        self.grants = 0

    def _refresh_grant(self, creds: Credentials) -> Credentials:
        self.grants += 1
        return Credentials(f"at-{self.grants}", "rt", SERVICE, expires_at=self.clock.time() + 600)


class NoLock:
    """A lock that fails the test when taken."""

    def __enter__(self) -> None:
        raise AssertionError("the hot path took a lock")

    def __exit__(self, *exc: Any) -> None:
        pass

    acquire = release = __enter__


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    def load(self, service: str) -> Credentials | None:
        self.loads += 1
        return super().load(service)


def test_valid_token_is_served_without_lock_or_store() -> None:
    clock = FakeClock()
    store = CountingStore()
    store.save(SERVICE, Credentials("at-0", "rt", SERVICE, expires_at=clock.now + 600))
    auth = Refreshing(clock, store=store)
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
    loads = store.loads
    auth._state_lock = NoLock()  # type: ignore[assignment]
    auth._flight_lock = NoLock()  # type: ignore[assignment]
    for _ in range(100):
        assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
        assert auth.get_credentials().access_token == "at-0"  # type: ignore[union-attr]
    assert store.loads == loads
    assert auth.grants == 0


def test_cache_ends_at_the_refresh_instant() -> None:
    clock = FakeClock()
    auth = Refreshing(clock)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_at=clock.now + 600))
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
    clock.advance(600 - 60 - 1)  # one second before the refresh margin (min(60 s, half the life))
    assert auth.get_credentials().access_token == "at-0"  # type: ignore[union-attr]
    clock.advance(2)
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-1")
    assert auth.get_credentials().access_token == "at-1"  # type: ignore[union-attr]
    assert auth.grants == 1


def test_cache_follows_every_change_of_credentials_and_header() -> None:
    clock = FakeClock()
    auth = Refreshing(clock)
    assert auth.fetch_grpc_call_auth_metadata() is None
    auth._set_credentials(Credentials("at-a", "rt", SERVICE, expires_at=clock.now + 600))
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-a")
    auth._set_credentials(Credentials("at-b", "rt", SERVICE, expires_at=clock.now + 600))
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-b")
    auth._set_header_key("flyte-authorization")
    assert auth.fetch_grpc_call_auth_metadata() == ("flyte-authorization", "Bearer at-b")
    auth.logout()
    assert auth.fetch_grpc_call_auth_metadata() is None
    assert auth.get_credentials() is None


def test_unknown_expiry_is_served_until_replaced() -> None:
    clock = FakeClock()
    auth = Refreshing(clock)
    auth._set_credentials(Credentials("opaque", "rt", SERVICE))
    clock.advance(10 * 365 * 86400)
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer opaque")
    assert auth.grants == 0


def test_a_clock_swapped_later_is_used() -> None:
    auth = Refreshing(FakeClock())
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_at=FakeClock().now + 600))
    assert auth.get_credentials().access_token == "at-0"  # type: ignore[union-attr]
    late = FakeClock(start=FakeClock().now + 3600)
    auth.clock = late
    assert auth.get_credentials().access_token == "at-1"  # type: ignore[union-attr]


class CountingConfigStore:
    """A client configuration store that counts reads (a remote one would send a request each)."""

    def __init__(self) -> None:
        self.reads = 0

    def get_client_config(self) -> Any:
        from flyteauth_jupyter.config import ClientConfig

        self.reads += 1
        return ClientConfig("http://127.0.0.1:9/token", "http://127.0.0.1:9/auth", "http://127.0.0.1:9/cb", "c",
                            header_key="flyte-authorization")


def test_get_credentials_reads_no_configuration_and_fetch_reads_it_once() -> None:
    from flyteauth_jupyter.authenticators import PKCEAuthenticator

    clock = FakeClock()
    cfg = CountingConfigStore()
    store = MemoryStore()
    store.save(SERVICE, Credentials("at-0", "rt", SERVICE, expires_at=clock.now + 600))
    auth = PKCEAuthenticator(SERVICE, cfg, store=store, clock=clock, insecure=True, open_browser=False)  # type: ignore[arg-type]
    for _ in range(3):
        assert auth.get_credentials().access_token == "at-0"  # type: ignore[union-attr]
    assert cfg.reads == 0  # a valid token needs nothing from the server
    for _ in range(3):
        assert auth.fetch_grpc_call_auth_metadata() == ("flyte-authorization", "Bearer at-0")
    assert cfg.reads == 1  # the server's header key, read once


# -- the clock is read on every call: nothing runs in the background -----------------------------------
class CountingClock(FakeClock):
    """A fake clock that counts its reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def time(self) -> float:
        self.reads += 1
        return self.now


def test_every_hot_call_reads_the_clock_once() -> None:
    clock = CountingClock()
    auth = Refreshing(clock)  # type: ignore[arg-type]
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_at=clock.now + 600))
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
    auth._state_lock = NoLock()  # type: ignore[assignment]
    auth._flight_lock = NoLock()  # type: ignore[assignment]
    reads = clock.reads
    for _ in range(10):
        auth.get_credentials()
        auth.fetch_grpc_call_auth_metadata()
    assert clock.reads == reads + 20


def test_a_token_that_expired_while_the_machine_slept_is_never_served() -> None:
    """The wall clock jumps (a laptop's night): the very next call refreshes, with no second of grace."""
    clock = FakeClock()
    auth = Refreshing(clock)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_at=clock.now + 3600))
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
    assert auth.get_credentials().access_token == "at-0"  # type: ignore[union-attr]
    clock.now += 8 * 3600  # the wall clock only: a suspend stops the monotonic clock
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-1")
    clock.now += 8 * 3600
    assert auth.get_credentials().access_token == "at-2"  # type: ignore[union-attr]
    assert auth.grants == 2


def test_a_clock_stepped_back_still_serves_the_held_token() -> None:
    clock = FakeClock()
    auth = Refreshing(clock)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_at=clock.now + 600))
    assert auth.get_credentials().access_token == "at-0"  # type: ignore[union-attr]
    clock.now -= 3600
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
    assert auth.grants == 0


def ours() -> list[str]:
    import threading

    return sorted(t.name for t in threading.enumerate() if t.name.startswith("flyteauth"))


def test_a_fresh_token_on_the_system_clock_starts_no_thread() -> None:
    """Issue 19.1: no timer thread, no wake-ups; an idle kernel holding a fresh token runs nothing of ours."""
    before = ours()
    auth = Authenticator(SERVICE, "authorization", insecure=True)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_in=3600))
    for _ in range(3):
        assert auth.get_credentials().access_token == "at-0"  # type: ignore[union-attr]
        assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
    assert ours() == before == []


def test_each_cached_value_is_one_tuple_replaced_whole() -> None:
    """Lock-free readers see one tuple per method: its clock, its refresh instant and its value agree."""
    clock = FakeClock()
    auth = Refreshing(clock)
    auth._set_credentials(Credentials("at-a", "rt", SERVICE, expires_at=clock.now + 600))
    auth.fetch_grpc_call_auth_metadata()
    first = auth._hot_creds, auth._hot_header
    (now, until, creds), (now2, until2, header) = first
    assert now() == now2() == clock.now and until == until2 == clock.now + 600 - 60
    assert creds.access_token == "at-a" and header == ("authorization", "Bearer at-a")
    auth._set_credentials(Credentials("at-b", "rt", SERVICE, expires_at=clock.now + 600))
    for now, until, _ in (auth._hot_creds, auth._hot_header):  # emptied whole
        assert not now() < until
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-b")
    assert auth._hot_creds[2].access_token == "at-b" and auth._hot_header[2] == ("authorization", "Bearer at-b")


def test_a_copy_serves_its_own_credentials() -> None:
    import copy

    auth = Authenticator(SERVICE, "authorization", insecure=True)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_in=3600))
    assert auth.get_credentials() is not None
    twin = copy.copy(auth)
    assert twin.get_credentials().access_token == "at-0"  # type: ignore[union-attr]
    twin._set_credentials(Credentials("at-twin", "rt", SERVICE, expires_in=3600))
    assert twin.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-twin")
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")  # the original keeps its own
    assert auth.get_credentials().access_token == "at-0"  # type: ignore[union-attr]


def test_while_the_header_key_stays_unknown_fetch_still_answers() -> None:
    class KeyNeverKnown(Refreshing):
        def _known_header_key(self) -> str | None:
            return None  # e.g. the server's configuration could not be read: the default key is used

    clock = FakeClock()
    auth = KeyNeverKnown(clock)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_at=clock.now + 600))
    for _ in range(5):
        assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
        assert auth.get_credentials().access_token == "at-0"  # type: ignore[union-attr]
    assert auth.grants == 0


# -- the notebook's session shares its authenticator's cached values (issue 19.2) ------------------------
class Counted(Refreshing):
    """Counts the calls of its two hot methods (the session must not need them while the token is fresh)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.calls: list[str] = []

    def get_credentials(self) -> Credentials | None:
        self.calls.append("get_credentials")
        return super().get_credentials()

    def fetch_grpc_call_auth_metadata(self) -> tuple[str, str] | None:
        self.calls.append("fetch_grpc_call_auth_metadata")
        return super().fetch_grpc_call_auth_metadata()


def signed_in(auth: Authenticator) -> Any:
    from flyteauth_jupyter.notebook.session import LoginSession, Prepared

    session = LoginSession(lambda observer: Prepared(auth, "pkce"), endpoint=SERVICE, name="s")
    session.start(None)
    session.wait(30)
    session.get_credentials()  # the first call after the wait finds the login finished
    return session


def test_a_signed_in_session_serves_its_authenticators_cached_values_itself() -> None:
    """A session's call does the authenticator's own work (a clock read, a compare, the cached value
    the authenticator published), without calling the authenticator or taking a lock; the refresh
    instant, a clock that jumps and every change of the session still count."""
    clock = FakeClock(start=time.time())  # the session itself keeps the system clock
    auth = Counted(clock)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_at=clock.now + 600))
    session = signed_in(auth)
    assert session.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
    auth.calls.clear()
    locks = session._lock, auth._state_lock, auth._flight_lock
    session._lock = auth._state_lock = auth._flight_lock = NoLock()
    for _ in range(20):
        assert session.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
        assert session.get_credentials().access_token == "at-0"
    session._lock, auth._state_lock, auth._flight_lock = locks
    assert auth.calls == []
    clock.advance(600 - 60 + 1)  # past the refresh instant: the authenticator refreshes, the session follows
    assert session.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-1")
    assert session.get_credentials().access_token == "at-1" and auth.grants == 1
    clock.now += 8 * 3600  # a night's suspend: never served
    assert session.get_credentials().access_token == "at-2" and auth.grants == 2
    auth.calls.clear()
    session.cancel()  # any change of the session: its calls go through its own checks again
    assert session.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-2")
    assert auth.calls == ["fetch_grpc_call_auth_metadata"]


def test_a_session_stops_serving_its_authenticators_values_at_sign_out() -> None:
    clock = FakeClock(start=time.time())  # the session itself keeps the system clock
    auth = Counted(clock)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_at=clock.now + 600))
    session = signed_in(auth)
    assert session.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
    auth.logout()  # the authenticator's own sign-out (no revocation endpoint: nothing is sent)
    assert session.fetch_grpc_call_auth_metadata() is None and session.get_credentials() is None
    auth._set_credentials(Credentials("at-9", "rt", SERVICE, expires_at=clock.now + 600))
    assert session.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-9")
    session.logout()  # the session's sign-out: the authenticator's, and the session's calls wait again
    assert session.fetch_grpc_call_auth_metadata() is None and session.get_credentials() is None
    assert session.status == "signed_out"
