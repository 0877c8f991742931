"""The hot path (get_credentials / fetch_grpc_call_auth_metadata with a valid token): served from a
cache that never outlives the token's refresh instant or a change of credentials, without taking a
lock or reading the store (issue 12). Behaviour only; the speed is measured in bench/."""

from __future__ import annotations

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


# -- the system clock: the expiry check is a timer at the refresh instant -----------------------------
class RealRefreshing(Authenticator):
    """Refresh grant on the system clock that hands out numbered tokens of ``life`` seconds."""

    def __init__(self, life: float) -> None:
        super().__init__(SERVICE, "authorization", insecure=True)
        self.life = life
        self.grants = 0

    def _refresh_grant(self, creds: Credentials) -> Credentials:
        self.grants += 1
        return Credentials(f"at-{self.grants}", "rt", SERVICE, expires_in=self.life)


def published(auth: Authenticator) -> bool:
    return hasattr(auth, "_fresh_credentials")


def withdrawal_seen(auth: Authenticator) -> Any:
    """An Event set once the timer of ``auth``'s current publication has made its call."""
    import threading

    timer = vars(auth)["_fresh_timer"]
    made = threading.Event()
    call = timer.fn
    timer.fn = lambda: (call(), made.set())
    return made


def test_on_the_system_clock_the_published_token_is_withdrawn_at_its_refresh_instant() -> None:
    import time

    auth = RealRefreshing(life=600)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_in=1.0))  # margin 0.5 s: fresh 0.5 s
    started = time.time()
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
    assert published(auth) and auth.get_credentials().access_token == "at-0"  # type: ignore[union-attr]
    assert withdrawal_seen(auth).wait(5.0) and not published(auth)  # the timer thread withdrew it ...
    assert time.time() - started >= 0.5 - 0.01  # ... not before the refresh instant
    assert auth.get_credentials().access_token == "at-1"  # type: ignore[union-attr]  # the slow path refreshed
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-1")
    assert auth.grants == 1
    auth.logout()
    assert not published(auth)


def test_the_timer_holds_the_authenticator_weakly_and_the_thread_ends_after_sign_out() -> None:
    import gc
    import threading
    import weakref

    from flyteauth_jupyter.control import TIMERS

    before = TIMERS.pending()
    auth = RealRefreshing(life=600)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_in=3600))
    assert auth.get_credentials() is not None and TIMERS.pending() == before + 1
    auth._set_credentials(Credentials("at-b", "rt", SERVICE, expires_in=3600))
    assert auth.get_credentials().access_token == "at-b"  # type: ignore[union-attr]
    assert TIMERS.pending() == before + 1  # the old publication's timer was cancelled
    auth.logout()
    assert TIMERS.pending() == before
    other = RealRefreshing(life=600)
    other._set_credentials(Credentials("at-0", "rt", SERVICE, expires_in=3600))
    other.get_credentials()
    ref = weakref.ref(other)
    del other
    gc.collect()
    assert ref() is None  # the pending timer does not keep it alive
    if before == 0:
        thread = TIMERS._thread
        for timer in list(TIMERS._heap):
            timer.cancel()
        if thread is not None:
            thread.join(5.0)
            assert not thread.is_alive()
        assert not [t for t in threading.enumerate() if t.name == "flyteauth-timers"]


def test_a_forked_child_serves_nothing_published_before_the_fork() -> None:
    import os

    auth = RealRefreshing(life=600)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_in=3600))
    assert auth.get_credentials() is not None and published(auth)
    pid = os.fork()
    if pid == 0:  # the child: no timer thread here, so the fork handler withdrew every publication
        code = 0 if not published(auth) and auth.get_credentials().access_token == "at-0" and published(auth) else 1  # type: ignore[union-attr]
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert published(auth)  # the parent's is untouched
    auth.logout()


def test_a_copy_starts_unpublished_and_serves_its_own_fresh_token() -> None:
    import copy

    auth = RealRefreshing(life=600)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_in=3600))
    assert auth.get_credentials() is not None and published(auth)
    twin = copy.copy(auth)
    assert not published(twin) and "_fresh_timer" not in vars(twin)
    assert twin.get_credentials().access_token == "at-0"  # type: ignore[union-attr]
    assert published(twin) and vars(twin)["_fresh_timer"] is not vars(auth)["_fresh_timer"]
    twin.clock = twin.clock  # withdraws the copy's publication only
    assert not published(twin) and published(auth)
    auth.logout()


def test_while_the_header_key_stays_unknown_fetch_makes_no_timer_per_call() -> None:
    from flyteauth_jupyter.control import TIMERS

    class KeyNeverKnown(RealRefreshing):
        def _known_header_key(self) -> str | None:
            return None  # e.g. the server's configuration could not be read: the default key is used

    auth = KeyNeverKnown(life=600)
    auth._set_credentials(Credentials("at-0", "rt", SERVICE, expires_in=3600))
    assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
    timer = vars(auth)["_fresh_timer"]
    before = TIMERS.pending()
    for _ in range(50):
        assert auth.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer at-0")
    assert vars(auth)["_fresh_timer"] is timer and TIMERS.pending() == before
    auth.logout()
