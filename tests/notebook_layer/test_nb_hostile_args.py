"""%flyte_login argument validation against hostile or careless input (issue 10): one sentence each."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError


@pytest.mark.parametrize("value", ["inf", "nan", "-5", "1e400", "0"])
def test_timeout_that_is_not_a_usable_number_of_seconds_is_one_sentence(shell, value: str) -> None:
    result = shell.run_cell(f"%flyte_login --endpoint http://127.0.0.1:9 --timeout {value}")
    error = result.error_in_exec
    assert type(error) is UsageError, error  # not a raw OverflowError, and nan is not accepted
    assert "--timeout must be a number of seconds" in str(error)
    assert "flyte_auth" not in shell.user_ns
