"""The login widget in a real JupyterLab, driven by Debian's chromium through Playwright.

The rig (tests/browser/conftest.py) runs one JupyterLab server for this module, its kernels signing
in to the session's FlyteAdmin stand-in and IdP, and one headless chromium that may talk to loopback
only. The tests use the notebook as a person does (click a cell, Shift+Enter, click the widget's
buttons, follow its link, Ctrl+S) and read the widget's DOM:

* ``.flyteauth-code`` (the user code), ``.flyteauth-status`` with ``data-phase`` (the status line)
  and the ``<a target="_blank">`` link: the HTML that render.py draws into ipywidgets' HTML widgets,
  looked up inside the widget's ``.widget-vbox`` (never the HTML fallback of the same output);
* the widget and its buttons by their stable classes (flyteauth-widget, flyteauth-cancel, flyteauth-retry).

1. Device login: the widget shows the code and a link to the IdP; a person clicks the link (a new
   tab), checks the code the IdP shows, signs in and allows; the widget says "Signed in as ..."; a
   later cell gets the header; the notebook saved by JupyterLab (Ctrl+S, widget state included)
   passes ``python -m flyteauth_jupyter.scan`` given the real tokens. Then the kernel restarts: the
   old panel keeps its last state as static text ("Signed in as alice", one line saying the kernel
   has gone), with no broken-link icon and no button that needs the kernel. Screenshots of the
   widget go to .test-artifacts/screenshots/ (``make screenshots`` refreshes docs/screenshots/ for
   the README).
2. Cancel stops the login (status "Cancelled"); Retry starts a new one with a different user code.
3. While the login waits, the kernel runs another cell (``1+1`` gives ``2``) and the widget keeps
   updating (its countdown ticks) after that cell.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import nbformat
import pytest
from browser_pages import HEADER_KEY, ACTIVE, LOGIN_TIMEOUT_MS, TIMEOUT_MS, approve_in_browser, shoot
from playwright.sync_api import expect

from flyteauth_jupyter.notebook.widget import GONE_LINE

pytestmark = [pytest.mark.browser, pytest.mark.idp, pytest.mark.timeout(300)]


# --------------------------------------------------------------------------------------- 1
def test_device_login_in_jupyterlab(lab: Any, chromium: Any, notebook: Any, idp: Any) -> None:
    nb = notebook("device-login.ipynb", [
        "%load_ext flyteauth_jupyter",
        "%flyte_login --flow device",
        "creds = flyte_auth.wait(60)\n"
        "key, value = flyte_auth.fetch_grpc_call_auth_metadata()\n"
        "assert creds.access_token and value == 'Bearer ' + creds.access_token\n"
        "print(key)",
    ])
    nb.run(0)
    nb.run(1)
    nb.wait_executed(1)  # the login cell returned at once ...
    user_code = nb.user_code(1)  # ... with a live widget showing the code
    status = nb.status(1)
    expect(status).to_have_attribute("data-phase", "waiting")
    link = nb.widget(1).locator("a[href]")
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("target", "_blank")
    href = link.get_attribute("href") or ""
    assert href.startswith(idp.issuer + "/"), href
    assert link.inner_text().startswith(idp.issuer + "/"), link.inner_text()
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    nb.select(0)
    shoot(nb.cell(1), "jupyterlab-device-waiting.png")

    # a person clicks the link: a new tab on the IdP
    with chromium.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.set_default_timeout(TIMEOUT_MS)
    approve_in_browser(tab, user_code)
    tab.close()

    expect(status).to_have_attribute("data-phase", "signed_in", timeout=LOGIN_TIMEOUT_MS)
    expect(status).to_contain_text("Signed in as alice")
    expect(status).to_contain_text("available as flyte_auth")
    expect(nb.widget(1).locator(".flyteauth-code")).to_have_count(0)  # the code is gone
    expect(nb.button(1, "Cancel")).to_be_hidden()
    nb.select(0)
    shoot(nb.cell(1), "jupyterlab-device-signed-in.png")

    nb.run(2)
    nb.wait_executed(2)
    expect(nb.text_output(2)).to_have_text(HEADER_KEY)

    # Ctrl+S through the UI; wait for JupyterLab's PUT of the file
    saved_path = lab.root / "device-login.ipynb"
    with nb.page.expect_response(
        lambda r: r.request.method == "PUT" and "/api/contents/device-login.ipynb" in r.url
    ) as saved:
        nb.page.keyboard.press("Control+s")
    assert saved.value.status == 200, saved.value.status

    saved_nb = nbformat.read(saved_path, as_version=4)
    # (Shift+Enter on the last cell appended an empty one)
    code = [c for c in saved_nb.cells if c.cell_type == "code" and c.source.strip()]
    assert len(code) == 3, [c.source for c in saved_nb.cells]
    assert all(c.execution_count for c in code)
    assert "Signed in as alice" in str(code[1].outputs)  # the HTML fallback shows the final state
    assert code[2].outputs[0]["text"].strip() == HEADER_KEY
    state = saved_nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any("Signed in as alice" in str(model.get("state")) for model in state.values())

    tokens = lab.stored_tokens()
    assert len(tokens) >= 2, "no token reached the keyring; the exact-value scan would prove nothing"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTEAUTH_SCAN_")}
    args: list[str] = []
    for i, token in enumerate(tokens):
        env[f"FLYTEAUTH_SCAN_TOKEN_{i}"] = token
        args += ["--values-from-env", f"FLYTEAUTH_SCAN_TOKEN_{i}"]
    result = subprocess.run(
        [sys.executable, "-m", "flyteauth_jupyter.scan", "-v", *args, str(saved_path)],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    raw = saved_path.read_text(encoding="utf-8")
    assert not any(token in raw for token in tokens)

    # the kernel restarts (Kernel > Restart): the old panel shows its last state, static, as the
    # saved notebook's HTML does; no broken-link icon per row, no button that needs the kernel
    nb.select(0)
    nb.restart_kernel()
    panel = nb.widget(1)
    expect(panel).to_have_class(re.compile(r"\bjupyter-widgets-disconnected\b"))
    kernel = nb.page.locator(".jp-StatusBar-TextItem[title='Change kernel for device-login.ipynb']")
    expect(kernel).to_have_text(re.compile(r"\| Idle$"), timeout=60_000)  # the new kernel is up
    expect(status).to_be_visible()
    expect(status).to_contain_text("Signed in as alice")
    assert nb.broken_link_icons(1) == 0
    expect(panel.locator(".flyteauth-gone")).to_have_text(GONE_LINE)
    expect(panel.locator(".flyteauth-gone")).to_be_visible()
    for live in panel.locator(".flyteauth-live").all():
        expect(live).to_be_hidden()
    shoot(nb.cell(1), "jupyterlab-kernel-restarted.png")


# --------------------------------------------------------------------------------------- 2
def test_cancel_then_retry(notebook: Any) -> None:
    nb = notebook("cancel-retry.ipynb", [
        "%load_ext flyteauth_jupyter",
        "%flyte_login --flow device --no-cache",  # no saved token from test 1: a real device login
    ])
    nb.run(0)
    nb.run(1)
    first = nb.user_code(1)
    status = nb.status(1)
    expect(status).to_have_attribute("data-phase", "waiting")
    expect(nb.button(1, "Retry")).to_be_hidden()

    nb.button(1, "Cancel").click()
    expect(status).to_have_attribute("data-phase", "cancelled")
    expect(status).to_have_text("Cancelled: The sign-in was cancelled.")
    expect(nb.widget(1).locator(".flyteauth-code")).to_have_count(0)
    expect(nb.button(1, "Cancel")).to_be_hidden()

    nb.button(1, "Retry").click()
    second = nb.user_code(1)
    expect(status).to_have_attribute("data-phase", "waiting")
    assert second != first, (first, second)
    expect(nb.widget(1).locator(".flyteauth-code")).to_have_text(second)

    nb.button(1, "Cancel").click()  # the retried attempt can be cancelled too
    expect(status).to_have_attribute("data-phase", "cancelled")


# --------------------------------------------------------------------------------------- 3
def test_kernel_stays_free_while_login_waits(notebook: Any) -> None:
    nb = notebook("kernel-free.ipynb", [
        "%load_ext flyteauth_jupyter",
        "%flyte_login --flow device --no-cache",
        "1+1",
    ])
    nb.run(0)
    nb.run(1)
    nb.user_code(1)
    status = nb.status(1)
    expect(status).to_have_attribute("data-phase", "waiting")

    nb.run(2)
    nb.wait_executed(2)
    expect(nb.text_output(2)).to_have_text("2")
    assert status.get_attribute("data-phase") in ACTIVE  # the login has not ended
    # and the widget is still live after another cell ran: the countdown moves on
    before = status.inner_text()
    expect(status).not_to_have_text(before, timeout=5_000)
    assert status.get_attribute("data-phase") in ACTIVE

    nb.button(1, "Cancel").click()
    expect(status).to_have_attribute("data-phase", "cancelled")
