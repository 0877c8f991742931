"""Issue 17, "the first hour of a real user", in a REAL kernel against the real identity provider.

The user runs the README's cells as a newcomer would and reads the panels' fallback text (what a saved
notebook keeps) and the widget messages off iopub, as a frontend shows them:

* 17.1: a failed or cancelled ``%flyte_login`` never leaves the user worse off: the earlier working
  sign-in stays bound to ``flyte_auth``, the failed panel says so in one line, the earlier panel says
  where the name points, and ``%flyte_status`` lists both sessions with the name that points to each.
* 17.3: Cancel during a ``--wait`` cell ends it with the documented ``LoginCancelledError``, shown as
  one line (the error reply's ``ename`` and a one-line traceback), not a UsageError.
* 17.5: the signed-in line and ``%flyte_status`` name where the tokens are kept (here: no keyring,
  so the private file cache, with its path).
* 17.7: a saved sign-in the identity provider refuses (its refresh token was revoked) makes the new
  sign-in say why in one line.
* paste-back without code in a cell: ``flyte_auth.submit_redirect()`` prompts for the address
  (hidden input), so no cell and no output holds the authorization code.
"""

from __future__ import annotations

import html
import json
import re
import socket
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from nb_kernel import comm_values

pytestmark = pytest.mark.idp

BOUND = 60  # generous bounds for a loaded machine; the tests wait on messages, never on a guess
STORE_PHRASE = "tokens kept in the private file ~/cache/flyteauth_jupyter/tokens/"  # kernel_env: HOME=tmp, cache=tmp/cache


def sign_in(kernel, endpoint: str, device_user, *, options: str = "") -> str:
    """``%flyte_login --flow device`` completed by the device user reading the panel; the cell's msg_id."""
    since = len(kernel.messages)
    cell = kernel.execute(f"%flyte_login --endpoint {endpoint} --flow device {options}")
    value = comm_values(kernel.collect_until(lambda m: "flyteauth-code" in comm_values(m), BOUND, since=since))
    user_code = html.unescape(re.search(r'class="flyteauth-code"[^>]*>([^<]+)<', value).group(1))
    link = comm_values(kernel.collect_until(lambda m: 'target="_blank"' in comm_values(m), BOUND, since=since))
    device_user.complete(html.unescape(re.search(r">([^<]+)</a>", link).group(1)), user_code)
    kernel.collect_until(lambda m: "Signed in as alice" in comm_values(m), BOUND, since=since)
    return cell


def closed_port() -> int:
    """A loopback port nobody listens on (bound and released: refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_lines(kernel) -> list[str]:
    return kernel.printed(kernel.execute("%flyte_status")).strip().splitlines()


def settled(kernel, display_id: str, needle: str) -> str:
    """The panel's fallback text once it contains ``needle`` (bounded)."""
    kernel.collect_until(lambda m: m["msg_type"] == "update_display_data"
                         and m["content"].get("transient", {}).get("display_id") == display_id
                         and needle in m["content"]["data"]["text/plain"], BOUND)
    return kernel.panel_texts(display_id)[-1]


def test_the_signed_in_line_and_status_name_where_the_tokens_are(kernel, flyteadmin, device_user):
    kernel.execute("%load_ext flyteauth_jupyter")
    panel = kernel.panel_of(sign_in(kernel, flyteadmin.endpoint, device_user))
    service = flyteadmin.endpoint.split("://", 1)[1]
    # 17.5: the signed-in line names the store, in the fallback text, the HTML and the widget
    signed_in = settled(kernel, panel, STORE_PHRASE)
    assert signed_in.splitlines()[-1].startswith("Signed in as alice"), signed_in
    last_html = [m["content"]["data"]["text/html"] for m in kernel.messages if m["msg_type"] == "update_display_data"
                 and m["content"]["transient"]["display_id"] == panel][-1]
    assert STORE_PHRASE in html.unescape(last_html)
    assert any(STORE_PHRASE in html.unescape(comm_values(m)) for m in kernel.messages)
    status = status_lines(kernel)
    assert len(status) == 1 and status[0].startswith(f"flyte_auth: {service}") and "tokens in the private file ~/cache/" in status[0]


def test_a_failed_login_keeps_the_working_session(kernel, flyteadmin, device_user):
    kernel.execute("%load_ext flyteauth_jupyter")
    first = sign_in(kernel, flyteadmin.endpoint, device_user)
    service = flyteadmin.endpoint.split("://", 1)[1]
    old_panel = kernel.panel_of(first)

    # 17.1: a sign-in to an endpoint nobody answers fails ...
    dead = f"127.0.0.1:{closed_port()}"
    failing = kernel.execute(f"%flyte_login --endpoint http://{dead} --flow device --timeout 30")
    new_panel = kernel.panel_of(failing)
    failed = settled(kernel, new_panel, "still refers to")
    # ... and says in one line that the name kept the earlier sign-in
    assert f"`flyte_auth` still refers to your earlier sign-in to {service} (as alice)." in failed, failed
    check = kernel.execute("print(flyte_auth.endpoint, flyte_auth.status, flyte_auth.view.subject,"
                           " len(flyte_auth.get_credentials().access_token) > 10)")
    assert kernel.printed(check).split() == [service, "signed_in", "alice", "True"]
    # the earlier panel claims the name again (and never said it was replaced for good)
    old_text = kernel.panel_texts(old_panel)[-1]
    assert "available as `flyte_auth`" in old_text and "now refers to" not in old_text, old_text
    # %flyte_status: every session the kernel holds, and which name points where
    status = status_lines(kernel)
    assert status[0].startswith(f"flyte_auth: {service} · as alice"), status
    assert any(line.startswith("(not bound;") and dead in line and "error" in line for line in status[1:]), status


def test_cancel_during_wait_raises_one_line_and_keeps_the_working_session(kernel, flyteadmin, device_user):
    kernel.execute("%load_ext flyteauth_jupyter")
    sign_in(kernel, flyteadmin.endpoint, device_user)
    service = flyteadmin.endpoint.split("://", 1)[1]

    since = len(kernel.messages)
    login = kernel.send_execute(
        f"%flyte_login --endpoint {flyteadmin.endpoint} --flow device --no-cache --wait --timeout 120",
        stop_on_error=False)
    cancel = kernel.comm_id_of("flyteauth-cancel", since=since)
    kernel.collect_until(lambda m: "flyteauth-code" in comm_values(m), BOUND, since=since)
    clicked = time.monotonic()
    kernel.click(cancel)
    reply = kernel.shell_reply(login, BOUND)["content"]
    print(f"Cancel click to the --wait cell's one-line error, name given back: {time.monotonic() - clicked:.2f} s")
    # 17.3: the documented exception, one line, no wall of traceback
    assert reply["status"] == "error" and reply["ename"] == "LoginCancelledError", reply
    assert "cancelled by the user" in reply["evalue"]
    assert reply["traceback"] == [f"LoginCancelledError: {reply['evalue']}"], reply["traceback"]
    # 17.1: the cancelled attempt gave the name back, and its error says so
    assert f"`flyte_auth` still refers to your earlier sign-in to {service} (as alice)." in reply["evalue"]
    check = kernel.execute("print(flyte_auth.status, flyte_auth.view.subject)")
    assert kernel.printed(check).split() == ["signed_in", "alice"]

    # Run All: a later cell waits on flyte_auth while a new attempt runs; Cancel ends that wait with the
    # attempt's error, and the cell after it has the earlier sign-in
    since = len(kernel.messages)
    kernel.execute(f"%flyte_login --endpoint {flyteadmin.endpoint} --flow device --no-cache --timeout 120")
    waiting = kernel.send_execute("flyte_auth.get_credentials()", stop_on_error=False)
    cancel = kernel.comm_id_of("flyteauth-cancel", since=since)
    kernel.collect_until(lambda m: "flyteauth-code" in comm_values(m), BOUND, since=since)
    # the person clicks once that cell runs (a click sent before it starts is the kernel's to queue)
    kernel.collect_until(lambda m: m["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == waiting,
                         BOUND, since=since)
    kernel.click(cancel)
    reply = kernel.shell_reply(waiting, BOUND)["content"]
    assert reply["ename"] == "LoginCancelledError" and len(reply["traceback"]) == 1, reply
    check = kernel.execute("print(flyte_auth.status, flyte_auth.view.subject)")
    assert kernel.printed(check).split() == ["signed_in", "alice"]


def test_a_refused_saved_sign_in_says_why(kernel, make_idp, make_flyteadmin, device_user, tmp_path):
    idp = make_idp(at_ttl=2)  # the saved access token is soon due, so a new sign-in tries the refresh token
    admin = make_flyteadmin(idp)
    service = admin.endpoint.split("://", 1)[1]
    kernel.execute("%load_ext flyteauth_jupyter")
    sign_in(kernel, admin.endpoint, device_user)

    # the identity provider forgets the saved sign-in: its refresh token is revoked (read from the kernel's cache)
    from flyteauth_jupyter.stores import FileStore

    saved = FileStore(Path(tmp_path) / "cache" / "flyteauth_jupyter" / "tokens").load(service)
    assert saved is not None and saved.refresh_token and saved.expires_at is not None
    revoked = requests.post(idp.revocation_endpoint, data={"token": saved.refresh_token, "client_id": "jupyter-native",
                                                           "token_type_hint": "refresh_token"}, timeout=10)
    assert revoked.status_code == 200
    for _ in range(100):  # until the saved access token has expired (its expiry is known: a clock, not a guess)
        if time.time() > saved.expires_at + 0.1:
            break
        time.sleep(0.1)

    since = len(kernel.messages)
    again = kernel.execute(f"%flyte_login --endpoint {admin.endpoint} --flow device --timeout 60")
    kernel.collect_until(lambda m: "flyteauth-code" in comm_values(m), BOUND, since=since)  # a new sign-in is needed
    why = f"The saved sign-in to {service} was refused by the identity provider (invalid_grant); sign in again."
    assert why in settled(kernel, kernel.panel_of(again), "refused")
    assert any(why in html.unescape(comm_values(m)) for m in kernel.messages[since:])


def test_paste_back_by_prompt_keeps_no_code_in_a_cell(kernel, flyteadmin, auth_code_user):
    kernel.execute("%load_ext flyteauth_jupyter\n%config FlyteAuthMagics.display = 'html'\n"
                   "%config FlyteAuthMagics.open_browser = False")
    kernel.execute(f"%flyte_login --endpoint {flyteadmin.endpoint} --flow pkce --no-cache --timeout 120")
    shown = kernel.collect_until(lambda m: m["msg_type"] in ("display_data", "update_display_data")
                                 and "flyteauth-paste-call" in m["content"]["data"].get("text/html", ""), BOUND)
    hint = shown["content"]["data"]["text/html"]
    assert "<code>flyte_auth.submit_redirect()</code>" in hint, hint
    href = html.unescape(re.search(r'href="([^"]+)"', hint).group(1))
    final = auth_code_user.follow(href, get_redirect=False)  # the laptop's browser ends on a dead page
    code = parse_qs(urlsplit(final).query)["code"][0]

    paste = kernel.send_execute("flyte_auth.submit_redirect()", allow_stdin=True)
    prompt = kernel.kc.get_stdin_msg(timeout=BOUND)
    assert prompt["msg_type"] == "input_request" and prompt["content"]["password"] is True  # hidden, never echoed
    kernel.kc.input(final)
    assert kernel.shell_reply(paste, BOUND)["content"]["status"] == "ok"
    check = kernel.execute("print(flyte_auth.wait(60) is not None, flyte_auth.status)")
    assert kernel.printed(check).split() == ["True", "signed_in"]
    assert code not in json.dumps([m["content"] for m in kernel.messages], default=str)
