"""The documentation build fails on what it promises to catch (issue 19, item 3).

`make docs` (run by `make test`) builds the real site; these tests build a temporary copy of the tree
with one thing broken and check that the build fails *because of it* (its output names the thing):
a pinned name or one of its public methods without a docstring, a pinned name left off the API
reference page, a link to a missing page or heading, a missing included file (a ``--8<--`` snippet),
and anything fetched from another origin (a web font, an image). The checks themselves (docs/_tools/checks.py) are also tested on small inputs.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
#: what the site's build reads: its config, its pages, the package (API reference), the included files
TREE = ["mkdocs.yml", "docs", "flyteauth_jupyter", "CHANGELOG.md", "tests/hub/jupyterhub_config.py"]


def _checks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flyteauth_docs_checks", REPO / "docs" / "_tools" / "checks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """A copy of what the docs build reads, to break."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in TREE:
        src, dst = REPO / name, tmp_path / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=ignore)
        else:
            shutil.copy2(src, dst)
    return tmp_path


def _build(root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["NO_MKDOCS_2_WARNING"] = "1"
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)


def _remove_docstring(root: Path, obj: object) -> str:
    """Delete ``obj``'s docstring in the copy of its source file; returns its qualified name."""
    source = Path(inspect.getsourcefile(obj))  # type: ignore[arg-type]
    copy = root / source.resolve().relative_to(REPO)
    lines = copy.read_text(encoding="utf-8").splitlines(keepends=True)
    nodes: list[ast.AST] = [ast.parse("".join(lines))]
    for part in obj.__qualname__.split("."):  # type: ignore[attr-defined]
        body = getattr(nodes[-1], "body")
        nodes.append(next(n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                          and n.name == part))
    doc = nodes[-1].body[0]  # type: ignore[attr-defined]
    assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant), f"{obj} has no docstring to remove"
    indent = lines[doc.lineno - 1][: doc.col_offset]
    lines[doc.lineno - 1 : doc.end_lineno] = [f"{indent}pass\n"]
    copy.write_text("".join(lines), encoding="utf-8")
    return obj.__qualname__  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("public_path", ["Credentials", "PKCEAuthenticator.submit_redirect"])
def test_a_missing_docstring_fails_the_build(tree: Path, public_path: str) -> None:
    import flyteauth_jupyter

    obj: object = flyteauth_jupyter
    for part in public_path.split("."):
        obj = getattr(obj, part)
    _remove_docstring(tree, obj)
    run = _build(tree)
    assert run.returncode != 0, "the build passed without a docstring"
    assert "the API reference is incomplete" in run.stderr, run.stderr[-3000:]
    assert f"flyteauth_jupyter.{public_path}: no docstring" in run.stderr, run.stderr[-3000:]


def test_a_pinned_name_missing_from_the_reference_fails_the_build(tree: Path) -> None:
    page = tree / "docs" / "reference.md"
    text = page.read_text(encoding="utf-8")
    assert "::: flyteauth_jupyter.KeyringStore\n" in text
    page.write_text(text.replace("::: flyteauth_jupyter.KeyringStore\n", ""), encoding="utf-8")
    run = _build(tree)
    assert run.returncode != 0
    assert "flyteauth_jupyter.KeyringStore: not on the API reference page" in run.stderr, run.stderr[-3000:]


def test_a_broken_link_or_anchor_fails_the_build(tree: Path) -> None:
    page = tree / "docs" / "getting-started.md"
    page.write_text(page.read_text(encoding="utf-8")
                    + "\n[gone](no-such-page.md) and [nowhere](notebooks.md#no-such-heading)\n", encoding="utf-8")
    run = _build(tree)
    assert run.returncode != 0
    assert "no-such-page.md" in run.stderr and "no-such-heading" in run.stderr, run.stderr[-3000:]
    assert "Aborted with" in run.stdout + run.stderr and "strict mode" in run.stdout + run.stderr


def test_a_missing_included_file_fails_the_build(tree: Path) -> None:
    included = tree / "tests" / "hub" / "jupyterhub_config.py"
    text = included.read_text(encoding="utf-8")
    assert "[start:refresh-hooks]" in text
    included.write_text(text.replace("[start:refresh-hooks]", "[start:renamed]"), encoding="utf-8")
    run = _build(tree)
    assert run.returncode != 0
    assert "refresh-hooks" in run.stdout + run.stderr, (run.stdout + run.stderr)[-3000:]


def test_anything_from_another_origin_fails_the_build(tree: Path) -> None:
    config = tree / "mkdocs.yml"
    text = config.read_text(encoding="utf-8")
    assert "  font: false" in text
    config.write_text(text.replace("  font: false", "  font: { text: Roboto }"), encoding="utf-8")  # Google Fonts
    page = tree / "docs" / "index.md"
    page.write_text(page.read_text(encoding="utf-8") + '\n<img src="https://cdn.example.com/x.png">\n', encoding="utf-8")
    run = _build(tree)
    assert run.returncode != 0
    assert "refers to other origins" in run.stderr, run.stderr[-3000:]
    assert "fonts.googleapis.com" in run.stderr and "cdn.example.com" in run.stderr, run.stderr[-3000:]


# -- the checks on small inputs --------------------------------------------------------------------


def test_external_references_finds_what_a_browser_would_fetch(tmp_path: Path) -> None:
    checks = _checks()
    (tmp_path / "a.html").write_text(
        '<link rel="preconnect" href="https://fonts.gstatic.com">'
        '<script src="//cdn.example.com/x.js"></script>'
        '<img srcset="local.png 1x, https://img.example.com/y.png 2x">'
        '<a href="https://example.org/page">x</a>'
        '<div style="background: url(\'https://bg.example.com/z.png\')"></div>'
        '<style>@import "https://css.example.com/s.css";</style>'
        '<a href="reference.html#x">local</a><img src="screenshots/x.png"><a href="mailto:a@b">m</a>',
        encoding="utf-8")
    (tmp_path / "b.css").write_text("body { background: url(https://bg2.example.com/w.png) }", encoding="utf-8")
    found = "\n".join(checks.external_references(tmp_path))
    for origin in ("fonts.gstatic.com", "cdn.example.com", "img.example.com", "example.org", "bg.example.com",
                   "css.example.com", "bg2.example.com"):
        assert origin in found, found
    assert "reference.html" not in found and "screenshots/x.png" not in found and "mailto" not in found


def test_the_real_package_has_every_docstring() -> None:
    """The same check `make docs` runs, in this process: it names nothing today."""
    assert _checks().missing_docstrings() == []
