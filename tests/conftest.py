"""Shared fixtures: the test rig (docs/test-rig.md). Everything runs on 127.0.0.1.

Import the rig as ``rig`` (``from rig.user import LoginPageError``): pytest puts tests/ on sys.path
for this conftest, and importing it also as ``tests.rig`` would create second copies of its classes.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import signal
import sys
import time
import webbrowser
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pytest

# Never touch the developer's real keyring: unless a test installs its own backend (keyring.set_keyring
# in a fixture; the notebook kernels get a file keyring), the test process has none, as on CI.
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")

from rig.connect_admin import ConnectAdmin
from rig.flyteadmin import FlyteAdminStandIn
from rig.grpc_admin import GrpcAdminStandIn, start_grpc_admin, stop_grpc_admin
from rig.idp import IdP, ensure_node_modules
from rig.idp2 import DjangoIdP
from rig.reliability import record as _reliability_record
from rig.reliability import record_rule as _reliability_rule
from rig.user import AuthCodeUser, DeviceUser

BROWSER_USER = Path(__file__).resolve().parent / "rig" / "browser_user.py"

T = TypeVar("T")


def _stopped_after(make: Callable[..., T], stop: Callable[[T], None]) -> Iterator[Callable[..., T]]:
    """The body of a ``make_*`` factory fixture: yields ``make``, then ``stop``s what each call made."""
    made: list[T] = []

    def factory(*args: Any, **kwargs: Any) -> T:
        thing = make(*args, **kwargs)
        made.append(thing)
        return thing

    yield factory
    for thing in made:
        stop(thing)


@pytest.fixture(autouse=True)
def _private_token_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's token file cache and lock files in a directory of its own. Without a keyring (as in
    this process) the default token store is the private file cache (DESIGN.md pinned 19): no test may
    find another's sign-in there, and none may write to the developer's ~/.cache. A test that sets
    XDG_CACHE_HOME itself overrides this; child processes inherit it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


# ------------------------------------------------------------------------------------- IdP
@pytest.fixture(scope="session")
def idp() -> Iterator[IdP]:
    """The session's provider: device interval 1 s, slow_down on, refresh rotation always."""
    ensure_node_modules()
    with IdP(device_interval=1, slow_down=True, rt_rotation="always") as provider:
        yield provider


@pytest.fixture
def make_idp() -> Iterator[Callable[..., IdP]]:
    """``make_idp(**settings)``: a fresh provider with other settings, stopped after the test."""

    def make(**settings: Any) -> IdP:
        settings.setdefault("device_interval", 1)
        return IdP(**settings).start()  # a start that fails stops the provider itself

    yield from _stopped_after(make, IdP.stop)


# ------------------------------------------------------------------- the second IdP (Django)
@pytest.fixture(scope="session")
def idp2() -> Iterator[DjangoIdP]:
    """The session's django-oauth-toolkit (tests/idp2): device interval 1 s, rotation with reuse detection."""
    with DjangoIdP(device_interval=1) as provider:
        yield provider


@pytest.fixture
def make_idp2() -> Iterator[Callable[..., DjangoIdP]]:
    """``make_idp2(**settings)``: a fresh django-oauth-toolkit with other settings, stopped after the test."""

    def make(**settings: Any) -> DjangoIdP:
        settings.setdefault("device_interval", 1)
        return DjangoIdP(**settings).start()

    yield from _stopped_after(make, DjangoIdP.stop)


@pytest.fixture(scope="session")
def idp2_flyteadmin(idp2: DjangoIdP) -> Iterator[FlyteAdminStandIn]:
    with FlyteAdminStandIn(idp2) as admin:
        yield admin


# ------------------------------------------------------- every flow against both servers (18.1)
NODE, DJANGO = "node-oidc-provider", "django-oauth-toolkit"
OAUTH_SERVERS = (NODE, DJANGO)
_SERVER_FIXTURES = {NODE: ("idp", "flyteadmin", "make_idp"), DJANGO: ("idp2", "idp2_flyteadmin", "make_idp2")}


@pytest.fixture(scope="session", params=OAUTH_SERVERS)
def oauth_server(request: pytest.FixtureRequest) -> IdP | DjangoIdP:
    """Each test IdP in turn (the session's ``idp``, then ``idp2``): a test that takes this fixture,
    or ``oauth_admin`` / ``make_oauth_server``, runs against both. The two share a surface (endpoints,
    ``metadata``, ``grants()``, ``introspect()``, ``subject()``, ``device_id_token``) and the
    users and clients; a test that needs a node-only knob takes ``idp`` / ``make_idp`` instead."""
    server: IdP | DjangoIdP = request.getfixturevalue(_SERVER_FIXTURES[request.param][0])
    return server


@pytest.fixture(scope="session")
def oauth_admin(oauth_server: IdP | DjangoIdP, request: pytest.FixtureRequest) -> FlyteAdminStandIn:
    """The session's FlyteAdmin stand-in for ``oauth_server``."""
    admin: FlyteAdminStandIn = request.getfixturevalue(_SERVER_FIXTURES[oauth_server.name][1])
    return admin


@pytest.fixture
def make_oauth_server(oauth_server: IdP | DjangoIdP, request: pytest.FixtureRequest) -> Callable[..., IdP | DjangoIdP]:
    """``make_oauth_server(**settings)``: a fresh server of ``oauth_server``'s kind (tests/idp's
    settings names; rig.idp2 takes the ones the servers share and raises TypeError on others)."""
    make: Callable[..., IdP | DjangoIdP] = request.getfixturevalue(_SERVER_FIXTURES[oauth_server.name][2])
    return make


# ----------------------------------------------------------------------------- FlyteAdmin
@pytest.fixture(scope="session")
def flyteadmin(idp: IdP) -> Iterator[FlyteAdminStandIn]:
    with FlyteAdminStandIn(idp) as admin:
        yield admin


@pytest.fixture
def make_flyteadmin() -> Iterator[Callable[..., FlyteAdminStandIn]]:
    """``make_flyteadmin(idp, camel_case=False, client_id=..., ...)``: stopped after the test."""

    def make(idp: IdP | DjangoIdP, *args: Any, **kwargs: Any) -> FlyteAdminStandIn:
        return FlyteAdminStandIn(idp, *args, **kwargs).start()

    yield from _stopped_after(make, FlyteAdminStandIn.stop)


# ------------------------------------------------------------------ Flyte 2 (ConnectRPC)
@pytest.fixture(scope="session")
def connect_admin(idp: IdP, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectAdmin]:
    """The Flyte 2 platform stand-in (ConnectRPC over TLS) for ``idp``; ``.ca_cert`` is its CA."""
    with ConnectAdmin(idp, tmp_path_factory.mktemp("connect-admin-tls")) as admin:
        yield admin


@pytest.fixture
def make_connect_admin(tmp_path: Path) -> Iterator[Callable[..., ConnectAdmin]]:
    """``make_connect_admin(idp, **kwargs)``: a Flyte 2 stand-in for another provider, stopped after the test."""
    tls_dirs = (tmp_path / f"connect-tls-{n}" for n in itertools.count())

    def make(idp: IdP, **kwargs: Any) -> ConnectAdmin:
        return ConnectAdmin(idp, next(tls_dirs), **kwargs).start()

    yield from _stopped_after(make, ConnectAdmin.stop)


# ------------------------------------------------------------------------ FlyteAdmin (gRPC)
@pytest.fixture(scope="session")
def grpc_admin(idp: IdP) -> Iterator[GrpcAdminStandIn]:
    """FlyteAdmin's gRPC services and HTTP documents on one port for ``idp`` (tests/rig/grpc_admin.py)."""
    admin, _ = start_grpc_admin(idp)
    yield admin
    stop_grpc_admin(admin)


@pytest.fixture
def make_grpc_admin() -> Iterator[Callable[..., GrpcAdminStandIn]]:
    """``make_grpc_admin(idp, **make_flyteadmin_kwargs)``: stopped after the test."""

    def make(idp: IdP, **kwargs: Any) -> GrpcAdminStandIn:
        admin, _ = start_grpc_admin(idp, **kwargs)
        return admin

    yield from _stopped_after(make, stop_grpc_admin)


# ------------------------------------------------------------------------------ the browser
@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """The session's one Playwright (sync API: one per process), for tests/browser and tests/hub."""
    from rig.chromium import require_chromium

    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


# ---------------------------------------------------------------------------------- users
@pytest.fixture
def device_user() -> DeviceUser:
    return DeviceUser()


@pytest.fixture
def auth_code_user() -> AuthCodeUser:
    return AuthCodeUser()


class PKCEBrowser:
    """One configured BROWSER launch: ``.wait(timeout)`` returns the detached run's outcome dict."""

    def __init__(self, result_path: Path, command: str, env: dict[str, str]) -> None:
        self.result_path = result_path
        self.command = command
        self.env = env

    @property
    def launched(self) -> bool:
        return Path(f"{self.result_path}.pid").exists()

    def wait(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.result_path.exists():
                return json.loads(self.result_path.read_text())
            time.sleep(0.02)
        log = Path(f"{self.result_path}.log")
        tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
        state = "launched" if self.launched else "never launched (webbrowser.open not called?)"
        raise TimeoutError(f"browser_user gave no outcome within {timeout} s ({state}). {tail}")

    def stop(self) -> None:
        pid_file = Path(f"{self.result_path}.pid")
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text())
            os.killpg(pid, signal.SIGTERM)  # the detached child leads its own session/process group
        except (ValueError, ProcessLookupError, PermissionError):
            pass


@pytest.fixture
def pkce_browser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., PKCEBrowser]]:
    """``pkce_browser(action="approve", username="alice", password="wonderland")``.

    Sets BROWSER to the rig's browser command with those settings and resets webbrowser's cached
    choice, so ``webbrowser.open(url)`` completes the login for real in a detached process.
    """
    launches = itertools.count()

    def launch(action: str = "approve", username: str = "alice", password: str = "wonderland",
               timeout: float = 60) -> PKCEBrowser:
        if action not in ("approve", "deny", "abort"):
            raise ValueError(f"action must be approve, deny or abort, not {action!r}")
        result = tmp_path / f"browser-{next(launches)}.json"
        command = f"{shlex.quote(sys.executable)} {shlex.quote(str(BROWSER_USER))} %s"
        env = {
            "BROWSER": command,
            "FLYTEAUTH_RIG_ACTION": action,
            "FLYTEAUTH_RIG_USER": username,
            "FLYTEAUTH_RIG_PASSWORD": password,
            "FLYTEAUTH_RIG_RESULT": str(result),
            "FLYTEAUTH_RIG_TIMEOUT": str(timeout),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        # forget webbrowser's cached choice (restored by monkeypatch afterwards)
        monkeypatch.setattr(webbrowser, "_tryorder", None)
        monkeypatch.setattr(webbrowser, "_browsers", {})
        if hasattr(webbrowser, "_os_preferred_browser"):
            monkeypatch.setattr(webbrowser, "_os_preferred_browser", None)
        return PKCEBrowser(result, command, env)

    yield from _stopped_after(launch, PKCEBrowser.stop)


# ------------------------------------------------------------------- reliability figures
@pytest.fixture
def reliability_record() -> Callable[..., None]:
    """``reliability_record(table, row, *, key=None, title=None, note=None, order=50, matrix=None)``:
    record one row of a README reliability table (tests/rig/reliability.py, docs/test-rig.md)."""
    return _reliability_record


@pytest.fixture
def reliability_rule() -> Callable[..., None]:
    """``reliability_rule(rule, case, outcome, *, test=None)``: one checked case under a rule in the
    README's "Rules the suite checks" (one section per rule sentence; docs/test-rig.md)."""
    return _reliability_rule


# ------------------------------------------------------- DEBUG logs of the whole run (issue 10)
# tests/rig/secret_log.py: the package's and urllib3's DEBUG records of the whole session are kept
# and, when it ends, searched for every secret issued during it; one found fails the run.
_LOG_SCAN: Any = None


def pytest_configure(config: pytest.Config) -> None:
    global _LOG_SCAN
    if _LOG_SCAN is None and not hasattr(config, "workerinput"):
        from rig.secret_log import SessionLogScan

        _LOG_SCAN = SessionLogScan()
        _LOG_SCAN.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _LOG_SCAN
    scan, _LOG_SCAN = _LOG_SCAN, None
    if scan is None or session.testscollected == 0:
        return
    leaks, figures = scan.finish()
    whole = {Path(a).resolve() for a in session.config.args} <= {Path(__file__).resolve().parent,
                                                                   Path(__file__).resolve().parents[1]}
    if whole:  # a full run's figures (a run of one file would not say much)
        _reliability_record("debug-log-scan", {
            "run": "the whole suite at DEBUG (flyteauth_jupyter, urllib3)",
            "tests": session.testscollected,
            "records scanned": figures["records_scanned"],
            "issued secrets looked for": figures["secrets_known"],
            "secrets found": figures["secrets_found"],
        }, key="run", title="Secrets in DEBUG logs", order=30,
            note="Every secret the test IdPs issued (and every token a Credentials held) searched for in every "
                 "log record of the run.")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and (leaks or session.config.option.verbose >= 0):
        reporter.write_line(f"DEBUG log scan: {figures['records_scanned']} records, "
                            f"{figures['secrets_known']} issued secrets looked for, {figures['secrets_found']} found")
    if leaks:
        if reporter is not None:
            reporter.write_sep("=", f"{figures['secrets_found']} secret(s) in DEBUG log records", red=True)
            for leak in leaks[:50]:
                reporter.write_line(str(leak))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
