"""In a REAL kernel (jupyter_client + ipykernel), watching iopub as a frontend does.

Proves the pitfall in DESIGN.md: widget and display updates made by the login's background thread
carry the parent header of the cell that started the login, even after a later cell ran (ipykernel 7
attributes a thread's output to the most recent request unless the thread is given its cell's parent).
The device user reads the code from the widget messages, as a person reads it off the screen.
"""

from __future__ import annotations

import html
import os
import queue
import re
import sys
import time
from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.idp

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class Kernel:
    def __init__(self, env: dict[str, str]) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.kernel_spec.argv[0] = sys.executable  # this venv's python, whatever spec is installed
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.messages: list[dict[str, Any]] = []

    def execute(self, code: str, timeout: float = 60) -> str:
        """Run a cell; return its msg_id once its reply and its idle status arrived."""
        msg_id = self.kc.execute(code)
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        assert reply["content"]["status"] == "ok", reply["content"]
        self.collect_until(lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                           and m["parent_header"].get("msg_id") == msg_id, timeout)
        return msg_id

    def collect_until(self, predicate, timeout: float) -> dict[str, Any]:
        """Read iopub until a message satisfies ``predicate`` (bounded by ``timeout``)."""
        for message in self.messages:
            if predicate(message):
                return message
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no matching iopub message in time")
            try:
                message = self.kc.get_iopub_msg(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            self.messages.append(message)
            if predicate(message):
                return message

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def comm_values(message: dict[str, Any]) -> str:
    if message["msg_type"] not in ("comm_msg", "comm_open"):
        return ""
    data = message["content"].get("data", {})
    return str(data.get("state", {}).get("value", ""))


@pytest.fixture
def kernel(tmp_path):
    env = dict(os.environ)
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    for name in list(env):
        if name.startswith(("FLYTE_", "FLYTECTL_", "JPY_", "JUPYTER_")):
            env.pop(name)
    k = Kernel(env)
    yield k
    k.stop()


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
