"""The package's layers import downwards only (DESIGN.md): nothing imports the notebook layer, and the
protocol and I/O layers import no UI or server code. Read from the source with ast, so a lazy import
inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "flyteauth_jupyter"
UI_AND_SERVER = ("IPython", "ipywidgets", "traitlets", "jupyter_server", "tornado", "ipykernel")

#: module (relative to the package) -> what it must never import, besides UI and server libraries
LOWER_LAYERS = [
    "errors.py", "validate.py", "control.py", "credentials.py", "endpoint.py", "environment.py",
    "sessions.py", "config.py", "clients.py", "proxy.py", "sdk_config.py", "token.py",
    *(str(p.relative_to(PACKAGE)) for p in sorted((PACKAGE / "scan").glob("*.py"))),
    *(str(p.relative_to(PACKAGE)) for p in sorted((PACKAGE / "authenticators").glob("*.py"))),
    *(str(p.relative_to(PACKAGE)) for p in sorted((PACKAGE / "lifecycle").glob("*.py"))),
    *(str(p.relative_to(PACKAGE)) for p in sorted((PACKAGE / "stores").glob("*.py"))),
    *(str(p.relative_to(PACKAGE)) for p in sorted((PACKAGE / "flows").glob("*.py"))),
    *(str(p.relative_to(PACKAGE)) for p in sorted((PACKAGE / "transport").glob("*.py"))),
]


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package_parts = ["flyteauth_jupyter", *path.relative_to(PACKAGE).parent.parts]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("module", LOWER_LAYERS)
def test_lower_layers_import_no_ui_server_or_notebook_code(module):
    imports = imported_modules(PACKAGE / module)
    upward = sorted(
        name for name in imports
        if name.split(".")[0] in UI_AND_SERVER
        or name.startswith(("flyteauth_jupyter.notebook", "flyteauth_jupyter.server"))
    )
    assert upward == [], f"{module} imports {upward}"


@pytest.mark.parametrize("module", sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "flows").glob("*.py")))
def test_flows_never_print_sleep_or_start_threads(module):
    """Flows report events and wait through control.Waiter (the one place that owns waiting)."""
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    calls = {
        f"{node.func.value.id}.{node.func.attr}" if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
        else getattr(node.func, "id", "")
        for node in ast.walk(tree) if isinstance(node, ast.Call)
    }
    assert not calls & {"print", "time.sleep", "threading.Thread"}, module


def test_nothing_imports_the_notebook_layer_but_itself_and_the_entry_points():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "notebook" or rel.name == "__init__.py" and len(rel.parts) == 1:
            continue
        assert not any(name.startswith("flyteauth_jupyter.notebook") for name in imported_modules(path)), rel
