"""Which store keeps the tokens, and saying where (DESIGN.md pinned 19; issues 17.6 and 17.5).

* The usable-keyring rule (stores/backends.py): fail, null and empty-chain backends are no keyring;
  the Flyte 2 SDK's plaintext file and keyrings.alt's file backends are refused; a chain holding a
  refused member is used through its best remaining member.
* A keyring that fails later falls back to the private file cache (said once), memory only when the
  file cache is refused too; tokens parked in the file while the keyring failed are read first and
  removed by the next successful save to the keyring; a sign-out clears all of them.
* ``describe(service)``: one short phrase per store and state, never a secret.
"""

from __future__ import annotations

import logging
import os
import stat

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from rig.memory_keyring import MemoryKeyring

from flyteauth_jupyter import authenticators, stores
from flyteauth_jupyter.config import ClientConfig, StaticClientConfigStore
from flyteauth_jupyter.stores import FileStore, KeyringStore, MemoryStore, describe_store, make_store, usable_backend
from flyteauth_jupyter.stores.backends import Unusable, backend_label
from store_fakes import AT, SECRETS, SVC, creds


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(stores.TOKEN_CACHE_ENV, raising=False)
    stores.PROCESS_FALLBACK.clear()
    yield tmp_path
    stores.PROCESS_FALLBACK.clear()


def backend_from(module: str, name: str = "Keyring", priority: float = 1.0) -> KeyringBackend:
    """A backend whose type claims to live in ``module`` (the rule reads types only, never probes)."""
    cls = type(name, (MemoryKeyring,), {"__module__": module, "priority": priority})
    return cls()


class Chain(chainer.ChainerBackend):
    """keyring's ChainerBackend over given members (its ``backends`` is normally discovered)."""

    def __init__(self, members):
        super().__init__()
        self._members = members

    @property
    def backends(self):  # type: ignore[override]
        return self._members


Chain.__module__ = "keyring.backends.chainer"


# -- the rule ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend, refused", [
    (fail.Keyring(), False),
    (null.Keyring(), False),
    (Chain([]), False),
    (backend_from("flyte._keyring.file", "SimplePlainTextKeyring", 0.5), True),
    (backend_from("keyrings.alt.file", "PlaintextKeyring", 0.5), True),
    (backend_from("keyrings.alt.file", "EncryptedKeyring", 0.6), True),
    (Chain([backend_from("flyte._keyring.file", "SimplePlainTextKeyring", 0.5)]), True),
], ids=["fail", "null", "empty-chain", "flyte-plaintext", "alt-plaintext", "alt-encrypted", "chain-of-plaintext"])
def test_what_is_not_a_usable_keyring(backend, refused):
    with pytest.raises(Unusable) as info:
        usable_backend(backend)
    assert info.value.refused is refused


def test_a_chain_with_a_refused_member_is_used_through_its_best_other_member():
    secret_service = backend_from("keyring.backends.SecretService", priority=5)
    plaintext = backend_from("flyte._keyring.file", "SimplePlainTextKeyring", 0.5)
    assert usable_backend(Chain([secret_service, plaintext])) is secret_service
    both_good = Chain([secret_service, backend_from("keyring.backends.kwallet", "DBusKeyring", 4.9)])
    assert usable_backend(both_good) is both_good
    assert backend_label(secret_service) == "SecretService" and backend_label(both_good) == "SecretService + kwallet"
    assert backend_label(MemoryKeyring()) == "MemoryKeyring"


def test_the_default_is_the_keyring_when_usable_else_the_file_cache(isolated):
    previous = keyring.get_keyring()
    try:
        keyring.set_keyring(MemoryKeyring())
        assert isinstance(make_store(), KeyringStore)
        keyring.set_keyring(fail.Keyring())
        quiet = make_store()
        assert isinstance(quiet, FileStore) and quiet.fallback_reason is None  # no keyring: the normal case
        keyring.set_keyring(backend_from("flyte._keyring.file", "SimplePlainTextKeyring", 0.5))
        refused = make_store()
        assert isinstance(refused, FileStore)
        reason = refused.fallback_reason or ""
        assert "Flyte 2 SDK's plaintext file" in reason and "private file cache in ~/cache/flyteauth_jupyter/tokens" in reason
        assert reason.count(". ") == 0 and len(reason) <= 500
        assert isinstance(make_store("memory"), MemoryStore)
    finally:
        keyring.set_keyring(previous)


# -- falling back ------------------------------------------------------------------------------------------
class Raising(MemoryKeyring):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def get_password(self, service, username):
        raise self.exc

    def set_password(self, service, username, password):
        raise self.exc


@pytest.mark.parametrize("exc", [keyring.errors.KeyringLocked("locked"), OSError(1783, "value too large"),
                                 RuntimeError(f"echoes {AT}")], ids=["locked", "too-large", "raises"])
def test_a_failing_keyring_falls_back_to_the_file_cache_once_and_visibly(exc, isolated, caplog):
    caplog.set_level(logging.DEBUG, logger="flyteauth_jupyter")
    store = KeyringStore(keyring=Raising(exc))
    assert store.load(SVC) is None
    store.save(SVC, creds())
    store.save(SVC, creds(access_token="at-2-0123456789abcdef"))

    reason = store.fallback_reason or ""
    assert reason.startswith(f"Tokens for {SVC} are kept in the private file cache in ~/cache/flyteauth_jupyter/tokens")
    assert type(exc).__name__ in reason and reason.count(". ") == 0 and len(reason) <= 500
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [reason]
    path = FileStore().path_for(SVC)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert KeyringStore(keyring=Raising(exc)).load(SVC).access_token == "at-2-0123456789abcdef"  # a new kernel too
    phrase = store.describe(SVC)
    assert phrase.startswith("the private file ~/cache/flyteauth_jupyter/tokens/") and phrase.endswith(
        ".json (the keyring failed)")
    for text in (reason, phrase, caplog.text, repr(store)):
        assert not any(secret in text for secret in SECRETS)


def test_memory_only_when_the_file_cache_is_refused_too(isolated, caplog):
    (isolated / "cache" / "flyteauth_jupyter").mkdir(parents=True)
    (isolated / "elsewhere").mkdir(mode=0o700)
    (isolated / "cache" / "flyteauth_jupyter" / "tokens").symlink_to(isolated / "elsewhere")
    store = KeyringStore(keyring=Raising(keyring.errors.KeyringLocked("locked")))
    store.save(SVC, creds())
    assert store.load(SVC).access_token == AT  # kept, in this process's memory
    reason = store.fallback_reason or ""
    assert "kept in memory" in reason and "symlink" in reason and "KeyringLocked" in reason
    assert store.describe(SVC) == "memory only (this kernel; the keyring failed and the private file cache was refused)"
    assert list((isolated / "elsewhere").iterdir()) == []


def test_tokens_parked_in_the_file_are_read_first_and_moved_back_by_the_next_save(isolated):
    FileStore().save(SVC, creds(access_token="at-parked-0123456789abcdef"))  # while the keyring failed
    backend = MemoryKeyring()
    backend.entries[(SVC, "access_token")] = "at-stale-0123456789abcdef"  # what it held before
    store = KeyringStore(keyring=backend)
    assert store.load(SVC).access_token == "at-parked-0123456789abcdef"
    with store.lock(SVC):
        store.save(SVC, creds(access_token="at-next-0123456789abcdef"))
    assert not FileStore().path_for(SVC).exists()
    assert store.load(SVC).access_token == "at-next-0123456789abcdef"
    assert backend.entries[(SVC, "access_token")] == "at-next-0123456789abcdef"


def test_sign_out_everywhere_clears_the_file_cache_whatever_the_session_used(isolated):
    FileStore().save(SVC, creds())
    config = StaticClientConfigStore(ClientConfig(token_endpoint="https://idp.example.com/token",
                                                  authorization_endpoint="https://idp.example.com/auth",
                                                  redirect_uri="http://localhost:53682/callback",
                                                  client_id="flytepropeller"))
    auth = authenticators.DeviceCodeAuthenticator("https://" + SVC, config, store=MemoryStore())
    assert any(isinstance(store, FileStore) for store in authenticators.reachable_stores(auth.store))
    auth.logout(everywhere=True)
    assert FileStore().load(SVC) is None and not FileStore().path_for(SVC).exists()


# -- describe() ----------------------------------------------------------------------------------------------
def test_every_store_says_where_it_keeps_tokens_in_one_short_phrase(isolated):
    working = KeyringStore(keyring=MemoryKeyring())
    file_store = FileStore()
    phrases = {
        "keyring": working.describe(SVC),
        "file": file_store.describe(SVC),
        "memory": MemoryStore().describe(SVC),
        "explicit keyring, none here": KeyringStore(keyring=fail.Keyring()),
    }
    none_here = phrases.pop("explicit keyring, none here")
    none_here.save(SVC, creds())
    phrases["explicit keyring, none here"] = none_here.describe(SVC)
    digest = file_store.path_for(SVC).name[:8]
    assert phrases == {
        "keyring": "the keyring (MemoryKeyring)",
        "file": f"the private file ~/cache/flyteauth_jupyter/tokens/{digest}\u2026.json",
        "memory": "memory only (this kernel)",
        "explicit keyring, none here": f"the private file ~/cache/flyteauth_jupyter/tokens/{digest}\u2026.json "
                                       "(no usable keyring)",
    }
    assert describe_store(None, SVC) == "memory only (this kernel)"
    assert describe_store(object(), SVC) == "a object"
    for phrase in phrases.values():
        assert len(phrase) <= 100 and not any(secret in phrase for secret in SECRETS)
