"""Measurements that need a fresh interpreter (``python -m bench.probe MODE ...``); the last line of
output is one JSON object. Imports nothing at module level beyond the standard library, so that what
a probe measures is what the probe itself imports."""

from __future__ import annotations

import collections
import gc
import importlib
import json
import re
import sys
import threading
import time
from typing import Any


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024  # type: ignore[union-attr]


def count_requests() -> collections.Counter[str]:
    """Count every HTTP request this process sends (requests' adapter), by ``port path``."""
    from urllib.parse import urlsplit

    from requests.adapters import HTTPAdapter

    counter: collections.Counter[str] = collections.Counter()
    original = HTTPAdapter.send

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url)
        counter[f"{parts.port} {parts.path}"] += 1
        return original(self, request, *args, **kwargs)

    HTTPAdapter.send = send  # type: ignore[method-assign]
    return counter


def shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance()


def probe_load(which: str) -> dict[str, Any]:
    ip = shell()
    before = set(sys.modules)
    start = time.perf_counter()
    if which == "ours":
        ip.run_line_magic("load_ext", "flyteauth_jupyter")
    else:
        importlib.import_module("flytekit.clients.auth.authenticator")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "modules": len(set(sys.modules) - before)}


def probe_warm(endpoint: str, idp_port: str) -> dict[str, Any]:
    """A new kernel whose token cache (the file store) already holds a token: sign in and count."""
    ip = shell()
    ip.run_line_magic("load_ext", "flyteauth_jupyter")
    import requests  # noqa: F401 - imported before counting starts (the count is of requests, not imports)

    counter = count_requests()
    ip.run_line_magic("flyte_login", f"--endpoint {endpoint} --flow device --wait --timeout 30")
    session = ip.user_ns["flyte_auth"]
    idp = {k: v for k, v in counter.items() if k.startswith(f"{idp_port} ")}
    return {
        "status": session.status,
        "idp_requests": sum(idp.values()),
        "token_requests": sum(v for k, v in idp.items() if k.endswith(" /token")),
        "other_requests": sum(counter.values()) - sum(idp.values()),
    }


def _flyteauth_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("flyteauth"))


def _settle_threads(baseline: int, timeout: float = 10.0) -> int:
    """Wait (bounded) for the login threads to end; the number of threads above ``baseline``."""
    ends = time.monotonic() + timeout
    while time.monotonic() < ends and (threading.active_count() > baseline or _flyteauth_threads()):
        time.sleep(0.05)
    return threading.active_count() - baseline


def probe_memory(endpoint: str, client_id: str, secret_env: str, cycles: str) -> dict[str, Any]:
    ip = shell()
    ip.run_line_magic("load_ext", "flyteauth_jupyter")
    login = f"--endpoint {endpoint} --flow client-credentials --client-id {client_id} --client-secret-env {secret_env} --wait"

    def cycle() -> None:
        ip.run_line_magic("flyte_login", login)
        ip.run_line_magic("flyte_logout", "")

    for _ in range(3):  # warm up: the first login imports the HTTP stack and fills caches
        cycle()
    baseline_threads = threading.active_count()
    _settle_threads(baseline_threads)

    # a background device login in progress (its threads polling) against the same kernel
    gc.collect()
    before = rss_mib()
    ip.run_line_magic("flyte_login", f"--endpoint {endpoint} --flow device --name bg --timeout 60")
    session = ip.user_ns["bg"]
    ends = time.monotonic() + 20
    while session.status not in ("waiting", "slowed_down") and time.monotonic() < ends:
        time.sleep(0.02)
    time.sleep(1.5)  # let it poll the token endpoint at least once (interval 1 s)
    gc.collect()
    during = rss_mib()
    waiting = session.status
    session.cancel()
    ip.run_line_magic("flyte_logout", "--name bg")
    left_after_cancel = _settle_threads(baseline_threads)

    gc.collect()
    start = rss_mib()
    for _ in range(int(cycles)):
        cycle()
    extra_threads = _settle_threads(baseline_threads)
    gc.collect()
    end = rss_mib()
    return {
        "background_login_mib": during - before,
        "background_status": waiting,
        "threads_after_cancel": left_after_cancel,
        "cycles": int(cycles),
        "extra_threads": extra_threads,
        "flyteauth_threads": _flyteauth_threads(),
        "growth_mib": end - start,
    }


def _switches() -> dict[int, int]:
    """Context switches so far (voluntary + involuntary) of each thread of this process, by native id."""
    import os

    counts = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/status", encoding="ascii") as f:
                text = f.read()
        except OSError:
            continue  # ended meanwhile
        found = re.findall(r"(?:non)?voluntary_ctxt_switches:\s+(\d+)", text)
        counts[int(tid)] = sum(int(n) for n in found)
    return counts


def probe_idle(endpoint: str, seconds: str) -> dict[str, Any]:
    """Sign in from a fresh cached token, make SDK calls, then idle: which threads of ours exist, and
    how often any thread but this (main) one woke during ``seconds`` (a sleeping thread is not
    switched at all; the main thread's own sleep counts once and is taken off)."""
    ip = shell()
    ip.run_line_magic("load_ext", "flyteauth_jupyter")
    ip.run_line_magic("flyte_login", f"--endpoint {endpoint} --flow device --wait --timeout 30")
    session = ip.user_ns["flyte_auth"]
    for _ in range(1000):  # what an SDK does on every call
        session.get_credentials()
        session.fetch_grpc_call_auth_metadata()
    for thread in threading.enumerate():  # the sign-in's own threads end with it (bounded wait)
        if thread.name.startswith("flyteauth"):
            thread.join(10)
    names = {t.native_id: t.name for t in threading.enumerate()}
    main = threading.main_thread().native_id
    before = _switches()
    time.sleep(float(seconds))
    after = _switches()
    woken: dict[str, int] = {}
    for tid, count in after.items():
        delta = count - before.get(tid, 0) - (1 if tid == main else 0)  # the main thread's sleep itself
        if delta > 0:
            woken[names.get(tid, f"tid {tid}")] = delta
    return {
        "status": session.status,
        "threads": len(after),
        "threads_ours": _flyteauth_threads(),
        "wakeups": sum(woken.values()),
        "woken": woken,
    }


def probe_rpc(endpoint: str, header_key: str, rounds: str, calls: str) -> dict[str, Any]:
    """flytekit's own gRPC client (``RawSynchronousFlyteClient``) calling ListProjects on the stand-in,
    each on its own channel: ``ours`` with ``auth_mode="notebook"`` (our plug-in hands
    flytekit's AuthUnaryInterceptor the notebook's signed-in LoginSession, which holds
    ``$BENCH_TOKEN``); ``none``, flytekit's default client with no token to send (its interceptor's
    authenticator holds none, as against a deployment without auth); ``twin``, a second ``none``
    (the A/A); ``flytekit``, the default client whose interceptor holds flytekit's own
    PKCEAuthenticator with the same token. ``rounds`` times, each client in turn (each first in
    turn) makes ``calls`` RPCs; per round and client, this process's CPU time per RPC. A fifth,
    ``constant``, gives the interceptor an authenticator that returns a prebuilt header: the floor,
    what sending one header through flytekit's client costs whoever makes it."""
    import os

    import flytekit.clients.raw as raw
    from flytekit.clients.auth import authenticator as fk
    from flytekit.clients.auth.keyring import Credentials as FkCredentials
    from flytekit.clients.grpc_utils.auth_interceptor import AuthUnaryInterceptor
    from flytekit.configuration import PlatformConfig

    from flyteauth_jupyter.authenticators import Authenticator
    from flyteauth_jupyter.credentials import Credentials
    from flyteauth_jupyter.notebook.session import LoginSession, Prepared
    from flyteauth_jupyter.sessions import register_session

    token = os.environ["BENCH_TOKEN"]
    held = Credentials(token, "bench-refresh", endpoint, expires_in=3600)
    ours = Authenticator(endpoint, header_key, credentials=held, insecure=True)
    session = LoginSession(lambda observer: Prepared(ours, "pkce"), endpoint=endpoint, name="flyte_auth")
    session.start(None)
    session.wait(30)
    session.get_credentials()  # a finished sign-in, as a later cell finds it
    register_session(endpoint, session)  # what %flyte_login does: the plug-in hands it to flytekit

    def client(**options: Any) -> Any:
        return raw.RawSynchronousFlyteClient(PlatformConfig(endpoint=endpoint, insecure=True, **options))

    theirs = fk.PKCEAuthenticator(endpoint, fk.StaticClientConfigStore(fk.ClientConfig(
        token_endpoint="http://127.0.0.1:9/token", authorization_endpoint="http://127.0.0.1:9/auth",
        redirect_uri="http://127.0.0.1:9/callback", client_id="bench", header_key=header_key)))
    theirs._creds = FkCredentials(token, "bench-refresh", endpoint)
    theirs._set_header_key(header_key)
    class Constant:
        """The floor: an authenticator whose header costs nothing to make."""

        header = (header_key, f"Bearer {token}")

        def fetch_grpc_call_auth_metadata(self) -> tuple[str, str]:
            return self.header

    clients = {"ours": client(auth_mode="notebook"), "none": client(), "twin": client(), "flytekit": client(),
               "constant": client()}
    for name, authenticator in (("flytekit", theirs), ("constant", Constant())):
        channel = clients[name]._channel
        while hasattr(channel, "_interceptor"):  # flytekit's own interceptor, given another authenticator
            if isinstance(channel._interceptor, AuthUnaryInterceptor):
                channel._interceptor._authenticator = authenticator
            channel = channel._channel
    n = int(calls)
    for each in clients.values():  # connect; flytekit builds its authenticators (ours: the plug-in)
        for _ in range(20):
            each.list_projects()
    names = list(clients)
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for i in range(int(rounds)):
        for name in names[i % len(names):] + names[:i % len(names)]:
            each = clients[name]
            start = time.process_time()
            for _ in range(n):
                each.list_projects()
            cpu[name].append((time.process_time() - start) / n)
    plugin = clients["ours"]._channel
    while hasattr(plugin, "_interceptor") and not isinstance(plugin._interceptor, AuthUnaryInterceptor):
        plugin = plugin._channel
    inner = getattr(getattr(plugin, "_interceptor", None), "_authenticator", None)
    return {"cpu": cpu, "token_chars": len(token), "through_session": getattr(inner, "inner", None) is session}


def main(argv: list[str]) -> int:
    mode, *args = argv
    result = {"load": probe_load, "warm": probe_warm, "memory": probe_memory, "idle": probe_idle,
              "rpc": probe_rpc}[mode](*args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
