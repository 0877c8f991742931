"""MkDocs hooks (mkdocs.yml ``hooks:``): the checks that make `make docs` fail, and the generated parts.

- Before the build: every pinned public name and each of its public methods has a docstring, and the
  API reference page shows every pinned name (checks.py ``api``, in a subprocess whose ``sys.path``
  starts with this site's own tree, so a temporary copy is checked as itself).
- While rendering: ``<!-- generated:KEY -->`` in a page is replaced by the generated Markdown of that
  key (the magics' usage, ``usage:flyte_login``, and their ``%config`` traits, ``traits``).
- After the build: nothing in the built HTML or CSS refers to another origin (checks.py).

Each failure is a ``PluginError``: the build stops and says what is missing, strict or not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

_spec = importlib.util.spec_from_file_location("flyteauth_docs_checks", Path(__file__).with_name("checks.py"))
assert _spec is not None and _spec.loader is not None
checks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checks)

REFERENCE_PAGE = "reference.md"
GENERATED = re.compile(r"<!-- generated:([\w:.-]+) -->")
_generated: dict[str, str] = {}


def _root(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def on_pre_build(config: Any, **kwargs: Any) -> None:
    root = _root(config)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    run = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("checks.py")), "api"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )
    if run.returncode != 0:
        raise PluginError(f"the API check could not run (exit {run.returncode}):\n{run.stderr.strip()[-2000:]}")
    result = json.loads(run.stdout)
    missing = list(result["missing"])
    reference = Path(config["docs_dir"]) / REFERENCE_PAGE
    text = reference.read_text(encoding="utf-8") if reference.exists() else ""
    shown = set(re.findall(r"^::: ([\w.]+)", text, flags=re.MULTILINE))
    missing += [f"{path}: not on the API reference page ({REFERENCE_PAGE})" for path in checks.PINNED if path not in shown]
    if missing:
        raise PluginError("the API reference is incomplete:\n  " + "\n  ".join(missing))
    _generated.clear()
    _generated.update(result["generated"])


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in _generated:
            raise PluginError(f"{page.file.src_uri}: nothing is generated for <!-- generated:{key} -->")
        return _generated[key]

    return GENERATED.sub(fill, markdown)


def on_post_build(config: Any, **kwargs: Any) -> None:
    found = checks.external_references(Path(config["site_dir"]))
    if found:
        raise PluginError(
            "the built site refers to other origins (it must work offline):\n  " + "\n  ".join(found[:50])
        )
