"""An isolated environment for a Jupyter server or kernels started by the tests.

Shared by the nbval harness (tests/notebooks) and the browser suite (tests/browser): a fresh HOME and
XDG/IPython/Jupyter dirs under the run's directory, none of the machine's Flyte, Jupyter, keyring or
BROWSER settings, the endpoint in FLYTE_PLATFORM_URL (as a user's would be configured), loopback
exempt from any proxy, and a keyring that is a JSON file in the run's directory (rig/file_keyring.py;
with ``record_tokens`` it records the values written, so a test's secret scan knows the real tokens),
never the machine's keyring.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

#: settings from the machine that would change what the kernels do
DROPPED_ENV = re.compile(
    r"^(FLYTE|FLYTECTL|_FLYTECTL|PYTEST|JUPYTER|JPY|IPYTHON|PYTHON_KEYRING|KEYRING|BROWSER$|FLYTEAUTH_RIG|"
    r"COV_CORE|XDG_)"
)
LOOPBACK = "127.0.0.1,localhost,::1"


def isolated_env(run_dir: Path, endpoint: str, *, extra_dirs: dict[str, Path] | None = None,
                 record_tokens: bool = False) -> tuple[dict[str, str], Path]:
    """``(environment, keyring file)`` for processes of one run in ``run_dir`` against ``endpoint``.

    ``extra_dirs`` (name -> path below the run's HOME or anywhere) are created 0700 and exported too.
    ``record_tokens``: the file keyring keeps ``<keyring file>.history`` of every value written, for a
    test's secret scan (rig/file_keyring.py); never for a demo (issue 17.9: no token after logout).
    """
    env = {k: v for k, v in os.environ.items() if not DROPPED_ENV.match(k)}
    home = run_dir / "home"
    dirs = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_STATE_HOME": home / ".local" / "state",
        "XDG_RUNTIME_DIR": run_dir / "runtime",
        "IPYTHONDIR": home / ".ipython",
        "JUPYTER_CONFIG_DIR": home / ".jupyter",
        "JUPYTER_DATA_DIR": home / ".local" / "share" / "jupyter",
        "JUPYTER_RUNTIME_DIR": run_dir / "runtime" / "jupyter",
        **(extra_dirs or {}),
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        env[name] = str(path)
    keyring_file = run_dir / "keyring.json"
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH", "")])),
        "PYTHONDONTWRITEBYTECODE": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "NO_PROXY": ",".join(filter(None, [LOOPBACK, os.environ.get("NO_PROXY", "")])),
        "no_proxy": ",".join(filter(None, [LOOPBACK, os.environ.get("no_proxy", "")])),
        "FLYTE_PLATFORM_URL": endpoint,
        "PYTHON_KEYRING_BACKEND": "rig.file_keyring.FileKeyring",
        "FLYTEAUTH_RIG_KEYRING": str(keyring_file),
    })
    if record_tokens:  # the run's secret scan learns the real tokens (rig/file_keyring.py)
        env["FLYTEAUTH_RIG_KEYRING_RECORD"] = "1"
    return env, keyring_file
