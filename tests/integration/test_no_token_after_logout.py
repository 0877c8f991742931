"""Issue 17.9: no file of ours keeps a token after a sign-out.

A real device sign-in against the provider, then ``logout(everywhere=True)`` (what ``%flyte_logout``
does); afterwards every file under the directories the tokens went to is read, and none holds the
access, refresh or id token (nor a piece of one). Three places:

* the private file cache, the default without a keyring (its file is unlinked, not emptied), also
  after a writer was killed between writing its temporary file and renaming it;
* the rig's file keyring as ``make demo`` uses it (``.demo/keyring.json``): it used to append every
  value ever written to ``keyring.json.history``, which kept every token after the sign-out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from rig.file_keyring import FileKeyring
from rig.sign_in import device_sign_in

from flyteauth_jupyter.stores import FileStore, KeyringStore, MemoryStore, make_store

pytestmark = pytest.mark.idp

TESTS = Path(__file__).resolve().parents[1]


def pieces(creds: Any) -> list[str]:
    """Each token, and for a JWT its signature alone (a token cut in two still leaks it)."""
    found = []
    for token in (creds.access_token, creds.refresh_token, creds.id_token):
        if token:
            found.append(token)
            if token.count(".") == 2:
                found.append(token.rsplit(".", 1)[1])
    return found


def files_holding(root: Path, secrets: list[str]) -> list[str]:
    """Every file under ``root`` (hidden ones too) that contains one of ``secrets``."""
    hits = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(secret.encode() in data for secret in secrets):
                hits.append(str(path.relative_to(root)))
    return hits


def test_the_default_file_cache_keeps_no_token_after_logout(flyteadmin, device_user, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    store = make_store()  # no keyring in this process: the private file cache
    assert isinstance(store, FileStore)
    auth, creds = device_sign_in(flyteadmin, device_user, store)
    secrets = pieces(creds)
    assert files_holding(cache, secrets) == [store.path_for(flyteadmin.service).relative_to(cache).as_posix()]

    auth.logout(everywhere=True)
    assert files_holding(cache, secrets) == []
    assert list(store.directory.iterdir()) == []  # unlinked, not emptied in place


#: a kernel killed between writing the temporary file and renaming it over the cache file
KILLED_MID_WRITE = textwrap.dedent(
    """
    import os, sys
    from flyteauth_jupyter.credentials import Credentials
    from flyteauth_jupyter.stores import FileStore

    os.replace = lambda *args: os._exit(9)  # the process dies right there
    FileStore().save(sys.argv[1], Credentials(sys.argv[2], sys.argv[3], expires_in=3600))
    """
)


def test_a_temporary_file_of_a_killed_writer_is_gone_after_logout(flyteadmin, device_user, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    store = FileStore()
    auth, creds = device_sign_in(flyteadmin, device_user, store)
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, flyteadmin.service, creds.access_token,
                             creds.refresh_token], env=dict(os.environ), timeout=60, stdin=subprocess.DEVNULL)
    assert killed.returncode == 9
    leftovers = [p.name for p in store.directory.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1  # the premise: a temporary file holding the tokens was left behind

    auth.logout(everywhere=True)
    assert files_holding(cache, pieces(creds)) == []
    assert list(store.directory.iterdir()) == []


def test_the_demo_keyring_keeps_no_token_after_logout(flyteadmin, device_user, tmp_path, monkeypatch):
    """``make demo`` without a keyring: the rig's file keyring in ``.demo/`` (here a temporary one),
    selected as the demo selects it, with nothing else set."""
    demo = tmp_path / ".demo"
    demo.mkdir(mode=0o700)
    for name in ("FLYTEAUTH_RIG_KEYRING_RECORD",):
        monkeypatch.delenv(name, raising=False)
    backend = FileKeyring(demo / "keyring.json")
    store = KeyringStore(keyring=backend, fallback=MemoryStore())
    auth, creds = device_sign_in(flyteadmin, device_user, store)
    secrets = pieces(creds)
    assert "keyring.json" in files_holding(demo, secrets)

    auth.logout(everywhere=True)
    assert files_holding(demo, secrets) == []
