"""``make demo`` (tests/rig/demo.py): what a newcomer meets when the demo stops and starts again.

* The demo's IdP keeps its keys and grants across a restart (provider.js ``IDP_STATE_DIR``): a token
  saved before the restart is accepted after it with no prompt, and its refresh token still works.
* A restart refreshes the example notebooks in the scratch folder and keeps the user's own files.
* Ctrl-C (SIGINT to the demo's process group, as a terminal sends it) shuts the kernels and
  JupyterLab down cleanly: no runtime file and no process of the demo is left.
* The banner and the README name every port the demo binds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from flyteauth_jupyter import DeviceCodeAuthenticator
from flyteauth_jupyter.flows.events import DeviceCodeIssued
from flyteauth_jupyter.stores import MemoryStore
from rig import demo
from rig.flyteadmin import FlyteAdminStandIn
from rig.idp import IdP
from rig.user import DeviceUser

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_status(admin: FlyteAdminStandIn, metadata: tuple[str, str] | None) -> int:
    assert metadata is not None
    with requests.Session() as s:
        s.trust_env = False
        return s.get(admin.url("/api/v1/projects"), headers=dict([metadata]), timeout=10).status_code


# ------------------------------------------------------------------------------------ the IdP
@pytest.mark.idp
def test_the_demo_idp_keeps_its_keys_and_grants_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "idp"
    port = free_port()  # the demo's IdP has a fixed port: the issuer is the same after the restart
    store = MemoryStore()  # the saved tokens (the demo's keyring; which store does not matter here)
    prompts: list[Any] = []
    issued = threading.Event()

    def observer(event: Any) -> None:
        if isinstance(event, DeviceCodeIssued):
            prompts.append(event)
            issued.set()

    idp = IdP(port=port, state_dir=str(state)).start()
    admin = FlyteAdminStandIn(idp).start()
    try:
        first = DeviceCodeAuthenticator(admin.endpoint, None, observer=observer, store=store, timeout=60)
        future = first.refresh_in_background()
        assert issued.wait(30)
        assert DeviceUser().complete(prompts[0].verification_uri, prompts[0].user_code)["status"] == "approved"
        saved = future.result(timeout=30)
        assert saved.refresh_token and api_status(admin, first.fetch_grpc_call_auth_metadata()) == 200
    finally:
        idp.stop()
    assert {p.name for p in state.iterdir()} == {"keys.json", "store.json"}
    assert all((p.stat().st_mode & 0o077) == 0 for p in [state, *state.iterdir()])

    prompts.clear()
    idp = IdP(port=port, state_dir=str(state)).start()
    try:
        assert idp.issuer == f"http://127.0.0.1:{port}"
        restarted = DeviceCodeAuthenticator(admin.endpoint, None, observer=observer, store=store, timeout=60)
        found = restarted.get_credentials()
        assert found is not None and found.access_token == saved.access_token
        assert api_status(admin, restarted.fetch_grpc_call_auth_metadata()) == 200  # accepted after the restart

        renewed = restarted.refresh_credentials(interactive=False)  # the saved refresh token still works
        assert renewed.access_token != saved.access_token and renewed.subject == "alice"
        assert api_status(admin, restarted.fetch_grpc_call_auth_metadata()) == 200
        assert prompts == []  # 0 prompts
        assert idp.grants()["error"] == {}
    finally:
        admin.stop()
        idp.stop()
