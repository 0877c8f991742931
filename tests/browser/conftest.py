"""The browser suite's rig: one real Jupyter server per test session (JupyterLab and Notebook 7 on the
same server), driven by Debian's chromium.

* :func:`lab` (session): ``python -m jupyterlab`` as a subprocess on 127.0.0.1 (a free port, token
  auth, ``--allow-root`` when root) in its own process group, with an isolated environment as the
  nbval harness gives its kernels (tests/notebooks/test_notebooks.py): an empty ``HOME`` and
  XDG/IPython/Jupyter dirs, ``FLYTE_PLATFORM_URL`` = the session's FlyteAdmin stand-in, and a keyring
  that is a JSON file in the run's directory (tests/rig/file_keyring.py). Kernels are this venv's
  python. JupyterLab saves widget state in notebooks (so the secret scan covers it) and fetches no
  news and no update checks.
* :func:`chromium` (session): Python Playwright driving ``/usr/bin/chromium`` headless with a fresh
  user-data dir; every request that is not to a loopback address is aborted and recorded in
  ``.blocked``. The first load of JupyterLab (slow: it builds its caches) happens here, bounded.

Nothing here sleeps on a guess: waits are on the server's status API (bounded poll) or Playwright
locators (bounded timeouts).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nbformat
import pytest
import requests

from browser_pages import Notebook
from rig.file_keyring import read_history
from rig.flyteadmin import FlyteAdminStandIn
from rig.chromium import launch
from rig.isolation import isolated_env

REPO = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT = 60.0  # seconds until /api/status answers
FIRST_LOAD_TIMEOUT_MS = 90_000  # JupyterLab's first page load
TIMEOUT_MS = 30_000  # every other wait in the browser
TOKEN_USERNAMES = ("access_token", "refresh_token", "id_token")


# ------------------------------------------------------------------------------------ the server
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_env(run_dir: Path, flyteadmin: FlyteAdminStandIn) -> tuple[dict[str, str], Path]:
    """The server's (and so its kernels') environment: isolated dirs, the endpoint, a file keyring."""
    home = run_dir / "home"
    dirs = {
        "JUPYTERLAB_SETTINGS_DIR": home / ".jupyter" / "lab" / "user-settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / ".jupyter" / "lab" / "workspaces",
    }
    env, keyring_file = isolated_env(run_dir, flyteadmin.endpoint, extra_dirs=dirs, record_tokens=True)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    dirs["JUPYTER_CONFIG_DIR"] = Path(env["JUPYTER_CONFIG_DIR"])
    settings = dirs["JUPYTERLAB_SETTINGS_DIR"]
    # save widget state with the notebook (Settings > Save Widget State Automatically): the saved file
    # then holds the login widget's models, and the secret scan must find nothing in them either
    widgets_settings = settings / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.jupyterlab-settings"
    widgets_settings.parent.mkdir(parents=True, exist_ok=True)
    widgets_settings.write_text(json.dumps({"saveState": True}))
    # no "get news?" toast over the notebook (and no fetch of it)
    labconfig = dirs["JUPYTER_CONFIG_DIR"] / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    return env, keyring_file


@dataclass
class Lab:
    """A running JupyterLab server: ``.url`` (no trailing slash), ``.token``, ``.root`` (its files)."""

    url: str
    token: str
    root: Path
    keyring: Path
    log: Path
    proc: subprocess.Popen[bytes]
    session: requests.Session = field(default_factory=requests.Session)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return self.session.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text.replace(self.token, "<token>")[-chars:]

    def notebook(self, name: str, sources: list[str]) -> Path:
        """Write a fresh notebook (code cells ``sources``, python3 kernel) into the server's root."""
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
        path = self.root / name
        nbformat.write(nb, path)
        return path

    def page_url(self, name: str) -> str:
        """The notebook in a fresh (reset) workspace, so only this notebook is open."""
        return f"{self.url}/lab/tree/{quote(name)}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        for session in self.api("GET", "/api/sessions").json():
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def stored_tokens(self) -> list[str]:
        """Every token value a kernel wrote to the file keyring (both SDK layouts)."""
        values: list[str] = []
        for entry in read_history(self.keyring):
            if entry["username"] in TOKEN_USERNAMES:
                values.append(entry["password"])
            elif entry["username"] == "tokens":
                data = json.loads(entry["password"])
                values += [data[k] for k in ("access_token", "refresh_token") if isinstance(data.get(k), str)]
        return sorted({v for v in values if v})

    def stop(self) -> None:
        try:
            self.api("POST", "/api/shutdown")  # shuts the kernels down too
            self.proc.wait(timeout=20)
        except (requests.RequestException, subprocess.TimeoutExpired):
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # kernels left behind in the group (they also exit once their parent is gone)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.session.close()


@pytest.fixture(scope="session")
def lab(flyteadmin: FlyteAdminStandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    run_dir = tmp_path_factory.mktemp("jupyterlab")
    root = run_dir / "root"
    root.mkdir()
    env, keyring_file = lab_env(run_dir, flyteadmin)
    token = secrets.token_hex(24)
    port = _free_port()
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.terminals_enabled=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = run_dir / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}", token, root, keyring_file, log, proc)
    server.session.trust_env = False  # loopback only, never through a proxy
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited ({proc.returncode}) before answering:\n{server.log_tail()}")
            try:
                if server.api("GET", "/api/status").status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"JupyterLab did not answer within {SERVER_START_TIMEOUT} s:\n{server.log_tail()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------------- the browser
@dataclass
class Chromium:
    context: Any  # playwright BrowserContext
    blocked: list[str] = field(default_factory=list)

    def new_page(self) -> Any:
        page = self.context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        return page


@pytest.fixture(scope="session")
def chromium(playwright: Any, lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    profile = tmp_path_factory.mktemp("chromium-profile")  # fresh user-data dir per run
    blocked: list[str] = []
    context = launch(playwright, profile, blocked, viewport={"width": 1200, "height": 900}, device_scale_factor=2)
    browser = Chromium(context, blocked)
    try:
        # JupyterLab's first load is the slow one; do it once here, bounded
        page = browser.new_page()
        page.goto(f"{lab.url}/lab?reset&token={lab.token}", timeout=FIRST_LOAD_TIMEOUT_MS)
        page.locator("#jp-main-dock-panel").wait_for(timeout=FIRST_LOAD_TIMEOUT_MS)
        page.close()
        yield browser
    finally:
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item (``item.rep_call``), so fixtures can tell a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def notebook(lab: Any, chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``notebook(name, sources, ui="lab"|"notebook7")``: write the notebook, open it in that front end;
    afterwards close it and its kernel.

    When the test failed, a screenshot of each page it opened is kept next to the server's log."""
    opened: list[Notebook] = []

    def factory(name: str, sources: list[str], ui: str = "lab") -> Notebook:
        lab.notebook(name, sources)
        nb = Notebook.open(lab, chromium, name, ui=ui)
        opened.append(nb)
        return nb

    yield factory
    failed = getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed
    for i, nb in enumerate(opened):
        if failed:
            shot = lab.log.parent / f"failure-{request.node.name}-{i}.png"
            try:
                nb.page.screenshot(path=str(shot), timeout=10_000)
                print(f"page at failure: {shot}; server log: {lab.log}")
            except Exception as exc:  # noqa: BLE001 - best effort, the test has failed already
                print(f"no failure screenshot: {exc}")
        nb.close()
    lab.shutdown_kernels()
    assert not chromium.blocked, f"the page tried to reach non-loopback addresses: {chromium.blocked[:5]}"
