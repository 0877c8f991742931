"""A real kernel (jupyter_client's KernelManager + this venv's ipykernel), watched on iopub as a
frontend watches it, and able to send what a frontend's widget manager sends (comm messages)."""

from __future__ import annotations

import os
import queue
import sys
import time
from typing import Any

import pytest

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

    def collect_until(self, predicate, timeout: float, *, since: int = 0) -> dict[str, Any]:
        """Read iopub until a message satisfies ``predicate`` (bounded by ``timeout``); ``since``: look only
        at messages from that index of ``messages`` on (a later login's panel, not an earlier one's)."""
        for message in self.messages[since:]:
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

    def send_execute(self, code: str, **kwargs: Any) -> str:
        """Send a cell without waiting for it (a frontend's Run All); return its msg_id."""
        return self.kc.execute(code, **kwargs)

    def shell_reply(self, msg_id: str, timeout: float) -> dict[str, Any]:
        """The execute_reply of ``msg_id`` (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no reply in time")
            try:
                reply = self.kc.get_shell_msg(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def comm_id_of(self, dom_class: str, timeout: float = 30, *, since: int = 0) -> str:
        """The comm of the widget model carrying ``dom_class`` (its comm_open, or the update adding it)."""
        opened = self.collect_until(
            lambda m: m["msg_type"] in ("comm_open", "comm_msg")
            and dom_class in (m["content"].get("data", {}).get("state", {}).get("_dom_classes") or ()), timeout,
            since=since)
        return opened["content"]["comm_id"]

    def comm_send(self, comm_id: str, data: dict[str, Any]) -> None:
        """What a widget manager sends for a click or an edit (a comm_msg on the shell channel)."""
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.kc.shell_channel.send(msg)

    def click(self, comm_id: str) -> None:
        self.comm_send(comm_id, {"method": "custom", "content": {"event": "click"}})

    def type_into(self, comm_id: str, value: str) -> None:
        self.comm_send(comm_id, {"method": "update", "state": {"value": value}, "buffer_paths": []})

    def printed(self, msg_id: str) -> str:
        """What the cell ``msg_id`` printed (its stream messages, in order)."""
        return "".join(m["content"]["text"] for m in self.messages
                       if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id)

    def panel_of(self, msg_id: str) -> str:
        """The display_id of the login panel the cell ``msg_id`` showed."""
        for m in self.messages:
            if (m["msg_type"] == "display_data" and m["parent_header"].get("msg_id") == msg_id
                    and WIDGET_VIEW in m["content"]["data"]):
                return str(m["content"]["transient"]["display_id"])
        raise AssertionError("that cell showed no login panel")

    def panel_texts(self, display_id: str) -> list[str]:
        """Every version of a panel's text/plain fallback, in order (the last is what a saved notebook keeps)."""
        return [m["content"]["data"]["text/plain"] for m in self.messages
                if m["msg_type"] in ("display_data", "update_display_data")
                and m["content"].get("transient", {}).get("display_id") == display_id]

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def comm_values(message: dict[str, Any]) -> str:
    if message["msg_type"] not in ("comm_msg", "comm_open"):
        return ""
    data = message["content"].get("data", {})
    return str(data.get("state", {}).get("value", ""))


def kernel_env(tmp_path: Any) -> dict[str, str]:
    """The kernel's environment: an empty HOME and cache, no keyring, no Flyte or Jupyter settings."""
    env = dict(os.environ)
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    for name in list(env):
        if name.startswith(("FLYTE_", "FLYTECTL_", "JPY_", "JUPYTER_")):
            env.pop(name)
    return env
