"""A stand-in for an identity-aware proxy's token helper (``flyte-iap``, ``gcloud auth print-identity-token``).

``python proxy_token.py RUNS_FILE [--jwt SECONDS] [--gate PATH] [--fail] [anything else ...]``

Every run appends one line to ``RUNS_FILE`` (O_APPEND: runs that overlap are each counted), so a test
counts the runs (caching, single flight) without trusting the code under test. It prints one token on
stdout: ``proxy-<run>-<random>`` by default, or with ``--jwt SECONDS`` an unsigned JWT (``alg: none``)
with ``iat`` = now, ``exp`` = now + SECONDS and ``jti`` = the run number (the expiry reader's input).
``--gate PATH`` first appends to ``PATH.started`` and then waits (at most 30 s) until ``PATH`` exists,
so a test can hold a run open while other threads arrive; if it never appears, the run prints no token,
says so on stderr and exits 4 (a gate that never opened must not pass for one that did). ``--fail`` prints a token-looking line on
stdout and a complaint on stderr and exits 3. Other arguments are ignored (a test passes a secret
among them to check it is never shown).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import time


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def main(argv: list[str]) -> int:
    runs_file, options = argv[0], argv[1:]
    fd = os.open(runs_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
    finally:
        os.close(fd)
    with open(runs_file, encoding="utf-8") as handle:
        run = sum(1 for _ in handle)
    if "--gate" in options:
        gate = options[options.index("--gate") + 1]
        with open(gate + ".started", "a", encoding="utf-8") as handle:
            handle.write(f"{run}\n")
        deadline = time.monotonic() + 30
        while not os.path.exists(gate):
            if time.monotonic() >= deadline:
                sys.stderr.write(f"proxy helper: the gate {gate} did not open within 30 s\n")
                return 4
            time.sleep(0.01)
    if "--fail" in options:
        print(f"proxy-{run}-{secrets.token_hex(8)}")
        sys.stderr.write("proxy helper: you are not signed in to the identity-aware proxy\n")
        return 3
    if "--jwt" in options:
        now = int(time.time())
        seconds = int(options[options.index("--jwt") + 1])
        token = ".".join([_b64({"alg": "none", "typ": "JWT"}),
                          _b64({"iat": now, "exp": now + seconds, "jti": str(run), "aud": "iap"}), ""])
        print(token + secrets.token_hex(4))  # a non-empty "signature" so the token is one word with 2 dots
    else:
        print(f"proxy-{run}-{secrets.token_hex(8)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
