"""``python -m tests.rig.demo_hub`` (``make demo-hub``): the demo on a real JupyterHub, on 127.0.0.1.

IdP on :30091, FlyteAdmin stand-in on :30090, JupyterHub on :8000 (tests/hub/jupyterhub_config.py:
GenericOAuthenticator at the IdP, auth_state kept and refreshed, local single-user servers). Each
user's home holds ``flyte-on-the-hub.ipynb``: ``%flyte_login`` signs in from the Hub's login with no
click. Ports differ from ``make demo`` (30080/30081/8888), so both can run at once. Ctrl-C stops
everything.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import time
from pathlib import Path

import nbformat

from .flyteadmin import FlyteAdminStandIn
from .hub import KERNEL_CLIENT, RELAY_PATH, HubRig, ensure_proxy, hub_clients
from .idp import RESOURCE, USERS, IdP, ensure_node_modules

ROOT = Path(__file__).resolve().parents[2]
CELLS = [
    "%load_ext flyteauth_jupyter\n%flyte_login",
    "import os, requests\nfrom flyteauth_jupyter.clients import BearerAuth\n"
    "r = requests.get(os.environ['FLYTE_PLATFORM_URL'] + '/api/v1/projects', auth=BearerAuth(flyte_auth))\n"
    "r.status_code, r.json()",
    "%flyte_status",
    "# The browser sign-in through the Hub's one redirect URI (hub/user-redirect/flyteauth/callback):\n"
    "%flyte_login --flow pkce --name flyte_pkce",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.rig.demo_hub", description=__doc__.splitlines()[0])
    ap.add_argument("--idp-port", type=int, default=30091)
    ap.add_argument("--admin-port", type=int, default=30090)
    ap.add_argument("--hub-port", type=int, default=8000)
    ap.add_argument("--token-ttl", type=int, default=300, help="access-token lifetime in seconds (refresh shows)")
    args = ap.parse_args(argv)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    ensure_node_modules()
    ensure_proxy()
    run_dir = ROOT / ".demo" / "hub"
    shutil.rmtree(run_dir, ignore_errors=True)  # a new crypt key each run: old auth_state is unreadable
    run_dir.mkdir(parents=True)
    hub_url = f"http://127.0.0.1:{args.hub_port}"
    clients = run_dir / "idp-clients.json"
    clients.write_text(json.dumps(hub_clients(hub_url)))
    idp = IdP(port=args.idp_port, device_interval=5, at_format="jwt", at_ttl=args.token_ttl,
              extra_clients_file=str(clients)).start()
    admin = FlyteAdminStandIn(idp, client_id=KERNEL_CLIENT, redirect_uri=f"{hub_url}{RELAY_PATH}",
                              audience=RESOURCE, port=args.admin_port).start()
    hub = HubRig(idp.issuer or "", admin.endpoint, run_dir, port=args.hub_port, refresh_age=30)
    try:
        print(f"Identity provider : {idp.issuer}")
        print(f"FlyteAdmin        : {admin.endpoint}  (client {KERNEL_CLIENT}, redirect {hub_url}{RELAY_PATH})")
        print("Starting JupyterHub ...", flush=True)
        hub.start()
        for user in USERS:
            nb = nbformat.v4.new_notebook()
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
            nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
            hub.home(user).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, hub.home(user) / "flyte-on-the-hub.ipynb")
        print(f"JupyterHub        : {hub_url}/hub/login  (up in {hub.started_in:.1f} s; log {hub.log})")
        print("Demo users        : " + ", ".join(f"{u} / {p}" for u, p in USERS.items()))
        print("Open flyte-on-the-hub.ipynb and run the cells: %flyte_login signs in from the Hub's login.")
        print("Ctrl-C stops everything.", flush=True)
        while hub.proc is not None and hub.proc.poll() is None:
            time.sleep(1)
        print(hub.log_tail(), flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        hub.stop()
        admin.stop()
        idp.stop()
        print("stopped.")


if __name__ == "__main__":
    raise SystemExit(main())
