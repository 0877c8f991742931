"""Token stores: flytekit's and the Flyte 2 SDK's keyring layouts, memory fallback, cross-process lock.

Every test runs against an in-memory keyring backend installed with ``keyring.set_keyring`` and a
temporary HOME/XDG tree, so the real keyring and cache are never touched.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import textwrap
import threading
import time

import keyring
import keyring.errors
import pytest
from rig.memory_keyring import MemoryKeyring

from flyteauth_jupyter import stores
from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.errors import TokenStoreError
from flyteauth_jupyter.stores import KeyringStore, MemoryStore, TokenStore, process_lock, service_name
from store_fakes import AT, IDT, RT, SECRETS, SVC, creds


class DBusException(Exception):
    """Stands in for dbus/secretstorage errors (not a keyring exception class)."""


class FailingKeyring(MemoryKeyring):
    """Raises ``exc`` from the operations named in ``on``."""

    def __init__(self, exc: BaseException, on: tuple[str, ...] = ("get", "set", "delete")) -> None:
        super().__init__()
        self.exc = exc
        self.on = on

    def get_password(self, service, username):
        if "get" in self.on:
            raise self.exc
        return super().get_password(service, username)

    def set_password(self, service, username, password):
        if "set" in self.on:
            raise self.exc
        super().set_password(service, username, password)

    def delete_password(self, service, username):
        if "delete" in self.on:
            raise self.exc
        super().delete_password(service, username)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (("XDG_CACHE_HOME", "cache"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path


@pytest.fixture
def backend():
    previous = keyring.get_keyring()
    fake = MemoryKeyring()
    keyring.set_keyring(fake)
    try:
        yield fake
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def fallback():
    return MemoryStore()


def unsigned_jwt(sub: str, *, iat: int = 1000, iss: str = "http://127.0.0.1:1", **claims) -> str:
    """A JWT the stores can read claims from (never verified, so unsigned is enough)."""
    import base64

    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'sub': sub, 'iss': iss, 'iat': iat, 'exp': iat + 4_000_000_000, **claims})}.sig"


# -- service names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, expected",
    [
        ("https://flyte.example.com:8443", "flyte.example.com:8443"),
        ("http://127.0.0.1:30080", "127.0.0.1:30080"),
        ("http://flyte.internal:80", "flyte.internal:80"),  # plain HTTP: a service name needs no consent
        ("dns:///flyte.example.com", "flyte.example.com"),
        ("flyte.example.com:443", "flyte.example.com:443"),  # bare services are verbatim, as flytekit
        ("flyte-default", "flyte-default"),
    ],
)
def test_service_name(given, expected):
    assert service_name(given) == expected


def test_stores_satisfy_the_protocol(backend, fallback):
    assert isinstance(MemoryStore(), TokenStore)
    assert isinstance(KeyringStore(keyring=backend, fallback=fallback), TokenStore)


# -- flytekit layout ----------------------------------------------------------------------------


def test_layout_is_flytekits_plus_expiry_and_flyte2(backend, fallback):
    store = KeyringStore(fallback=fallback)
    saved = creds()
    store.save("https://flyte.example.com:8443", saved)

    assert set(backend.entries) == {
        (SVC, "access_token"),
        (SVC, "refresh_token"),
        (SVC, "id_token"),
        (SVC, "expires_at"),
        (SVC, "expires_in"),  # the lifetime: a reader's refresh margin (issue 10, two-kernel race)
        (SVC, "flyteauth_pair"),  # which pair was last written to both layouts (pinned 18)
        (SVC, "tokens"),
    }
    assert backend.entries[(SVC, "access_token")] == AT
    assert backend.entries[(SVC, "refresh_token")] == RT
    assert backend.entries[(SVC, "id_token")] == IDT
    assert float(backend.entries[(SVC, "expires_at")]) == pytest.approx(saved.expires_at, abs=1)
    assert json.loads(backend.entries[(SVC, "tokens")]) == {"access_token": AT, "refresh_token": RT}

    loaded = store.load(SVC)
    assert loaded == Credentials(AT, RT, SVC, expires_in=saved.expires_in, id_token=IDT)
    assert loaded.expires_at == pytest.approx(saved.expires_at, abs=1)
    assert store.fallback_reason is None


def test_flyte2_can_be_turned_off(backend, fallback):
    store = KeyringStore(keyring=backend, flyte2=False, fallback=fallback)
    store.save(SVC, creds())
    assert (SVC, "tokens") not in backend.entries


def test_a_save_without_refresh_token_keeps_the_stored_one_of_the_same_grant(backend, fallback):
    """RFC 6749 (keep the refresh token when none comes back), for one grant: the same subject."""
    store = KeyringStore(keyring=backend, fallback=fallback)
    store.save(SVC, creds(access_token=unsigned_jwt("alice", iat=1000), id_token=unsigned_jwt("alice")))
    newer = unsigned_jwt("alice", iat=2000)
    store.save(SVC, Credentials(newer, None, SVC))

    assert backend.entries[(SVC, "access_token")] == newer
    assert backend.entries[(SVC, "refresh_token")] == RT
    assert json.loads(backend.entries[(SVC, "tokens")]) == {"access_token": newer, "refresh_token": RT}
    assert (SVC, "expires_at") in backend.entries  # the JWT's own exp, not the older token's
    assert store.load(SVC).refresh_token == RT


@pytest.mark.parametrize("other", ["opaque-at-of-someone", unsigned_jwt("bob", iat=2000)], ids=["opaque", "bob"])
def test_a_save_of_another_grant_drops_the_stored_refresh_and_id_tokens(backend, fallback, other):
    """Issue 16.2: nothing of alice's grant may stay beside a token that is not provably hers."""
    store = KeyringStore(keyring=backend, fallback=fallback)
    store.save(SVC, creds(access_token=unsigned_jwt("alice", iat=1000), id_token=unsigned_jwt("alice")))
    store.save(SVC, Credentials(other, None, SVC))

    assert backend.entries[(SVC, "access_token")] == other
    assert (SVC, "refresh_token") not in backend.entries and (SVC, "id_token") not in backend.entries
    assert json.loads(backend.entries[(SVC, "tokens")]) == {"access_token": other, "refresh_token": None}
    got = store.load(SVC)
    assert (got.access_token, got.refresh_token, got.id_token) == (other, None, None)


def test_jwt_exp_beats_a_stale_expiry_entry(backend, fallback):
    import base64

    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    jwt = f"{part({'alg': 'none'})}.{part({'exp': 4102444800, 'sub': 'x'})}.sig"
    backend.entries[(SVC, "access_token")] = jwt
    backend.entries[(SVC, "expires_at")] = "1000"  # written for an older token
    store = KeyringStore(keyring=backend, fallback=fallback)
    assert store.load(SVC).expires_at == 4102444800
    assert ("get", SVC, "expires_at") not in backend.calls  # JWTs cost flytekit's 3 reads, no more


def test_unparsable_expiry_reads_as_unknown(backend, fallback):
    backend.entries[(SVC, "access_token")] = AT
    backend.entries[(SVC, "expires_at")] = "soon"
    assert KeyringStore(keyring=backend, fallback=fallback).load(SVC).expires_at is None


def test_nothing_stored_gives_none(backend, fallback):
    assert KeyringStore(keyring=backend, fallback=fallback).load(SVC) is None


# -- interoperability with flytekit itself --------------------------------------------------------


def test_flytekit_reads_what_we_save(backend, fallback):
    fk = pytest.importorskip("flytekit.clients.auth.keyring")
    KeyringStore(fallback=fallback).save("http://localhost:30080", creds())
    got = fk.KeyringStore.retrieve("localhost:30080")  # PlatformConfig(endpoint="localhost:30080", insecure=True)
    assert (got.access_token, got.refresh_token, got.id_token) == (AT, RT, IDT)


def test_we_read_what_flytekit_saves(backend, fallback):
    fk = pytest.importorskip("flytekit.clients.auth.keyring")
    fk.KeyringStore.store(fk.Credentials(AT, RT, "localhost:30080", id_token=IDT))
    got = KeyringStore(fallback=fallback).load("http://localhost:30080")
    assert (got.access_token, got.refresh_token, got.id_token, got.for_endpoint) == (AT, RT, IDT, "localhost:30080")


def test_flytekit_delete_and_ours_agree(backend, fallback):
    fk = pytest.importorskip("flytekit.clients.auth.keyring")
    KeyringStore(fallback=fallback).save(SVC, creds())
    KeyringStore(fallback=fallback).delete(SVC)
    assert fk.KeyringStore.retrieve(SVC) is None
    assert backend.entries == {}


def test_flytekit_style_static_helpers(backend):
    saved = KeyringStore.store(Credentials(AT, RT, for_endpoint=SVC))
    assert saved.access_token == AT
    assert KeyringStore.retrieve(SVC).refresh_token == RT
    KeyringStore.delete(SVC)  # flytekit's static spelling
    assert KeyringStore.retrieve(SVC) is None
    assert backend.entries == {}


# -- Flyte 2 SDK layout ---------------------------------------------------------------------------


def test_reads_the_flyte2_entry_when_ours_is_absent(backend, fallback):
    backend.entries[(SVC, "tokens")] = json.dumps({"access_token": AT, "refresh_token": RT})
    got = KeyringStore(keyring=backend, fallback=fallback).load("https://flyte.example.com:8443")
    assert (got.access_token, got.refresh_token, got.for_endpoint) == (AT, RT, SVC)


def test_flyte2_refresh_token_only(backend, fallback):
    backend.entries[(SVC, "tokens")] = json.dumps({"access_token": "", "refresh_token": RT})
    got = KeyringStore(keyring=backend, fallback=fallback).load(SVC)
    assert got.access_token is None and got.refresh_token == RT


def test_a_flyte2_entry_written_after_our_save_is_the_newer_pair(backend, fallback):
    """Pinned 18: flyte refreshed (rotating the refresh token) and rewrote only its entry. Its opaque
    tokens do not prove they are the same grant as our id token (issue 16.2): the id token goes."""
    store = KeyringStore(keyring=backend, fallback=fallback)
    store.save(SVC, Credentials("ours", "rt-ours", SVC, id_token=IDT, expires_at=time.time() + 600))
    backend.entries[(SVC, "tokens")] = json.dumps({"access_token": "flyte2", "refresh_token": "rt-2"})
    got = store.load(SVC)
    assert (got.access_token, got.refresh_token, got.id_token) == ("flyte2", "rt-2", None)
    assert got.expires_at is None  # flyte stores no expiry: used until the server rejects it (pinned 4)
    # written to both layouts, so flytekit never sends the superseded rt-ours
    assert backend.entries[(SVC, "access_token")] == "flyte2"
    assert backend.entries[(SVC, "refresh_token")] == "rt-2"
    assert (SVC, "expires_at") not in backend.entries and (SVC, "id_token") not in backend.entries
    assert store.load(SVC) == got


def test_flytekit_entries_written_after_our_save_are_the_newer_pair(backend, fallback):
    """Pinned 18: flytekit refreshed and rewrote only its raw entries (and no expiry)."""
    store = KeyringStore(keyring=backend, fallback=fallback)
    store.save(SVC, Credentials("ours", "rt-ours", SVC, expires_at=time.time() - 1))
    backend.entries[(SVC, "access_token")] = "flytekit"
    backend.entries[(SVC, "refresh_token")] = "rt-kit"
    got = store.load(SVC)
    assert (got.access_token, got.refresh_token) == ("flytekit", "rt-kit")
    assert got.expires_at is None  # our expiry entry described the older token
    assert json.loads(backend.entries[(SVC, "tokens")]) == {"access_token": "flytekit", "refresh_token": "rt-kit"}


def test_flyte2_entry_without_refresh_token_keeps_ours(backend, fallback):
    """flyte's ExternalCommand mode stores the command's token with refresh_token null."""
    store = KeyringStore(keyring=backend, fallback=fallback)
    store.save(SVC, Credentials(AT, RT, SVC, expires_at=time.time() + 600))
    backend.entries[(SVC, "tokens")] = json.dumps({"access_token": AT, "refresh_token": None})
    got = store.load(SVC)
    assert (got.access_token, got.refresh_token) == (AT, RT) and got.expires_at is not None


def test_without_our_fingerprint_the_later_jwt_wins_else_flytekit(backend, fallback):
    import base64

    def jwt(iat):
        part = base64.urlsafe_b64encode(json.dumps({"iat": iat, "exp": iat + 300}).encode()).rstrip(b"=").decode()
        return f"eyJhbGciOiJub25lIn0.{part}.sig"

    store = KeyringStore(keyring=backend, fallback=fallback)
    backend.entries[(SVC, "access_token")] = jwt(1000)
    backend.entries[(SVC, "refresh_token")] = "rt-kit"
    backend.entries[(SVC, "tokens")] = json.dumps({"access_token": jwt(2000), "refresh_token": "rt-2"})
    assert store.load(SVC).refresh_token == "rt-2"
    backend.entries.clear()
    backend.entries[(SVC, "access_token")] = "opaque-kit"
    backend.entries[(SVC, "refresh_token")] = "rt-kit"
    backend.entries[(SVC, "tokens")] = json.dumps({"access_token": "opaque-2", "refresh_token": "rt-2"})
    assert store.load(SVC).refresh_token == "rt-kit"
    assert json.loads(backend.entries[(SVC, "tokens")])["refresh_token"] == "rt-kit"


@pytest.mark.parametrize("junk", ["not json", json.dumps(["a"]), json.dumps({"access_token": 5})])
def test_malformed_flyte2_entry_is_ignored(backend, fallback, junk):
    backend.entries[(SVC, "tokens")] = junk
    store = KeyringStore(keyring=backend, fallback=fallback)
    assert store.load(SVC) is None
    assert store.fallback_reason is None


def test_delete_clears_both_layouts(backend, fallback):
    store = KeyringStore(keyring=backend, fallback=fallback)
    store.save(SVC, creds())
    backend.entries[("other:1", "access_token")] = "keep-me"
    store.delete("https://flyte.example.com:8443")
    assert backend.entries == {("other:1", "access_token"): "keep-me"}
    store.delete(SVC)  # nothing left: still fine
    assert store.load(SVC) is None


# -- keyring failures fall back to memory ----------------------------------------------------------

FAILURES = [
    keyring.errors.NoKeyringError("No recommended backend was available."),
    keyring.errors.KeyringLocked("Failed to unlock the collection!"),
    keyring.errors.InitError("Prompt dismissed."),
    keyring.errors.PasswordSetError("Can't store password on keychain: (-25299, 'Unknown Error')"),
    NotImplementedError(),
    DBusException("org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.secrets was not provided"),
    OSError(1783, "The stub received bad data (value too large for the credential store)"),
    RuntimeError(f"backend echoed the secret {AT}"),
]


@pytest.mark.parametrize("exc", FAILURES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("on", [("get", "set", "delete"), ("set",), ("get",)], ids=lambda o: "+".join(o))
def test_keyring_failure_falls_back_to_memory_and_warns_once(exc, on, fallback, caplog):
    store = KeyringStore(keyring=FailingKeyring(exc, on), fallback=fallback)
    caplog.set_level(logging.DEBUG, logger="flyteauth_jupyter")

    store.load(SVC)
    store.save(SVC, creds())
    got = store.load(SVC)
    store.save(SVC, creds(access_token="at-2"))
    store.load(SVC)

    assert got is not None and got.access_token == AT
    assert store.fallback_reason and "only for this kernel" in store.fallback_reason
    assert SVC in store.fallback_reason
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].getMessage() == store.fallback_reason
    for secret in SECRETS:
        assert secret not in caplog.text
        assert secret not in store.fallback_reason
        assert secret not in repr(store)

    store.delete(SVC)
    assert store.load(SVC) is None


@pytest.mark.parametrize("module", ["fail", "null"])
def test_fail_and_null_backends_fall_back(module, fallback, caplog):
    import importlib

    backend = importlib.import_module(f"keyring.backends.{module}").Keyring()
    store = KeyringStore(keyring=backend, fallback=fallback)
    store.save(SVC, creds())
    assert store.load(SVC).access_token == AT
    assert "only for this kernel" in store.fallback_reason
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_default_fallback_is_shared_within_the_process(monkeypatch, caplog):
    shared = MemoryStore()
    monkeypatch.setattr(stores, "PROCESS_FALLBACK", shared)
    broken = FailingKeyring(keyring.errors.KeyringLocked("locked"))
    first, second = KeyringStore(keyring=broken), KeyringStore(keyring=broken)
    first.save(SVC, creds())
    assert second.load(SVC).access_token == AT  # two authenticators of one kernel share the login
    second.save(SVC, creds(access_token="at-2"))  # (the load was served from the fallback's file)
    assert first.fallback_reason == second.fallback_reason and "private file cache" in first.fallback_reason
    assert first.load(SVC).access_token == "at-2"
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1  # once per kernel


# -- reprs and the memory store ------------------------------------------------------------------


def test_reprs_never_show_tokens(backend, fallback):
    store = KeyringStore(keyring=backend, fallback=fallback)
    store.save(SVC, creds())
    memory = MemoryStore()
    memory.save(SVC, creds())
    for text in (repr(store), str(store), repr(memory), repr(store.load(SVC)), repr(memory.load(SVC))):
        for secret in SECRETS:
            assert secret not in text


def test_memory_store_round_trip_and_merge():
    memory = MemoryStore()
    memory.save("https://flyte.example.com:8443", creds(access_token=unsigned_jwt("alice", iat=1)))
    memory.save(SVC, Credentials(unsigned_jwt("alice", iat=2), None, SVC))
    got = memory.load(SVC)
    assert (got.access_token, got.refresh_token, got.id_token) == (unsigned_jwt("alice", iat=2), RT, IDT)
    memory.save(SVC, Credentials("at-2", None, SVC))  # not provably the same grant: nothing merged
    got = memory.load(SVC)
    assert (got.access_token, got.refresh_token, got.id_token) == ("at-2", None, None)
    got.access_token = "mutated"  # callers get copies
    assert memory.load(SVC).access_token == "at-2"
    memory.delete(SVC)
    assert memory.load(SVC) is None


def test_memory_store_is_thread_safe():
    memory = MemoryStore()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(200):
                memory.save(f"h{i}:1", Credentials(f"at-{i}-{j}", f"rt-{i}"))
                assert memory.load(f"h{i}:1").refresh_token == f"rt-{i}"
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors and not any(t.is_alive() for t in threads)
    assert memory.load("h3:1").access_token == "at-3-199"


# -- the lock ----------------------------------------------------------------------------------------


def test_lock_files_live_under_the_user_cache(isolated_home, fallback):
    store = KeyringStore(keyring=MemoryKeyring(), fallback=fallback)
    with store.lock("https://flyte.example.com:8443"):
        files = list((isolated_home / "cache" / "flyteauth_jupyter" / "locks").iterdir())
    assert len(files) == 1 and files[0].name.startswith("flyte.example.com_8443-")


def test_lock_is_reentrant_and_excludes_other_threads(fallback):
    store = KeyringStore(keyring=MemoryKeyring(), fallback=fallback)
    outcome: list[str] = []
    with store.lock(SVC):
        with store.lock(SVC):  # nested use in one thread must not deadlock
            pass

        def other() -> None:
            try:
                with store.lock(SVC, timeout=0.2):
                    outcome.append("acquired")
            except TokenStoreError:
                outcome.append("timed out")

        t = threading.Thread(target=other)
        t.start()
        t.join(timeout=30)
    assert outcome == ["timed out"]
    with store.lock(SVC, timeout=5):  # released afterwards
        pass


def test_lock_without_fcntl_is_an_in_process_lock(monkeypatch, isolated_home):
    monkeypatch.setattr(stores, "fcntl", None)
    with process_lock(SVC, timeout=1):
        pass
    assert not (isolated_home / "cache" / "flyteauth_jupyter" / "locks").exists()


CHILD = textwrap.dedent(
    """
    import sys
    from flyteauth_jupyter.stores import process_lock
    with process_lock(sys.argv[1], timeout=30):
        print("locked", flush=True)
        sys.stdin.readline()  # hold the lock until the parent says so
    print("released", flush=True)
    """
)


def _readline(proc: subprocess.Popen, timeout: float = 30.0) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the child process did not answer in time"
    return proc.stdout.readline().strip()


@pytest.mark.skipif(stores.fcntl is None, reason="needs fcntl")
def test_lock_serialises_two_processes(isolated_home):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, SVC],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert _readline(proc) == "locked"
        with pytest.raises(TokenStoreError) as info:
            with process_lock(SVC, timeout=0.3):
                pass
        assert SVC in str(info.value) and "lock" in str(info.value)

        proc.stdin.write("go\n")
        proc.stdin.flush()
        with process_lock(SVC, timeout=30):  # the child lets go; we get it
            assert _readline(proc) == "released"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_different_services_do_not_block_each_other():
    with process_lock("a.example.com", timeout=1):
        with process_lock("b.example.com", timeout=1):
            pass


def test_the_flyte2_plaintext_file_keyring_is_not_used(tmp_path, monkeypatch, fallback):
    """flyte's ``flyte_keyring_file`` backend (base64 in ~/.flyte/keyring.cfg): memory, and a reason."""
    flyte_file = pytest.importorskip("flyte._keyring.file")
    monkeypatch.setattr(flyte_file, "_FLYTE_KEYRING_PATH", tmp_path / ".flyte" / "keyring.cfg")
    backend = flyte_file.SimplePlainTextKeyring()
    store = KeyringStore(keyring=backend, fallback=fallback)
    store.save(SVC, creds())
    assert not (tmp_path / ".flyte").exists()
    assert store.load(SVC).access_token == AT  # kept in memory
    assert "plaintext file" in store.fallback_reason and "FLYTEAUTH_TOKEN_CACHE=file" in store.fallback_reason
