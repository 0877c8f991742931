"""The token command's fast path (issue 19.2, flyteauth_jupyter.token.cached_token): a fresh cached
token is printed straight from the store, exactly the token the full path would print; anything
else (a token within its refresh margin, keyring layouts a read would rewrite, tokens parked in the
file cache, a refused file cache, an option it does not know) goes down the full path. A read never
writes. The process imports no HTTP stack, flows or authenticators (checked on ``sys.modules``)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backends import fail
from rig.memory_keyring import MemoryKeyring

from flyteauth_jupyter import stores, token
from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.stores import FLYTE2_TOKENS, PAIR_MARK, FileStore, KeyringStore

URL = "http://127.0.0.1:30080"
SVC = "127.0.0.1:30080"
AT = "at-fast-path-0123456789"
RT = "rt-fast-path-0123456789"
TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty HOME and working directory (no SDK configuration), a cache of this test's own, no
    keyring unless a test installs one, and no SDK settings from the environment."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("FLYTE", "UCTL", "_FLYTE")):
            monkeypatch.delenv(name)
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    stores.PROCESS_FALLBACK.clear()
    yield tmp_path
    stores.PROCESS_FALLBACK.clear()
    keyring.set_keyring(previous)


def creds(access: str = AT, **kw: Any) -> Credentials:
    values: dict[str, Any] = dict(refresh_token=RT, for_endpoint=SVC, expires_in=3600)
    values.update(kw)
    return Credentials(access, **values)


def use_keyring(monkeypatch: pytest.MonkeyPatch, kind: str = "keyring") -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, kind)
    return backend


def save_in_keyring(backend: MemoryKeyring, saved: Credentials) -> None:
    store = KeyringStore(keyring=backend)
    with store.lock(SVC):
        store.save(SVC, saved)


def full_path(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """``main`` with the fast path switched off: what the command printed before issue 19.2."""
    with monkeypatch.context() as m:
        m.setattr(token, "cached_token", lambda argv: None)
        out, err = io.StringIO(), io.StringIO()
        rc = token.main(argv, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def fast_path_only(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """``main`` with the full path made to fail: whatever it prints came from the fast path."""
    with monkeypatch.context() as m:
        m.setattr(token, "_build", lambda args: pytest.fail("the full path ran"))
        out, err = io.StringIO(), io.StringIO()
        rc = token.main(argv, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------- the same token as the full path
@pytest.mark.parametrize("kind", ["file", "auto-no-keyring", "keyring", "auto-keyring"])
def test_a_fresh_cached_token_is_the_one_the_full_path_prints(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if kind in ("keyring", "auto-keyring"):
        save_in_keyring(use_keyring(monkeypatch, "keyring" if kind == "keyring" else "auto"), creds())
    else:
        monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "file" if kind == "file" else "auto")
        FileStore().save(SVC, creds())
    argv = ["--endpoint", URL]
    assert fast_path_only(argv, monkeypatch) == (0, AT + "\n", "")
    assert full_path(argv, monkeypatch) == (0, AT + "\n", "")


@pytest.mark.parametrize("argv", [
    ["--endpoint", URL], ["--endpoint=" + URL], ["--endpoint", SVC, "--insecure"], ["--insecure", "--endpoint", SVC],
    ["--endpoint", URL, "--format", "token"], ["--format=token", "--endpoint", URL], ["--login", "--endpoint", URL],
])
def test_every_way_of_asking_for_the_bare_token(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "file")
    FileStore().save(SVC, creds())
    assert fast_path_only(argv, monkeypatch) == (0, AT + "\n", "")


def test_without_an_endpoint_it_reads_the_sdk_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "file")
    FileStore().save(SVC, creds())
    monkeypatch.setenv("FLYTE_PLATFORM_URL", SVC)
    monkeypatch.setenv("FLYTE_PLATFORM_INSECURE", "true")
    assert fast_path_only([], monkeypatch) == (0, AT + "\n", "")
    assert full_path([], monkeypatch) == (0, AT + "\n", "")


def test_a_token_of_unknown_expiry_is_printed_as_the_full_path_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "file")
    FileStore().save(SVC, Credentials(AT, RT, SVC))  # opaque, no expiry: used until the server says no
    assert token.cached_token(["--endpoint", URL]) == AT
    assert full_path(["--endpoint", URL], monkeypatch) == (0, AT + "\n", "")


# ------------------------------------------------------------------- near expiry: the full path refreshes
@pytest.mark.parametrize(("left", "lifetime", "fresh"), [
    (3000, 3600, True), (61, 3600, True), (59, 3600, False), (1, 3600, False), (-5, 3600, False),
    (40, 60, True), (20, 60, False),  # a one-minute token: the margin is half its life
])
def test_a_token_within_its_refresh_margin_is_left_to_the_full_path(
        left: float, lifetime: int, fresh: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "file")
    FileStore().save(SVC, creds(expires_at=time.time() + left, expires_in=lifetime))
    assert token.cached_token(["--endpoint", URL]) == (AT if fresh else None)


def test_near_expiry_the_command_refreshes_through_the_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "file")
    FileStore().save(SVC, creds(expires_at=time.time() + 30))
    ran: list[Any] = []
    real_build = token._build

    def build(args: Any) -> Any:
        auth = real_build(args)
        auth._refresh_grant = lambda old: ran.append(old) or creds("at-refreshed", expires_in=3600)
        return auth

    monkeypatch.setattr(token, "_build", build)
    out, err = io.StringIO(), io.StringIO()
    assert token.main(["--endpoint", URL], stdout=out, stderr=err) == 0
    assert (out.getvalue(), err.getvalue(), len(ran)) == ("at-refreshed\n", "", 1)
    assert FileStore().load(SVC).access_token == "at-refreshed"  # type: ignore[union-attr]
    assert token.cached_token(["--endpoint", URL]) == "at-refreshed"  # and the next run is fast again


# ------------------------------------------------------------------- anything unusual: the full path
@pytest.mark.parametrize("argv", [
    ["--format", "header", "--endpoint", URL], ["--format", "json", "--endpoint", URL], ["--format=json"],
    ["--help"], ["-h"], ["--end", URL], ["--endpoint"], ["--endpoint", URL, "--endpoint", URL],
    ["--endpoint", "--insecure"], ["--insecure=yes", "--endpoint", URL], ["--endpoint", URL, "extra"],
    ["--endpoint", URL, "--proxy-command", "x"], ["--endpoint="],
])
def test_an_argument_it_does_not_know_is_left_to_argparse(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "file")
    FileStore().save(SVC, creds())
    assert token.cached_token(argv) is None


@pytest.mark.parametrize("kind", ["memory", "nonsense"])
def test_a_memory_or_unknown_cache_is_left_to_the_full_path(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    FileStore().save(SVC, creds())
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, kind)
    assert token.cached_token(["--endpoint", URL]) is None


def test_nothing_cached_or_no_endpoint_is_left_to_the_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "file")
    assert token.cached_token(["--endpoint", URL]) is None
    FileStore().save(SVC, creds())
    assert token.cached_token([]) is None  # no configuration names an endpoint
    (Path.cwd() / "flytekit.config").write_text("[platform\nurl = broken", encoding="utf-8")
    assert token.cached_token([]) is None  # a broken configuration file: the full path says so


def test_a_refused_file_cache_is_left_to_the_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "file")
    FileStore().save(SVC, creds())
    os.chmod(FileStore().directory, 0o755)  # readable by others: the store refuses it
    assert token.cached_token(["--endpoint", URL]) is None


def test_tokens_parked_in_the_file_cache_are_left_to_the_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = use_keyring(monkeypatch)
    save_in_keyring(backend, creds())
    FileStore().save(SVC, creds("at-parked"))  # written there while the keyring failed: newer
    assert token.cached_token(["--endpoint", URL]) is None
    assert full_path(["--endpoint", URL], monkeypatch)[1] == "at-parked\n"


@pytest.mark.parametrize("case", ["flyte2-newer", "mid-write", "signing-out"])
def test_a_read_never_writes_layouts_it_would_rewrite_are_left_to_the_full_path(
        case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = use_keyring(monkeypatch)
    save_in_keyring(backend, creds())
    if case == "flyte2-newer":  # the Flyte 2 SDK refreshed after our save: the layouts disagree
        backend.set_password(SVC, FLYTE2_TOKENS, json.dumps({"access_token": "at-flyte2", "refresh_token": "rt-2"}))
    elif case == "mid-write":
        backend.set_password(SVC, PAIR_MARK, "w:" + "0" * 32)
    else:
        backend.set_password(SVC, PAIR_MARK, "w:-")
    before = dict(backend.entries)
    backend.calls.clear()
    assert token.cached_token(["--endpoint", URL]) is None
    assert backend.entries == before and {call[0] for call in backend.calls} == {"get"}


def test_an_unusable_keyring_asked_for_is_left_to_the_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "keyring")  # the fail backend (isolated): the full path falls back
    FileStore().save(SVC, creds())
    assert token.cached_token(["--endpoint", URL]) is None


def test_it_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stores.TOKEN_CACHE_ENV, "keyring")

    class Broken(MemoryKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            raise RuntimeError("locked")

    keyring.set_keyring(Broken())
    assert token.cached_token(["--endpoint", URL]) is None
    assert token.cached_token(["--endpoint", "http://[::1"]) is None  # an endpoint that does not parse


# ------------------------------------------------------------------- what the process imports
NOT_IMPORTED = ("requests", "urllib3", "flyteauth_jupyter.authenticators", "flyteauth_jupyter.flows",
                "flyteauth_jupyter.config", "flyteauth_jupyter.transport", "flyteauth_jupyter.control",
                "flyteauth_jupyter.stores.lock", "argparse")
PROBE = """
import json, sys
from flyteauth_jupyter.token import main
code = main(sys.argv[1:])
sys.stderr.write(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("kind", ["file", "keyring"])
def test_the_fast_path_imports_no_http_stack_flows_or_authenticators(kind: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYTE", "UCTL", "_FLYTE"))}
    if kind == "file":
        env[stores.TOKEN_CACHE_ENV] = "file"
        FileStore().save(SVC, creds())
    else:  # tests/rig/file_keyring.py on its own (its package, the test rig, would import requests itself)
        from rig.file_keyring import FileKeyring

        path = tmp_path / "keyring.json"
        save_in_keyring(FileKeyring(path), creds())  # type: ignore[arg-type]
        env.update({stores.TOKEN_CACHE_ENV: "keyring", "PYTHON_KEYRING_BACKEND": "file_keyring.FileKeyring",
                    "PYTHONPATH": str(TESTS / "rig"), "FLYTEAUTH_RIG_KEYRING": str(path)})
    out = subprocess.run([sys.executable, "-c", PROBE, "--endpoint", URL], env=env, capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL, cwd=tmp_path)
    seen = json.loads(out.stderr)
    assert (out.stdout, seen["code"]) == (AT + "\n", 0)
    assert [m for m in seen["modules"] if m.split(".")[0] in NOT_IMPORTED or m.startswith(NOT_IMPORTED)] == []
