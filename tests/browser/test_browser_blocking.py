"""The panel while a cell BLOCKS on the login, and its failure states, in a real JupyterLab (chromium).

The rig is the session's JupyterLab server (tests/browser/conftest.py). A person uses the notebook:
Shift+Enter, the panel's buttons and field, the IdP's pages in a new tab.

1. Cancel pressed while ``%flyte_login --wait`` runs ends that cell with the one-sentence error long
   before the login's own timeout (120 s; the bound here is generous for a loaded machine).
2. Paste-back while a later cell blocks on ``get_credentials()`` (Run All): the browser's redirect
   cannot reach the kernel (it is answered with the error page a browser on another machine shows);
   the person copies the address from the address bar into the panel and presses Submit; the blocked
   cell then finishes with a token. A screenshot of the paste step goes to docs/screenshots on
   ``make screenshots``.
3. Deny at the IdP: the panel says the sign-in was denied and offers Retry.
4. A short-lived device code (an IdP whose codes live 3 s): the panel shows the expiry; Retry gives
   a new code.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from browser_pages import LOGIN_TIMEOUT_MS, TIMEOUT_MS, approve_in_browser, shoot
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.idp, pytest.mark.timeout(300)]

WAIT_TIMEOUT = 120  # the login's own deadline in the --wait cells
ENDS_WITHIN_MS = 20_000  # generous (a loaded machine), and far below WAIT_TIMEOUT
CALLBACK = re.compile(r"^http://(127\.0\.0\.1|localhost):\d+/callback\?")
UNREACHABLE = "<html><body><h1>This site can't be reached</h1></body></html>"


def sign_in(tab: Any, *, allow: bool = True) -> None:
    """A person on the IdP's login and consent pages (the sign-in page of a browser sign-in)."""
    tab.set_default_timeout(TIMEOUT_MS)
    form, consent = tab.locator("#login-form"), tab.locator("#allow")
    expect(form.or_(consent)).to_be_visible()
    if form.is_visible():  # (the IdP remembers a person signed in earlier in this browser)
        tab.locator("#username").fill("alice")
        tab.locator("#password").fill("wonderland")
        tab.locator("#sign-in").click()
    button = tab.locator("#allow" if allow else "#deny")
    expect(button).to_be_visible()
    if allow:
        button.click()
        return
    # Deny posts a form; wait until the IdP's answer has loaded, since closing a tab in the middle of
    # that navigation hung Playwright's close() until pytest's timeout (seen once on CI)
    with tab.expect_navigation():
        button.click()


def test_cancel_ends_a_wait_cell(notebook: Any) -> None:
    nb = notebook("cancel-wait.ipynb", [
        "%load_ext flyteauth_jupyter",
        f"%flyte_login --flow device --no-cache --wait --timeout {WAIT_TIMEOUT}",
    ])
    nb.run(0)
    nb.wait_executed(0)
    nb.run(1)
    nb.user_code(1)  # the panel is live while the cell runs ...
    expect(nb.cell(1).locator(".jp-InputPrompt")).to_have_text("[*]:")  # ... and the cell blocks
    nb.button(1, "Cancel").click()
    nb.wait_executed(1, timeout=ENDS_WITHIN_MS)
    expect(nb.status(1)).to_have_attribute("data-phase", "cancelled")
    expect(nb.text_output(1).filter(has_text="cancelled by the user")).to_have_count(1)


def test_paste_back_while_a_later_cell_blocks(notebook: Any, chromium: Any, idp: Any) -> None:
    nb = notebook("paste-back.ipynb", [
        "%load_ext flyteauth_jupyter\n%config FlyteAuthMagics.open_browser = False",
        "%flyte_login --flow pkce --no-cache",
        "creds = flyte_auth.get_credentials()\nprint('token', len(creds.access_token) > 10)",
    ])
    redirects: list[str] = []

    def unreachable(route: Any) -> None:  # the kernel is on another machine: nothing answers here
        redirects.append(route.request.url)
        route.fulfill(status=502, content_type="text/html", body=UNREACHABLE)

    def at_the_idp(route: Any) -> None:
        # Playwright does not route a redirect's later hops, so each of the IdP's redirects is handed
        # to the browser as a navigation of its own (its cookies are already in the context's jar,
        # which route.fetch shares): the last one, to the callback, is then answered by `unreachable`
        response = route.fetch(max_redirects=0)
        location = response.headers.get("location", "")
        if 300 <= response.status < 400 and location and route.request.resource_type == "document":
            target = urljoin(route.request.url, location)
            route.fulfill(status=200, content_type="text/html",
                          body=f"<script>location.replace({json.dumps(target)})</script>")
        else:
            route.fulfill(response=response)

    chromium.context.route(CALLBACK, unreachable)
    chromium.context.route(f"{idp.issuer}/**", at_the_idp)
    try:
        nb.run(0)
        nb.wait_executed(0)
        nb.run(1)
        nb.wait_executed(1)
        widget = nb.widget(1)
        link = widget.locator("a.flyteauth-link")
        expect(link).to_have_text("Open the sign-in page")
        field = widget.locator(".flyteauth-paste input")
        expect(field).to_be_visible()
        nb.run(2)  # Run All reaches the cell that needs the token: it blocks
        expect(nb.cell(2).locator(".jp-InputPrompt")).to_have_text("[*]:")

        with chromium.context.expect_page() as opened:
            link.click()
        tab = opened.value
        sign_in(tab)
        expect(tab.locator("h1")).to_have_text("This site can't be reached")
        address = tab.url  # what the person copies from the address bar
        assert CALLBACK.match(address) and "code=" in address, urlsplit(address).path
        tab.close()

        field.fill(address)
        nb.select(0)
        shoot(nb.cell(1), "jupyterlab-paste-back.png")
        widget.locator(".flyteauth-paste-submit").click()
        expect(field).to_have_value("")
        nb.wait_executed(2, timeout=LOGIN_TIMEOUT_MS)
        expect(nb.text_output(2)).to_have_text("token True")
        expect(nb.status(1)).to_have_attribute("data-phase", "signed_in")
        expect(nb.status(1)).to_contain_text("Signed in as alice")
        assert len(redirects) == 1
    finally:
        chromium.context.unroute(f"{idp.issuer}/**", at_the_idp)
        chromium.context.unroute(CALLBACK, unreachable)


def test_deny_at_the_idp_shows_the_denial(notebook: Any, chromium: Any) -> None:
    nb = notebook("deny.ipynb", ["%load_ext flyteauth_jupyter", "%flyte_login --flow device --no-cache"])
    nb.run(0)
    nb.run(1)
    user_code = nb.user_code(1)
    with chromium.context.expect_page() as opened:
        nb.widget(1).locator("a[href]").click()
    tab = opened.value
    tab.set_default_timeout(TIMEOUT_MS)
    expect(tab.locator("#confirm")).to_be_visible()
    expect(tab.locator("code#user_code")).to_have_text(user_code)
    tab.locator("#confirm").click()
    sign_in(tab, allow=False)
    tab.close()
    status = nb.status(1)
    expect(status).to_have_attribute("data-phase", "denied", timeout=LOGIN_TIMEOUT_MS)
    expect(status).to_contain_text("denied")
    expect(nb.button(1, "Retry")).to_be_visible()
    expect(nb.widget(1).locator(".flyteauth-code")).to_have_count(0)


def test_short_lived_code_expires_and_retry_gives_a_new_one(notebook: Any, make_idp: Any, make_flyteadmin: Any) -> None:
    idp = make_idp(device_code_ttl=3)
    admin = make_flyteadmin(idp)
    nb = notebook("expiry.ipynb", ["%load_ext flyteauth_jupyter", f"%flyte_login --endpoint {admin.endpoint} --flow device"])
    nb.run(0)
    nb.run(1)
    first = nb.user_code(1)
    status = nb.status(1)
    expect(status).to_contain_text("Code expires in 0:0")
    expect(status).to_have_attribute("data-phase", "expired", timeout=LOGIN_TIMEOUT_MS)
    expect(status).to_contain_text("Expired")
    nb.button(1, "Retry").click()
    second = nb.user_code(1)
    assert second != first
    expect(status).to_have_attribute("data-phase", "waiting")
    nb.button(1, "Cancel").click()
    expect(status).to_have_attribute("data-phase", "cancelled")
