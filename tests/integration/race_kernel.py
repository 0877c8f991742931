"""One "kernel" of the two-kernel refresh race (tests/integration/test_two_kernels_race.py).

A separate Python process, as a second notebook kernel is: it builds a PKCE authenticator for the
endpoint on the default token store (``$FLYTEAUTH_TOKEN_CACHE``: the keyring, here the rig's file
keyring, or the private file cache), then obeys one command a line on stdin:

* ``round <offset>``: its clock runs ``offset`` seconds ahead (so the stored token looks expired
  without waiting for it); 16 threads released together each call ``fetch_grpc_call_auth_metadata()``;
  it answers one JSON line ``{"tokens": [distinct bearer values], "errors": [...]}``;
* ``held``: answers ``{"access_token": ..., "refresh_token": ...}`` (what it holds in memory);
* ``quit``.

Test-rig only: it prints tokens to its parent's pipe (the test compares them), nothing else.
"""

from __future__ import annotations

import json
import sys
import threading

from flyteauth_jupyter import PKCEAuthenticator
from flyteauth_jupyter.control import Clock

THREADS = 16


class OffsetClock(Clock):
    offset = 0.0

    def time(self) -> float:
        return super().time() + self.offset


def main(endpoint: str) -> int:
    clock = OffsetClock()
    auth = PKCEAuthenticator(endpoint, None, open_browser=False, clock=clock, timeout=30)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "quit":
            return 0
        if command == "held":
            creds = auth._creds
            print(json.dumps({"access_token": creds and creds.access_token,
                              "refresh_token": creds and creds.refresh_token}), flush=True)
            continue
        if command != "round":
            print(json.dumps({"errors": [f"unknown command {command}"]}), flush=True)
            continue
        clock.offset = float(arg)
        barrier = threading.Barrier(THREADS)
        tokens: set[str] = set()
        errors: list[str] = []
        guard = threading.Lock()

        def worker() -> None:
            try:
                barrier.wait(30)
                metadata = auth.fetch_grpc_call_auth_metadata()
                with guard:
                    tokens.add(metadata[1] if metadata else "")
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                with guard:
                    errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        print(json.dumps({"tokens": sorted(tokens), "errors": errors}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
