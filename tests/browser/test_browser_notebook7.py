"""The panel in Notebook 7 (the ``notebook`` package, served by the same Jupyter server as JupyterLab).

Notebook 7 is built from JupyterLab's components and ships the same widget manager, so the panel is
the live ipywidgets view there too; this proves it in its own page, as a person uses it:

1. A device login clicked through: the panel shows the code and link, the person approves in a new
   tab, the panel turns "Signed in as alice" live (no cell runs meanwhile); a later cell gets the
   header. Screenshot: docs/screenshots/notebook7-device-waiting.png on ``make screenshots``.
2. Cancel during ``%flyte_login --wait``: the blocked cell ends long before the login's timeout.
3. The kernel restarts: both old panels (signed in, cancelled) keep their last state as static text,
   with no broken-link icon and no button; a cell runs in the new kernel.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser_pages import HEADER_KEY, LOGIN_TIMEOUT_MS, TIMEOUT_MS, approve_in_browser, shoot
from playwright.sync_api import expect

from flyteauth_jupyter.notebook.widget import GONE_LINE

pytestmark = [pytest.mark.browser, pytest.mark.idp, pytest.mark.timeout(300)]

WAIT_TIMEOUT = 120
ENDS_WITHIN_MS = 20_000  # generous (a loaded machine), and far below WAIT_TIMEOUT


def test_notebook7_device_login_and_cancel_during_wait(notebook: Any, chromium: Any) -> None:
    nb = notebook("notebook7.ipynb", [
        "%load_ext flyteauth_jupyter",
        "%flyte_login --flow device --no-cache",
        "print(flyte_auth.fetch_grpc_call_auth_metadata()[0])",
        f"%flyte_login --name second --flow device --no-cache --wait --timeout {WAIT_TIMEOUT}",
        "print('new kernel')",
    ], ui="notebook7")
    nb.run_first(0)
    nb.run(1)
    nb.wait_executed(1)
    user_code = nb.user_code(1)
    status = nb.status(1)
    expect(status).to_have_attribute("data-phase", "waiting")
    nb.select(0)
    shoot(nb.cell(1), "notebook7-device-waiting.png")

    with chromium.context.expect_page() as opened:
        nb.widget(1).locator("a[href]").click()
    tab = opened.value
    tab.set_default_timeout(TIMEOUT_MS)
    approve_in_browser(tab, user_code)
    tab.close()
    expect(status).to_have_attribute("data-phase", "signed_in", timeout=LOGIN_TIMEOUT_MS)  # live
    expect(status).to_contain_text("Signed in as alice")
    expect(nb.widget(1).locator(".flyteauth-code")).to_have_count(0)
    nb.run(2)
    nb.wait_executed(2)
    expect(nb.text_output(2)).to_have_text(HEADER_KEY)

    nb.run(3)
    nb.user_code(3)
    expect(nb.cell(3).locator(".jp-InputPrompt")).to_have_text("[*]:")
    nb.button(3, "Cancel").click()
    nb.wait_executed(3, timeout=ENDS_WITHIN_MS)
    expect(nb.status(3)).to_have_attribute("data-phase", "cancelled")
    expect(nb.text_output(3).filter(has_text="cancelled by the user")).to_have_count(1)

    nb.select(0)
    nb.restart_kernel()
    nb.run_first(4)  # the new kernel runs a cell (Notebook 7 shows no other sign that it is ready)
    expect(nb.text_output(4)).to_have_text("new kernel")
    for cell, sentence in ((1, "Signed in as alice"), (3, "Cancelled")):
        panel = nb.widget(cell)
        expect(panel).to_have_class(re.compile(r"\bjupyter-widgets-disconnected\b"))
        expect(nb.status(cell)).to_contain_text(sentence)
        assert nb.broken_link_icons(cell) == 0, cell
        expect(panel.locator(".flyteauth-gone")).to_have_text(GONE_LINE)
        for live in panel.locator(".flyteauth-live").all():
            expect(live).to_be_hidden()
