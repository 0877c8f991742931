"""A real JupyterHub on 127.0.0.1 for the tests and `make demo-hub` (tests/hub/jupyterhub_config.py).

``HubRig(idp, flyteadmin, run_dir).start()`` runs ``python -m jupyterhub`` with that config file
(GenericOAuthenticator at ``idp``, auth_state encrypted with a crypt key made for this run, the
real configurable-http-proxy from tests/hub/chp, SimpleLocalProcessSpawner), in its own process
group, and waits (bounded) until the Hub answers through the proxy. Users' single-user servers get
an isolated environment (rig/isolation.py: their own HOME, Jupyter/IPython dirs and file keyring)
with ``FLYTE_PLATFORM_URL`` = the stand-in. The rig drives the Hub through a service token
(``.api``): spawn a user's server, mint a user's API token, run code in a user's kernel
(:class:`KernelClient`, over the single-user server's REST and websocket API).

:func:`hub_clients` are the identity-provider clients a Hub at ``hub_url`` needs (added to the IdP
with its ``extra_clients_file`` setting): the Hub's confidential client (``jupyterhub``, redirect
``<hub>/hub/oauth_callback``) and a public web client for the kernels' PKCE through the one
``<hub>/hub/user-redirect/flyteauth/callback`` (``flyteauth-hub``; no device grant, as such
deployments often have), and a native client without the device grant (``flyteauth-no-device``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .isolation import isolated_env

TESTS = Path(__file__).resolve().parents[1]
HUB_DIR = TESTS / "hub"
CONFIG = HUB_DIR / "jupyterhub_config.py"
CHP_DIR = HUB_DIR / "chp"
CHP = CHP_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
HUB_CLIENT = "jupyterhub"
HUB_SECRET = "hub-secret"
KERNEL_CLIENT = "flyteauth-hub"
NO_DEVICE_CLIENT = "flyteauth-no-device"
RELAY_PATH = "/hub/user-redirect/flyteauth/callback"
START_TIMEOUT = 90.0
SPAWN_TIMEOUT = 120.0
USERS = ("alice", "bob")


class HubError(RuntimeError):
    """The Hub could not be installed, started or driven."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_proxy(timeout: float = 300) -> Path:
    """``npm ci`` in tests/hub/chp when the proxy is missing (as `make test` does)."""
    if not CHP.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise HubError("npm is needed for JupyterHub's proxy (tests/hub/chp); install Node.js 20+")
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CHP_DIR,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not CHP.exists():
            raise HubError(f"npm ci in {CHP_DIR} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return CHP


def hub_clients(hub_url: str) -> list[dict[str, Any]]:
    """The IdP clients for a Hub at ``hub_url`` (no trailing slash)."""
    return [
        {
            "client_id": HUB_CLIENT, "client_name": "JupyterHub", "client_secret": HUB_SECRET,
            "application_type": "web", "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "redirect_uris": [f"{hub_url}/hub/oauth_callback"],
        },
        {
            "client_id": KERNEL_CLIENT, "client_name": "Flyte (notebooks on the Hub)",
            "application_type": "web", "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "redirect_uris": [f"{hub_url}{RELAY_PATH}"],
        },
        {  # a native client that may not use the device grant (auto's fallback to the browser)
            "client_id": NO_DEVICE_CLIENT, "client_name": "Flyte (no device code)",
            "application_type": "native", "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "redirect_uris": ["http://127.0.0.1/callback"],
        },
    ]


@dataclass
class HubRig:
    """A running Hub: ``.url`` (public, through the proxy), ``.api(...)`` as the rig's service."""

    issuer: str
    flyte_endpoint: str
    run_dir: Path
    port: int = 0
    refresh_age: int = 2
    user_config: str = ""  # extra IPython config for every user's kernels
    url: str = ""
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    proc: subprocess.Popen[bytes] | None = None
    started_in: float | None = None
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.session.trust_env = False
        self.log = self.run_dir / "jupyterhub.log"

    # ------------------------------------------------------------------ lifecycle
    def env(self) -> dict[str, str]:
        env, _ = isolated_env(self.run_dir / "hub-process", self.flyte_endpoint)
        env = {k: v for k, v in env.items() if not k.startswith(("JUPYTERHUB_", "FLYTEAUTH_HUB_", "OAUTH"))}
        # every user's server: its own HOME and dirs (rig/isolation.py) and file keyring, below
        # state/users/<name>; the Hub config expands "{username}" (HOME comes from its home template)
        users = self.run_dir / "state" / "users"
        envs = {}
        for name in USERS:
            user_env = envs[name] = isolated_env(users / name, self.flyte_endpoint)[0]
            profile = Path(user_env["IPYTHONDIR"]) / "profile_default"
            profile.mkdir(parents=True, exist_ok=True)
            (profile / "ipython_config.py").write_text(self.user_config)
            labconfig = Path(user_env["JUPYTER_CONFIG_DIR"]) / "labconfig"  # no "get news?" toast
            labconfig.mkdir(parents=True, exist_ok=True)
            (labconfig / "page_config.json").write_text(
                json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        alice = str(users / "alice")
        template = {k: v.replace(alice, str(users / "{username}")) for k, v in envs["alice"].items()
                    if alice in v and k != "HOME"}
        template.update({k: envs["alice"][k] for k in ("FLYTE_PLATFORM_URL", "PYTHON_KEYRING_BACKEND", "PYTHONPATH",
                                                   "NO_PROXY", "no_proxy", "JUPYTER_PLATFORM_DIRS")})
        template["FLYTEAUTH_RIG_KEYRING"] = str(users / "{username}" / "keyring.json")
        env.update({
            "FLYTEAUTH_HUB_IP": "127.0.0.1",
            "FLYTEAUTH_HUB_PORT": str(self.port),
            "FLYTEAUTH_HUB_API_PORT": str(free_port()),
            "FLYTEAUTH_HUB_PROXY_API_PORT": str(free_port()),
            "FLYTEAUTH_HUB_STATE_DIR": str(self.run_dir / "state"),
            "FLYTEAUTH_HUB_ISSUER": self.issuer,
            "FLYTEAUTH_HUB_CHP": str(ensure_proxy()),
            "FLYTEAUTH_HUB_REFRESH_AGE": str(self.refresh_age),
            "FLYTEAUTH_HUB_USER_ENV": json.dumps(template),
            "FLYTEAUTH_HUB_RIG_TOKEN": self.token,
            "OAUTH_CLIENT_ID": HUB_CLIENT,
            "OAUTH_CLIENT_SECRET": HUB_SECRET,
            "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),  # a new one per run
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        })
        return env

    def home(self, user: str) -> Path:
        return self.run_dir / "state" / "users" / user / "home"

    def keyring(self, user: str) -> Path:
        return self.run_dir / "state" / "users" / user / "keyring.json"

    def start(self, timeout: float = START_TIMEOUT) -> "HubRig":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = self.env()
        began = time.monotonic()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)], cwd=self.run_dir, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = began + timeout
        while True:
            if self.proc.poll() is not None:
                raise HubError(f"JupyterHub exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if self.session.get(f"{self.url}/hub/api/", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise HubError(f"JupyterHub did not answer within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)
        self.started_in = time.monotonic() - began
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):  # SIGTERM: the Hub stops servers and the proxy
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=20)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # single-user servers and the proxy left in the group
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.session.close()

    def log_tail(self, chars: int = 4000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text.replace(self.token, "<token>")[-chars:]

    # ------------------------------------------------------------------ the Hub's API, as the rig's service
    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return self.session.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs)

    def user_token(self, user: str) -> str:
        """A new API token of ``user`` (the rig's way to use that user's server's API)."""
        r = self.api("POST", f"/users/{user}/tokens", json={"note": "flyteauth rig", "expires_in": 3600})
        if r.status_code not in (200, 201):
            raise HubError(f"token for {user}: HTTP {r.status_code}")
        return r.json()["token"]

    def wait_for_server(self, user: str, timeout: float = SPAWN_TIMEOUT) -> None:
        """Spawn ``user``'s server unless it runs, and wait until it is ready (bounded)."""
        r = self.api("POST", f"/users/{user}/server")
        if r.status_code not in (201, 202, 400):  # 400: already running
            raise HubError(f"spawn {user}: HTTP {r.status_code} {r.text[:300]}")
        began = time.monotonic()
        while time.monotonic() < began + timeout:
            model = self.api("GET", f"/users/{user}").json()
            server = (model.get("servers") or {}).get("", {})
            if server.get("ready"):
                return
            if not server and not model.get("pending") and time.monotonic() > began + 10:
                raise HubError(f"{user}'s server is neither pending nor ready:\n{self.log_tail()}")
            time.sleep(0.2)
        raise HubError(f"{user}'s server was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def kernel(self, user: str) -> "KernelClient":
        self.wait_for_server(user)
        return KernelClient(f"{self.url}/user/{user}", self.user_token(user)).start()

    def __enter__(self) -> "HubRig":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class KernelClient:
    """One python3 kernel on a user's single-user server, run over its REST + websocket API."""

    def __init__(self, server_url: str, token: str) -> None:
        self.server_url = server_url
        self.token = token
        self.kernel_id: str | None = None
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"token {token}"

    def start(self) -> "KernelClient":
        r = self.session.post(f"{self.server_url}/api/kernels", json={"name": "python3"}, timeout=60)
        if r.status_code not in (200, 201):
            raise HubError(f"kernel start at {self.server_url}: HTTP {r.status_code} {r.text[:300]}")
        self.kernel_id = r.json()["id"]
        return self

    def stop(self) -> None:
        if self.kernel_id:
            try:
                self.session.delete(f"{self.server_url}/api/kernels/{self.kernel_id}", timeout=30)
            except requests.RequestException:
                pass
            self.kernel_id = None
        self.session.close()

    def execute(self, code: str, timeout: float = 90.0) -> dict[str, Any]:
        """Run ``code``; ``{"status", "stdout", "stderr", "data": [text/plain...], "error"}``."""
        # in a thread of its own: the caller may hold another event loop (Playwright's sync API)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, asyncio.wait_for(self._execute(code), timeout)).result()

    async def _execute(self, code: str) -> dict[str, Any]:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        ws_url = self.server_url.replace("http://", "ws://", 1) + f"/api/kernels/{self.kernel_id}/channels"
        conn = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {self.token}"}))
        msg_id = uuid.uuid4().hex
        conn.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": "rig", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        out: dict[str, Any] = {"status": None, "stdout": "", "stderr": "", "data": [], "error": None}
        idle = replied = False
        try:
            while not (idle and replied):
                raw = await conn.read_message()
                if raw is None:
                    raise HubError("the kernel's websocket closed")
                if not isinstance(raw, str):
                    continue
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["header"]["msg_type"], msg["content"]
                if kind == "stream":
                    out[content["name"]] += content["text"]
                elif kind in ("execute_result", "display_data"):
                    out["data"].append(content.get("data", {}).get("text/plain", ""))
                elif kind == "error":
                    out["error"] = f"{content['ename']}: {content['evalue']}"
                elif kind == "status" and content["execution_state"] == "idle":
                    idle = True
                elif kind == "execute_reply":
                    out["status"] = content["status"]
                    replied = True
        finally:
            conn.close()
        return out

    def run(self, code: str, timeout: float = 90.0) -> str:
        """Run ``code``, raise on an error, return its stdout."""
        result = self.execute(code, timeout)
        if result["status"] != "ok":
            raise HubError(f"kernel error: {result['error']}\n{result['stderr'][-1500:]}")
        return result["stdout"]
