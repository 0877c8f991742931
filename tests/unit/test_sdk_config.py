"""The Flyte 2 SDK's settings as ``flyte.config`` reads them, and flytekit's first (sdk_config)."""

from __future__ import annotations

from pathlib import Path

from flyteauth_jupyter.sdk_config import read_flyte2_settings, read_sdk_settings


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_flyte2_environment_beats_its_files(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "work"
    write(home / ".flyte" / "config.yaml", "admin:\n  endpoint: dns:///file.example.com\n  insecure: true\n")
    env = {"FLYTE_ADMIN_ENDPOINT": "dns:///env.example.com:443", "FLYTE_AUTH_COMMAND": "flyteauth-token --format token"}
    got = read_flyte2_settings(env, cwd=cwd, home=home)
    assert got.endpoint == "env.example.com:443" and got.sources["endpoint"] == "FLYTE_ADMIN_ENDPOINT"
    assert got.command == ("flyteauth-token", "--format", "token")
    assert got.insecure is True  # from the file


def test_flyte2_file_search_order(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "repo" / "sub"
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    write(home / ".flyte" / "config.yaml", "admin:\n  endpoint: home.example.com\n")
    write(home / ".union" / "config.yaml", "admin:\n  endpoint: union.example.com\n")
    assert read_flyte2_settings({}, cwd=cwd, home=home).endpoint == "union.example.com"
    uctl = write(tmp_path / "uctl.yaml", "admin:\n  endpoint: uctl.example.com\n")
    assert read_flyte2_settings({"UCTL_CONFIG": str(uctl)}, cwd=cwd, home=home).endpoint == "uctl.example.com"
    write(tmp_path / "repo" / ".flyte" / "config.yaml", "admin:\n  endpoint: gitroot.example.com\n  caCertFilePath: /ca.pem\n")
    got = read_flyte2_settings({"UCTL_CONFIG": str(uctl)}, cwd=cwd, home=home)
    assert (got.endpoint, got.ca_cert_file_path) == ("gitroot.example.com", "/ca.pem")
    write(cwd / "config.yaml", "admin:\n  endpoint: here.example.com\n")
    assert read_flyte2_settings({}, cwd=cwd, home=home).endpoint == "here.example.com"


def test_flytekit_first_then_flyte2(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    write(cwd / ".flyte" / "config.yaml", "admin:\n  endpoint: flyte2.example.com\n")
    assert read_sdk_settings({}, cwd=cwd, home=home).endpoint == "flyte2.example.com"
    assert read_sdk_settings({"FLYTE_PLATFORM_URL": "kit.example.com"}, cwd=cwd, home=home).endpoint == "kit.example.com"
    assert read_sdk_settings({}, cwd=tmp_path / "empty", home=home).endpoint is None
