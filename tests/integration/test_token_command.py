"""``flyteauth-token`` (DESIGN.md pinned 15) as a real subprocess against tests/idp and the FlyteAdmin stand-in.

The command and this test share one cache: the rig's file keyring (``rig.file_keyring``), selected in
the child by ``PYTHON_KEYRING_BACKEND``, and one lock directory (``XDG_CACHE_HOME``). HOME and the
working directory are empty temporary folders, so no developer configuration or keyring is read.
Outcomes: the token (console script and ``python -m``), the header format, no session, expired ->
refreshed silently, the fast path's token is the full path's and a token near expiry is left to the
full path, ``--login`` (device code on stderr), and flytekit's own ``ExternalCommand`` mode using the
command.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from rig.file_keyring import FileKeyring, child_env
from rig.sign_in import device_login

from flyteauth_jupyter.stores import EXPIRES_AT, FLYTE2_TOKENS, KeyringStore

pytestmark = pytest.mark.idp

SCRIPT = Path(sys.executable).with_name("flyteauth-token")
RUN_TIMEOUT = 60


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A file keyring shared with the child, an empty HOME and cwd, and the child's environment."""
    home = tmp_path / "home"
    home.mkdir()
    path = tmp_path / "keyring.json"
    env = child_env(path, home=home, cache_home=tmp_path / "cache")
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])  # the same lock directory in this process
    monkeypatch.chdir(home)
    return {"env": env, "keyring": FileKeyring(path), "cwd": home}


def run(cache: dict[str, Any], *args: str, module: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "flyteauth_jupyter.token", *args] if module else [str(SCRIPT), *args]
    kwargs.setdefault("timeout", RUN_TIMEOUT)
    return subprocess.run(argv, env=cache["env"], cwd=cache["cwd"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, **kwargs)


def api(admin: Any, headers: dict[str, str]) -> int:
    with requests.Session() as s:
        s.trust_env = False
        return s.get(admin.url("/api/v1/projects"), headers=headers, timeout=10).status_code


def test_token_and_header_formats_after_a_login(flyteadmin, device_user, cache):
    creds = device_login(flyteadmin, device_user, KeyringStore(keyring=cache["keyring"]))
    flyteadmin.reset_requests()
    script = run(cache, "--endpoint", flyteadmin.endpoint)
    assert (script.returncode, script.stdout, script.stderr) == (0, creds.access_token + "\n", "")
    assert sum(flyteadmin.requests.values()) == 0  # a fresh token costs no request at all
    # curl -H "Authorization: Bearer $(flyteauth-token)"
    assert api(flyteadmin, {"Authorization": f"Bearer {script.stdout.strip()}"}) == 200

    module = run(cache, "--endpoint", flyteadmin.service, "--insecure", "--format", "header", module=True)
    assert module.returncode == 0 and module.stderr == ""
    assert module.stdout == f"flyte-authorization: Bearer {creds.access_token}\n"  # the server's header key
    key, _, value = module.stdout.strip().partition(": ")
    assert api(flyteadmin, {key: value}) == 200

    as_json = json.loads(run(cache, "--endpoint", flyteadmin.endpoint, "--format", "json").stdout)
    assert as_json["access_token"] == creds.access_token and as_json["endpoint"] == flyteadmin.service

    # without --endpoint: flytekit's configuration, as %flyte_login reads it
    cache["env"]["FLYTE_PLATFORM_URL"] = flyteadmin.service
    cache["env"]["FLYTE_PLATFORM_INSECURE"] = "true"
    assert run(cache).stdout == creds.access_token + "\n"
    del cache["env"]["FLYTE_PLATFORM_URL"], cache["env"]["FLYTE_PLATFORM_INSECURE"]
    # ... or the Flyte 2 SDK's (admin.endpoint in ./.flyte/config.yaml)
    (cache["cwd"] / ".flyte").mkdir()
    (cache["cwd"] / ".flyte" / "config.yaml").write_text(
        f"admin:\n  endpoint: dns:///{flyteadmin.service}\n  insecure: true\n", encoding="utf-8")
    assert run(cache).stdout == creds.access_token + "\n"


def test_no_session_is_one_sentence_on_stderr_and_exit_1(flyteadmin, cache):
    flyteadmin.reset_requests()
    result = run(cache, "--endpoint", flyteadmin.endpoint)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and flyteadmin.service in result.stderr
    assert "flyteauth-token --login" in result.stderr and len(result.stderr) <= 500
    # no configuration at all: the same contract
    bare = run(cache)
    assert bare.returncode == 1 and bare.stdout == "" and bare.stderr.count("\n") == 1


def test_expired_token_is_refreshed_silently_and_saved_for_everyone(flyteadmin, device_user, cache):
    backend = cache["keyring"]
    creds = device_login(flyteadmin, device_user, KeyringStore(keyring=backend))
    backend.set_password(flyteadmin.service, EXPIRES_AT, str(int(time.time()) - 5))  # the cache says: expired
    result = run(cache, "--endpoint", flyteadmin.endpoint)
    assert result.returncode == 0 and result.stderr == ""
    fresh = result.stdout.strip()
    assert fresh and fresh != creds.access_token
    assert api(flyteadmin, {"Authorization": f"Bearer {fresh}"}) == 200
    # the rotated pair is in both SDK layouts, so the notebook, flytekit and flyte all use it
    saved = KeyringStore(keyring=backend).load(flyteadmin.service)
    assert saved.access_token == fresh and saved.refresh_token and saved.refresh_token != creds.refresh_token
    assert json.loads(backend.get_password(flyteadmin.service, FLYTE2_TOKENS)) == {
        "access_token": fresh, "refresh_token": saved.refresh_token}
    # and the next run prints the same token without another refresh
    assert run(cache, "--endpoint", flyteadmin.endpoint).stdout.strip() == fresh


def test_the_fast_path_prints_the_full_paths_token_and_leaves_a_token_near_expiry_to_it(flyteadmin, device_user, cache):
    """Issue 19.2: a fresh cached token is printed by the fast path (token.cached_token), and it is the
    token the full path prints (``--format json`` always takes the full path); one within its refresh
    margin, not yet expired, is refreshed by the full path."""
    backend = cache["keyring"]
    creds = device_login(flyteadmin, device_user, KeyringStore(keyring=backend))
    fast = run(cache, "--endpoint", flyteadmin.endpoint)
    full = json.loads(run(cache, "--endpoint", flyteadmin.endpoint, "--format", "json").stdout)
    assert (fast.returncode, fast.stderr) == (0, "")
    assert fast.stdout == full["access_token"] + "\n" == creds.access_token + "\n"
    backend.set_password(flyteadmin.service, EXPIRES_AT, str(int(time.time()) + 30))  # margin 60 s: due, not expired
    flyteadmin.reset_requests()
    refreshed = run(cache, "--endpoint", flyteadmin.endpoint)
    assert refreshed.returncode == 0 and refreshed.stderr == ""
    fresh = refreshed.stdout.strip()
    assert fresh and fresh != creds.access_token
    assert api(flyteadmin, {"Authorization": f"Bearer {fresh}"}) == 200
    assert run(cache, "--endpoint", flyteadmin.endpoint).stdout.strip() == fresh  # fast again


def test_login_runs_a_device_sign_in_on_stderr(flyteadmin, device_user, cache):
    argv = [str(SCRIPT), "--endpoint", flyteadmin.endpoint, "--login"]
    with subprocess.Popen(argv, env=cache["env"], cwd=cache["cwd"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        try:
            line = child.stderr.readline()  # the prompt, before any token exists
            match = re.search(r"open (\S+) in a browser and enter the code (\S+) ", line)
            assert match, line
            uri, code = match.groups()
            assert device_user.complete(uri.split("?")[0], code, verification_uri_complete=uri)["status"] == "approved"
            out, err = child.communicate(timeout=RUN_TIMEOUT)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 0
    saved = KeyringStore(keyring=cache["keyring"]).load(flyteadmin.service)
    assert out == saved.access_token + "\n"
    assert "Signed in as alice" in err and saved.access_token not in err + line


def test_flytekit_command_mode_uses_it(flyteadmin, device_user, cache, monkeypatch):
    from flytekit.clients.auth_helper import get_authenticator
    from flytekit.configuration import PlatformConfig

    creds = device_login(flyteadmin, device_user, KeyringStore(keyring=cache["keyring"]))
    for key, value in cache["env"].items():
        monkeypatch.setenv(key, value)
    cfg = PlatformConfig(endpoint=flyteadmin.service, insecure=True, auth_mode="ExternalCommand",
                         command=[str(SCRIPT), "--endpoint", flyteadmin.endpoint])
    authenticator = get_authenticator(cfg, None)
    authenticator.refresh_credentials()  # flytekit runs the command
    assert authenticator._creds.access_token == creds.access_token
    key, value = authenticator.fetch_grpc_call_auth_metadata()
    assert api(flyteadmin, {key: value}) == 200


# ------------------------------------------------------------------ issue 16: hostile configuration files
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"{n}: &{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")]
    + ["admin:", "  endpoint: *i"]
) + "\n"
HOSTILE_FILES = {
    "an alias bomb": lambda path: path.write_text(ALIAS_BOMB),
    "not UTF-8": lambda path: path.write_bytes(b"admin:\n  endpoint: caf\xe9.example.com\n"),
    "a directory": lambda path: path.mkdir(),
    "nested 5,000 levels deep": lambda path: path.write_text("x: " + "[" * 5000 + "]" * 5000 + "\n"),
}
#: a bound for the whole run, not a timing claim: the alias bomb used to keep the command busy past 30 s
HOSTILE_RUN_BOUND = 30


@pytest.mark.parametrize("kind", HOSTILE_FILES)
def test_a_hostile_config_file_is_one_sentence_naming_it_and_never_a_hang(cache, kind, reliability_rule):
    from rig import rules

    config = cache["cwd"] / ".flyte" / "config.yaml"
    config.parent.mkdir(exist_ok=True)
    HOSTILE_FILES[kind](config)
    result = run(cache, timeout=HOSTILE_RUN_BOUND)  # no --endpoint: the command needs the file
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and str(config) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr) <= 500
    reliability_rule(rules.HOSTILE_CONFIG, "flyteauth-token as a subprocess; its config file " + ", ".join(HOSTILE_FILES),
                     f"exit 1 within the {HOSTILE_RUN_BOUND} s bound, one line on stderr naming the file")


def test_an_explicit_endpoint_does_not_read_a_broken_config_file(cache, reliability_rule):
    from rig import rules

    config = cache["cwd"] / ".flyte" / "config.yaml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(ALIAS_BOMB)
    result = run(cache, "--endpoint", "http://127.0.0.1:9", timeout=HOSTILE_RUN_BOUND)
    assert result.returncode == 1 and result.stdout == "" and result.stderr.count("\n") == 1
    assert "No usable sign-in for 127.0.0.1:9" in result.stderr and "config" not in result.stderr
    reliability_rule(rules.HOSTILE_CONFIG, "flyteauth-token --endpoint URL beside a broken config file",
                     "the file is not needed, so not read: the usual answer for the endpoint")


def test_an_explicit_endpoint_does_not_depend_on_an_unparseable_configured_one(cache):
    # the configured endpoint only says whether its other settings (CA, proxy) apply here: a value
    # that is no endpoint at all does not name this one, and is not an error
    cache["env"]["FLYTE_PLATFORM_URL"] = "https://deploy.example/with/a/path"
    result = run(cache, "--endpoint", "http://127.0.0.1:9", timeout=HOSTILE_RUN_BOUND)
    assert result.returncode == 1 and result.stdout == "" and result.stderr.count("\n") == 1
    assert "No usable sign-in for 127.0.0.1:9" in result.stderr, result.stderr


def test_the_sdks_proxy_command_is_honoured(make_flyteadmin, idp, cache, tmp_path):
    """Behind an identity-aware proxy (issue 18.6): the configured proxy command's token goes with the
    requests to the deployment (here: its metadata, for the header key), never to the identity provider."""
    from rig.proxy import ProxyGate, proxy_command, runs

    from flyteauth_jupyter import Credentials

    gate = ProxyGate()
    admin = make_flyteadmin(idp, proxy=gate)
    stored = "a-saved-access-token-0123456789"
    KeyringStore(keyring=cache["keyring"]).save(admin.service, Credentials(stored, expires_in=3600))
    cache["env"]["FLYTE_PLATFORM_URL"] = admin.endpoint
    # without the proxy command the metadata is refused (407), so the server's header key is not known
    refused = run(cache, "--format", "header")
    assert refused.stdout == f"authorization: Bearer {stored}\n" and gate.tokens("http") == [None]

    command = proxy_command(tmp_path)
    cache["env"]["FLYTE_CREDENTIALS_PROXY_COMMAND"] = ",".join(command)  # flytekit's comma-separated list
    gate.reset()
    mark = idp.last_request()
    result = run(cache, "--format", "header")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"flyte-authorization: Bearer {stored}\n", "")
    assert runs(command) == 1 and gate.tokens("http") and None not in gate.tokens("http")
    assert [r for r in idp.requests_seen(mark) if "proxy-authorization" in r["headers"]] == []
