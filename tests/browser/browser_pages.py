"""Pages of the browser suite: a notebook open in JupyterLab or Notebook 7, as a person uses it, and
the person on the identity provider's pages. Shared by the browser test modules (tests/browser)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

REPO = Path(__file__).resolve().parents[2]
#: where screenshots go: the README's copies only when asked (``make screenshots``), so a test run
#: never dirties the tree
SCREENSHOTS = Path(os.environ.get("FLYTEAUTH_SCREENSHOTS") or REPO / ".test-artifacts" / "screenshots")
HEADER_KEY = "flyte-authorization"  # the stand-in's authorization_metadata_key (docs/test-rig.md)
ACTIVE = ("starting", "waiting", "slowed_down", "network_retry")
TIMEOUT_MS = 30_000
LOGIN_TIMEOUT_MS = 60_000


class Notebook:
    """One notebook open in JupyterLab (a fresh workspace holding only it) or in Notebook 7
    (``ui="notebook7"``: the ``notebook`` package's page on the same server)."""

    def __init__(self, page: Any, ui: str = "lab") -> None:
        self.page = page
        self.ui = ui
        self.panel = page.locator(".jp-NotebookPanel").filter(visible=True)

    @classmethod
    def open(cls, lab: Any, chromium: Any, name: str, *, ui: str = "lab") -> "Notebook":
        page = chromium.new_page()
        url = lab.page_url(name) if ui == "lab" else f"{lab.url}/notebooks/{name}?token={lab.token}"
        page.goto(url, timeout=60_000)
        nb = cls(page, ui)
        expect(nb.cell(0)).to_be_visible(timeout=60_000)
        if ui == "lab":
            # the kernel is up and idle before anything runs (the toolbar's indicator says "idle" even
            # before a kernel is attached; the status bar names the kernel and its state)
            kernel = page.locator(f".jp-StatusBar-TextItem[title='Change kernel for {name}']")
            expect(kernel).to_have_text(re.compile(r"^Python 3 \(ipykernel\) \| Idle$"), timeout=60_000)
        else:
            # Notebook 7 shows the kernel's state only while it changes: the toolbar names the kernel,
            # and the first cell run (see run_first) waits for it to be ready
            expect(page.locator(".jp-KernelName")).to_have_text(re.compile(r"Python 3"), timeout=60_000)
        return nb

    def run_first(self, index: int = 0, attempts: int = 3) -> None:
        """Run the first cell and wait until it ran. Notebook 7 gives no sign of a ready kernel and
        drops a run made while its kernel connection is still coming up (the prompt stays ``[ ]``),
        so a person presses Shift+Enter again: bounded, ``attempts`` times 30 s."""
        for attempt in range(attempts):
            self.run(index)
            try:
                self.wait_executed(index, timeout=30_000)
                return
            except AssertionError:
                if attempt == attempts - 1:
                    raise

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

    def restart_kernel(self) -> None:
        """Restart the kernel as a person does: command mode, ``0 0``, then Restart in the dialog."""
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("0")
        self.page.keyboard.press("0")
        self.page.locator(".jp-Dialog .jp-mod-accept").click()
        expect(self.page.locator(".jp-Dialog")).to_have_count(0)

    def broken_link_icons(self, index: int) -> int:
        """How many views in the panel of cell ``index`` draw ipywidgets' broken-link icon (the
        ``::before`` of a view marked ``jupyter-widgets-disconnected``: its model lost its kernel)."""
        return int(self.widget(index).evaluate(
            "root => [root, ...root.querySelectorAll('.jupyter-widgets-disconnected')]"
            ".filter(e => e.classList.contains('jupyter-widgets-disconnected'))"
            ".filter(e => { const s = getComputedStyle(e, '::before');"
            " return s.display !== 'none' && s.content !== 'none' && s.content !== 'normal'; }).length"
        ))

    def close(self) -> None:
        self.page.close()


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
    form, allow, done = tab.locator("#login-form"), tab.locator("#allow"), tab.locator("#done")
    expect(form.or_(allow).or_(done)).to_be_visible()
    if form.is_visible():  # (the IdP remembers a person signed in earlier in this browser session)
        tab.locator("#username").fill("alice")
        tab.locator("#password").fill("wonderland")
        tab.locator("#sign-in").click()
    expect(allow.or_(done)).to_be_visible()
    if allow.is_visible():
        allow.click()
    expect(done).to_have_text("Sign-in complete")
