"""%flyte_login argument validation against hostile or careless input (issue 10): one sentence each."""

from __future__ import annotations

import pytest
from flyteauth_jupyter.errors import ConfigurationError


@pytest.mark.parametrize("value", ["inf", "nan", "-5", "1e400", "0"])
def test_timeout_that_is_not_a_usable_number_of_seconds_is_one_sentence(shell, value: str) -> None:
    result = shell.run_cell(f"%flyte_login --endpoint http://127.0.0.1:9 --timeout {value}")
    error = result.error_in_exec
    assert type(error) is ConfigurationError, error  # not a raw OverflowError, and nan is not accepted
    assert error._render_traceback_() == [f"ConfigurationError: {error}"]  # one line, no traceback
    assert "--timeout must be a number of seconds" in str(error)
    assert "flyte_auth" not in shell.user_ns


# ------------------------------------------------------------------ issue 16: a broken config file
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"{n}: &{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")]
    + ["admin:", "  endpoint: *i"]
) + "\n"


@pytest.mark.parametrize("broken", ["an alias bomb", "not UTF-8"])
def test_login_with_an_explicit_endpoint_ignores_a_broken_config_file(shell, memory_keyring, isolated_config, broken,
                                                                       reliability_rule) -> None:
    from rig import rules

    config = isolated_config / ".flyte" / "config.yaml"
    config.parent.mkdir()
    if broken == "an alias bomb":
        config.write_text(ALIAS_BOMB)
    else:
        config.write_bytes(b"admin:\n  endpoint: caf\xe9.example.com\n")
    shell.run_line_magic("config", "FlyteAuthMagics.display = 'text'")
    # without --endpoint the file is needed: one sentence naming it, no traceback
    result = shell.run_cell("%flyte_login")
    assert type(result.error_in_exec) is ConfigurationError and str(config) in str(result.error_in_exec)
    assert "flyte_auth" not in shell.user_ns
    # with --endpoint it is not: the sign-in starts (and fails later, at the endpoint, which is not there)
    result = shell.run_cell("%flyte_login --endpoint http://127.0.0.1:9 --flow device --no-cache --timeout 5")
    assert result.error_in_exec is None, result.error_in_exec
    session = shell.user_ns["flyte_auth"]
    assert session.endpoint == "127.0.0.1:9"
    reliability_rule(rules.HOSTILE_CONFIG, "%flyte_login --endpoint URL beside a broken ~/.flyte/config.yaml",
                     "the sign-in starts (the panel notes the skipped file once); without --endpoint: one "
                     "ConfigurationError sentence naming the file")
