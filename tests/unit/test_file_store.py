"""FileStore: the explicit opt-in token cache for machines without a keyring, and the store factory.

Every test runs with a temporary HOME/XDG tree, so the real cache is never touched. Token values are
fakes; no test prints one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap

import keyring
import pytest

from flyteauth_jupyter import authenticators, stores
from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.errors import ConfigurationError, TokenStoreError
from flyteauth_jupyter.stores import FileStore, KeyringStore, MemoryStore, TokenStore, make_store
from store_fakes import AT, IDT, RT, SECRETS, SVC


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(stores.TOKEN_CACHE_ENV, raising=False)
    return tmp_path


@pytest.fixture
def store(tmp_path) -> FileStore:
    return FileStore(tmp_path / "tokens")


def creds(**kw) -> Credentials:
    values = dict(access_token=AT, refresh_token=RT, id_token=IDT, expires_at=2_000_000_000.0,
                  scopes=("openid", "api:read"))
    values.update(kw)
    return Credentials(**values)


def unsigned_jwt(sub: str, iat: int) -> str:
    import base64

    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'sub': sub, 'iat': iat, 'exp': 2_000_000_000 + iat})}.sig"


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- basics -------------------------------------------------------------------------------------------
def test_round_trip_keeps_every_field(store):
    assert isinstance(store, TokenStore)
    assert store.load(SVC) is None
    store.save(f"https://{SVC}", creds())
    got = store.load(SVC)
    assert got is not None
    assert (got.access_token, got.refresh_token, got.id_token) == SECRETS
    assert got.expires_at == 2_000_000_000.0 and got.scopes == ("openid", "api:read")
    assert got.for_endpoint == SVC
    assert store.fallback_reason is None


def test_default_directory_and_permissions(isolated_home):
    store = FileStore()
    assert store.directory == isolated_home / "cache" / "flyteauth_jupyter" / "tokens"
    store.save(SVC, creds())
    assert mode(store.directory) == 0o700
    path = store.path_for(SVC)
    assert path.name == hashlib.sha256(SVC.encode()).hexdigest() + ".json"  # the name reveals nothing
    assert mode(path) == 0o600
    assert os.listdir(store.directory) == [path.name]  # no temporary file left behind


def test_save_without_refresh_token_keeps_the_stored_one_of_the_same_grant(store):
    store.save(SVC, creds(access_token=unsigned_jwt("alice", 1)))
    store.save(SVC, Credentials(access_token=unsigned_jwt("alice", 2), expires_at=2_000_000_100.0))
    got = store.load(SVC)
    assert got.access_token == unsigned_jwt("alice", 2) and got.refresh_token == RT and got.id_token == IDT


@pytest.mark.parametrize("other", ["at-new-0123456789abcdef", "bob"])
def test_save_of_another_grant_keeps_nothing_of_the_stored_one(store, other):
    """Issue 16.2: an opaque token proves no grant; a JWT of bob proves another one."""
    store.save(SVC, creds(access_token=unsigned_jwt("alice", 1)))
    new = unsigned_jwt(other, 2) if other == "bob" else other
    store.save(SVC, Credentials(access_token=new, expires_at=2_000_000_100.0))
    got = store.load(SVC)
    assert (got.access_token, got.refresh_token, got.id_token) == (new, None, None)
    assert RT not in store.path_for(SVC).read_text()


def test_delete(store):
    store.save(SVC, creds())
    store.save("other.example.com", creds())
    store.delete(SVC)
    assert store.load(SVC) is None and store.load("other.example.com") is not None
    store.delete(SVC)  # nothing left: no error
    FileStore(store.directory / "absent").delete(SVC)


def test_repr_and_notice_show_the_directory_only(store):
    store.save(SVC, creds())
    for text in (repr(store), store.notice):
        assert str(store.directory) in text
        assert not any(secret in text for secret in SECRETS)
    assert repr(store) == f"FileStore(directory={str(store.directory)!r})"


# -- atomic writes --------------------------------------------------------------------------------------
def test_write_goes_through_a_temporary_file(store, monkeypatch):
    store.save(SVC, creds())
    path = store.path_for(SVC)
    seen = []
    real_fsync = os.fsync

    def fsync(fd):  # mid-write: the real file still holds the old, complete tokens
        seen.append(json.loads(path.read_text())["access_token"])
        temps = [p for p in os.listdir(store.directory) if p.startswith(".tmp-")]
        seen.append(len(temps))
        real_fsync(fd)

    monkeypatch.setattr(stores.os, "fsync", fsync)
    store.save(SVC, creds(access_token="at-second-0123456789abcdef"))
    assert seen == [AT, 1]
    assert store.load(SVC).access_token == "at-second-0123456789abcdef"


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(store, monkeypatch):
    store.save(SVC, creds())

    def broken_dump(obj, handle):
        handle.write('{"access_token": "at-par')
        raise OSError("disk full")

    monkeypatch.setattr(stores.json, "dump", broken_dump)
    with pytest.raises(TokenStoreError) as info:
        store.save(SVC, creds(access_token="at-other-0123456789abcdef"))
    assert not any(secret in str(info.value) for secret in SECRETS)
    monkeypatch.undo()
    assert store.load(SVC).access_token == AT
    assert os.listdir(store.directory) == [store.path_for(SVC).name]


# -- refusals ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [0o755, 0o770, 0o707])
def test_refuses_a_directory_others_can_use(store, bits):
    store.directory.mkdir(mode=0o700)
    os.chmod(store.directory, bits)
    for call in (lambda: store.load(SVC), lambda: store.save(SVC, creds()), lambda: store.delete(SVC)):
        with pytest.raises(TokenStoreError) as info:
            call()
        message = str(info.value)
        assert str(store.directory) in message and "other users" in message
        assert message.count(". ") == 0 and message.endswith(".")  # one sentence


def test_refuses_a_symlinked_directory(store, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    store.directory.symlink_to(real)
    with pytest.raises(TokenStoreError, match="symlink"):
        store.save(SVC, creds())


def test_refuses_a_symlinked_file(store, tmp_path):
    store.save("elsewhere.example.com", creds())
    target = store.path_for("elsewhere.example.com")
    store.path_for(SVC).symlink_to(target)
    with pytest.raises(TokenStoreError, match="symlink"):
        store.load(SVC)


def test_refuses_a_world_readable_file(store):
    store.save(SVC, creds())
    os.chmod(store.path_for(SVC), 0o644)
    with pytest.raises(TokenStoreError, match="other users") as info:
        store.load(SVC)
    assert not any(secret in str(info.value) for secret in SECRETS)


@pytest.mark.parametrize("content", ["{not json", "", "[1, 2]", '{"service": "x", "access_token": "a"}',
                                     json.dumps({"service": SVC, "access_token": 5})])
def test_corrupt_file_is_absent_and_logged_without_content(store, caplog, content):
    store.save(SVC, creds())
    path = store.path_for(SVC)
    path.write_text(content + AT)  # whatever is there must never reach the log
    caplog.set_level(logging.DEBUG, logger="flyteauth_jupyter")
    assert store.load(SVC) is None
    assert "unreadable" in caplog.text
    assert AT not in caplog.text
    store.save(SVC, creds())  # a new save replaces it
    assert store.load(SVC).access_token == AT


# -- the cross-process lock -------------------------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import sys
    from flyteauth_jupyter.credentials import Credentials
    from flyteauth_jupyter.stores import FileStore

    store, service, rounds = FileStore(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for _ in range(rounds):
        with store.lock(service):
            current = store.load(service)
            count = current.expires_at if current is not None else 0.0
            store.save(service, Credentials(access_token="at-counter-0123456789abcdef", expires_at=count + 1))
    """
)


@pytest.mark.skipif(stores.fcntl is None, reason="needs fcntl")
def test_two_processes_serialise_read_modify_write_with_the_lock(store):
    rounds = 40
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(store.directory), SVC, str(rounds)], env=dict(os.environ))
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    assert store.load(SVC).expires_at == 2 * rounds  # no lost update, never a torn file
    assert os.listdir(store.directory) == [store.path_for(SVC).name]


def test_lock_is_the_shared_process_lock(store):
    with store.lock(SVC):
        with store.lock(SVC, timeout=1):  # re-entrant within the thread
            pass
    assert any(p.name.endswith(".lock") for p in stores.lock_dir().iterdir())


# -- choosing the store ----------------------------------------------------------------------------------
@pytest.fixture
def usable_keyring():
    from rig.memory_keyring import MemoryKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield
    keyring.set_keyring(previous)


# the test process has no keyring (tests/conftest.py: keyring's fail backend), as in a container
@pytest.mark.parametrize(("value", "kind"), [(None, FileStore), ("", FileStore), ("auto", FileStore),
                                             ("keyring", KeyringStore), ("FILE", FileStore), (" file ", FileStore),
                                             ("memory", MemoryStore)])
def test_environment_variable_selects_the_default_store(monkeypatch, value, kind):
    if value is not None:
        monkeypatch.setenv(stores.TOKEN_CACHE_ENV, value)
    assert isinstance(make_store(), kind)
    assert isinstance(authenticators._default_store(), kind)


@pytest.mark.parametrize(("value", "kind"), [(None, KeyringStore), ("auto", KeyringStore), ("file", FileStore),
                                             ("memory", MemoryStore)])
def test_with_a_usable_keyring_the_default_is_the_keyring(monkeypatch, usable_keyring, value, kind):
    if value is not None:
        monkeypatch.setenv(stores.TOKEN_CACHE_ENV, value)
    assert isinstance(make_store(), kind)


def test_unknown_environment_value_warns_and_uses_the_default(monkeypatch, caplog, usable_keyring):
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "files")
    assert isinstance(make_store(), KeyringStore)
    assert "FLYTEAUTH_TOKEN_CACHE" in caplog.text
    with pytest.raises(ConfigurationError):
        make_store("files")


def test_authenticators_use_the_file_store_from_the_environment(monkeypatch, isolated_home):
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "file")
    auth = authenticators.DeviceCodeAuthenticator("https://" + SVC, None)
    assert isinstance(auth.store, FileStore)
    assert auth.store.directory == isolated_home / "cache" / "flyteauth_jupyter" / "tokens"
    FileStore().save(SVC, creds())
    assert auth.get_credentials().access_token == AT  # found without any request


def test_an_unusable_file_store_never_breaks_a_login(store):
    store.directory.mkdir(mode=0o700)
    os.chmod(store.directory, 0o777)
    auth = authenticators.DeviceCodeAuthenticator("https://" + SVC, None, store=store)
    assert auth.get_credentials() is None
    assert "other users" in auth.fallback_reason and "kept in memory" in auth.fallback_reason


def test_keyring_fallback_reason_ends_with_the_file_cache_hint():
    previous = keyring.get_keyring()
    from keyring.backends.fail import Keyring as FailKeyring

    keyring.set_keyring(FailKeyring())
    try:
        store = KeyringStore(fallback=MemoryStore())
        store.save(SVC, creds())
    finally:
        keyring.set_keyring(previous)
    assert store.fallback_reason.endswith(
        "set FLYTEAUTH_TOKEN_CACHE=file (or %config FlyteAuthMagics.token_cache = 'file') to keep them in a "
        "private file instead."
    )
    assert store.fallback_reason.count(". ") == 0  # still one sentence
