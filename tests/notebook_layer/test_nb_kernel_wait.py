"""A cell that BLOCKS on a login keeps the panel live, in a real kernel (jupyter_client + ipykernel 7).

The frontend's part is played as a widget manager plays it: the test reads the panel's widget models
from iopub (comm_open, by their stable CSS classes) and sends a button click or a typed value as a
``comm_msg`` on the shell channel, while ``%flyte_login --wait`` is still running. Without the comm
pump (control.CommPump) those messages would queue behind the cell until its timeout (here 120 s); the
tests wait far less than that (a generous bound on a loaded machine) and print what they measured.

* Cancel during ``--wait``: the cell ends with the one-sentence LoginCancelledError, no token, and a
  cell sent while the login blocked runs after it (held back, never run inside the wait).
* Submit during ``--wait``: the address a browser on another machine ended on, typed into the paste
  field and submitted, completes the PKCE login; the cell ends signed in and no message holds the code.
"""

from __future__ import annotations

import html
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from nb_kernel import comm_values

pytestmark = pytest.mark.idp

LOGIN_TIMEOUT = 120  # the login's own deadline: the cell must end long before it
BOUND = 30  # generous: a loaded machine, yet far from LOGIN_TIMEOUT


def test_cancel_click_ends_a_blocking_wait(kernel, flyteadmin):
    kernel.execute("%load_ext flyteauth_jupyter")
    # stop_on_error=False: the cancelled cell must not abort the queued one (which Run All would do)
    login = kernel.send_execute(
        f"%flyte_login --endpoint {flyteadmin.endpoint} --flow device --no-cache --wait --timeout {LOGIN_TIMEOUT}",
        stop_on_error=False)
    cancel = kernel.comm_id_of("flyteauth-cancel")
    kernel.collect_until(lambda m: "flyteauth-code" in comm_values(m), BOUND)  # the code is on screen
    later = kernel.send_execute("after = 41 + 1\nprint('later cell ran', after)")  # Run All's next cell

    started = time.monotonic()
    kernel.click(cancel)
    reply = kernel.shell_reply(login, BOUND)
    took = time.monotonic() - started
    print(f"Cancel click to the end of the --wait cell: {took:.2f} s")
    assert took < BOUND
    assert reply["content"]["status"] == "error"
    assert "cancelled by the user" in reply["content"]["evalue"], reply["content"]["evalue"]
    assert "Retry" in reply["content"]["evalue"]

    # the cell sent meanwhile ran only after the login cell, and normally
    assert kernel.shell_reply(later, BOUND)["content"]["status"] == "ok"
    ran = kernel.collect_until(lambda m: m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == later, BOUND)
    assert ran["content"]["text"].strip() == "later cell ran 42"
    inputs = [m["parent_header"]["msg_id"] for m in kernel.messages if m["msg_type"] == "execute_input"]
    assert inputs.index(login) < inputs.index(later)

    check = kernel.execute("print(flyte_auth.status, flyte_auth.view.subject)")
    printed = "".join(m["content"]["text"] for m in kernel.messages
                      if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == check)
    assert printed.strip() == "cancelled None"  # no token was issued


def test_submit_with_a_pasted_address_completes_a_blocking_wait(kernel, flyteadmin, auth_code_user):
    kernel.execute("%load_ext flyteauth_jupyter\n%config FlyteAuthMagics.open_browser = False")
    login = kernel.send_execute(
        f"%flyte_login --endpoint {flyteadmin.endpoint} --flow pkce --no-cache --wait --timeout {LOGIN_TIMEOUT}")
    field = kernel.comm_id_of("flyteauth-paste")
    submit = kernel.comm_id_of("flyteauth-paste-submit")
    link = kernel.collect_until(lambda m: "flyteauth-link" in comm_values(m), BOUND)
    href = html.unescape(re.search(r'href="([^"]+)"', comm_values(link)).group(1))
    final = auth_code_user.follow(href, get_redirect=False)  # the laptop's browser ends on an error page
    code = parse_qs(urlsplit(final).query)["code"][0]

    started = time.monotonic()
    kernel.type_into(field, final)
    kernel.click(submit)
    reply = kernel.shell_reply(login, BOUND)
    took = time.monotonic() - started
    print(f"Submit of the pasted address to the end of the --wait cell: {took:.2f} s")
    assert took < BOUND
    assert reply["content"]["status"] == "ok", reply["content"]

    check = kernel.execute("print(flyte_auth.status, flyte_auth.view.subject)")
    printed = "".join(m["content"]["text"] for m in kernel.messages
                      if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == check)
    assert printed.strip() == "signed_in alice"
    # the code went through the field's comm but no message from the kernel holds it
    assert code not in json.dumps([m["content"] for m in kernel.messages], default=str)
