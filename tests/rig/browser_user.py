"""The BROWSER command of the test rig: ``python browser_user.py <url>``.

Used through the ``BROWSER`` environment variable, so code under test that calls
``webbrowser.open(url)`` is driven for real. Like a real browser launcher it returns at once (exit 0)
and completes the login in a detached process (a new session): that process follows the URL through
the IdP's login and consent pages as ``AuthCodeUser`` does, GETs the final loopback redirect and
writes a JSON outcome file.

Settings (environment):
  FLYTEAUTH_RIG_ACTION    approve (default) | deny | abort
  FLYTEAUTH_RIG_USER      username (default alice)
  FLYTEAUTH_RIG_PASSWORD  password (default wonderland)
  FLYTEAUTH_RIG_RESULT    path of the JSON outcome file (required to learn the outcome)
  FLYTEAUTH_RIG_TIMEOUT   overall seconds for the detached run (default 60)

Outcome: ``{"status": "ok"|"login_error"|"error", "final_url": <redirect URL, code redacted>,
"error": <message>, "redirect_status": <status of the loopback GET or null>}``; the detached
process writes its pid to ``<result>.pid`` first so a test can end it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

_CHILD_FLAG = "--detached-child"


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def redact(url: str) -> str:
    """Hide the authorization code (a secret) but keep its presence visible."""
    return re.sub(r"([?&]code=)[^&#]*", r"\1REDACTED", url)


def _child(url: str) -> int:
    result = os.environ.get("FLYTEAUTH_RIG_RESULT", "")
    if result:
        Path(result + ".pid").write_text(str(os.getpid()))
    timeout = float(os.environ.get("FLYTEAUTH_RIG_TIMEOUT", "60"))

    def give_up() -> None:  # the whole run is bounded even if a server never answers
        if result:
            _write_json(result, {"status": "error", "final_url": None, "redirect_status": None,
                                 "error": f"browser_user did not finish within {timeout:.0f} s"})
        os._exit(3)

    timer = threading.Timer(timeout, give_up)
    timer.daemon = True
    timer.start()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ -> `import rig`
    from rig.user import AuthCodeUser, LoginPageError  # noqa: PLC0415

    user = AuthCodeUser(timeout=min(10.0, timeout))
    outcome: dict = {"status": "error", "final_url": None, "error": None, "redirect_status": None}
    try:
        final = user.follow(
            url,
            username=os.environ.get("FLYTEAUTH_RIG_USER", "alice"),
            password=os.environ.get("FLYTEAUTH_RIG_PASSWORD", "wonderland"),
            action=os.environ.get("FLYTEAUTH_RIG_ACTION", "approve"),
        )
        outcome.update(status="ok", final_url=redact(final), redirect_status=user.last_redirect_status)
    except LoginPageError as exc:
        outcome.update(status="login_error", error=exc.text, final_url=redact(exc.url))
    except Exception as exc:  # noqa: BLE001 - reported in the outcome file
        outcome.update(error=f"{type(exc).__name__}: {exc}"[:500])
    if result:
        _write_json(result, outcome)
    os._exit(0)


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[1] == _CHILD_FLAG:
        return _child(argv[2])
    if len(argv) != 2:
        print("usage: browser_user.py URL", file=sys.stderr)
        return 2
    result = os.environ.get("FLYTEAUTH_RIG_RESULT", "")
    log = open(result + ".log", "ab") if result else subprocess.DEVNULL  # noqa: SIM115
    try:
        subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), _CHILD_FLAG, argv[1]],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
        )
    finally:
        if log is not subprocess.DEVNULL:
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
