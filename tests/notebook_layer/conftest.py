"""Fixtures of the notebook-layer tests: an IPython InteractiveShell with the extension loaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.errors
import pytest
from rig.memory_keyring import MemoryKeyring
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from flyteauth_jupyter import stores

FLYTE_ENV = (
    "FLYTE_PLATFORM_URL", "FLYTE_PLATFORM_INSECURE", "FLYTE_PLATFORM_INSECURE_SKIP_VERIFY",
    "FLYTE_PLATFORM_CA_CERT_FILE_PATH", "FLYTE_PLATFORM_HTTP_PROXY_URL", "FLYTE_CREDENTIALS_CLIENT_ID",
    "FLYTE_CREDENTIALS_CLIENT_SECRET", "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION",
    "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR", "FLYTE_CREDENTIALS_SCOPES", "FLYTE_CREDENTIALS_AUTH_MODE",
    "FLYTE_CREDENTIALS_AUDIENCE", "FLYTE_CREDENTIALS_COMMAND", "FLYTECTL_CONFIG", "_FLYTECTL_CONFIG_PYFLYTE_OVERRIDE",
)


@pytest.fixture
def isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No flytekit configuration from the machine running the tests: HOME and cwd are empty dirs."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    for name in FLYTE_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def shell(isolated_config: Path) -> Iterator[InteractiveShell]:
    """The process's InteractiveShell with ``%load_ext flyteauth_jupyter``; unloaded and cleaned afterwards."""
    ip = InteractiveShell.instance()
    before = set(ip.user_ns)
    result = ip.run_line_magic("load_ext", "flyteauth_jupyter")
    assert result is None, result
    yield ip
    magics = ip.magics_manager.registry.get("FlyteAuthMagics")
    if magics is not None:
        for session in list(magics.names.sessions.values()):
            session.cancel()
            future = session.future
            if future is not None:
                try:
                    future.exception(timeout=10)  # bounded: the flow ends within one poll of a cancel
                except Exception:  # noqa: BLE001 - only waiting here
                    pass
    ip.run_line_magic("unload_ext", "flyteauth_jupyter")
    for name in set(ip.user_ns) - before:
        ip.user_ns.pop(name, None)
    ip.config.pop("FlyteAuthMagics", None)  # %config settings of this test
    from flyteauth_jupyter import sessions

    for service, registered in sessions.sessions().items():
        sessions.forget_session(service, registered)


@pytest.fixture
def memory_keyring(monkeypatch, tmp_path):
    """A fresh in-memory keyring and an empty process fallback: no test sees another's tokens."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        previous = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a configured backend that cannot start here
        from keyring.backends.fail import Keyring as FailKeyring

        previous = FailKeyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    stores.PROCESS_FALLBACK.clear()
    yield backend
    keyring.set_keyring(previous)
    stores.PROCESS_FALLBACK.clear()


@pytest.fixture
def nb(shell, memory_keyring):
    """The shell with the widget display, capturing every output (including background updates)."""
    shell.run_line_magic("config", "FlyteAuthMagics.display = 'widget'")
    with capture_output(display=True) as captured:
        yield shell, captured


@pytest.fixture
def kernel(tmp_path):
    """A real ipykernel started by jupyter_client (tests/notebook_layer/nb_kernel.py), stopped afterwards."""
    pytest.importorskip("jupyter_client")
    pytest.importorskip("ipykernel")
    from nb_kernel import Kernel, kernel_env

    k = Kernel(kernel_env(tmp_path))
    yield k
    k.stop()
