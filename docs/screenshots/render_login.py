"""Render the login panel's HTML (the same markup the widget's parts show) mid-login and after success.

    .venv/bin/python docs/screenshots/render_login.py

Writes docs/screenshots/login-waiting.png and login-signed-in.png using Debian's chromium through
Playwright (a fresh user-data dir; never `playwright install`). The states come from the real view
model fed with the events a device flow emits.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from flyteauth_jupyter.flows.events import DeviceCodeIssued, FlowStarted, Polling, Succeeded
from flyteauth_jupyter.notebook.render import code_html, link_html, notice_html, qr_html, status_html, title_html
from flyteauth_jupyter.notebook.state import LoginView

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"

PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font-family: system-ui, sans-serif; font-size: 14px; margin: 0; padding: 16px; background: #fff; width: 720px; }}
.cell {{ border: 1px solid #e0e0e0; padding: 10px; }}
.prompt {{ color: #303f9f; font-family: monospace; margin-bottom: 8px; }}
.panel {{ border-left: 3px solid #8c959f; padding-left: 0.8em; }}
.details {{ display: flex; gap: 1.5em; align-items: center; margin: 6px 0; }}
button {{ font-size: 13px; padding: 3px 12px; margin-top: 6px; }}
</style></head><body><div class="cell">
<div class="prompt">[1]: %flyte_login</div>
<div class="panel">{title}{details}{status}{notice}{buttons}</div></div></body></html>"""


def page(view: LoginView, now: float) -> str:
    details = link_html(view) + code_html(view)
    return PAGE.format(
        title=title_html(view),
        details=f'<div class="details"><div>{details}</div>{qr_html(view)}</div>' if details else "",
        status=status_html(view, now),
        notice=notice_html(view),
        buttons="<button>✕ Cancel</button>" if view.active else "",
    )


def main() -> None:
    from playwright.sync_api import sync_playwright

    now = time.time()
    endpoint = "flyte.example.com"
    view = LoginView(endpoint=endpoint, name="flyte_auth").apply(
        FlowStarted("device", endpoint, "JupyterHub detected; the kernel is not on your machine")
    )
    waiting = view.apply(
        DeviceCodeIssued(
            verification_uri="https://login.example.com/activate",
            user_code="WDJB-MJHT",
            expires_at=now + 587,
            interval=5,
            verification_uri_complete="https://login.example.com/activate?user_code=WDJB-MJHT",
        )
    ).apply(Polling(3, 5))
    signed_in = waiting.apply(Succeeded("device", endpoint, now + 3600, "alice@example.com", ("openid", "all")))
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                       viewport={"width": 760, "height": 400})
        tab = browser.new_page()
        for name, state in (("login-waiting.png", waiting), ("login-signed-in.png", signed_in)):
            tab.set_content(page(state, now))
            tab.locator(".cell").screenshot(path=str(HERE / name))
        browser.close()


if __name__ == "__main__":
    main()
