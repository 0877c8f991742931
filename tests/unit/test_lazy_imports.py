"""Loading the extension imports nothing that sends, renders or stores (issue 12): checked on
``sys.modules`` in a fresh interpreter, structurally (no timing). The modules that do those things
are imported by the first magic or class that needs them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: top-level distributions that send, render or store, and the package's own modules that use them
HEAVY = ("requests", "urllib3", "ipywidgets", "segno", "keyring", "jupyter_server", "flytekit", "grpc")
OWN_HEAVY = (
    "flyteauth_jupyter.authenticators",
    "flyteauth_jupyter.config",
    "flyteauth_jupyter.transport.http",
    "flyteauth_jupyter.transport.loopback",
    "flyteauth_jupyter.flows.authcode",
    "flyteauth_jupyter.notebook.connect",
    "flyteauth_jupyter.notebook.widget",
)


def _new_modules(script: str) -> dict[str, list[str]]:
    """Run ``script`` (which sets ``before`` and ``result``) in a fresh interpreter; its JSON output."""
    code = "import json, sys\n" + textwrap.dedent(script) + "\nprint(json.dumps(result))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _heavy(names: list[str]) -> list[str]:
    return sorted(n for n in names if n.split(".")[0] in HEAVY or n in OWN_HEAVY)


def test_import_package_is_light() -> None:
    result = _new_modules(
        """
        before = set(sys.modules)
        import flyteauth_jupyter
        result = {"new": sorted(set(sys.modules) - before)}
        """
    )
    assert _heavy(result["new"]) == []


def test_load_ext_registers_the_magics_and_imports_nothing_heavy() -> None:
    result = _new_modules(
        """
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        before = set(sys.modules)
        ip.run_line_magic("load_ext", "flyteauth_jupyter")
        new = sorted(set(sys.modules) - before)
        magics = sorted(ip.magics_manager.magics["line"])
        result = {"new": new, "magics": [m for m in magics if m.startswith("flyte_")]}
        """
    )
    assert _heavy(result["new"]) == []
    assert result["magics"] == ["flyte_login", "flyte_logout", "flyte_status"]


def test_public_names_import_on_first_use() -> None:
    result = _new_modules(
        """
        import flyteauth_jupyter as fa
        before = set(sys.modules)
        names = {name: getattr(fa, name).__module__ for name in fa.__all__ if name != "__version__"}
        result = {"new": sorted(set(sys.modules) - before), "names": sorted(names), "dir": sorted(set(fa.__all__) - set(dir(fa)))}
        """
    )
    assert "flyteauth_jupyter.authenticators" in result["new"]
    assert result["dir"] == []
    assert len(result["names"]) == len(set(result["names"])) == 18  # the pinned 17 and IssuerClientConfigStore
