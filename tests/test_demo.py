"""``make demo`` (tests/rig/demo.py): what a newcomer meets when the demo stops and starts again.

* The demo's IdP keeps its keys and grants across a restart (provider.js ``IDP_STATE_DIR``): a token
  saved before the restart is accepted after it with no prompt, and its refresh token still works.
* A restart refreshes the example notebooks in the scratch folder and keeps the user's own files.
* Ctrl-C (SIGINT to the demo's process group, as a terminal sends it) shuts the kernels and
  JupyterLab down cleanly: no runtime file and no process of the demo is left.
* The banner and the README name every port the demo binds.
* Quiet: JupyterLab serves ``fetchNews`` "false" (no "get notified about Jupyter news?" toast), and
  kernels run over IPC: no "Kernel is running over TCP without encryption" line in the terminal.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from jupyter_client import BlockingKernelClient

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


# ------------------------------------------------------------------------------ the notebooks
def test_a_restart_refreshes_the_examples_and_keeps_the_users_files(tmp_path: Path) -> None:
    root = tmp_path / "notebooks"
    first = demo.refresh_examples(root)
    assert sorted(first) == sorted(p.name for p in demo.example_files())
    assert len([n for n in first if n.endswith(".ipynb")]) >= 5 and "README.md" in first

    (root / "mine.ipynb").write_text('{"user": "made this"}')
    (root / "data").mkdir()
    (root / "data" / "rows.csv").write_text("a,b\n")
    example = root / first[0]
    example.write_text("run with outputs")  # an example the user ran and saved

    assert demo.refresh_examples(root) == first
    assert (root / "mine.ipynb").read_text() == '{"user": "made this"}'
    assert (root / "data" / "rows.csv").read_text() == "a,b\n"
    assert example.read_bytes() == (demo.EXAMPLES / first[0]).read_bytes()  # the example is fresh again


# ------------------------------------------------------------------------------ ports
DEFAULT_PORTS = {"30080", "30081", "30082", "8888"}


def test_the_banner_names_every_port_the_demo_binds() -> None:
    lines = demo.banner(idp="http://127.0.0.1:30081", admin="http://127.0.0.1:30080",
                        flyte2="https://127.0.0.1:30082", ca_cert="/tmp/ca.pem", jupyter_port=8888)
    ports_line = next(line for line in lines if line.startswith("Ports"))
    assert {p for p in DEFAULT_PORTS if p in ports_line} == DEFAULT_PORTS, ports_line
    args = vars(demo.parser().parse_args([]))
    assert {str(v) for k, v in args.items() if k.endswith("_port")} == DEFAULT_PORTS, args


def test_the_readme_demo_paragraph_names_every_port() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("`make demo` starts")
    paragraph = readme[start:readme.index("\n\n", start)]
    for port in sorted(DEFAULT_PORTS):
        assert f"127.0.0.1:{port}" in paragraph, port


# ------------------------------------------------------------------------------ Ctrl-C
STOP_TIMEOUT = 60.0  # the demo's whole stop: JupyterLab's clean stop (bounded at 30 s) and the stand-ins


def wait_for(what: str, check: Any, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> Any:
    """``check()``'s first truthy value, polled every 0.2 s for at most ``timeout`` s while ``proc`` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (demo exit {proc.poll()}):\n{log.read_text()[-3000:]}")


def runtime_files(runtime: Path) -> list[str]:
    return sorted(p.name for pattern in ("kernel-*.json", "kernel-*-ipc-*", "jpserver-*.json", "jpserver-*-open.html")
                  for p in runtime.glob(pattern))


@pytest.mark.idp
@pytest.mark.timeout(300)
def test_ctrl_c_shuts_the_kernels_and_jupyterlab_down_cleanly(tmp_path: Path) -> None:
    import psutil

    from rig.isolation import isolated_env

    env, _ = isolated_env(tmp_path, "http://127.0.0.1:9")  # private HOME, Jupyter dirs and keyring
    # a short runtime dir, as a user's is: the kernels' IPC socket paths must fit in 103 bytes
    runtime = Path(tempfile.mkdtemp(prefix="demo-rt-"))
    env["JUPYTER_RUNTIME_DIR"] = str(runtime)
    port = free_port()
    log = tmp_path / "demo.log"
    command = [sys.executable, "-m", "tests.rig.demo", "--state-dir", str(tmp_path / "state"),
               "--idp-port", "0", "--admin-port", "0", "--flyte2-port", "0", "--jupyter-port", str(port)]
    with log.open("wb") as out:
        # its own process group, as a shell's foreground job: killpg(SIGINT) is what Ctrl-C sends
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    procs: list[psutil.Process] = []
    try:
        info_file = wait_for("JupyterLab's server file", lambda: next(iter(runtime.glob("jpserver-*.json")), None),
                             proc, log)
        info = wait_for("JupyterLab's server info", lambda: _json(info_file), proc, log)
        api = requests.Session()
        api.trust_env = False
        api.headers["Authorization"] = f"token {info['token']}"
        base = info["url"].rstrip("/")
        kernel = api.post(f"{base}/api/kernels", json={"name": "python3"}, timeout=60).json()
        connection_file = runtime / f"kernel-{kernel['id']}.json"
        assert connection_file.exists(), runtime_files(runtime)
        assert json.loads(connection_file.read_text())["transport"] == "ipc"
        news = api.get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification", timeout=30).json()
        assert news["schema"]["properties"]["fetchNews"]["default"] == "false"  # the demo's override
        client = BlockingKernelClient(connection_file=str(connection_file))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=90)  # the kernel answers: it is up, as in a user's session
        finally:
            client.stop_channels()
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        names = " ".join(" ".join(p.cmdline()) for p in procs)
        assert "provider.js" in names and "jupyter" in names and "ipykernel" in names, names

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the demo did not stop within {STOP_TIMEOUT:.0f} s of Ctrl-C:\n"
                                 f"{log.read_text()[-3000:]}") from None
        _, alive = psutil.wait_procs(procs, timeout=10)
        assert not alive, [" ".join(p.cmdline()) for p in alive]
        left = runtime_files(runtime)
        assert left == [], f"left behind: {left}\n{log.read_text()[-2000:]}"
        text = log.read_text()
        assert proc.returncode == 0 and "stopped." in text
        assert "Kernel is running over TCP without encryption" not in text
    finally:
        _kill_all(proc, procs)
        shutil.rmtree(runtime, ignore_errors=True)


def _kill_all(proc: subprocess.Popen[bytes], known: list[Any]) -> None:
    """After a failure: SIGKILL the demo and every process it started (kernels run in their own sessions)."""
    import psutil

    try:
        known = [*known, *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        pass
    for p in known:
        try:
            p.kill()
        except psutil.Error:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(10)


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # being written
