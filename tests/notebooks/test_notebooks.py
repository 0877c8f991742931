"""Every notebook in notebooks/ runs under nbval against the rig, and its executed copy holds no secret.

How it works
------------
* The session's IdP, a FlyteAdmin stand-in (HTTP documents and API plus gRPC on one port,
  tests/rig/grpc_admin.py) and a Flyte 2 stand-in (tests/conftest.py; its endpoint and CA in
  ``FLYTE2_ENDPOINT`` / ``FLYTE2_CA_CERT``) serve the logins and the SDK calls. A
  :class:`~rig.user.DeviceApprover` approves every user code the IdP issues while the notebooks run (a
  person reading the code off the widget); ``BROWSER`` is the rig's browser user, so a PKCE login that
  calls ``webbrowser.open`` is completed for real. Nothing scrapes the kernel's output.
* Each run gets its own environment (:func:`kernel_env`): an empty ``HOME`` and XDG/IPython/Jupyter
  dirs, no ``FLYTE_*`` settings from the machine except ``FLYTE_PLATFORM_URL`` (the stand-in, as a
  user's would be), the automation notebook's client secret in ``FLYTE_CLIENT_SECRET``, and a keyring
  that is a JSON file in the run's directory (tests/rig/file_keyring.py), never the machine's keyring.
* ``pytest --nbval-lax --nbval-current-env`` runs over every notebook in a subprocess (bounded per cell
  and overall); its JUnit report proves that each notebook ran, cell by cell, with nothing skipped.
  Notebooks check their outcomes with plain ``assert``.
* The notebooks are then executed once more with nbclient (tests/notebooks/execute.py) into a temp dir,
  with widget state saved, in a second fresh environment; ``python -m flyteauth_jupyter.scan`` must
  find nothing in those copies, given the real tokens the kernels stored (read from the file keyring's
  history), the client secret and the demo command's token as exact values (through the environment,
  never the command line).
* Finally a real executed notebook gets a real token planted in an output, the widget state and an
  attachment, and the scanner must report all three (by pattern and by exact value).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from rig.connect_admin import ConnectAdmin
from rig.file_keyring import read_history
from rig.grpc_admin import GrpcAdminStandIn, start_grpc_admin, stop_grpc_admin
from rig.idp import CONFIDENTIAL_SECRET, IdP
from rig.isolation import isolated_env
from rig.user import DeviceApprover

CELL_TIMEOUT = 120  # seconds per cell
RUN_TIMEOUT = 600  # seconds for one pass over all notebooks
pytestmark = [pytest.mark.notebook, pytest.mark.idp, pytest.mark.timeout(2 * RUN_TIMEOUT + 120)]

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
BROWSER_USER = TESTS / "rig" / "browser_user.py"
EXECUTE = Path(__file__).resolve().parent / "execute.py"

#: the variable notebooks/03_automation.ipynb reads the confidential client's secret from
CLIENT_SECRET_ENV = "FLYTE_CLIENT_SECRET"
#: the token the automation notebook's demo command prints (a placeholder FlyteAdmin does not accept)
DEMO_COMMAND_TOKEN = "static-demo-token"
TOKEN_USERNAMES = ("access_token", "refresh_token", "id_token")

@dataclass
class Run:
    """One pass over the notebooks: its directory, the kernels' environment and the keyring file."""

    dir: Path
    env: dict[str, str]
    keyring: Path
    browser_result: Path

    def stored_tokens(self) -> list[str]:
        """Every token value a kernel of this run wrote to the keyring (both SDK layouts)."""
        values: list[str] = []
        for entry in read_history(self.keyring):
            if entry["username"] in TOKEN_USERNAMES:
                values.append(entry["password"])
            elif entry["username"] == "tokens":  # the Flyte 2 SDK's JSON entry
                data = json.loads(entry["password"])
                values += [data[k] for k in ("access_token", "refresh_token") if isinstance(data.get(k), str)]
        return sorted({v for v in values if v})


def kernel_env(run_dir: Path, endpoint: str, connect_admin: ConnectAdmin) -> Run:
    """The environment a notebook run gets: isolated dirs, the endpoints, BROWSER, the secret, a file keyring."""
    env, keyring_file = isolated_env(run_dir, endpoint, record_tokens=True)
    browser_result = run_dir / "browser-user.json"
    env.update({
        # the Flyte 2 platform stand-in (ConnectRPC over TLS) that notebooks/04's flyte cells call
        "FLYTE2_ENDPOINT": connect_admin.endpoint,
        "FLYTE2_CA_CERT": connect_admin.ca_cert,
        # the automation notebook's client secret (docs/test-rig.md)
        CLIENT_SECRET_ENV: CONFIDENTIAL_SECRET,
        # the person at the browser for PKCE (as tests/conftest.py's pkce_browser)
        "BROWSER": f"{shlex.quote(sys.executable)} {shlex.quote(str(BROWSER_USER))} %s",
        "FLYTEAUTH_RIG_ACTION": "approve",
        "FLYTEAUTH_RIG_USER": "alice",
        "FLYTEAUTH_RIG_PASSWORD": "wonderland",
        "FLYTEAUTH_RIG_RESULT": str(browser_result),
        "FLYTEAUTH_RIG_TIMEOUT": "60",
    })
    return Run(run_dir, env, keyring_file, browser_result)


def _tail(text: str, chars: int = 4000) -> str:
    return text if len(text) <= chars else "…" + text[-chars:]


def run_bounded(command: list[str], run: Run) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``command`` in its own process group with the run's environment, for at most RUN_TIMEOUT s;
    on timeout end the whole group (kernels also exit by themselves once their parent is gone).
    Returns (result, seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=run.dir, env=run.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        out, err = "", ""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                out, err = proc.communicate(timeout=10)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        raise AssertionError(f"{' '.join(command[1:3])} did not finish within {RUN_TIMEOUT} s and was stopped.\n"
                             f"{_tail(out or '')}\n{_tail(err or '', 2000)}") from None
    finally:
        _browser_launches_stop(run)
    return subprocess.CompletedProcess(command, proc.returncode, out, err), time.monotonic() - started


def check_real_logins(run: Run, approver: DeviceApprover, approved_before: int) -> None:
    """The pass signed in for real: the approver approved device codes (01's login in a fresh keyring),
    and the browser user completed the PKCE sign-in (02) up to the kernel's loopback redirect."""
    approvals = approver.results[approved_before:]
    assert approvals and all(r["status"] == "approved" for r in approvals), approvals
    outcome = json.loads(run.browser_result.read_text())
    assert outcome["status"] == "ok" and outcome["redirect_status"] == 200, outcome


def _browser_launches_stop(run: Run) -> None:
    """End a detached browser user that is still running (its pid file), as pkce_browser does."""
    pid_file = Path(f"{run.browser_result}.pid")
    if pid_file.exists():
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except (ValueError, ProcessLookupError, PermissionError):
            pass


@pytest.fixture(scope="module")
def deployment(idp: IdP) -> Iterator[GrpcAdminStandIn]:
    """FlyteAdmin as the notebooks see it: its HTTP documents and API and its gRPC services (FlyteRemote)
    on one port, as a real deployment serves them (tests/rig/grpc_admin.py)."""
    admin, _ = start_grpc_admin(idp, count_idp=False)
    yield admin
    stop_grpc_admin(admin)


@pytest.fixture(scope="module")
def approver(idp: IdP) -> Iterator[DeviceApprover]:
    """A person who approves, as alice, every device code the IdP issues while the notebooks run."""
    with DeviceApprover(idp.issuer) as person:
        yield person


def test_notebooks_exist() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert len(NOTEBOOKS) >= 5, names
    for nb_path in NOTEBOOKS:
        nb = nbformat.read(nb_path, as_version=4)
        nbformat.validate(nb)
        # committed clean: no outputs, no execution counts, no widget state
        assert "widgets" not in nb.metadata, nb_path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{nb_path.name}: {cell.source[:60]!r}"
    readme = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert name in readme, f"notebooks/README.md does not describe {name}"


def test_every_notebook_passes_nbval(deployment: GrpcAdminStandIn, connect_admin: ConnectAdmin,
                                     approver: DeviceApprover, tmp_path_factory: pytest.TempPathFactory) -> None:
    run = kernel_env(tmp_path_factory.mktemp("nbval"), deployment.url, connect_admin)
    report = run.dir / "junit.xml"
    approved_before = len(approver.results)
    command = [
        sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
        f"--nbval-cell-timeout={CELL_TIMEOUT}", "-p", "no:cacheprovider", "-o", "addopts=",
        "-o", f"timeout={CELL_TIMEOUT + 30}", "--rootdir", str(REPO), f"--junitxml={report}", "-q", "-rA",
        *[str(p) for p in NOTEBOOKS],
    ]
    proc, elapsed = run_bounded(command, run)
    assert proc.returncode == 0, (
        f"nbval failed (exit {proc.returncode}) after {elapsed:.0f} s:\n{_tail(proc.stdout)}\n{_tail(proc.stderr, 2000)}"
    )

    # every notebook ran, every one of its code cells passed, nothing was skipped
    suite = ET.parse(report).getroot()
    cases = list(suite.iter("testcase"))
    per_notebook: dict[str, int] = {}
    for case in cases:
        assert case.find("skipped") is None, f"skipped: {case.get('classname')} {case.get('name')}"
        assert case.find("failure") is None and case.find("error") is None, case.get("name")
        per_notebook[_notebook_of(case)] = per_notebook.get(_notebook_of(case), 0) + 1
    assert sorted(per_notebook) == [p.name for p in NOTEBOOKS], per_notebook
    for nb_path in NOTEBOOKS:
        code_cells = sum(1 for c in nbformat.read(nb_path, as_version=4).cells if c.cell_type == "code")
        assert per_notebook[nb_path.name] == code_cells, (nb_path.name, per_notebook[nb_path.name], code_cells)
    assert re.search(rf"\b{len(cases)} passed\b", proc.stdout), _tail(proc.stdout, 800)
    assert " skipped" not in proc.stdout.splitlines()[-1]

    check_real_logins(run, approver, approved_before)


def _notebook_of(case: ET.Element) -> str:
    """The notebook a JUnit test case came from (nbval's class name is ``notebooks.<name>.ipynb``)."""
    for text in (case.get("file") or "", case.get("classname") or ""):
        if ".ipynb" in text:
            stem = text[: text.index(".ipynb")].replace("\\", "/").rsplit("/", 1)[-1]
            stem = stem[len("notebooks."):] if stem.startswith("notebooks.") else stem
            return stem + ".ipynb"
    raise AssertionError(f"cannot tell the notebook of {case.attrib}")


# ---------------------------------------------------------------------------------------- scanning
@dataclass
class Executed:
    run: Run
    paths: list[Path]
    elapsed: float


@pytest.fixture(scope="module")
def executed(deployment: GrpcAdminStandIn, connect_admin: ConnectAdmin, approver: DeviceApprover,
             tmp_path_factory: pytest.TempPathFactory) -> Executed:
    """Every notebook executed once more with nbclient (widget state kept) in a fresh environment."""
    run = kernel_env(tmp_path_factory.mktemp("executed"), deployment.url, connect_admin)
    out = run.dir / "notebooks"
    approved_before = len(approver.results)
    proc, elapsed = run_bounded(
        [sys.executable, str(EXECUTE), str(out), f"--cell-timeout={CELL_TIMEOUT}", *map(str, NOTEBOOKS)], run)
    assert proc.returncode == 0, _tail(proc.stderr)
    paths = sorted(out.glob("*.ipynb"))
    assert [p.name for p in paths] == [p.name for p in NOTEBOOKS]
    check_real_logins(run, approver, approved_before)
    return Executed(run, paths, elapsed)


def scan(paths: list[Path], secrets: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    """``python -m flyteauth_jupyter.scan -v`` with each secret passed through the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTEAUTH_SCAN_")}
    args: list[str] = []
    for var, value in secrets.items():
        env[var] = value
        args += ["--values-from-env", var]
    return subprocess.run(
        [sys.executable, "-m", "flyteauth_jupyter.scan", "-v", *args, *extra, *map(str, paths)],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def known_secrets(executed: Executed) -> dict[str, str]:
    tokens = executed.run.stored_tokens()
    secrets = {f"FLYTEAUTH_SCAN_TOKEN_{i}": token for i, token in enumerate(tokens)}
    secrets["FLYTEAUTH_SCAN_CLIENT_SECRET"] = CONFIDENTIAL_SECRET
    # not DEMO_COMMAND_TOKEN: notebook 03's source prints that placeholder on purpose (the scanner reads
    # cell sources too); test_executed_notebooks_hold_no_secret looks for it in the outputs instead
    return secrets


# ------------------------------------------------------------------------------ warning lines
#: Warning or error lines a cell shows on purpose, allow-listed per cell:
#: (notebook, a fragment of the cell's source) -> (regular expression of the line, the reason).
#: Every other warning or error line in an example's outputs is one a newcomer takes for a failure.
EXPECTED_ALARMS: dict[tuple[str, str], tuple[str, str]] = {}

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: lines that read as a warning or an error wherever they appear (stdout, displays): logging and rich
#: records, grpc core's log lines, Python warnings and tracebacks, gRPC connection trouble
ALARM = re.compile(
    r"^\s*(\[?\d{1,2}:\d\d:\d\d(\.\d+)?\]?\s+)?(WARNING|WARN|ERROR|CRITICAL)\b"
    r"|^[EWF]\d{4} \d\d:\d\d:\d\d"
    r"|\b\w*(Warning|Error)\b: "
    r"|^Traceback \(most recent call last\)"
    r"|GOAWAY|too_many_pings"
)


def alarming_lines(name: str, nb: nbformat.NotebookNode,
                   allowed: dict[tuple[str, str], tuple[str, str]] = EXPECTED_ALARMS) -> list[str]:
    """``cells[i]: <line>`` for every warning or error line in the outputs of notebook ``name``: every
    line on stderr, every error output, and lines of stdout and displays that read as one (ALARM); the
    lines ``allowed`` for that cell excepted."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        expected = [re.compile(rx) for (nb_name, fragment), (rx, _why) in allowed.items()
                    if nb_name == name and fragment in cell.source]
        for output in cell.outputs:
            if output.output_type == "error":
                lines = [f"{output.ename}: {output.evalue}"]
            elif output.output_type == "stream":
                text = ANSI.sub("", output.text)
                lines = [ln for ln in text.splitlines() if ln.strip() and (output.name == "stderr" or ALARM.search(ln))]
            else:
                text = ANSI.sub("", str(output.get("data", {}).get("text/plain", "")))
                lines = [ln for ln in text.splitlines() if ALARM.search(ln)]
            found += [f"cells[{index}]: {ln.strip()}" for ln in lines if not any(rx.search(ln) for rx in expected)]
    return found


def test_the_alarm_check_sees_what_a_newcomer_sees() -> None:
    """The check below can fail: each kind of line is caught, and only the allow-listed one passes."""
    new_output = nbformat.v4.new_output
    cell = nbformat.v4.new_code_cell("remote = FlyteRemote(config)")
    cell.outputs = [
        new_output("stream", name="stdout", text="projects: ['flytesnacks']\n"),
        new_output("display_data", data={"text/plain": "\x1b[2;36m12:07:44.851566\x1b[0m \x1b[33mWARNING \x1b[0m "
                                                       "remote.py:321 - Jupyter notebook and interactive task"}),
        new_output("stream", name="stderr", text="E1206 12:09:03.310245 19507 chttp2_transport.cc:1435] Received a "
                                                 "GOAWAY with error code ENHANCE_YOUR_CALM\n"),
        new_output("stream", name="stdout", text="/x.py:3: DeprecationWarning: old\n"),
        new_output("error", ename="ValueError", evalue="bad", traceback=[]),
    ]
    quiet = nbformat.v4.new_code_cell("print('ok')")
    quiet.outputs = [new_output("stream", name="stdout", text="Signed in as alice; no error\n")]
    nb = nbformat.v4.new_notebook(cells=[quiet, cell])
    found = alarming_lines("x.ipynb", nb)
    assert [f.split(":", 1)[0] for f in found] == ["cells[1]"] * 4, found
    assert any("WARNING" in f for f in found) and any("GOAWAY" in f for f in found)
    assert any("DeprecationWarning" in f for f in found) and "cells[1]: ValueError: bad" in found
    allowed = {("x.ipynb", "FlyteRemote(config)"): (r"ValueError: bad", "the cell shows a failure on purpose")}
    assert "cells[1]: ValueError: bad" not in alarming_lines("x.ipynb", nb, allowed)
    assert len(alarming_lines("x.ipynb", nb, allowed)) == 3


def test_executed_notebooks_show_no_warning_or_error_line(executed: Executed) -> None:
    """Issue 17: no example shows a warning or error line that is not about the user's own action."""
    for key, (_rx, why) in EXPECTED_ALARMS.items():  # every allow-listed cell still exists, with a reason
        assert why and any(key[1] in c.source for c in nbformat.read(NOTEBOOK_DIR / key[0], as_version=4).cells), key
    found = {path.name: alarming_lines(path.name, nbformat.read(path, as_version=4)) for path in executed.paths}
    assert not any(found.values()), {name: lines for name, lines in found.items() if lines}


def test_executed_notebooks_hold_no_secret(executed: Executed) -> None:
    tokens = executed.run.stored_tokens()
    # the device login of 01 (at least) saved real tokens: the exact-value check is not empty
    assert len(tokens) >= 2, "no token reached the keyring; the exact-value scan would prove nothing"
    # the executed copies are real: outputs everywhere, and the saved widget state of the login widget
    for path in executed.paths:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), path.name
        assert any(c.outputs for c in code), path.name
    first = nbformat.read(executed.paths[0], as_version=4)
    assert first.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    if importlib.util.find_spec("flytekit") is not None:  # CI installs it: the flytekit cell must not skip
        sdk = next(p for p in executed.paths if p.name.startswith("04_"))
        outputs = json.dumps([c.outputs for c in nbformat.read(sdk, as_version=4).cells if c.cell_type == "code"])
        assert "reuses the notebook's sign-in" in outputs and "flytekit is not installed" not in outputs
    if importlib.util.find_spec("flyte") is not None:  # in the test extra: the Flyte 2 cells must not skip
        sdk = next(p for p in executed.paths if p.name.startswith("04_"))
        outputs = json.dumps([c.outputs for c in nbformat.read(sdk, as_version=4).cells if c.cell_type == "code"])
        assert "listed by the Flyte 2 SDK" in outputs and "with the token from flyteauth-token" in outputs
        assert "Flyte 2 SDK is not installed" not in outputs

    result = scan(executed.paths, known_secrets(executed))
    assert result.returncode == 0, result.stdout + result.stderr  # lines name place and kind, never the value
    assert f"{len(executed.paths)} notebook" in result.stdout + result.stderr
    # the command flow's token: in 03's source by design, in no output, metadata or widget state
    automation = nbformat.read(next(p for p in executed.paths if p.name.startswith("03_")), as_version=4)
    assert DEMO_COMMAND_TOKEN in json.dumps([c.source for c in automation.cells])  # the check below can fail
    shown = json.dumps([[c.get("outputs", []), c.get("attachments", {}), c.metadata] for c in automation.cells])
    assert DEMO_COMMAND_TOKEN not in shown + json.dumps(automation.metadata)


def test_scanner_catches_a_token_planted_in_an_executed_notebook(executed: Executed, tmp_path: Path) -> None:
    token = executed.run.stored_tokens()[0]
    nb = nbformat.read(executed.paths[0], as_version=4)

    # 1. a cell output (the display of the login cell)
    cell_index, cell = next((i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.outputs)
    cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=f"authorization: Bearer {token}\n"))
    # 2. the saved widget state of a real widget model
    models = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    model_id = next(iter(models))
    models[model_id]["state"]["description"] = json.dumps({"access_token": token})
    # 3. an attachment of a Markdown cell
    md_index, md = next((i, c) for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
    md.attachments = {"note.txt": {"text/plain": base64.b64encode(f"access_token={token}\n".encode()).decode()}}
    md.source += "\n\n![note](attachment:note.txt)"
    planted = tmp_path / executed.paths[0].name
    nbformat.write(nb, planted)

    places = (f"cells[{cell_index}]", f"widget state {model_id}", f"cells[{md_index}]")
    for secrets in ({}, {"FLYTEAUTH_SCAN_PLANTED": token}):  # by pattern alone, then also by exact value
        result = scan([planted], secrets)
        assert result.returncode == 1, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert token not in result.stdout + result.stderr
        assert any(places[0] in line and "outputs[" in line and "stream stdout" in line for line in lines), lines
        assert any(places[1] in line for line in lines), lines
        assert any(places[2] in line and "attachment note.txt" in line for line in lines), lines
        if secrets:
            assert any("known secret ($FLYTEAUTH_SCAN_PLANTED)" in line for line in lines), lines

    # and the unplanted original stays clean
    assert scan([executed.paths[0]], {"FLYTEAUTH_SCAN_PLANTED": token}).returncode == 0
