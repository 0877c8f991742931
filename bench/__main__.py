"""``python -m bench`` (``make bench``): flyteauth_jupyter against flytekit and against its targets.

Every row prints what was measured, the target and PASS/FAIL; ``bench/results.json`` gets the same
rows. Times are ratios to flytekit measured in the same run (absolute times on a shared machine are
noise), or bounds derived from the protocol (intervals, the IdP's own exchange time). Per-call times
are also measured for a second flytekit authenticator against the first (A/A): two calls that do
the same work differ by a few per cent either way on this kind of machine, and the A/A says how
many in this run. Counts are of HTTP requests the clients sent. Everything runs on 127.0.0.1: the
IdP in tests/idp (node-oidc-provider, started here through tests/rig) and the FlyteAdmin stand-in.

The hot path (issue 19.1, DESIGN.md pinned 21): ``fetch_grpc_call_auth_metadata()`` reads the wall
clock on every call, compares it with the token's refresh instant and returns a cached tuple;
flytekit formats its header on every call and checks no expiry. Target: at most flytekit's time
(1.0x). ``get_credentials()`` is reported beside flytekit's with no target: flytekit's is a bare
attribute return, ours adds the clock read, which is what keeps an expired token from being served
(a row with target "-" never fails). ``LoginSession``'s calls are a lock-free check plus the
Authenticator's (no target of their own). The idle row counts our threads and every wake-up of the
process's other threads while a kernel holds a fresh token: nothing of ours runs in the background.

Sections: load, hot path, idle, refresh, device flow, PKCE, warm start, memory. A section that
breaks prints one FAIL row with the reason and the others still run. Nothing here is a test.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import rig as benchrig

RESULTS = Path(__file__).resolve().parent / "results.json"
LOAD_RUNS = int(os.environ.get("BENCH_LOAD_RUNS", "7"))
CALLS = int(os.environ.get("BENCH_CALLS", "20000"))
THREAD_CALLS = int(os.environ.get("BENCH_THREAD_CALLS", "50000"))
CYCLES = int(os.environ.get("BENCH_CYCLES", "100"))
APPROVAL_DELAY = float(os.environ.get("BENCH_APPROVAL_DELAY", "3.0"))
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "60"))
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TIMEOUT = 120.0


@dataclass
class Row:
    section: str
    metric: str
    ours: str
    flytekit: str
    measured: str
    target: str
    ok: bool
    value: float | None = None

    @property
    def verdict(self) -> str:
        return "PASS" if self.ok else "FAIL"


def row(section: str, metric: str, ours: str, flytekit: str, measured: str, target: str, ok: bool,
        value: float | None = None) -> Row:
    return Row(section, metric, ours, flytekit, measured, target, bool(ok), value)


def probe(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.probe", *args], capture_output=True, text=True, timeout=TIMEOUT,
        env=env or benchrig.quiet_env(), cwd=benchrig.ROOT, stdin=subprocess.DEVNULL,
    )
    if out.returncode != 0:
        raise RuntimeError(f"probe {args[0]} failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------- load
def bench_load() -> list[Row]:
    ours, theirs = [], []
    for _ in range(LOAD_RUNS):  # interleaved, so that machine load hits both alike
        ours.append(probe("load", "ours")["seconds"])
        theirs.append(probe("load", "flytekit")["seconds"])
    o, t = statistics.median(ours), statistics.median(theirs)
    r = o / t
    return [row("load", f"%load_ext vs import flytekit...authenticator (ms, median of {LOAD_RUNS})",
                f"{o * 1e3:.1f}", f"{t * 1e3:.0f}", f"{r:.3f}x", "<= 0.05x", r <= 0.05, r)]


# ----------------------------------------------------------------------------------------- hot path
BLOCKS = int(os.environ.get("BENCH_BLOCKS", "7"))


@dataclass
class PerCall:
    """Per-call CPU times (ns) of ours, flytekit's and flytekit's twin (a second instance built the
    same way: the A/A control), the median over blocks of each block's best."""

    ours: float
    theirs: float
    ratio: float  # median over blocks of ours / theirs
    twin_low: float  # the A/A ratios (twin / theirs) seen over the blocks: the resolution
    twin_high: float

    def measured(self) -> str:
        return f"{self.ratio:.2f}x (A/A {self.twin_low:.2f}x-{self.twin_high:.2f}x)"


def per_call(ours: Callable[[], Any], theirs: Callable[[], Any], twin: Callable[[], Any],
             rounds: int = 41, blocks: int = BLOCKS) -> PerCall:
    """Best CPU time per call of each (the thread's CPU clock, so time spent preempted on a shared
    machine does not count), in short runs alternating between the three so that a busy moment hits
    all alike; ``blocks`` times over. Two functions that do the same work differ here by a few per
    cent either way: the twin's ratio says how many, in this run."""
    ours(), theirs(), twin()
    o_best, t_best, ratios, twins = [], [], [], []
    for _ in range(blocks):
        best = [math.inf, math.inf, math.inf]
        for _ in range(rounds):
            for i, fn in enumerate((ours, theirs, twin)):
                best[i] = min(best[i], timeit.timeit(fn, number=CALLS, timer=time.thread_time))
        o_best.append(best[0] / CALLS * 1e9)
        t_best.append(best[1] / CALLS * 1e9)
        ratios.append(best[0] / best[1])
        twins.append(best[2] / best[1])
    return PerCall(statistics.median(o_best), statistics.median(t_best), statistics.median(ratios),
                   min(twins), max(twins))


def _rate(fn: Callable[[], Any], threads: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(THREAD_CALLS):
            fn()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.process_time()  # the process's CPU time: preemption by other processes does not count
    for t in pool:
        t.join(TIMEOUT)
    return threads * THREAD_CALLS / (time.process_time() - start)


def calls_per_second(ours: Callable[[], Any], theirs: Callable[[], Any], threads: int = 8,
                     rounds: int = 3) -> tuple[float, float]:
    """Best total calls/s of ``threads`` threads calling each, in alternation."""
    best_ours = best_theirs = 0.0
    for _ in range(rounds):
        best_ours = max(best_ours, _rate(ours, threads))
        best_theirs = max(best_theirs, _rate(theirs, threads))
    return best_ours, best_theirs


def hot_subjects(rig: benchrig.Rig) -> dict[str, Any]:
    """Our PKCEAuthenticator and bound LoginSession, and two flytekit PKCEAuthenticators (the second
    is the A/A twin), each holding a token valid for an hour (no request is sent by any of them)."""
    from flytekit.clients.auth import authenticator as fk
    from flytekit.clients.auth.keyring import Credentials as FkCredentials

    from flyteauth_jupyter.authenticators import PKCEAuthenticator
    from flyteauth_jupyter.credentials import Credentials
    from flyteauth_jupyter.notebook.session import LoginSession, Prepared
    from flyteauth_jupyter.stores import MemoryStore

    service = rig.admin.service
    store = MemoryStore()
    store.save(service, Credentials("valid-access", "valid-refresh", service, expires_in=3600))
    ours = PKCEAuthenticator(rig.admin.endpoint, rig.our_config(), store=store, insecure=True, open_browser=False)
    session = LoginSession(lambda observer: Prepared(ours, "pkce"), endpoint=service, name="bench")
    session.start(None)
    session.wait(30)

    def flytekit_authenticator() -> Any:
        theirs = fk.PKCEAuthenticator(rig.admin.endpoint, rig.flytekit_config())
        theirs._creds = FkCredentials("valid-access", "valid-refresh", service)
        theirs._set_header_key("flyte-authorization")
        return theirs

    theirs, twin = flytekit_authenticator(), flytekit_authenticator()
    assert ours.fetch_grpc_call_auth_metadata() == theirs.fetch_grpc_call_auth_metadata() == session.fetch_grpc_call_auth_metadata()
    assert session._finished is ours  # the session's calls are its lock-free check + the authenticator's
    return {"ours": ours, "session": session, "theirs": theirs, "twin": twin}


def bench_hot(rig: benchrig.Rig) -> list[Row]:
    s = hot_subjects(rig)
    rows: list[Row] = []
    for method in ("fetch_grpc_call_auth_metadata", "get_credentials"):
        for who, label in (("ours", "Authenticator"), ("session", "LoginSession")):
            m = per_call(getattr(s[who], method), getattr(s["theirs"], method), getattr(s["twin"], method))
            targeted = method == "fetch_grpc_call_auth_metadata" and who == "ours"
            note = " with the expiry check" if who == "ours" else ": a check + the Authenticator's"
            rows.append(row("hot path", f"{label}.{method}() per call (ns){note}", f"{m.ours:.0f}", f"{m.theirs:.0f}",
                            m.measured(), "<= 1.0x" if targeted else "-", m.ratio <= 1.0 if targeted else True,
                            m.ratio))
    for who, label in (("ours", "Authenticator"), ("session", "LoginSession")):
        rate, theirs_rate = calls_per_second(s[who].fetch_grpc_call_auth_metadata, s["theirs"].fetch_grpc_call_auth_metadata)
        r = rate / theirs_rate
        targeted = who == "ours"  # the session's calls are a check + the Authenticator's: reported only
        rows.append(row("hot path", f"{label}: 8 threads, fetch calls per CPU second (M)", f"{rate / 1e6:.2f}",
                        f"{theirs_rate / 1e6:.2f}", f"{r:.2f}x", ">= 1.0x" if targeted else "-",
                        r >= 1.0 if targeted else True, r))
    return rows


# ------------------------------------------------------------------------------------------- idle
def bench_idle(rig: benchrig.Rig, creds: Any) -> list[Row]:
    """A new kernel (an InteractiveShell process) signs in from a fresh cached token, makes SDK calls,
    then sits idle for IDLE_SECONDS: our threads, and the wake-ups of every thread but the sampler's
    (context switches in /proc/self/task/*/status), in that time."""
    import dataclasses

    from flyteauth_jupyter.stores import FileStore

    with tempfile.TemporaryDirectory(prefix="flyteauth-bench-") as home:
        store = FileStore(Path(home) / "flyteauth_jupyter" / "tokens")
        store.save(rig.admin.service, dataclasses.replace(creds, expires_at=time.time() + 3600, expires_in=None))
        env = {**benchrig.quiet_env(), "HOME": home, "XDG_CACHE_HOME": home, "FLYTEAUTH_TOKEN_CACHE": "file",
               "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "FLYTE_PLATFORM_URL": ""}
        out = subprocess.run(
            [sys.executable, "-m", "bench.probe", "idle", rig.admin.endpoint, str(IDLE_SECONDS)], capture_output=True,
            text=True, timeout=TIMEOUT + IDLE_SECONDS, env=env, cwd=benchrig.ROOT, stdin=subprocess.DEVNULL,
        )
    if out.returncode != 0:
        raise RuntimeError(f"probe idle failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
    got = json.loads(out.stdout.strip().splitlines()[-1])
    ours, wakeups = got["threads_ours"], got["wakeups"]
    woke = ", ".join(f"{name} {n}" for name, n in got["woken"].items()) or "none woke"
    value = len(ours) + wakeups
    return [row("idle", f"idle kernel holding a fresh token: threads of ours and wake-ups in {IDLE_SECONDS:g} s",
                f"{len(ours)}/{wakeups}", "-",
                f"{len(ours)} threads, {wakeups} wake-ups ({got['status']}; {got['threads']} threads: {woke})",
                "== 0", got["status"] == "signed_in" and value == 0, value)]


# ------------------------------------------------------------------------------------------ refresh
def bench_refresh(rig: benchrig.Rig, refresh_token: str) -> list[Row]:
    """64 threads meet an expired token: ours through fetch_grpc_call_auth_metadata() (what every SDK
    call does), flytekit through refresh_credentials() (what its interceptor does on UNAUTHENTICATED)."""
    from flytekit.clients.auth import authenticator as fk
    from flytekit.clients.auth.keyring import Credentials as FkCredentials

    from flyteauth_jupyter.authenticators import PKCEAuthenticator
    from flyteauth_jupyter.credentials import Credentials
    from flyteauth_jupyter.stores import MemoryStore

    service = rig.admin.service
    expired = Credentials("expired-access", refresh_token, service, expires_at=time.time() - 60)
    store = MemoryStore()
    store.save(service, expired)
    ours_session = benchrig.CountingSession()
    ours = PKCEAuthenticator(rig.admin.endpoint, rig.our_config(), store=store, session=ours_session,
                             insecure=True, open_browser=False)
    theirs_session = benchrig.CountingSession()
    theirs = fk.PKCEAuthenticator(rig.admin.endpoint, rig.flytekit_config(), session=theirs_session)
    theirs._creds = FkCredentials("expired-access", refresh_token, service)

    def storm(call: Callable[[], Any]) -> int:
        barrier = threading.Barrier(64)
        errors: list[BaseException] = []

        def work() -> None:
            barrier.wait()
            try:
                call()
            except BaseException as exc:  # noqa: BLE001 - counted, reported below
                errors.append(exc)

        pool = [threading.Thread(target=work) for _ in range(64)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(TIMEOUT)
        return len(errors)

    ours_errors = storm(ours.fetch_grpc_call_auth_metadata)
    theirs_errors = storm(theirs.refresh_credentials)
    n_ours, n_theirs = ours_session.count(grant="refresh_token"), theirs_session.count(grant="refresh_token")
    note = "" if not (ours_errors or theirs_errors) else f" ({ours_errors}/{theirs_errors} errors)"
    return [row("refresh", "64 threads, expired token: refresh requests at the IdP", str(n_ours), str(n_theirs),
                f"{n_ours}{note}", "== 1", n_ours == 1 and not ours_errors, n_ours)]


# -------------------------------------------------------------------------------------- device flow
def bench_device(rig: benchrig.Rig) -> tuple[list[Row], Any]:
    from rig.user import DeviceUser

    from flyteauth_jupyter.authenticators import DeviceCodeAuthenticator
    from flyteauth_jupyter.flows.events import DeviceCodeIssued, SlowedDown
    from flyteauth_jupyter.stores import MemoryStore

    issued_evt = threading.Event()
    seen: dict[str, Any] = {"slow_downs": 0}

    def observer(event: Any) -> None:
        if isinstance(event, DeviceCodeIssued):
            seen["issued"], seen["issued_at"] = event, time.perf_counter()
            issued_evt.set()
        elif isinstance(event, SlowedDown):
            seen["slow_downs"] += 1

    session = benchrig.CountingSession()
    auth = DeviceCodeAuthenticator(rig.admin.endpoint, rig.our_config(), session=session, store=MemoryStore(),
                                   observer=observer, timeout=60, insecure=True)
    future = auth.refresh_in_background()
    if not issued_evt.wait(30):
        raise RuntimeError("no device code within 30 s")
    issued = seen["issued"]
    time.sleep(max(0.0, APPROVAL_DELAY - (time.perf_counter() - seen["issued_at"])))  # the person's delay
    DeviceUser().complete(issued.verification_uri, issued.user_code,
                          verification_uri_complete=issued.verification_uri_complete)
    approved = time.perf_counter()
    creds = future.result(TIMEOUT)
    done = time.perf_counter()
    polls = session.count(grant=DEVICE_GRANT)
    interval = float(issued.interval)
    delay = approved - seen["issued_at"]
    bound = math.ceil(delay / interval) + 1
    latency = done - approved
    rows = [
        row("device flow", f"token requests, approval after {delay:.1f} s (interval {interval:g} s, "
            f"{seen['slow_downs']} slow_down)", str(polls), "-", str(polls), f"<= {bound}", polls <= bound, polls),
        row("device flow", "approval to credentials (ms)", f"{latency * 1e3:.0f}", "-", f"{latency * 1e3:.0f} ms",
            f"<= {(interval + 0.1) * 1e3:.0f} ms", latency <= interval + 0.1, latency),
    ]
    return rows, creds


# --------------------------------------------------------------------------------------------- PKCE
def bench_pkce(rig: benchrig.Rig) -> tuple[list[Row], Any]:
    """Five browser sign-ins; for each, the time from our loopback receiver getting the redirect to
    refresh_credentials() returning, against the code exchange's own round trip (its token POST)."""
    from rig.netparts import free_port
    from rig.user import AuthCodeUser

    from flyteauth_jupyter.authenticators import PKCEAuthenticator
    from flyteauth_jupyter.stores import MemoryStore
    from flyteauth_jupyter.transport import loopback

    received: list[float] = []
    handle = loopback.LoopbackReceiver._handle

    def timed_handle(self: Any, raw_path: str) -> Any:  # the moment the receiver has the redirect
        received.append(time.perf_counter())
        return handle(self, raw_path)

    ratios, creds = [], None
    loopback.LoopbackReceiver._handle = timed_handle  # type: ignore[method-assign]
    try:
        for _ in range(5):
            session, user = benchrig.CountingSession(), AuthCodeUser()
            received.clear()

            def open_browser(url: str, user: Any = user) -> bool:
                threading.Thread(target=user.follow, args=(url,), daemon=True).start()
                return True

            auth = PKCEAuthenticator(rig.admin.endpoint, rig.our_config(f"http://127.0.0.1:{free_port()}/callback"),
                                     session=session, store=MemoryStore(), open_browser=open_browser, timeout=60,
                                     insecure=True)
            creds = auth.refresh_credentials()
            done = time.perf_counter()
            (start, end), = session.posts("authorization_code")
            total = done - received[0]
            ratios.append((total / (end - start), total, end - start))
    finally:
        loopback.LoopbackReceiver._handle = handle  # type: ignore[method-assign]
    ratio, total, exchange = sorted(ratios)[len(ratios) // 2]  # the median of five
    return [row("pkce", "redirect received to credentials / IdP's code exchange (ms)", f"{total * 1e3:.1f}",
                "-", f"{ratio:.2f}x ({exchange * 1e3:.1f} ms exchange)", "<= 2x", ratio <= 2.0, ratio)], creds


# --------------------------------------------------------------------------------------- warm start
def bench_warm(rig: benchrig.Rig, creds: Any) -> list[Row]:
    import dataclasses

    from flyteauth_jupyter.stores import FileStore

    rows = []
    for label, expires_at, target in (("valid", time.time() + 3600, 0), ("expired", time.time() - 60, 1)):
        with tempfile.TemporaryDirectory(prefix="flyteauth-bench-") as home:
            store = FileStore(Path(home) / "flyteauth_jupyter" / "tokens")
            store.save(rig.admin.service, dataclasses.replace(creds, expires_at=expires_at, expires_in=None))
            env = {**benchrig.quiet_env(), "HOME": home, "XDG_CACHE_HOME": home, "FLYTEAUTH_TOKEN_CACHE": "file",
                   "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "FLYTE_PLATFORM_URL": ""}
            out = probe("warm", rig.admin.endpoint, str(rig.idp.port), env=env)
        ok = out["status"] == "signed_in" and out["idp_requests"] == target
        rows.append(row("warm start", f"new kernel, {label} cached token: requests at the IdP", str(out["idp_requests"]),
                        "-", f"{out['idp_requests']} ({out['status']}; {out['other_requests']} FlyteAdmin config reads)",
                        f"== {target}", ok, out["idp_requests"]))
    return rows


# ------------------------------------------------------------------------------------------- memory
def bench_memory(rig: benchrig.Rig) -> list[Row]:
    from rig.idp import CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET

    env = {**benchrig.quiet_env(), "BENCH_SECRET": CONFIDENTIAL_SECRET, "FLYTE_PLATFORM_URL": "",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "FLYTEAUTH_TOKEN_CACHE": "memory"}
    with tempfile.TemporaryDirectory(prefix="flyteauth-bench-") as home:
        env.update(HOME=home, XDG_CACHE_HOME=home)
        out = probe("memory", rig.admin.endpoint, CONFIDENTIAL_CLIENT, "BENCH_SECRET", str(CYCLES), env=env)
    bg, growth, threads = out["background_login_mib"], out["growth_mib"], out["extra_threads"]
    return [
        row("memory", f"background device login in progress ({out['background_status']}): RSS added (MB)",
            f"{bg:.2f}", "-", f"{bg:.2f} MB", "<= 5 MB", bg <= 5.0 and out["background_status"] in ("waiting", "slowed_down"), bg),
        row("memory", f"{out['cycles']} login/logout cycles: threads left", str(threads), "-",
            f"{threads} ({', '.join(out['flyteauth_threads']) or 'none'} named flyteauth)", "== 0",
            threads <= 0 and not out["flyteauth_threads"], threads),
        row("memory", f"{out['cycles']} login/logout cycles: RSS growth (MB)", f"{growth:.2f}", "-", f"{growth:.2f} MB",
            "<= 1 MB", growth <= 1.0, growth),
    ]


# --------------------------------------------------------------------------------------------- main
def run_section(rows: list[Row], section: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
        rows.append(row(section, "section failed", "-", "-", f"{type(exc).__name__}: {exc}"[:90], "runs", False))
        return None
    extra = None
    if isinstance(result, tuple):
        result, extra = result
    rows.extend(result)
    print(f"  {section}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return extra if extra is not None else True


def table(rows: list[Row]) -> str:
    headers = ("section", "metric", "ours", "flytekit", "measured", "target", "")
    cells = [headers, *[(r.section, r.metric, r.ours, r.flytekit, r.measured, r.target, r.verdict) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    fmt = lambda c: "| " + " | ".join(v.ljust(w) for v, w in zip(c, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(headers), sep, *(fmt(c) for c in cells[1:])])


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    for dist in ("flyteauth-jupyter", "flytekit"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "?"
    return out


def main() -> int:
    started = time.perf_counter()
    benchrig.use_memory_keyring()
    rows: list[Row] = []
    print("flyteauth_jupyter benchmarks (issues 12, 19.1); sections:", file=sys.stderr, flush=True)
    run_section(rows, "load", bench_load)
    rig = benchrig.Rig()
    try:
        run_section(rows, "hot path", lambda: bench_hot(rig))
        creds = run_section(rows, "pkce", lambda: bench_pkce(rig))
        device_creds = run_section(rows, "device flow", lambda: bench_device(rig))
        creds = device_creds if device_creds not in (None, True) else creds
        if creds in (None, True):
            rows.append(row("refresh", "needs a login's refresh token", "-", "-", "no login succeeded", "runs", False))
        else:
            run_section(rows, "idle", lambda: bench_idle(rig, creds))
            run_section(rows, "refresh", lambda: bench_refresh(rig, creds.refresh_token))
            run_section(rows, "warm start", lambda: bench_warm(rig, creds))
        run_section(rows, "memory", lambda: bench_memory(rig))
    finally:
        rig.close()
    elapsed = time.perf_counter() - started
    info = versions()
    print(f"flyteauth_jupyter {info['flyteauth-jupyter']} vs flytekit {info['flytekit']} "
          f"(Python {info['python']}, {info['machine']})")
    print(table(rows))
    passed = sum(r.ok for r in rows)
    print(f"{passed}/{len(rows)} PASS in {elapsed:.0f} s")
    RESULTS.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": round(elapsed, 1), **info,
        "rows": [{**asdict(r), "verdict": r.verdict} for r in rows],
    }, indent=2) + "\n", encoding="utf-8")
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
