"""Run the second test IdP: ``python -m tests.idp2.serve [--host 127.0.0.1] [--port 0] [--db PATH]``.

Binds the socket first (port 0 = any free port), so the issuer ``http://<host>:<port>`` is known
before Django is configured with it; then creates the SQLite database (``--db``, default a file in
a fresh temporary directory that is removed at exit), seeds the users and clients
(tests/idp2/seed.py), prints one line ``IDP2_READY <issuer>`` on stdout and serves with Django's
threaded WSGI server until SIGTERM or SIGINT. Knobs: environment variables (tests/idp2/settings.py).

The database is built from the models (``migrate --run-syncdb`` with migrations turned off), not by
replaying django-oauth-toolkit's 22 migrations: the tables are the same, and the start stays well
under a second instead of several. Set ``IDP2_MIGRATE=1`` to replay the real migrations instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time


def _serve(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    parser = argparse.ArgumentParser(prog="python -m tests.idp2.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", default="", help="SQLite file (default: in a temporary directory)")
    args = parser.parse_args(argv)

    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class Handler(WSGIRequestHandler):
        # one segment per answer: without it, keep-alive requests wait ~40 ms on delayed ACKs
        disable_nagle_algorithm = True

    server = ThreadedWSGIServer((args.host, args.port), Handler, ipv6=":" in args.host)
    port = server.server_address[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    issuer = f"http://{host}:{port}"

    workdir = None
    db_path = args.db
    if not db_path:
        workdir = tempfile.mkdtemp(prefix="flyteauth-idp2-")
        db_path = os.path.join(workdir, "idp2.sqlite3")

    import django
    from django.conf import settings

    from . import settings as idp2_settings

    config = idp2_settings.build(issuer, db_path)
    if os.environ.get("IDP2_MIGRATE", "") not in ("1", "true", "yes"):
        config["MIGRATION_MODULES"] = {app.rsplit(".", 1)[-1]: None for app in config["INSTALLED_APPS"]}
    settings.configure(**config)
    django.setup()

    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    from .rig import STATS
    from .seed import seed

    STATS.subjects.update(seed())
    server.set_app(get_wsgi_application())

    stopping = threading.Event()

    def stop(*_: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"IDP2_READY {issuer}", flush=True)
    print(f"tests/idp2: ready in {time.monotonic() - started:.2f} s", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
