"""Issue 17.6, "A token cache that works where teams work", measured in REAL kernels without a keyring
(jupyter_client + ipykernel, keyring's fail backend, as in a JupyterHub image, a container or Colab).

Sign in once against the real provider (device flow, approved by a person watching the IdP's codes);
then a NEW kernel and a RESTARTED kernel run the same ``%flyte_login`` with 0 prompts (no code shown,
no code issued) and 0 requests to the provider (its own counter, ``GET /rig/grants``: ``requests``),
and ``python -m flyteauth_jupyter.token`` in a subprocess prints the token. Nothing was configured:
the default store (DESIGN.md pinned 19) is the private 0600 file cache, one file per endpoint, and the
panel's store phrase names it. ``token_cache = 'memory'`` keeps the strict mode: a new kernel asks again.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest
from nb_kernel import Kernel, kernel_env
from rig.user import DeviceApprover

pytestmark = pytest.mark.idp

pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

STATE = (
    "import json\n"
    "inner = flyte_auth.authenticator\n"
    "print('STATE ' + json.dumps({'status': flyte_auth.status, 'flow': flyte_auth.view.flow,\n"
    "    'store': type(inner.store).__name__, 'where': getattr(inner.store, 'describe', repr)(inner.service),\n"
    "    'subject': flyte_auth.view.subject, 'notice': flyte_auth.view.notice}))"
)


def login_cell(admin, extra: str = "") -> str:
    return f"%load_ext flyteauth_jupyter\n%flyte_login --endpoint {admin.endpoint} --flow device --wait --timeout 60{extra}"


def state(kernel: Kernel) -> dict:
    msg_id = kernel.execute(STATE)
    text = "".join(m["content"]["text"] for m in kernel.messages
                   if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id)
    return json.loads(text.split("STATE ", 1)[1])


def prompts_shown(kernel: Kernel, msg_id: str) -> int:
    """Device codes the login cell showed (widget comm messages or its HTML), as a person would see them."""
    return sum("flyteauth-code" in json.dumps(m["content"]) for m in kernel.messages
               if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] in (
                   "comm_msg", "comm_open", "display_data", "update_display_data"))


def issued_codes(idp) -> int:
    import requests

    return len(requests.get(idp.url("/rig/device-codes"), timeout=10).json()["issued"])


def test_sign_in_once_then_new_and_restarted_kernels_ask_nothing(flyteadmin, idp, tmp_path):
    env = kernel_env(tmp_path)  # no keyring, an empty HOME and cache, nothing configured
    cache_file = (tmp_path / "cache" / "flyteauth_jupyter" / "tokens"
                  / (hashlib.sha256(flyteadmin.service.encode()).hexdigest() + ".json"))
    first = Kernel(env)
    kernels = [first]
    try:
        with DeviceApprover(idp.issuer):
            first.execute(login_cell(flyteadmin), timeout=90)
        signed_in = state(first)
        assert signed_in["status"] == "signed_in" and signed_in["flow"] == "device"
        assert signed_in["store"] == "FileStore" and signed_in["subject"] == "alice"
        # the panel's store phrase (HOME is tmp_path, written ~)
        assert signed_in["where"] == f"the private file ~/cache/flyteauth_jupyter/tokens/{cache_file.name[:8]}\u2026.json"
        assert stat.S_IMODE(os.stat(cache_file).st_mode) == 0o600
        token = json.loads(cache_file.read_text())["access_token"]

        before, codes_before = idp.grants()["requests"], issued_codes(idp)
        assert before > 0 and codes_before > 0  # the counters count: the sign-in itself asked the IdP
        second = Kernel(env)  # a NEW kernel (another notebook)
        kernels.append(second)
        msg_id = second.execute(login_cell(flyteadmin), timeout=90)
        again = state(second)
        assert (again["status"], again["flow"], again["subject"]) == ("signed_in", "cached", "alice")
        assert prompts_shown(second, msg_id) == 0

        first.km.restart_kernel(now=True)  # the same kernel, restarted
        first.kc.wait_for_ready(timeout=60)
        msg_id = first.execute(login_cell(flyteadmin), timeout=90)
        restarted = state(first)
        assert (restarted["status"], restarted["flow"]) == ("signed_in", "cached")
        assert prompts_shown(first, msg_id) == 0

        printed = subprocess.run([sys.executable, "-m", "flyteauth_jupyter.token", "--endpoint", flyteadmin.endpoint],
                                 env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                                 stdin=subprocess.DEVNULL)
        assert printed.returncode == 0 and printed.stdout.strip() == token, printed.stderr[-500:]

        assert idp.grants()["requests"] == before  # 0 requests to the IdP for 2 kernels and the command
        assert issued_codes(idp) == codes_before  # 0 prompts
    finally:
        for kernel in kernels:
            kernel.stop()


def test_token_cache_memory_keeps_the_strict_mode(flyteadmin, idp, tmp_path):
    env = kernel_env(tmp_path)
    strict = "\n%config FlyteAuthMagics.token_cache = 'memory'"
    first = Kernel(env)
    try:
        with DeviceApprover(idp.issuer):
            first.execute("%load_ext flyteauth_jupyter" + strict + "\n" + login_cell(flyteadmin).split("\n", 1)[1],
                          timeout=90)
        assert state(first)["where"] == "memory only (this kernel)"
        assert not (tmp_path / "cache" / "flyteauth_jupyter" / "tokens").exists()
    finally:
        first.stop()
