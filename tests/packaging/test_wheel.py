"""The wheel and the sdist as a user gets them (issue 19, item 4).

``python -m build`` makes the sdist and then the wheel *from the sdist* (its default), in isolated
build environments with hatchling from the package index, so a wheel at all proves the sdist holds
what a rebuild needs. ``twine check`` validates both. The wheel must hold the package (``py.typed``
included) and the server extension's configuration, and nothing else: no tests, no ``.demo``, no
``node_modules``. Then the wheel, not an editable install, goes into a fresh virtual environment
beside jupyter_server (``python -m venv --without-pip``; this environment's pip installs into it with
``--python``), where ``jupyter server extension list`` must show ``flyteauth_jupyter.server`` enabled
from that environment's own ``etc/jupyter``, ``%load_ext flyteauth_jupyter`` must register the magics
from the installed copy, and ``flyteauth-token --help`` must answer.

The version comes from one place (flyteauth_jupyter/_version.py): the files' names and the wheel's
metadata carry it, and CHANGELOG.md's newest section is its release.

Every step has a time limit; nothing is skipped (no index, no test: the test fails and says so).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "flyteauth_jupyter"
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/flyteauth_jupyter.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: what never belongs in a wheel (path parts), and, but for tests/, in an sdist
FORBIDDEN_PARTS = {"tests", ".demo", "node_modules", "__pycache__", ".test-artifacts", ".venv", "site"}


def _version() -> str:
    text = (REPO / PACKAGE / "_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, flags=re.MULTILINE)
    assert match, "flyteauth_jupyter/_version.py has no __version__ line"
    return match.group(1)


def _run(argv: list[str], *, timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; on a non-zero exit or a timeout, fail with the command and its output's tail."""
    try:
        run = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(argv[:4])} ... did not finish within {timeout} s:\n{exc.stdout or ''}{exc.stderr or ''}"[-4000:])
    if run.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {run.returncode}:\n{(run.stdout + run.stderr)[-4000:]}")
    return run


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would put the checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], timeout=300, env=_clean_env())
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, f"build made {[p.name for p in out.iterdir()]}"
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_names_carry_the_version_from_its_one_place(dist: dict[str, Path]) -> None:
    version = _version()
    assert dist["wheel"].name == f"flyteauth_jupyter-{version}-py3-none-any.whl"
    assert dist["sdist"].name == f"flyteauth_jupyter-{version}.tar.gz"
    with zipfile.ZipFile(dist["wheel"]) as whl:
        metadata = whl.read(f"flyteauth_jupyter-{version}.dist-info/METADATA").decode()
    assert f"\nVersion: {version}\n" in metadata


def test_the_changelog_has_a_section_for_the_version() -> None:
    """A new version comes with its entry: the newest section of CHANGELOG.md is this version's release."""
    release = re.sub(r"(\.dev\d+|a\d+|b\d+|rc\d+)$", "", _version())
    headings = re.findall(r"^## (\S+)", (REPO / "CHANGELOG.md").read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert headings and headings[0] == release, f"CHANGELOG.md's newest section is {headings[:1]}, not {release}"


def test_twine_check_passes(dist: dict[str, Path]) -> None:
    run = _run([sys.executable, "-m", "twine", "check", "--strict", str(dist["wheel"]), str(dist["sdist"])],
               timeout=120)
    assert run.stdout.count("PASSED") == 2, run.stdout


def test_wheel_holds_the_package_and_the_server_config_and_nothing_else(dist: dict[str, Path]) -> None:
    version = _version()
    with zipfile.ZipFile(dist["wheel"]) as whl:
        names = whl.namelist()
        config = json.loads(whl.read(f"flyteauth_jupyter-{version}.data/data/{SERVER_CONFIG}"))
        entry_points = whl.read(f"flyteauth_jupyter-{version}.dist-info/entry_points.txt").decode()
    assert f"{PACKAGE}/py.typed" in names
    assert config == {"ServerApp": {"jpserver_extensions": {"flyteauth_jupyter.server": True}}}
    assert "flyteauth-token = flyteauth_jupyter.token:main" in entry_points
    assert "[flytekit.auth]" in entry_points
    tops = {name.split("/")[0] for name in names}
    assert tops == {PACKAGE, f"flyteauth_jupyter-{version}.dist-info", f"flyteauth_jupyter-{version}.data"}, tops
    bad = [n for n in names if FORBIDDEN_PARTS & set(n.split("/")) or n.endswith((".pyc", ".pyo"))]
    assert not bad, f"the wheel holds files it must not: {bad[:20]}"
    # every file of the package is in it (a new subpackage or data file is not left behind)
    tree = {
        p.relative_to(REPO).as_posix()
        for p in (REPO / PACKAGE).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    }
    assert tree <= set(names), f"missing from the wheel: {sorted(tree - set(names))[:20]}"


def test_sdist_holds_what_a_rebuild_needs(dist: dict[str, Path]) -> None:
    root = f"flyteauth_jupyter-{_version()}"
    with tarfile.open(dist["sdist"]) as sdist:
        names = {m.name.removeprefix(root + "/") for m in sdist.getmembers() if m.isfile()}
    needed = {
        "pyproject.toml", "README.md", "CHANGELOG.md", "PKG-INFO", f"{PACKAGE}/_version.py",
        f"{PACKAGE}/py.typed", "jupyter-config/jupyter_server_config.d/flyteauth_jupyter.json",
        "mkdocs.yml", "docs/index.md", "Makefile",
    }
    assert needed <= names, f"missing from the sdist: {sorted(needed - names)}"
    bad = [n for n in names if (FORBIDDEN_PARTS - {"tests"}) & set(n.split("/")) or n.endswith((".pyc", ".pyo"))]
    assert not bad, f"the sdist holds files it must not: {bad[:20]}"


def test_the_wheel_in_a_fresh_venv_beside_jupyter_server(dist: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    env = _clean_env(JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"), HOME=str(tmp_path / "home"),
                     NO_COLOR="1", PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    (tmp_path / "home").mkdir()
    # this environment's pip installs into the fresh one: the wheel itself (not editable) + jupyter_server
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile",
          "--disable-pip-version-check", str(dist["wheel"]), "jupyter_server>=2.10"],
         timeout=600, cwd=tmp_path, env=env)
    _run([sys.executable, "-m", "pip", "--python", str(python), "check"], timeout=120, cwd=tmp_path, env=env)
    assert (venv / SERVER_CONFIG).is_file(), "the wheel's server config did not land in the venv's etc/jupyter"

    # the server extension: enabled, from this venv's own config dir, and it validates (imports)
    listing = _run([str(bin_dir / "jupyter"), "server", "extension", "list"], timeout=120, cwd=tmp_path, env=env)
    text = ANSI.sub("", listing.stdout + listing.stderr)
    sections = re.split(r"^Config dir: ", text, flags=re.MULTILINE)
    ours = [s for s in sections if s.startswith(str(venv / "etc" / "jupyter"))]
    assert ours and re.search(r"^\s*flyteauth_jupyter\.server\s+enabled\s*$", ours[0], flags=re.MULTILINE), text
    assert re.search(r"^\s*flyteauth_jupyter\.server\s+OK\s*$", ours[0], flags=re.MULTILINE), text

    # %load_ext in a real IPython, from the installed copy (not the checkout)
    code = (
        "%load_ext flyteauth_jupyter\n"
        "import flyteauth_jupyter\n"
        "magics = sorted(m for m in get_ipython().magics_manager.magics['line'] if m.startswith('flyte_'))\n"
        "print('LOADED', flyteauth_jupyter.__file__, flyteauth_jupyter.__version__, ','.join(magics))\n"
    )
    loaded = _run([str(bin_dir / "ipython"), "--quick", "--no-banner", "--colors=NoColor", "-c", code],
                  timeout=120, cwd=tmp_path, env=env)
    line = next((ln for ln in loaded.stdout.splitlines() if ln.startswith("LOADED ")), None)
    assert line is not None, loaded.stdout + loaded.stderr
    _, location, version, magics = line.split(" ")
    assert Path(location).resolve().is_relative_to(venv.resolve()), f"imported from {location}, not the venv"
    assert version == _version()
    assert magics == "flyte_login,flyte_logout,flyte_status"

    # the console script
    helped = _run([str(bin_dir / "flyteauth-token"), "--help"], timeout=60, cwd=tmp_path, env=env)
    assert helped.stdout.startswith("usage: flyteauth-token") and "--endpoint" in helped.stdout, helped.stdout
