"""In a REAL kernel (jupyter_client + ipykernel), watching iopub as a frontend does.

Proves the pitfall in DESIGN.md: widget and display updates made by the login's background thread
carry the parent header of the cell that started the login, even after a later cell ran (ipykernel 7
attributes a thread's output to the most recent request unless the thread is given its cell's parent).
The device user reads the code from the widget messages, as a person reads it off the screen.
"""

from __future__ import annotations

import html
import re

import pytest
from nb_kernel import WIDGET_VIEW, comm_values

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.idp


def test_background_updates_carry_the_cells_parent_header(kernel, flyteadmin, device_user):
    login_id = kernel.execute(f"%load_ext flyteauth_jupyter\n%flyte_login --endpoint {flyteadmin.endpoint} --flow device")
    # the cell has finished (reply + idle) while the login waits for the person
    displayed = [m for m in kernel.messages if m["msg_type"] == "display_data"
                 and m["parent_header"].get("msg_id") == login_id]
    assert displayed and WIDGET_VIEW in displayed[0]["content"]["data"]
    assert "text/html" in displayed[0]["content"]["data"]  # the fallback for frontends without widgets

    # the person reads the link and the code off the widget (comm messages to the frontend)
    code_msg = kernel.collect_until(lambda m: "flyteauth-code" in comm_values(m), 30)
    value = comm_values(code_msg)
    user_code = html.unescape(re.search(r'class="flyteauth-code"[^>]*>([^<]+)<', value).group(1))
    link_msg = kernel.collect_until(lambda m: 'target="_blank"' in comm_values(m), 30)
    verification_uri = html.unescape(re.search(r'>([^<]+)</a>', comm_values(link_msg)).group(1))

    # a later cell runs: the kernel's "current parent" is now that cell
    later_id = kernel.execute("later = 1 + 1")

    device_user.complete(verification_uri, user_code)
    done = kernel.collect_until(lambda m: "Signed in as" in comm_values(m), 60)
    assert done["parent_header"]["msg_id"] == login_id, "the update was attributed to the later cell"
    assert done["parent_header"]["msg_id"] != later_id

    # the HTML fallback was rewritten in place for the same cell
    updated = kernel.collect_until(
        lambda m: m["msg_type"] == "update_display_data" and "Signed in as" in str(m["content"]["data"].get("text/html")),
        30,
    )
    assert updated["parent_header"]["msg_id"] == login_id
    # every message the login thread sent after the cell ended carries that cell's parent
    for message in kernel.messages:
        if message["msg_type"] in ("comm_msg", "update_display_data") and message["parent_header"]:
            assert message["parent_header"]["msg_id"] == login_id, message["msg_type"]

    # a later cell that needs the token just works, and nothing printed holds it
    check_id = kernel.execute("token = flyte_auth.get_credentials().access_token\nprint(len(token) > 10)")
    printed = [m["content"]["text"] for m in kernel.messages
               if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == check_id]
    assert "".join(printed).strip() == "True"
