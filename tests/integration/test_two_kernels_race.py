"""Two kernels (real processes) x 16 threads each share one token cache and race on an expired token,
20 times, against the real provider with refresh-token rotation and replay detection (issue 10).

Each round both kernels' clocks jump past the token's expiry (the IdP's access tokens live 30 s; a
jump is used instead of waiting), and 32 threads ask for the token at once. Exactly one refresh per
expiry reaches the IdP (its own counters, GET /rig/grants), every thread in both kernels ends with
the newest token, and the grant is never revoked (a replayed refresh token would revoke it: the
provider's grant.revoked counter stays 0 and the last refresh token introspects as active). Once
with the keyring (the rig's file keyring, shared by both processes), once with the private file
cache (FLYTEAUTH_TOKEN_CACHE=file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from flyteauth_jupyter import PKCEAuthenticator
from flyteauth_jupyter.stores import FileStore, KeyringStore

pytestmark = pytest.mark.idp

TESTS = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("race_kernel.py")
ROUNDS = 20
AT_TTL = 30
STEP = 100.0  # seconds each round's clocks jump ahead: past the previous token's 30 s life


class Kernel:
    """A race_kernel.py process: one JSON line per command, each read with a deadline."""

    def __init__(self, endpoint: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), endpoint], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        assert self.read(60).get("ready"), "the kernel did not start"

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self, timeout: float = 60) -> dict[str, Any]:
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not box or not box[0]:
            self.stop()
            raise AssertionError(f"the kernel gave no answer within {timeout} s: {self.proc.stderr.read()[-1500:]}")
        return json.loads(box[0])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)


def pkce_login(admin: Any, user: Any, store: Any) -> PKCEAuthenticator:
    def browser(url: str) -> bool:
        threading.Thread(target=user.follow, args=(url,), daemon=True).start()
        return True

    auth = PKCEAuthenticator(admin.endpoint, None, open_browser=browser, store=store, timeout=30)
    creds = auth.refresh_credentials()
    assert creds.refresh_token
    return auth


@pytest.mark.parametrize("cache", ["keyring", "file"])
def test_two_kernels_x_16_threads_refresh_once_per_expiry(cache, make_idp, make_flyteadmin, auth_code_user, tmp_path,
                                                          reliability_record):
    idp = make_idp(at_ttl=AT_TTL, rt_rotation="always")
    admin = make_flyteadmin(idp)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYTE", "PYTHON_KEYRING"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]),
               NO_PROXY="*", no_proxy="*")
    if cache == "keyring":
        keyring_file = tmp_path / "keyring.json"
        env.update(FLYTEAUTH_TOKEN_CACHE="keyring", PYTHON_KEYRING_BACKEND="rig.file_keyring.FileKeyring",
                   FLYTEAUTH_RIG_KEYRING=str(keyring_file))
        from rig.file_keyring import FileKeyring

        store: Any = KeyringStore(keyring=FileKeyring(keyring_file))
    else:
        env.update(FLYTEAUTH_TOKEN_CACHE="file")
        store = FileStore(tmp_path / "cache" / "flyteauth_jupyter" / "tokens")
    first = pkce_login(admin, auth_code_user, store).get_credentials()

    kernels = [Kernel(admin.endpoint, env) for _ in range(2)]
    try:
        before = idp.grants()
        previous = f"Bearer {first.access_token}"
        per_round: list[int] = []
        for n in range(1, ROUNDS + 1):
            start = idp.grants()["success"].get("refresh_token", 0)
            for kernel in kernels:
                kernel.send(f"round {n * STEP}")
            answers = [kernel.read() for kernel in kernels]
            assert [a["errors"] for a in answers] == [[], []], answers
            seen = {token for a in answers for token in a["tokens"]}
            assert len(seen) == 1 and previous not in seen, (n, answers, previous, idp.grants())
            previous = seen.pop()
            per_round.append(idp.grants()["success"].get("refresh_token", 0) - start)
        for kernel in kernels:
            kernel.send("held")
        held = [kernel.read() for kernel in kernels]
        after = idp.grants()
    finally:
        for kernel in kernels:
            kernel.stop()

    assert per_round == [1] * ROUNDS, per_round  # exactly one refresh per expiry
    assert held[0] == held[1] and f"Bearer {held[0]['access_token']}" == previous  # both hold the newest
    assert store.load(admin.service).refresh_token == held[0]["refresh_token"]
    assert after["revoked"] == before["revoked"] == 0, "a refresh token was replayed: the grant was revoked"
    assert after["error"].get("invalid_grant", 0) == 0
    assert idp.introspect(held[0]["refresh_token"]).get("active") is True
    reliability_record("races", {
        "case": f"2 kernels x 16 threads x {ROUNDS} expiries, {cache} cache",
        "refresh grants": sum(per_round),
        "refreshes per expiry": "/".join(str(v) for v in sorted(set(per_round))),
        "grants revoked": after["revoked"],
        "invalid_grant answers": after["error"].get("invalid_grant", 0),
        "both kernels end with the newest token": "yes",
    }, key="case", title="Races: kernels and threads sharing one token cache", order=20,
        note="Measured at the test IdP (its own grant counters): rotation always on, a replayed refresh "
             "token would revoke the grant.")
