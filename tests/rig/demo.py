"""``python -m tests.rig.demo``: the IdP, the FlyteAdmin stand-in, the Flyte 2 stand-in and JupyterLab, on 127.0.0.1.

IdP on :30081, FlyteAdmin stand-in on :30080 (its HTTP documents and API and its gRPC services on the
one port, as FlyteAdmin serves them; tests/rig/grpc_admin.py), the Flyte 2 (ConnectRPC over TLS)
stand-in on :30082, JupyterLab on :8888 with FLYTE_PLATFORM_URL pointing at the FlyteAdmin stand-in and
FLYTE2_ENDPOINT / FLYTE2_CA_CERT at the Flyte 2 one. Ctrl-C stops everything.

What a newcomer needs, set for the demo's kernels (and printed):

* JupyterLab's root is a scratch copy of notebooks/ in ``.demo/notebooks`` (git-ignored), made fresh
  at every start, so running the examples never writes outputs into the tracked files.
* ``FLYTE_CLIENT_SECRET`` holds the demo's confidential client secret (notebooks/03).
* Without a usable keyring on this machine, a demo keyring: the rig's one-file keyring backend
  (tests/rig/file_keyring.py, ``.demo/keyring.json``, plain JSON, demo tokens of the loopback IdP
  only), so a sign-in in one notebook serves the next notebook's kernel, and flytekit's own modes and
  the Flyte 2 SDK (notebooks/04) read the same entries, as the notebooks say. The private file cache
  (``FLYTEAUTH_TOKEN_CACHE=file``) would serve our kernels too, but no other SDK reads it. With a
  keyring, the keyring is used as everywhere else.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .connect_admin import ConnectAdmin
from .file_keyring import RECORD_ENV, history_path
from .grpc_admin import start_grpc_admin, stop_grpc_admin
from .idp import CONFIDENTIAL_SECRET, USERS, IdP, ensure_node_modules

ROOT = Path(__file__).resolve().parents[2]
SCRATCH = ROOT / ".demo"


def scratch_notebooks() -> Path:
    """Fresh copies of notebooks/ in the scratch folder (the tracked files stay clean)."""
    target = SCRATCH / "notebooks"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(ROOT / "notebooks", target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return target


def keyring_usable() -> bool:
    """Whether the token store would find a keyring that keeps tokens (not the fail/null backend)."""
    from flyteauth_jupyter.stores import KeyringStore

    try:
        KeyringStore()._checked_backend()
    except Exception:  # noqa: BLE001 - any reason means: no keyring for the demo
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.rig.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--idp-port", type=int, default=30081)
    ap.add_argument("--admin-port", type=int, default=30080)
    ap.add_argument("--flyte2-port", type=int, default=30082)
    ap.add_argument("--jupyter-port", type=int, default=8888)
    ap.add_argument("--device-interval", type=int, default=5)
    ap.add_argument("--no-jupyter", action="store_true", help="only the IdP and the stand-in")
    args = ap.parse_args(argv)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    ensure_node_modules()
    idp = IdP(port=args.idp_port, device_interval=args.device_interval).start()
    admin, _ = start_grpc_admin(idp, count_idp=False, port=args.admin_port)
    tls_dir = tempfile.TemporaryDirectory(prefix="flyteauth-demo-tls-")
    flyte2 = ConnectAdmin(idp, tls_dir.name, port=args.flyte2_port).start()
    jupyter: subprocess.Popen[bytes] | None = None
    try:
        print(f"Identity provider : {idp.issuer}  (device page {idp.url('/device')})")
        print(f"FlyteAdmin        : {admin.url}  (HTTP and gRPC)")
        print(f"Flyte 2 platform  : {flyte2.endpoint}  (ConnectRPC over TLS, CA {flyte2.ca_cert})")
        print("Demo users        : " + ", ".join(f"{u} / {p}" for u, p in USERS.items()))
        print(f"Confidential client: jupyter-confidential / {CONFIDENTIAL_SECRET} (client credentials)")
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
            SCRATCH.mkdir(mode=0o700, exist_ok=True)
            keyring_file = SCRATCH / "keyring.json"
            # an earlier demo's keyring kept every token ever written in keyring.json.history (issue 17.9)
            history_path(keyring_file).unlink(missing_ok=True)
            env.pop(RECORD_ENV, None)
            env.update(PYTHON_KEYRING_BACKEND="rig.file_keyring.FileKeyring", FLYTEAUTH_RIG_KEYRING=str(keyring_file),
                       PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")])))
            print(f"Token cache       : no keyring on this machine, so a demo keyring in {keyring_file} "
                  "(plain JSON; flytekit and the Flyte 2 SDK read it too)")
        root = scratch_notebooks()
        print(f"Notebooks         : copies in {root} (fresh at every start; notebooks/ stays clean)")
        print("FLYTE_CLIENT_SECRET is set for the kernels (notebooks/03, client credentials)")
        cmd = [jupyter_cmd, "lab", "--no-browser", "--ip", "127.0.0.1", "--port", str(args.jupyter_port),
               "--notebook-dir", str(root)]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # containers often run as root; jupyter refuses without it
        print(f"JupyterLab        : http://127.0.0.1:{args.jupyter_port}/lab  (FLYTE_PLATFORM_URL={admin.url})")
        print("                    the login link with its token is printed by Jupyter below")
        print("Ctrl-C stops everything.", flush=True)
        jupyter = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
        return jupyter.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if jupyter is not None and jupyter.poll() is None:
            jupyter.send_signal(signal.SIGINT)  # jupyter asks to confirm on the first SIGINT
            try:
                jupyter.wait(3)
            except subprocess.TimeoutExpired:
                jupyter.terminate()
                try:
                    jupyter.wait(10)
                except subprocess.TimeoutExpired:
                    jupyter.kill()
        stop_grpc_admin(admin)
        flyte2.stop()
        tls_dir.cleanup()
        idp.stop()
        print("stopped.")


if __name__ == "__main__":
    sys.exit(main())
