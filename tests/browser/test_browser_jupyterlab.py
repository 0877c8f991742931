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
   passes ``python -m flyteauth_jupyter.scan`` given the real tokens. Screenshots of the widget go to
   .test-artifacts/screenshots/ (``make screenshots`` refreshes docs/screenshots/ for the README).
2. Cancel stops the login (status "Cancelled"); Retry starts a new one with a different user code.
3. While the login waits, the kernel runs another cell (``1+1`` gives ``2``) and the widget keeps
   updating (its countdown ticks) after that cell.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from playwright.sync_api import expect

REPO = Path(__file__).resolve().parents[2]
#: where screenshots go: the README's copies only when asked (``make screenshots``), so a test run
#: never dirties the tree
SCREENSHOTS = Path(os.environ.get("FLYTEAUTH_SCREENSHOTS") or REPO / ".test-artifacts" / "screenshots")
HEADER_KEY = "flyte-authorization"  # the stand-in's authorization_metadata_key (docs/test-rig.md)
ACTIVE = ("starting", "waiting", "slowed_down", "network_retry")
TIMEOUT_MS = 30_000
LOGIN_TIMEOUT_MS = 60_000

pytestmark = [pytest.mark.browser, pytest.mark.idp, pytest.mark.timeout(300)]


class Notebook:
    """One notebook open in JupyterLab (a fresh workspace holding only it)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.panel = page.locator(".jp-NotebookPanel").filter(visible=True)

    @classmethod
    def open(cls, lab: Any, chromium: Any, name: str) -> "Notebook":
        page = chromium.new_page()
        page.goto(lab.page_url(name), timeout=60_000)
        nb = cls(page)
        expect(nb.cell(0)).to_be_visible(timeout=60_000)
        # the kernel is up and idle before anything runs (the toolbar's indicator says "idle" even
        # before a kernel is attached; the status bar names the kernel and its state)
        kernel = page.locator(f".jp-StatusBar-TextItem[title='Change kernel for {name}']")
        expect(kernel).to_have_text(re.compile(r"^Python 3 \(ipykernel\) \| Idle$"), timeout=60_000)
        return nb

    def cell(self, index: int) -> Any:
        return self.panel.locator(".jp-Notebook .jp-Cell").nth(index)

    def run(self, index: int) -> None:
        """Click into the cell's editor and press Shift+Enter, as a person does."""
        self.cell(index).locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Shift+Enter")

    def wait_executed(self, index: int, timeout: float = TIMEOUT_MS) -> None:
        expect(self.cell(index).locator(".jp-InputPrompt")).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=timeout)

    def select(self, index: int) -> None:
        """Make cell ``index`` the active one (command mode), e.g. so another cell shows unselected."""
        self.cell(index).locator(".jp-InputPrompt").click()

    def widget(self, index: int) -> Any:
        """The login widget in the outputs of cell ``index`` (the live ipywidgets view)."""
        return self.cell(index).locator(".jp-OutputArea-output .flyteauth-widget").first

    def status(self, index: int) -> Any:
        return self.widget(index).locator(".flyteauth-status")

    def user_code(self, index: int, timeout: float = TIMEOUT_MS) -> str:
        code = self.widget(index).locator(".flyteauth-code")
        expect(code).to_be_visible(timeout=timeout)
        text = code.inner_text().strip()
        assert text, "the widget shows an empty user code"
        return text

    def button(self, index: int, label: str) -> Any:
        return self.widget(index).locator(f".flyteauth-{label.lower()}")

    def text_output(self, index: int) -> Any:
        return self.cell(index).locator(".jp-OutputArea-output")

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def notebook(lab: Any, chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``notebook(name, sources)``: write the notebook, open it; afterwards close it and its kernel.

    When the test failed, a screenshot of each page it opened is kept next to the server's log."""
    opened: list[Notebook] = []

    def factory(name: str, sources: list[str]) -> Notebook:
        lab.notebook(name, sources)
        nb = Notebook.open(lab, chromium, name)
        opened.append(nb)
        return nb

    yield factory
    failed = getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed
    for i, nb in enumerate(opened):
        if failed:
            shot = lab.log.parent / f"failure-{request.node.name}-{i}.png"
            try:
                nb.page.screenshot(path=str(shot), timeout=10_000)
                print(f"page at failure: {shot}; server log: {lab.log}")
            except Exception as exc:  # noqa: BLE001 - best effort, the test has failed already
                print(f"no failure screenshot: {exc}")
        nb.close()
    lab.shutdown_kernels()
    assert not chromium.blocked, f"the page tried to reach non-loopback addresses: {chromium.blocked[:5]}"


def shoot(locator: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box, f"nothing to screenshot for {name}"
    # the cell, less a few pixels at the top where a neighbouring cell's selection border shows
    clip = {"x": box["x"], "y": box["y"] + 3, "width": box["width"], "height": box["height"] - 3}
    locator.page.screenshot(path=str(path), clip=clip, animations="disabled", caret="hide")
    return path


def approve_in_browser(tab: Any, user_code: str) -> None:
    """A person on the IdP's pages: check (or type) the code, sign in as alice, allow."""
    typed = tab.locator("input#user_code")
    confirm = tab.locator("#confirm")
    expect(typed.or_(confirm)).to_be_visible()
    if typed.is_visible():  # the plain verification page asks for the code
        typed.fill(user_code)
        tab.locator("#continue").click()
    expect(confirm).to_be_visible()
    expect(tab.locator("code#user_code")).to_have_text(user_code)  # the IdP shows the same code
    confirm.click()
    expect(tab.locator("#login-form")).to_be_visible()
    tab.locator("#username").fill("alice")
    tab.locator("#password").fill("wonderland")
    tab.locator("#sign-in").click()
    allow, done = tab.locator("#allow"), tab.locator("#done")
    expect(allow.or_(done)).to_be_visible()
    if allow.is_visible():
        allow.click()
    expect(done).to_have_text("Sign-in complete")


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
