"""Reading flytekit's configuration like flytekit does (environment first, then the config file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flyteauth_jupyter.errors import ConfigurationError
from flyteauth_jupyter.notebook.flytekit_config import (
    load_yaml,
    read_client_secret,
    read_flytekit_settings,
    simple_yaml,
)

YAML = """\
# flytectl config
admin:
  # For GRPC endpoints you might want to use dns:///flyte.myexample.com
  endpoint: dns:///flyte.example.com:443
  insecure: false
  insecureSkipVerify: true
  authType: DeviceFlow
  clientId: flytectl
  scopes:
    - openid
    - "offline"
  audience: "api://flyte"
logger:
  show-source: true
  level: 0
"""


def test_yaml_file_in_home(tmp_path: Path):
    (tmp_path / ".flyte").mkdir()
    (tmp_path / ".flyte" / "config.yaml").write_text(YAML)
    settings = read_flytekit_settings({}, cwd=tmp_path / "nowhere", home=tmp_path)
    assert settings.endpoint == "flyte.example.com:443"
    assert settings.insecure is False and settings.insecure_skip_verify is True
    assert settings.auth_type == "DeviceFlow" and settings.client_id == "flytectl"
    assert settings.scopes == ("openid", "offline") and settings.audience == "api://flyte"
    assert settings.sources["endpoint"].endswith("config.yaml admin.endpoint")


def test_environment_wins_and_flytectl_config(tmp_path: Path):
    config = tmp_path / "other.yaml"
    config.write_text(YAML)
    env = {"FLYTECTL_CONFIG": str(config), "FLYTE_PLATFORM_URL": "localhost:30080", "FLYTE_PLATFORM_INSECURE": "True",
           "FLYTE_CREDENTIALS_SCOPES": "a,b"}
    settings = read_flytekit_settings(env, cwd=tmp_path, home=tmp_path)
    assert settings.endpoint == "localhost:30080" and settings.insecure is True
    assert settings.scopes == ("a", "b")
    assert settings.client_id == "flytectl"  # still from the file
    assert settings.sources["endpoint"] == "FLYTE_PLATFORM_URL"


def test_legacy_ini_in_cwd(tmp_path: Path):
    (tmp_path / "flytekit.config").write_text(
        "[platform]\nurl = flyte.legacy:81\ninsecure = True\n[credentials]\nclient_id = legacy\nauth_mode = basic\n"
        "client_secret_location = /tmp/secret\n"
    )
    settings = read_flytekit_settings({}, cwd=tmp_path, home=tmp_path / "h")
    assert settings.endpoint == "flyte.legacy:81" and settings.insecure
    assert settings.client_id == "legacy" and settings.auth_type == "basic"
    assert settings.has_client_secret and settings.client_secret_location == "/tmp/secret"


def test_nothing_configured(tmp_path: Path):
    settings = read_flytekit_settings({}, cwd=tmp_path, home=tmp_path)
    assert settings.endpoint is None and settings.config_file is None


def test_secret_is_referred_to_never_read(tmp_path: Path):
    env = {"FLYTE_CREDENTIALS_CLIENT_SECRET": "s3cr3t-value"}
    settings = read_flytekit_settings(env, cwd=tmp_path, home=tmp_path)
    assert settings.client_secret_env == "FLYTE_CREDENTIALS_CLIENT_SECRET"
    assert "s3cr3t-value" not in repr(settings)
    assert read_client_secret(env_var=settings.client_secret_env, location=None, env=env) == "s3cr3t-value"
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    assert read_client_secret(env_var=None, location=str(secret_file)) == "from-file"
    with pytest.raises(ConfigurationError, match="MISSING"):
        read_client_secret(env_var="MISSING", location=None, env={})
    with pytest.raises(ConfigurationError, match="could not be read"):
        read_client_secret(env_var=None, location=str(tmp_path / "nope"))


def test_simple_yaml_matches_pyyaml(tmp_path: Path):
    parsed = simple_yaml(YAML)
    assert parsed["admin"]["endpoint"] == "dns:///flyte.example.com:443"
    assert parsed["admin"]["scopes"] == ["openid", "offline"]
    assert parsed["admin"]["insecure"] is False
    assert parsed["logger"]["level"] == "0" or parsed["logger"]["level"] == 0
    inline = simple_yaml("admin:\n  scopes: [all, 'offline']\n  endpoint: 'h:1' # comment\n")
    assert inline == {"admin": {"scopes": ["all", "offline"], "endpoint": "h:1"}}
    yaml = pytest.importorskip("yaml")
    expected = yaml.safe_load(YAML)
    assert parsed["admin"] == {k: (v if not isinstance(v, bool) else v) for k, v in expected["admin"].items()}
    path = tmp_path / "c.yaml"
    path.write_text(YAML)
    assert load_yaml(path)["admin"]["clientId"] == "flytectl"
