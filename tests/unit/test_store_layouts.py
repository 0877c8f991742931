"""The keyring's two layouts read as one pair (stores/layouts.py, stores/grants.py): issues 16.1 and 16.2.

16.2, "Identities mix across the two layouts": the notebook signed in as alice, then the Flyte 2 SDK
as bob (its ``tokens`` entry). Tokens of the two layouts are combined only when they belong to one
grant; otherwise the newer whole pair wins and what is left of the other is dropped, in what a load
returns and in the keyring. Hand-made unsigned JWTs (claims are read, never verified).

16.1, "Keyring reads race a save", within one process: a reader thread never writes while another
thread holds the lock and writes, and never takes a pair with one layout mid-write as the newer one
(the same with two real processes: tests/integration/test_keyring_read_race.py).
"""

from __future__ import annotations

import base64
import json
import threading

import pytest
from rig.memory_keyring import MemoryKeyring

from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.stores import KeyringStore, MemoryStore

SVC = "flyte.example.com:8443"
ISS = "https://idp.example.com"
RT_ALICE, RT_BOB = "rt-alice-0123456789abcdef", "rt-bob-0123456789abcdef"


def jwt(sub: str, *, iat: int = 1_000_000, iss: str = ISS, **claims) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    body = {"sub": sub, "iss": iss, "iat": iat, "exp": iat + 4_000_000_000, **claims}
    return f"{part({'alg': 'none'})}.{part(body)}.sig"


@pytest.fixture
def backend():
    return MemoryKeyring()


@pytest.fixture
def store(backend):
    return KeyringStore(keyring=backend, fallback=MemoryStore())


def alice_signed_in(store) -> Credentials:
    alice = Credentials(jwt("alice"), RT_ALICE, SVC, id_token=jwt("alice", aud="flytepropeller"))
    with store.lock(SVC):
        store.save(SVC, alice)
    return alice


def flyte2_writes(backend, access: str | None, refresh: str | None) -> None:
    """What the Flyte 2 SDK's KeyringStore writes after its own sign-in or refresh: its one entry."""
    backend.entries[(SVC, "tokens")] = json.dumps({"access_token": access, "refresh_token": refresh})


def entry(backend, username: str) -> str | None:
    return backend.entries.get((SVC, username))


# -- 16.2: identities ---------------------------------------------------------------------------------
def test_flyte2_signs_in_as_bob_and_the_status_shows_bob(backend, store):
    alice_signed_in(store)
    bob = jwt("bob", iat=2_000_000)
    flyte2_writes(backend, bob, RT_BOB)

    got = store.load(SVC)
    assert (got.access_token, got.refresh_token, got.id_token) == (bob, RT_BOB, None)
    assert got.subject == "bob"  # alice's id token no longer names the signed-in user
    assert (entry(backend, "access_token"), entry(backend, "refresh_token"), entry(backend, "id_token")) == (
        bob, RT_BOB, None)


@pytest.mark.parametrize("bob", [jwt("bob", iat=2_000_000), "opaque-access-token-of-bob"], ids=["jwt", "opaque"])
def test_bob_without_a_refresh_token_never_gets_alices(backend, store, bob):
    """The Flyte 2 entry has no refresh token (its ExternalCommand mode, or a provider that gives none):
    alice's refresh token must not be paired with bob's access token, in the load or in the keyring."""
    alice_signed_in(store)
    flyte2_writes(backend, bob, None)

    got = store.load(SVC)
    assert (got.access_token, got.refresh_token, got.id_token) == (bob, None, None)
    assert RT_ALICE not in backend.entries.values()
    assert not any(RT_ALICE in value for value in backend.entries.values())
    assert json.loads(entry(backend, "tokens")) == {"access_token": bob, "refresh_token": None}


def test_the_same_subject_refreshed_by_flyte2_keeps_the_id_token(backend, store):
    """One grant (JWTs of one subject): flyte's rotated pair and our id token belong together."""
    alice = alice_signed_in(store)
    newer = jwt("alice", iat=2_000_000)
    flyte2_writes(backend, newer, "rt-alice-rotated-0123456789")

    got = store.load(SVC)
    assert (got.access_token, got.refresh_token, got.id_token) == (newer, "rt-alice-rotated-0123456789",
                                                                   alice.id_token)
    assert got.subject == "alice" and entry(backend, "id_token") == alice.id_token


def test_the_command_token_without_refresh_token_is_our_grant(backend, store):
    """flyte's ExternalCommand stores the token flyteauth-token printed (ours), refresh_token null."""
    alice = alice_signed_in(store)
    flyte2_writes(backend, alice.access_token, None)
    got = store.load(SVC)
    assert (got.access_token, got.refresh_token, got.id_token) == (alice.access_token, RT_ALICE, alice.id_token)


def test_flytekit_signs_in_as_bob_and_alices_id_token_goes(backend, store):
    """flytekit writes an id token only when it has one: its bob pair beside our alice id token."""
    alice_signed_in(store)
    bob = jwt("bob", iat=2_000_000)
    backend.entries[(SVC, "access_token")] = bob
    backend.entries[(SVC, "refresh_token")] = RT_BOB

    got = store.load(SVC)
    assert (got.access_token, got.refresh_token, got.id_token) == (bob, RT_BOB, None)
    assert got.subject == "bob"
    assert entry(backend, "id_token") is None and json.loads(entry(backend, "tokens")) == {
        "access_token": bob, "refresh_token": RT_BOB}


def test_flytekit_alone_signs_in_as_bob_and_alices_id_token_goes(backend):
    """The same without the Flyte 2 layout (``flyte2=False``): one layout, still one grant."""
    store = KeyringStore(keyring=backend, flyte2=False, fallback=MemoryStore())
    alice_signed_in(store)
    bob = jwt("bob", iat=2_000_000)
    backend.entries[(SVC, "access_token")] = bob
    backend.entries[(SVC, "refresh_token")] = RT_BOB
    got = store.load(SVC)
    assert (got.access_token, got.refresh_token, got.id_token, got.subject) == (bob, RT_BOB, None, "bob")
    assert entry(backend, "id_token") is None and entry(backend, "tokens") is None


def test_subjects_of_different_issuers_are_not_compared(backend, store):
    """Azure-style: the access token's issuer differs from the id token's, so their ``sub`` may differ
    for one person; the id token stays with the pair we wrote with it."""
    pair = Credentials(jwt("pairwise-1", iss="https://sts.example.net/"), RT_ALICE, SVC, id_token=jwt("alice"))
    with store.lock(SVC):
        store.save(SVC, pair)
    assert store.load(SVC).id_token == pair.id_token


# -- 16.1: a read never writes without the lock, never takes a half-written pair ---------------------
class Pausing(MemoryKeyring):
    """Stops a chosen thread at one call (``before set tokens`` / ``after get tokens``) until released."""

    def __init__(self) -> None:
        super().__init__()
        self.points: dict[str, tuple[threading.Event, threading.Event]] = {}
        self.sets_by: dict[str, int] = {}

    def arm(self, point: str) -> tuple[threading.Event, threading.Event]:
        self.points[point] = (threading.Event(), threading.Event())
        return self.points[point]

    def _at(self, point: str) -> None:
        if threading.current_thread().name + ":" + point in self.points:
            reached, go = self.points.pop(threading.current_thread().name + ":" + point)
            reached.set()
            assert go.wait(30), "never released"

    def get_password(self, service, username):
        value = super().get_password(service, username)
        self._at(f"after get {username}")
        return value

    def set_password(self, service, username, password):
        name = threading.current_thread().name
        self.sets_by[name] = self.sets_by.get(name, 0) + 1
        self._at(f"before set {username}")
        super().set_password(service, username, password)

    def delete_password(self, service, username):
        name = threading.current_thread().name
        self.sets_by[name] = self.sets_by.get(name, 0) + 1
        super().delete_password(service, username)


def run(name: str, target) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def body() -> None:
        try:
            box["value"] = target()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            box["error"] = exc

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    return thread, box


@pytest.mark.parametrize("reader_resumes", ["after the writer", "while the writer holds the lock"])
def test_a_read_during_a_save_writes_nothing_and_takes_the_whole_new_pair(reader_resumes):
    backend = Pausing()
    old = Credentials("at-old-0123456789abcdef", "rt-old-0123456789abcdef", SVC, id_token=jwt("alice"))
    new = Credentials("at-new-0123456789abcdef", "rt-new-0123456789abcdef", SVC, id_token=jwt("alice", iat=5))
    seed = KeyringStore(keyring=backend, fallback=MemoryStore())
    with seed.lock(SVC):
        seed.save(SVC, old)

    writer_stop = backend.arm("writer:before set tokens")
    reader_stop = backend.arm("reader:after get tokens")

    def save() -> None:
        store = KeyringStore(keyring=backend, fallback=MemoryStore())
        with store.lock(SVC):  # as the lifecycle saves: under the lock
            store.save(SVC, new)

    writer, _ = run("writer", save)
    assert writer_stop[0].wait(30)  # flytekit's entries new, the Flyte 2 entry still old
    reader, got = run("reader", lambda: KeyringStore(keyring=backend, fallback=MemoryStore()).load(SVC))
    assert reader_stop[0].wait(30)
    if reader_resumes == "after the writer":
        writer_stop[1].set()
        writer.join(30)
        reader_stop[1].set()
        reader.join(30)
    else:
        reader_stop[1].set()
        reader.join(30)
        writer_stop[1].set()
        writer.join(30)
    assert not writer.is_alive() and not reader.is_alive() and "error" not in got, got

    assert backend.sets_by.get("reader", 0) == 0  # a read wrote nothing
    loaded = got["value"]
    assert (loaded.access_token, loaded.refresh_token) == (new.access_token, new.refresh_token)
    assert backend.entries[(SVC, "refresh_token")] == new.refresh_token
    assert json.loads(backend.entries[(SVC, "tokens")]) == {"access_token": new.access_token,
                                                            "refresh_token": new.refresh_token}


def test_a_writer_that_died_half_way_is_finished_by_the_next_reader_under_the_lock():
    """The marker says a write was cut short: flytekit's entries (written first) carry the newest
    refresh token; the next reader holding the lock writes them to both layouts."""
    backend = MemoryKeyring()
    store = KeyringStore(keyring=backend, fallback=MemoryStore())
    with store.lock(SVC):
        store.save(SVC, Credentials("at-old-0123456789abcdef", "rt-old-0123456789abcdef", SVC))

    def die_at_tokens(service, username, password):
        if username == "tokens":
            raise SystemExit("killed")
        MemoryKeyring.set_password(backend, service, username, password)

    backend.set_password = die_at_tokens  # type: ignore[method-assign]
    with pytest.raises(SystemExit), store.lock(SVC):
        store._write(backend, SVC, Credentials("at-new-0123456789abcdef", "rt-new-0123456789abcdef", SVC))
    del backend.set_password
    assert backend.entries[(SVC, "flyteauth_pair")].startswith("w:")

    got = KeyringStore(keyring=backend, fallback=MemoryStore()).load(SVC)
    assert (got.access_token, got.refresh_token) == ("at-new-0123456789abcdef", "rt-new-0123456789abcdef")
    assert json.loads(backend.entries[(SVC, "tokens")])["refresh_token"] == "rt-new-0123456789abcdef"
    assert not backend.entries[(SVC, "flyteauth_pair")].startswith("w:")


def test_a_sign_out_in_progress_reads_as_signed_out():
    backend = MemoryKeyring()
    store = KeyringStore(keyring=backend, fallback=MemoryStore())
    with store.lock(SVC):
        store.save(SVC, Credentials("at-0123456789abcdef", "rt-0123456789abcdef", SVC))
    backend.entries[(SVC, "flyteauth_pair")] = "w:-"
    del backend.entries[(SVC, "access_token")]
    assert KeyringStore(keyring=backend, fallback=MemoryStore()).load(SVC) is None
    assert not backend.entries  # the reader held the lock: it finished the sign-out


# -- every interleaving of one read with one save ----------------------------------------------------------
class Scripted(MemoryKeyring):
    """A keyring whose state advances by the writer's recorded operations as a schedule says, between
    the reader's calls: the reader's i-th call sees the first ``schedule[i]`` writes done."""

    def __init__(self, entries: dict, writes: list, schedule: tuple[int, ...]) -> None:
        super().__init__()
        self.entries = dict(entries)
        self.writes, self.schedule, self.done, self.reads = writes, schedule, 0, 0

    def get_password(self, service, username):
        upto = self.schedule[self.reads] if self.reads < len(self.schedule) else len(self.writes)
        while self.done < upto:
            op, key, value = self.writes[self.done]
            if op == "set":
                self.entries[key] = value
            else:
                self.entries.pop(key, None)
            self.done += 1
        self.reads += 1
        return self.entries.get((service, username))


class Recording(MemoryKeyring):
    def __init__(self, entries: dict) -> None:
        super().__init__()
        self.entries = dict(entries)
        self.log: list = []

    def set_password(self, service, username, password):
        self.log.append(("set", (service, username), password))
        super().set_password(service, username, password)

    def delete_password(self, service, username):
        self.log.append(("delete", (service, username), None))
        super().delete_password(service, username)


def test_no_interleaving_of_a_read_with_a_save_takes_the_spent_refresh_token():
    """Exhaustively: the reader's calls placed anywhere among the writer's writes. Whatever it saw, a
    reader that saw the new refresh token anywhere keeps it, and it never pairs the new access token
    with the old refresh token (the pair a replay would come from)."""
    import itertools

    from flyteauth_jupyter.stores.layouts import decide

    old = Credentials("at-old-0123456789abcdef", "rt-old-0123456789abcdef", SVC, id_token=jwt("alice"),
                      expires_in=600)
    new = Credentials("at-new-0123456789abcdef", "rt-new-0123456789abcdef", SVC, id_token=jwt("alice", iat=9),
                      expires_in=600)
    seeded = MemoryKeyring()
    KeyringStore(keyring=seeded, fallback=MemoryStore())._write(seeded, SVC, old)
    recorder = Recording(seeded.entries)
    KeyringStore(keyring=recorder, fallback=MemoryStore())._write(recorder, SVC, new)
    writes = recorder.log
    probe = Scripted(seeded.entries, [], ())
    KeyringStore(keyring=probe, fallback=MemoryStore())._snapshot(probe, SVC)
    n_reads = probe.reads

    outcomes = set()
    for cut in itertools.combinations(range(len(writes) + n_reads), n_reads):
        schedule = tuple(position - index for index, position in enumerate(cut))  # writes done before each read
        backend = Scripted(seeded.entries, writes, schedule)
        snap = KeyringStore(keyring=backend, fallback=MemoryStore())._snapshot(backend, SVC)
        decision = decide(snap)
        got = decision.creds
        pair = (got.access_token, got.refresh_token) if got else None
        saw_new = any(c is not None and c.refresh_token == new.refresh_token for c in (snap.kit, snap.two))
        assert pair != (new.access_token, old.refresh_token), schedule
        if saw_new:
            assert got is not None and got.refresh_token == new.refresh_token, schedule
        if snap.settled:
            assert pair in ((old.access_token, old.refresh_token), (new.access_token, new.refresh_token)), schedule
            assert not decision.rewrite, schedule
        outcomes.add(pair)
    assert (new.access_token, new.refresh_token) in outcomes and (old.access_token, old.refresh_token) in outcomes


def test_every_interleaving_of_a_read_with_a_sign_out_reads_old_or_nothing():
    """A sign-out in another process while a kernel reads: the reader sees the old pair whole, or
    nothing; never a pair put together from what was left."""
    import itertools

    from flyteauth_jupyter.stores.layouts import decide

    old = Credentials("at-old-0123456789abcdef", "rt-old-0123456789abcdef", SVC, id_token=jwt("alice"),
                      expires_in=600)
    seeded = MemoryKeyring()
    KeyringStore(keyring=seeded, fallback=MemoryStore())._write(seeded, SVC, old)
    recorder = Recording(seeded.entries)
    KeyringStore(keyring=recorder, fallback=MemoryStore())._clear(recorder, SVC)
    writes = recorder.log
    probe = Scripted(seeded.entries, [], ())
    KeyringStore(keyring=probe, fallback=MemoryStore())._snapshot(probe, SVC)
    for cut in itertools.combinations(range(len(writes) + probe.reads), probe.reads):
        schedule = tuple(position - index for index, position in enumerate(cut))
        backend = Scripted(seeded.entries, writes, schedule)
        got = decide(KeyringStore(keyring=backend, fallback=MemoryStore())._snapshot(backend, SVC)).creds
        assert got is None or (got.access_token, got.refresh_token) == (old.access_token, old.refresh_token), schedule
