"""``python -m tests.rig.demo``: the IdP, the FlyteAdmin stand-in, the Flyte 2 stand-in and JupyterLab, on 127.0.0.1.

IdP on :30081, FlyteAdmin stand-in on :30080 (its HTTP documents and API and its gRPC services on the
one port, as FlyteAdmin serves them; tests/rig/grpc_admin.py), the Flyte 2 (ConnectRPC over TLS)
stand-in on :30082, JupyterLab on :8888 with FLYTE_PLATFORM_URL pointing at the FlyteAdmin stand-in and
FLYTE2_ENDPOINT / FLYTE2_CA_CERT at the Flyte 2 one. Ctrl-C stops everything.

What a newcomer needs, set for the demo's kernels (and printed):

* JupyterLab's root is ``.demo/notebooks`` (git-ignored). Every start copies the example notebooks
  of notebooks/ there afresh (so running them never writes outputs into the tracked files) and keeps
  every other file in it: what the user made survives a restart.
* The IdP keeps its signing keys and its grants and tokens in ``.demo/idp`` (provider.js
  ``IDP_STATE_DIR``), so tokens saved by the previous run are accepted after a restart, and their
  refresh tokens still work. Delete ``.demo`` to start afresh.
* ``FLYTE_CLIENT_SECRET`` holds the demo's confidential client secret (notebooks/03).
* Without a usable keyring on this machine, a demo keyring: the rig's one-file keyring backend
  (tests/rig/file_keyring.py, ``.demo/keyring.json``, plain JSON, demo tokens of the loopback IdP
  only), so a sign-in in one notebook serves the next notebook's kernel, and flytekit's own modes and
  the Flyte 2 SDK (notebooks/04) read the same entries, as the notebooks say. The private file cache
  (``FLYTEAUTH_TOKEN_CACHE=file``) would serve our kernels too, but no other SDK reads it. With a
  keyring, the keyring is used as everywhere else.

Quiet for a newcomer: JupyterLab's "Would you like to get notified about official Jupyter news?"
toast is answered "Never" by a demo-only settings override (``--LabApp.app_settings_dir`` is
``.demo/lab-settings``, whose ``overrides.json`` sets ``fetchNews`` of
``@jupyterlab/apputils-extension:notification``: overrides are defaults, so the user's own settings
still win), and kernels talk to JupyterLab over IPC (Unix sockets next to their connection files,
``--KernelManager.transport=ipc``) instead of TCP on loopback, so no kernel start prints ipykernel's
"Kernel is running over TCP without encryption" warning. TCP stays where IPC cannot work: not a POSIX
system, or a runtime directory so long that a socket path would not fit.

Stopping: JupyterLab runs in its own session, so a terminal's Ctrl-C (SIGINT to the foreground
process group) reaches this process and not JupyterLab. Run with no terminal on its stdin, JupyterLab
takes SIGINT as a KeyboardInterrupt that leaves its IO loop without its clean-up (kernel and server
runtime files stay, kernels end only when they notice their parent is gone). So on Ctrl-C, SIGTERM
or SIGHUP this process sends JupyterLab SIGTERM, its own clean stop (kernels shut down, runtime files
removed), and waits for it (bounded) before stopping the stand-ins and the IdP.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from .connect_admin import ConnectAdmin
from .file_keyring import RECORD_ENV, history_path
from .grpc_admin import start_grpc_admin, stop_grpc_admin
from .idp import CONFIDENTIAL_SECRET, USERS, IdP, ensure_node_modules

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "notebooks"
STATE = ROOT / ".demo"
#: how long JupyterLab gets for its clean stop (kernels shut down: 5 s each by default, in parallel)
JUPYTER_STOP_TIMEOUT = 30.0
#: the longest Unix socket path, less its NUL (104 bytes on macOS, 108 on Linux)
UNIX_SOCKET_PATH_MAX = 103
#: JupyterLab's settings the demo changes (as defaults: the user's own settings win)
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}


def example_files() -> list[Path]:
    """The example notebooks and their README (what every start copies afresh)."""
    return sorted(p for p in EXAMPLES.iterdir() if p.is_file() and (p.suffix == ".ipynb" or p.name == "README.md"))


def refresh_examples(target: Path) -> list[str]:
    """Copy the examples into ``target``, replacing older copies of them; every other file stays."""
    target.mkdir(parents=True, exist_ok=True)
    names = []
    for src in example_files():
        shutil.copyfile(src, target / src.name)
        names.append(src.name)
    return names


def keyring_usable() -> bool:
    """Whether the token store would find a keyring that keeps tokens (not the fail/null backend)."""
    from flyteauth_jupyter.stores import KeyringStore

    try:
        KeyringStore()._checked_backend()
    except Exception:  # noqa: BLE001 - any reason means: no keyring for the demo
        return False
    return True


def lab_settings(state: Path) -> Path:
    """The demo's own JupyterLab app-settings directory, holding :data:`LAB_OVERRIDES` (rewritten at
    every start)."""
    settings = state / "lab-settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES, indent=2) + "\n")
    return settings


def kernel_transport(runtime_dir: str) -> list[str]:
    """``--KernelManager.transport=ipc`` where a kernel's sockets fit: each is a Unix socket named
    ``<runtime dir>/kernel-<uuid>-ipc-<n>``, whose path may not exceed :data:`UNIX_SOCKET_PATH_MAX`
    bytes; else nothing (TCP on loopback, and ipykernel's warning at every kernel start)."""
    if os.name != "posix":
        return []
    longest = os.path.join(runtime_dir, f"kernel-{uuid.uuid4()}-ipc-99")
    return ["--KernelManager.transport=ipc"] if len(os.fsencode(longest)) <= UNIX_SOCKET_PATH_MAX else []


def stop_jupyter(jupyter: subprocess.Popen[bytes], timeout: float = JUPYTER_STOP_TIMEOUT) -> None:
    """SIGTERM, JupyterLab's clean stop (it shuts its kernels down and removes its runtime files), then
    wait at most ``timeout`` s; SIGKILL its process group if it is still there."""
    if jupyter.poll() is not None:
        return
    print("Stopping JupyterLab and its kernels ...", flush=True)
    jupyter.terminate()
    try:
        jupyter.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"JupyterLab did not stop within {timeout:.0f} s; killing it", file=sys.stderr, flush=True)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(jupyter.pid, signal.SIGKILL)
        jupyter.wait(5)


def _port(url: str) -> str:
    """``http://127.0.0.1:30081`` -> ``30081``."""
    return url.rsplit(":", 1)[1].rstrip("/")


def banner(*, idp: str, admin: str, flyte2: str, ca_cert: str, jupyter_port: int | None) -> list[str]:
    """The lines printed at start: every address the demo serves (each port it binds) and the users."""
    ports = [f"{_port(idp)} IdP", f"{_port(admin)} FlyteAdmin (HTTP and gRPC)", f"{_port(flyte2)} Flyte 2 (HTTPS)"]
    if jupyter_port is not None:
        ports.append(f"{jupyter_port} JupyterLab")
    return [
        f"Identity provider : {idp}  (device page {idp}/device)",
        f"FlyteAdmin        : {admin}  (HTTP and gRPC)",
        f"Flyte 2 platform  : {flyte2}  (ConnectRPC over TLS, CA {ca_cert})",
        *([f"JupyterLab        : http://127.0.0.1:{jupyter_port}/lab"] if jupyter_port is not None else []),
        "Ports             : " + ", ".join(ports) + " (all on 127.0.0.1)",
        "Demo users        : " + ", ".join(f"{u} / {p}" for u, p in USERS.items()),
        f"Confidential client: jupyter-confidential / {CONFIDENTIAL_SECRET} (client credentials)",
    ]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tests.rig.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--idp-port", type=int, default=30081)
    ap.add_argument("--admin-port", type=int, default=30080)
    ap.add_argument("--flyte2-port", type=int, default=30082)
    ap.add_argument("--jupyter-port", type=int, default=8888)
    ap.add_argument("--device-interval", type=int, default=5)
    ap.add_argument("--state-dir", type=Path, default=STATE,
                    help="notebooks, IdP state and demo keyring (default .demo)")
    ap.add_argument("--no-jupyter", action="store_true", help="only the IdP and the stand-ins")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    state: Path = args.state_dir.resolve()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)  # the terminal closed: JupyterLab, in its own session, would not see it
    ensure_node_modules()
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.ExitStack() as running:  # stops, in reverse order, whatever has started
        running.callback(print, "stopped.")
        try:
            return serve(args, state, running)
        except KeyboardInterrupt:
            return 0
        finally:
            # a second Ctrl-C (or a SIGTERM) must not cut the clean stop short; every wait in it is bounded
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
    return 0  # only if the stack swallowed an exception, which none of its callbacks does


def serve(args: argparse.Namespace, state: Path, running: contextlib.ExitStack) -> int:
    """Start the IdP, the stand-ins and JupyterLab (each registers its stop on ``running``); wait."""
    idp = IdP(port=args.idp_port, device_interval=args.device_interval, state_dir=str(state / "idp"))
    running.callback(idp.stop)
    idp.start()
    admin, _ = start_grpc_admin(idp, count_idp=False, port=args.admin_port)
    running.callback(stop_grpc_admin, admin)
    tls_dir = running.enter_context(tempfile.TemporaryDirectory(prefix="flyteauth-demo-tls-"))
    flyte2 = ConnectAdmin(idp, tls_dir, port=args.flyte2_port).start()
    running.callback(flyte2.stop)
    lines = banner(idp=idp.issuer or "", admin=admin.url, flyte2=flyte2.endpoint, ca_cert=flyte2.ca_cert,
                   jupyter_port=None if args.no_jupyter else args.jupyter_port)
    print("\n".join(lines))
    print(f"IdP state         : {state / 'idp'} (keys and grants kept across restarts; "
          f"delete {state} to start afresh)")
    if args.no_jupyter:
        print("Ctrl-C stops everything.", flush=True)
        while True:
            time.sleep(3600)
    exe = Path(sys.executable).with_name("jupyter")
    jupyter_cmd = str(exe) if exe.exists() else shutil.which("jupyter")
    if jupyter_cmd is None:
        print("jupyter not found: install the test extra (make install)", file=sys.stderr)
        return 1
    env = {**os.environ, "FLYTE_PLATFORM_URL": admin.url, "FLYTE_PLATFORM_INSECURE": "True",
           "FLYTE2_ENDPOINT": flyte2.endpoint, "FLYTE2_CA_CERT": flyte2.ca_cert,
           "FLYTE_CLIENT_SECRET": CONFIDENTIAL_SECRET}
    if not os.environ.get("FLYTEAUTH_TOKEN_CACHE") and not keyring_usable():
        keyring_file = state / "keyring.json"
        # an earlier demo's keyring kept every token ever written in keyring.json.history (issue 17.9)
        history_path(keyring_file).unlink(missing_ok=True)
        env.pop(RECORD_ENV, None)
        env.update(PYTHON_KEYRING_BACKEND="rig.file_keyring.FileKeyring", FLYTEAUTH_RIG_KEYRING=str(keyring_file),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")])))
        print(f"Token cache       : no keyring on this machine, so a demo keyring in {keyring_file} "
              "(plain JSON; flytekit and the Flyte 2 SDK read it too)")
    root = state / "notebooks"
    refreshed = [name for name in refresh_examples(root) if name.endswith(".ipynb")]
    print(f"Notebooks         : {root}: the {len(refreshed)} example notebooks are copied there afresh at "
          "every start (save your changes to one under another name); your own files there are kept")
    print("Kernels           : FLYTE_PLATFORM_URL, FLYTE2_ENDPOINT, FLYTE2_CA_CERT and FLYTE_CLIENT_SECRET "
          "(notebooks/03, client credentials) are set")
    from jupyter_core.paths import jupyter_runtime_dir

    cmd = [jupyter_cmd, "lab", "--no-browser", "--ip", "127.0.0.1", "--port", str(args.jupyter_port),
           "--port-retries", "0", "--notebook-dir", str(root), f"--LabApp.app_settings_dir={lab_settings(state)}",
           *kernel_transport(jupyter_runtime_dir())]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers often run as root; jupyter refuses without it
    print("The JupyterLab link with its token is printed by Jupyter below. Ctrl-C stops everything.", flush=True)
    # its own session: Ctrl-C reaches only this process, which stops JupyterLab cleanly (docstring)
    jupyter = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    running.callback(stop_jupyter, jupyter)
    return jupyter.wait()


if __name__ == "__main__":
    sys.exit(main())
