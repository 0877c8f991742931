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


# ------------------------------------------------------------------ issue 16: hostile configuration files
import os  # noqa: E402

import pytest  # noqa: E402

from flyteauth_jupyter.errors import ConfigurationError  # noqa: E402
from rig import rules  # noqa: E402

ALIAS_BOMB = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"{n}: &{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")]
    + ["admin:", "  endpoint: *i", "  clientId: *i"]
) + "\n"


def _hostile(kind: str, path: Path) -> None:
    """Make ``path`` (a config file's place) into one hostile form."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "not UTF-8":
        path.write_bytes(b"admin:\n  endpoint: dns:///flyte.example.com\n  clientId: caf\xe9\n")
    elif kind == "a directory":
        path.mkdir()
    elif kind == "nested 5,000 levels deep":
        path.write_text("admin:\n  endpoint: flyte.example.com\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    elif kind == "nested 600 levels deep (block style)":
        path.write_text("admin:\n  endpoint: flyte.example.com\n" + "".join(f"{' ' * i}k{i}:\n" for i in range(1, 600)))
    elif kind == "a mapping where a value belongs":
        path.write_text("admin:\n  endpoint: {host: flyte.example.com}\n")
    elif kind == "an alias bomb":
        path.write_text(ALIAS_BOMB)
    elif kind == "larger than 256 KiB":
        path.write_text("admin:\n  endpoint: flyte.example.com\n" + "# padding\n" * 300_000)
    elif kind == "a named pipe":
        os.mkfifo(path)
    elif kind == "not readable YAML":
        path.write_text("admin: [unclosed\n")
    else:  # pragma: no cover
        raise AssertionError(kind)


HOSTILE = ["not UTF-8", "a directory", "nested 5,000 levels deep", "nested 600 levels deep (block style)",
           "a mapping where a value belongs",
           "an alias bomb", "larger than 256 KiB", "a named pipe", "not readable YAML"]


def _one_sentence_naming(error: BaseException, path: Path) -> str:
    message = str(error)
    assert isinstance(error, ConfigurationError), repr(error)
    assert str(path) in message and len(message) <= 500 and "\n" not in message, message
    assert error.__cause__ is None or error.__suppress_context__, "no chained traceback for a user's file"
    return message


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_flytekit_config_is_one_sentence_naming_the_file(tmp_path, kind, reliability_rule):
    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    config = home / ".flyte" / "config.yaml"
    _hostile(kind, config)
    with pytest.raises(ConfigurationError) as info:
        read_sdk_settings({}, cwd=cwd, home=home)
    _one_sentence_naming(info.value, config)
    reliability_rule(rules.HOSTILE_CONFIG, "~/.flyte/config.yaml " + ", ".join(HOSTILE),
                     "one ConfigurationError sentence naming the file")


@pytest.mark.parametrize("kind", ["not UTF-8", "nested 5,000 levels deep", "an alias bomb", "larger than 256 KiB"])
def test_a_hostile_flyte2_config_and_a_hostile_ini_file_are_one_sentence_too(tmp_path, kind):
    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    _hostile(kind, cwd / "config.yaml")  # the Flyte 2 SDK's first choice
    with pytest.raises(ConfigurationError) as info:
        read_sdk_settings({}, cwd=cwd, home=home)
    _one_sentence_naming(info.value, cwd / "config.yaml")
    ini = tmp_path / "flytekit.config"
    if kind == "not UTF-8":
        ini.write_bytes(b"[platform]\nurl = caf\xe9.example.com\n")
    else:
        ini.write_text("[platform]\nurl = %(url)s\n")  # an interpolation that refers to itself
    with pytest.raises(ConfigurationError) as info:
        read_sdk_settings({"FLYTECTL_CONFIG": str(ini)}, cwd=cwd, home=home)
    _one_sentence_naming(info.value, ini)


def test_the_flyte2_search_skips_what_is_not_a_file_as_flyte_does(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    _hostile("a named pipe", cwd / "config.yaml")
    _hostile("a directory", cwd / ".flyte" / "config.yaml")
    write(home / ".flyte" / "config.yaml", "admin:\n  endpoint: home.example.com\n")
    assert read_flyte2_settings({}, cwd=cwd, home=home).endpoint == "home.example.com"


def test_a_broken_file_can_be_reported_instead_of_raised(tmp_path):
    """What an explicit endpoint uses: the environment's settings, and the file's problem as a sentence."""
    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    _hostile("an alias bomb", home / ".flyte" / "config.yaml")
    got = read_sdk_settings({"FLYTE_CREDENTIALS_CLIENT_ID": "from-env"}, cwd=cwd, home=home, strict=False)
    assert got.client_id == "from-env" and got.endpoint is None
    assert got.problem and str(home / ".flyte" / "config.yaml") in got.problem


def test_ordinary_values_still_read(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    write(home / ".flyte" / "config.yaml", "anchors:\n  scopes: &s [openid, offline_access]\nadmin:\n"
          "  endpoint: dns:///flyte.example.com\n  scopes: *s\n  insecure: false\n")
    got = read_sdk_settings({}, cwd=cwd, home=home)
    assert got.endpoint == "flyte.example.com" and got.scopes == ("openid", "offline_access") and got.problem is None


# ------------------------------------------------------------- issue 18.6: the proxy command
from flyteauth_jupyter.sdk_config import read_flytekit_settings  # noqa: E402

PROXY_ARGV = ("flyte-iap", "generate-token", "--client-id=abc")


def _sdk_platforms(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> None:
    """Both SDKs read os.environ: give them exactly ``env`` (and no home or working directory files)."""
    for key in [k for k in os.environ if k.startswith(("FLYTE", "UCTL", "_FLYTECTL"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HOME", str(tmp_path / "sdk-home"))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("case", ["yaml list", "env over yaml", "env comma list", "ini"])
def test_flytekits_proxy_command_is_read_as_flytekit_reads_it(tmp_path, monkeypatch, case):
    from flytekit.configuration import PlatformConfig

    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    env: dict[str, str] = {}
    if case == "ini":
        config = write(tmp_path / "flytekit.config",
                       "[platform]\nurl = flyte.example.com\n[credentials]\nproxy_command = " + ",".join(PROXY_ARGV) + "\n")
    else:
        lines = "".join(f"    - {part}\n" for part in PROXY_ARGV)
        config = write(tmp_path / "config.yaml", f"admin:\n  endpoint: dns:///flyte.example.com\n  proxyCommand:\n{lines}")
    if case == "env over yaml":
        env["FLYTE_CREDENTIALS_PROXY_COMMAND"] = "from-env,token"
    if case == "env comma list":
        config = write(tmp_path / "config.yaml", "admin:\n  endpoint: flyte.example.com\n")
        env["FLYTE_CREDENTIALS_PROXY_COMMAND"] = ",".join(PROXY_ARGV)
    env["FLYTECTL_CONFIG"] = str(config)
    ours = read_flytekit_settings(env, cwd=cwd, home=home)
    _sdk_platforms(monkeypatch, tmp_path, env)
    theirs = PlatformConfig.auto(str(config)).proxy_command
    assert ours.proxy_command == tuple(theirs or ())
    expected = ("from-env", "token") if case == "env over yaml" else PROXY_ARGV  # the environment wins
    assert ours.proxy_command == expected and ours.endpoint == "flyte.example.com"


@pytest.mark.parametrize("env_value", [
    None,  # the file's YAML list
    '["flyte-iap", "generate-token", "--client-id=abc"]',  # a JSON array
    "flyte-iap generate-token '--client-id=abc'",  # a shell-like string
])
@pytest.mark.parametrize("env_name", ["FLYTE_AUTH_PROXY_COMMAND", "FLYTE_ADMIN_PROXYCOMMAND"])
def test_the_flyte2_proxy_command_is_read_as_the_flyte2_sdk_reads_it(tmp_path, monkeypatch, env_value, env_name):
    from flyte.config._config import PlatformConfig as Flyte2Platform

    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    lines = "".join(f"    - {part}\n" for part in (PROXY_ARGV if env_value is None else ("from-file",)))
    config = write(cwd / "config.yaml", f"admin:\n  endpoint: dns:///flyte.example.com\n  proxyCommand:\n{lines}")
    env = {} if env_value is None else {env_name: env_value}
    ours = read_flyte2_settings(env, cwd=cwd, home=home)
    _sdk_platforms(monkeypatch, tmp_path, env)
    theirs = Flyte2Platform.auto(str(config)).proxy_command
    assert ours.proxy_command == tuple(theirs or ()) == PROXY_ARGV
    assert ours.sources["proxy_command"] == (env_name if env_value else f"{config} admin.proxyCommand")


def test_the_sdk_settings_carry_the_proxy_command_and_a_hostile_one_is_one_sentence(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    config = write(home / ".flyte" / "config.yaml",
                   "admin:\n  endpoint: flyte.example.com\n  proxyCommand: flyte-iap generate-token\n")
    got = read_sdk_settings({}, cwd=cwd, home=home)
    # flytekit's reading: a YAML string is not split at spaces (flytekit hands the string itself to
    # subprocess, which finds no such program; ours says so naming it), only a comma list would be
    assert got.proxy_command == ("flyte-iap generate-token",) and got.sources["proxy_command"].endswith("admin.proxyCommand")
    write(home / ".flyte" / "config.yaml", "admin:\n  endpoint: flyte.example.com\n  proxyCommand:\n    run: flyte-iap\n")
    with pytest.raises(ConfigurationError) as info:
        read_sdk_settings({}, cwd=cwd, home=home)
    assert "admin.proxyCommand" in _one_sentence_naming(info.value, config)
    with pytest.raises(ConfigurationError, match="unclosed quote"):
        read_flyte2_settings({"FLYTE_AUTH_PROXY_COMMAND": "flyte-iap 'generate"}, cwd=cwd, home=tmp_path / "nohome")
    # the token command is read the same way (flyte's _as_argv): a JSON array is that array
    assert read_flyte2_settings({"FLYTE_AUTH_COMMAND": '["uctl", "get-token", "a b"]'}, cwd=cwd,
                                home=tmp_path / "nohome").command == ("uctl", "get-token", "a b")
