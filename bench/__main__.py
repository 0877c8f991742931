"""``python -m bench``: flyteauth_jupyter vs flytekit, in one process tree, printed as a table.

Sections (each prints "n/a" with the reason instead of failing the whole run):

a. keyring round trip (store + retrieve) against an in-memory keyring backend: time per round trip
   and keyring calls per retrieve / per store.
b. import time of ``flyteauth_jupyter`` / its authenticators vs ``flytekit.clients.auth.authenticator``,
   each in fresh subprocesses (median of N).
c. tracemalloc peak of constructing a PKCE authenticator when a token is cached in the keyring.
d. API calls and token requests for the first authenticated call through flytekit's own
   ``AuthUnaryInterceptor``, with a cached token that is valid, and one that has expired (a local
   HTTP token endpoint answers the refresh grant).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

SERVICE = "localhost:30080"
IMPORT_RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "5"))
ROUND_TRIPS = int(os.environ.get("BENCH_ROUND_TRIPS", "2000"))

Row = tuple[str, str, str, str]  # metric, ours, flytekit, ratio


class CountingKeyring(KeyringBackend):
    """In-memory keyring that counts get/set/delete calls."""

    priority = -5  # type: ignore[assignment]  # below fail (0) and null (-1): never anyone's default backend

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.gets = self.sets = self.deletes = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.gets += 1
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.sets += 1
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.deletes += 1
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")

    def reset_counts(self) -> None:
        self.gets = self.sets = self.deletes = 0


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "n/a"
    return f"{ours / theirs:.2f}"


def na(metric: str, why: BaseException | str) -> Row:
    text = why if isinstance(why, str) else f"{type(why).__name__}: {why}"
    return (metric, "n/a", "n/a", text[:60])


# --------------------------------------------------------------------------------------------------
# a. keyring round trip
# --------------------------------------------------------------------------------------------------


def bench_keyring(backend: CountingKeyring) -> list[Row]:
    from flytekit.clients.auth import keyring as fk

    from flyteauth_jupyter.credentials import Credentials
    from flyteauth_jupyter.stores import KeyringStore, MemoryStore

    ours = KeyringStore(fallback=MemoryStore())
    rows: list[Row] = []

    def per_trip(fn: Callable[[], Any]) -> float:
        fn()
        start = time.perf_counter()
        for _ in range(ROUND_TRIPS):
            fn()
        return (time.perf_counter() - start) / ROUND_TRIPS * 1e6

    def ours_trip() -> None:
        ours.save(SERVICE, Credentials("opaque-access", "opaque-refresh", SERVICE, expires_in=3600, id_token="idt"))
        ours.load(SERVICE)

    def fk_trip() -> None:
        fk.KeyringStore.store(fk.Credentials("opaque-access", "opaque-refresh", SERVICE, id_token="idt"))
        fk.KeyringStore.retrieve(SERVICE)

    t_ours = per_trip(ours_trip)
    backend.entries.clear()
    t_fk = per_trip(fk_trip)
    rows.append(("keyring store+retrieve (µs)", f"{t_ours:.1f}", f"{t_fk:.1f}", ratio(t_ours, t_fk)))

    def count(fn: Callable[[], Any]) -> tuple[int, int]:
        backend.reset_counts()
        fn()
        return backend.gets, backend.sets

    backend.entries.clear()
    ours.save(SERVICE, Credentials("opaque-access", "opaque-refresh", SERVICE, expires_in=3600, id_token="idt"))
    ours_reads, _ = count(lambda: ours.load(SERVICE))
    fk_reads, _ = count(lambda: fk.KeyringStore.retrieve(SERVICE))
    rows.append(("keyring reads per retrieve (opaque token)", str(ours_reads), str(fk_reads), ratio(ours_reads, fk_reads)))

    jwt = _jwt({"exp": int(time.time()) + 3600, "sub": "bench"})
    backend.entries.clear()
    ours.save(SERVICE, Credentials(jwt, "opaque-refresh", SERVICE, id_token="idt"))
    ours_reads, _ = count(lambda: ours.load(SERVICE))
    fk_reads, _ = count(lambda: fk.KeyringStore.retrieve(SERVICE))
    rows.append(("keyring reads per retrieve (JWT)", str(ours_reads), str(fk_reads), ratio(ours_reads, fk_reads)))

    backend.entries.clear()
    ours_reads, _ = count(lambda: ours.load(SERVICE))
    fk_reads, _ = count(lambda: fk.KeyringStore.retrieve(SERVICE))
    rows.append(("keyring reads per retrieve (empty)", str(ours_reads), str(fk_reads), ratio(ours_reads, fk_reads)))

    _, ours_sets = count(lambda: ours.save(SERVICE, Credentials("a", "r", SERVICE, expires_in=60, id_token="i")))
    _, fk_sets = count(lambda: fk.KeyringStore.store(fk.Credentials("a", "r", SERVICE, id_token="i")))
    rows.append(("keyring writes per store (2 layouts + expiry)", str(ours_sets), str(fk_sets), ratio(ours_sets, fk_sets)))
    backend.entries.clear()
    return rows


def _jwt(claims: dict[str, Any]) -> str:
    import base64

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


# --------------------------------------------------------------------------------------------------
# b. import time in fresh subprocesses
# --------------------------------------------------------------------------------------------------

IMPORT_SNIPPET = (
    "import sys, time, importlib\n"
    "t = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(time.perf_counter() - t)\n"
)


def import_seconds(module: str) -> float:
    samples = []
    for _ in range(IMPORT_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_SNIPPET, module], capture_output=True, text=True, timeout=120, check=True
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def bench_imports() -> list[Row]:
    rows: list[Row] = []
    theirs = import_seconds("flytekit.clients.auth.authenticator")
    for label, module in (
        ("import flyteauth_jupyter (ms)", "flyteauth_jupyter"),
        ("import authenticators module (ms)", "flyteauth_jupyter.authenticators"),
    ):
        try:
            ours = import_seconds(module)
        except subprocess.CalledProcessError as exc:
            rows.append(na(label, (exc.stderr or "").strip().splitlines()[-1] if exc.stderr else "import failed"))
            continue
        rows.append((label, f"{ours * 1e3:.0f}", f"{theirs * 1e3:.0f}", ratio(ours, theirs)))
    return rows


# --------------------------------------------------------------------------------------------------
# c. memory of constructing an authenticator with a cached token
# --------------------------------------------------------------------------------------------------


def _seed_cache(backend: CountingKeyring, access: str, refresh: str = "rt-cached", expires_at: float | None = None) -> None:
    backend.entries.clear()
    backend.entries[(SERVICE, "access_token")] = access
    backend.entries[(SERVICE, "refresh_token")] = refresh
    if expires_at is not None:
        backend.entries[(SERVICE, "expires_at")] = str(int(expires_at))


def peak_kib(build: Callable[[], Any]) -> float:
    build()  # warm caches (lazy imports, singletons) so only construction is measured
    tracemalloc.start()
    try:
        obj = build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del obj
    return peak / 1024


def bench_memory(backend: CountingKeyring, token_url: str) -> list[Row]:
    from flytekit.clients.auth import authenticator as fk

    from flyteauth_jupyter import authenticators, config

    _seed_cache(backend, "cached-access", expires_at=time.time() + 3600)
    fk_cfg = fk.StaticClientConfigStore(_fk_client_config(token_url))
    our_cfg = config.StaticClientConfigStore(config.ClientConfig(**vars(_fk_client_config(token_url))))
    theirs = peak_kib(lambda: fk.PKCEAuthenticator(SERVICE, fk_cfg))
    ours = peak_kib(lambda: authenticators.PKCEAuthenticator(SERVICE, our_cfg))
    backend.reset_counts()
    authenticators.PKCEAuthenticator(SERVICE, our_cfg).get_credentials()
    ours_reads = backend.gets
    backend.reset_counts()
    fk.PKCEAuthenticator(SERVICE, fk_cfg).get_credentials()
    fk_reads = backend.gets
    return [
        ("construct PKCE authenticator, peak KiB", f"{ours:.1f}", f"{theirs:.1f}", ratio(ours, theirs)),
        ("keyring reads: construct + get_credentials", str(ours_reads), str(fk_reads), ratio(ours_reads, fk_reads)),
    ]


def _fk_client_config(token_url: str) -> Any:
    from flytekit.clients.auth.authenticator import ClientConfig

    return ClientConfig(
        token_endpoint=token_url,
        authorization_endpoint=token_url.replace("/token", "/auth"),
        redirect_uri="http://localhost:53593/callback",
        client_id="flytectl",
        scopes=["openid", "offline_access"],
        header_key="flyte-authorization",
    )


# --------------------------------------------------------------------------------------------------
# d. requests for the first authenticated call (flytekit's interceptor, a local token endpoint)
# --------------------------------------------------------------------------------------------------


class TokenServer:
    """A loopback OAuth token endpoint answering the refresh grant; it counts requests."""

    def __init__(self) -> None:
        self.requests = 0
        self.valid: set[str] = set()
        self._n = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                server.requests += 1
                if form.get("grant_type") != ["refresh_token"]:
                    body, status = {"error": "unsupported_grant_type"}, 400
                else:
                    server._n += 1
                    token = f"fresh-access-{server._n}"
                    server.valid.add(token)
                    body, status = {"access_token": token, "token_type": "Bearer", "expires_in": 3600}, 200
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def first_call(make_authenticator: Callable[[], Any], tokens: TokenServer) -> tuple[int, int, bool]:
    """(API calls, token requests, succeeded) for one RPC through flytekit's AuthUnaryInterceptor."""
    import grpc
    from flytekit.clients.grpc_utils.auth_interceptor import AuthUnaryInterceptor, _ClientCallDetails

    api_calls = 0

    class Rejected(Exception):
        def code(self) -> Any:
            return grpc.StatusCode.UNAUTHENTICATED

    class Outcome:
        def __init__(self, exc: Exception | None) -> None:
            self._exc = exc

        def exception(self) -> Exception | None:
            return self._exc

    def api(details: Any, request: Any) -> Outcome:  # the Flyte API: accepts only tokens it issued
        nonlocal api_calls
        api_calls += 1
        metadata = dict(details.metadata or [])  # FlyteAdmin takes its custom key or the standard one
        header = metadata.get("flyte-authorization") or metadata.get("authorization") or ""
        ok = header.startswith("Bearer ") and header[len("Bearer ") :] in tokens.valid
        return Outcome(None if ok else Rejected())

    before = tokens.requests
    interceptor = AuthUnaryInterceptor(make_authenticator)
    details = _ClientCallDetails("/flyteidl.service.AdminService/ListProjects", 10, [], None)
    outcome = interceptor.intercept_unary_unary(api, details, object())
    return api_calls, tokens.requests - before, outcome.exception() is None


def bench_first_call(backend: CountingKeyring, tokens: TokenServer) -> list[Row]:
    from flytekit.clients import auth_helper
    from flytekit.clients.auth import authenticator as fk
    from flytekit.configuration import PlatformConfig

    fk_store = fk.StaticClientConfigStore(_fk_client_config(tokens.url))

    def theirs() -> Any:
        return auth_helper.get_authenticator(PlatformConfig(endpoint=SERVICE, insecure=True, auth_mode="Pkce"), fk_store)

    def ours() -> Any:
        cfg = PlatformConfig(endpoint=SERVICE, insecure=True, auth_mode="notebook_pkce")
        return auth_helper.get_authenticator(cfg, fk_store)

    rows: list[Row] = []
    for label, seed in (
        ("valid cached token", lambda: _valid_seed(backend, tokens)),
        ("expired cached token", lambda: _seed_cache(backend, "expired-access", expires_at=time.time() - 60)),
    ):
        result = {}
        for who, make in (("ours", ours), ("flytekit", theirs)):
            seed()
            try:
                result[who] = first_call(make, tokens)
            except Exception as exc:  # noqa: BLE001 - report, do not abort the table
                result[who] = exc
        for what, index in (("API calls", 0), ("token requests", 1)):
            cells = []
            for who in ("ours", "flytekit"):
                value = result[who]
                if isinstance(value, Exception):
                    cells.append(f"error: {type(value).__name__}")
                else:
                    cells.append(f"{value[index]}" + ("" if value[2] else " (failed)"))
            nums = [None if isinstance(result[w], Exception) else result[w][index] for w in ("ours", "flytekit")]
            rows.append((f"first call, {label}: {what}", cells[0], cells[1], ratio(nums[0], nums[1])))
    return rows


def _valid_seed(backend: CountingKeyring, tokens: TokenServer) -> None:
    tokens.valid.add("valid-access")
    _seed_cache(backend, "valid-access", expires_at=time.time() + 3600)


# --------------------------------------------------------------------------------------------------


def main() -> int:
    started = time.perf_counter()
    scratch = tempfile.TemporaryDirectory(prefix="flyteauth-bench-")
    os.environ["XDG_CACHE_HOME"] = os.path.join(scratch.name, "cache")  # lock files stay out of ~/.cache
    previous = keyring.get_keyring()
    backend = CountingKeyring()
    keyring.set_keyring(backend)
    tokens = TokenServer()
    rows: list[Row] = []
    try:
        for name, section in (
            ("keyring", lambda: bench_keyring(backend)),
            ("imports", bench_imports),
            ("memory", lambda: bench_memory(backend, tokens.url)),
            ("first call", lambda: bench_first_call(backend, tokens)),
        ):
            try:
                rows.extend(section())
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
                rows.append(na(name, exc))
    finally:
        tokens.close()
        keyring.set_keyring(previous)
        scratch.cleanup()

    headers = ("metric", "ours", "flytekit", "ours/flytekit")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print(f"flyteauth_jupyter vs flytekit ({_versions()})")
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print(line)
    print(f"ran in {time.perf_counter() - started:.1f} s; lower is better everywhere; times are medians or means")
    return 0


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for dist in ("flyteauth-jupyter", "flytekit", "keyring"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} ?")
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
