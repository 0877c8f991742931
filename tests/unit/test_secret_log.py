"""The session's DEBUG-log secret scan (tests/rig/secret_log.py) finds a secret that reaches a record,
and only the secrets issued during the run (a separate scan object, not the session's own)."""

from __future__ import annotations

import logging

from rig.secret_log import SessionLogScan


def test_a_logged_secret_is_found_and_reported_without_the_secret():
    scan = SessionLogScan()
    issued = "rt-issued-by-the-idp-0123456789"
    code = "code-issued-by-the-idp-0123456789"
    (scan.directory / "idp-test.secrets").write_text(f"refresh_token\t{issued}\ncode\t{code}\n")
    ours = logging.getLogger("flyteauth_jupyter.test_secret_log")
    rig_http = logging.getLogger("urllib3.test_secret_log")
    for logger in (ours, rig_http):
        logger.addHandler(scan.collector)
    try:
        ours.debug("refreshing with %s", issued)  # a leak
        ours.debug("nothing secret here")
        rig_http.debug("GET /callback?code=%s&state=x", code)  # the rig's browser user: by design
    finally:
        for logger in (ours, rig_http):
            logger.removeHandler(scan.collector)
    leaks, figures = scan.finish()
    assert [(leak.logger, leak.kind) for leak in leaks] == [("flyteauth_jupyter.test_secret_log", "refresh_token")]
    assert issued not in str(leaks[0]) and "rt-i...(31 chars)" in str(leaks[0])
    assert figures["records_scanned"] == 3 and figures["secrets_found"] == 1
    assert logging.getLogger("flyteauth_jupyter").getEffectiveLevel() == logging.DEBUG  # the session's scan is intact


def test_the_session_scan_is_on():
    assert logging.getLogger("flyteauth_jupyter").level == logging.DEBUG
    assert any(type(h).__name__ == "_Collector" for h in logging.getLogger("flyteauth_jupyter").handlers)


def test_a_credentials_token_that_is_one_of_our_literals_is_no_leak():
    """hypothesis draws strings from the package's literals: ``Credentials("FlyteAuthMagics")`` in a
    property test, then a warning naming ``%config FlyteAuthMagics...``, was reported as a leak once."""
    scan = SessionLogScan()
    ours = logging.getLogger("flyteauth_jupyter.test_secret_log")
    ours.addHandler(scan.collector)
    try:
        scan._credential_tokens.update({"FlyteAuthMagics", "at-made-at-run-time-0123456789"})
        ours.warning("set %s (or %%config FlyteAuthMagics.token_cache = 'file')", "FLYTEAUTH_TOKEN_CACHE=file")
        ours.debug("held at-made-at-run-time-0123456789")
    finally:
        ours.removeHandler(scan.collector)
    leaks, _ = scan.finish()
    assert [leak.fingerprint for leak in leaks] == ["at-m...(30 chars)"]
