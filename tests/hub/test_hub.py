"""flyteauth-jupyter on a real JupyterHub (tests/hub/conftest.py): Debian chromium signs alice and bob
in to the Hub at tests/idp, their kernels run on the Hub's single-user servers.

1. alice signs in to the Hub, opens a notebook in JupyterLab and runs ``%flyte_login``: it signs in
   from the Hub's login with no further click (the panel says so, naming the Hub by its public
   address, not its internal API address), a call to the FlyteAdmin stand-in's protected API
   succeeds, ``%flyte_status`` names the JupyterHub sign-in. A browser sign-in there
   (``--flow pkce``, redirect through the relay) offers no loopback address to paste: the paste
   field waits behind "Didn't work?".
2. Near expiry (short access-token lifetime) the kernel's next token comes from the Hub again (the
   Hub refreshed it); the kernel never holds the Hub's refresh token.
3. alice and bob sign in with PKCE through the one redirect URI ``<hub>/hub/user-redirect/flyteauth/
   callback`` at the same time: each kernel gets its own user's token. A relay request for alice's
   state from bob's browser never reaches alice's kernel (alice's own server refuses bob, 403; the
   Hub's user-redirect sends bob to his own server, whose relay knows no such sign-in, 400), and one
   without a Hub login is sent to the Hub login.
4. The Hub's token is not for the endpoint: the panel says why and auto's choice runs.
5. The Hub keeps an opaque access token (a real one, from its identity provider, without the API's
   scope): the panel still says "Signed in as alice" (from the id token in auth_state).

Screenshots of the Hub flow go to .test-artifacts/screenshots/ (``make screenshots`` refreshes
docs/screenshots/).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import nbformat
import pytest
import requests
from playwright.sync_api import expect

from flyteauth_jupyter.notebook.widget import PASTE_REVEAL, RELAY_PASTE_PLACEHOLDER
from rig.hub import KERNEL_CLIENT, RELAY_PATH, HubRig, KernelClient

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("FLYTEAUTH_SCREENSHOTS") or REPO / ".test-artifacts" / "screenshots")
PASSWORDS = {"alice": "wonderland", "bob": "builder"}
LOAD_TIMEOUT_MS = 120_000

pytestmark = [pytest.mark.hub, pytest.mark.timeout(400)]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


class HubUsers:
    """Signs a user in to the Hub once per session, in that user's own browser profile."""

    def __init__(self, hub: HubRig, browser: Any) -> None:
        self.hub = hub
        self.browser = browser
        self.signed_in: set[str] = set()

    def sign_in(self, user: str, *, next_path: str = "/hub/home", shots: bool = False) -> Any:
        """The page after the Hub's login at the IdP (a person types the password and clicks Allow)."""
        page = self.browser.context(user).new_page()
        page.goto(f"{self.hub.url}/hub/login?{urlencode({'next': next_path})}")
        if shots:
            shoot(page, "hub-1-login.png")
        page.locator("a.btn-jupyter, a[href*='oauth_login']").first.click()
        page.locator("#username").fill(user)
        page.locator("#password").fill(PASSWORDS[user])
        if shots:
            shoot(page, "hub-2-idp-sign-in.png")
        page.locator("#sign-in").click()
        page.locator("#allow").click()  # the Hub's client asks for openid profile offline_access api:read
        page.wait_for_url(re.compile(rf"^{re.escape(self.hub.url)}(/hub/|/user/{user}/)"), timeout=LOAD_TIMEOUT_MS)
        self.signed_in.add(user)
        return page

    def ensure(self, user: str) -> None:
        if user not in self.signed_in:
            self.sign_in(user).close()

    def kernel(self, user: str) -> KernelClient:
        self.ensure(user)
        return self.hub.kernel(user)


@pytest.fixture(scope="module")
def users(hub: HubRig, hub_browser: Any) -> Iterator[HubUsers]:
    people = HubUsers(hub, hub_browser)
    # bob signs in now and his server starts in the background while alice's tests run
    people.ensure("bob")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        spawning = pool.submit(hub.wait_for_server, "bob")
        yield people
        spawning.result()
    assert not hub_browser.blocked, f"pages tried to reach non-loopback addresses: {hub_browser.blocked[:5]}"


def notebook(path: Path, sources: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


CALL_API = (
    "import os, requests\n"
    "from flyteauth_jupyter.clients import BearerAuth\n"
    "r = requests.get(os.environ['FLYTE_PLATFORM_URL'] + '/api/v1/projects', auth=BearerAuth({name}), timeout=30)\n"
    "print('projects', r.status_code, r.json().get('subject'))"
)


# ---------------------------------------------------------------------------------- 1. no click
def test_flyte_login_signs_in_from_the_hub_login_with_no_click(hub: HubRig, users: HubUsers,
                                                                hub_flyteadmin: Any) -> None:
    notebook(hub.home("alice") / "flyte.ipynb", [
        "%load_ext flyteauth_jupyter\n%flyte_login",
        CALL_API.format(name="flyte_auth"),
        "%flyte_status",
        "%flyte_login --flow pkce --name flyte_pkce --no-cache",
    ])
    page = users.sign_in("alice", next_path="/hub/spawn?next=/user/alice/lab/tree/flyte.ipynb%3Freset", shots=True)
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    expect(cells.first).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(page.locator(".jp-StatusBar-TextItem[title='Change kernel for flyte.ipynb']")).to_have_text(
        re.compile(r"Idle$"), timeout=LOAD_TIMEOUT_MS)
    before = hub_flyteadmin.requests["/api/v1/projects"]

    cells.nth(0).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    widget = cells.nth(0).locator(".jp-OutputArea-output .flyteauth-widget").first
    status = widget.locator(".flyteauth-status")
    expect(status).to_have_attribute("data-phase", "signed_in", timeout=60_000)
    expect(widget).to_contain_text("JupyterHub sign-in")
    # named by the address alice opened, not by the Hub's internal API address
    expect(widget.locator(".flyteauth-title")).to_contain_text(
        f"your JupyterHub login (127.0.0.1:{hub.port}) is reused, no click needed")
    expect(status).to_contain_text("Signed in as alice")
    assert widget.locator(".flyteauth-code").count() == 0  # no user code, no link to click
    shoot(page, "hub-3-signed-in-from-the-hub.png")

    page.keyboard.press("Shift+Enter")  # the API call (cell 1 is selected now)
    expect(cells.nth(1).locator(".jp-OutputArea-output")).to_contain_text("projects 200 alice", timeout=60_000)
    page.keyboard.press("Shift+Enter")  # %flyte_status
    expect(cells.nth(2).locator(".jp-OutputArea-output")).to_contain_text("JupyterHub sign-in", timeout=60_000)
    assert hub_flyteadmin.requests["/api/v1/projects"] > before

    # the browser sign-in's redirect comes back through the relay: no field to paste a 127.0.0.1
    # address into, only "Didn't work?", which shows the field (for the relay's address)
    page.keyboard.press("Shift+Enter")
    pkce = cells.nth(3).locator(".jp-OutputArea-output .flyteauth-widget").first
    expect(pkce.locator(".flyteauth-status")).to_have_attribute("data-phase", "waiting", timeout=60_000)
    expect(pkce.locator("a.flyteauth-link")).to_have_attribute("href", re.compile(rf"^{re.escape(hub.issuer)}/"))
    paste, reveal = pkce.locator(".flyteauth-paste"), pkce.locator(".flyteauth-paste-reveal")
    expect(paste).to_be_hidden()
    expect(reveal).to_be_visible()
    expect(reveal).to_have_text(PASTE_REVEAL)
    cells.nth(3).scroll_into_view_if_needed()
    shoot(page, "hub-6-pkce-panel.png")
    reveal.click()
    expect(paste).to_be_visible()
    expect(paste.locator("input")).to_have_attribute("placeholder", RELAY_PASTE_PLACEHOLDER)
    expect(reveal).to_be_hidden()
    pkce.locator(".flyteauth-cancel").click()
    expect(pkce.locator(".flyteauth-status")).to_have_attribute("data-phase", "cancelled")
    expect(paste).to_be_hidden()
    page.close()


# ------------------------------------------------------------------------------- 2. refresh
def test_the_token_is_renewed_through_the_hub_before_it_expires(hub: HubRig, users: HubUsers) -> None:
    kernel = users.kernel("alice")
    try:
        out = kernel.run(
            "%load_ext flyteauth_jupyter\n%flyte_login --flow hub --name hub_auth --wait\n"
            "import hashlib\n"
            "c = hub_auth.get_credentials()\n"
            "print('first', hashlib.sha256(c.access_token.encode()).hexdigest()[:16], c.refresh_token is None)\n"
        )
        first = re.search(r"first (\w+) True", out)
        assert first, out
        # poll (bounded) until the kernel's token changes: it asks the Hub again near expiry
        out = kernel.run(
            "import time\n"
            "deadline = time.monotonic() + 60\n"
            "while time.monotonic() < deadline:\n"
            "    c = hub_auth.get_credentials()\n"
            f"    if hashlib.sha256(c.access_token.encode()).hexdigest()[:16] != {first.group(1)!r}: break\n"
            "    time.sleep(0.5)\n"
            "print('second', hashlib.sha256(c.access_token.encode()).hexdigest()[:16], c.refresh_token is None,"
            " c.lifetime_left() > 0)\n"
            + CALL_API.format(name="hub_auth"), timeout=120,
        )
        second = re.search(r"second (\w+) True True", out)
        assert second and second.group(1) != first.group(1), out
        assert "projects 200 alice" in out
        # the Hub holds that same token now: the kernel got it from the Hub, which refreshed it
        state = hub.api("GET", "/users/alice").json()["auth_state"]
        assert digest(state["access_token"]) == second.group(1)
        # and the Hub's refresh token is in no cache of the kernel
        keyring = hub.keyring("alice")
        assert not keyring.exists() or state["refresh_token"] not in keyring.read_text()
    finally:
        kernel.stop()


# ------------------------------------------------------------------------- 3. PKCE, two users
START_PKCE = """
import os, threading
from flyteauth_jupyter import PKCEAuthenticator
from flyteauth_jupyter.flows.events import AuthorizationRequested
from flyteauth_jupyter.stores import MemoryStore
asked = threading.Event(); urls = []
def observe(event):
    if isinstance(event, AuthorizationRequested):
        urls.append(event.url); asked.set()
pkce = PKCEAuthenticator(os.environ['FLYTE_PLATFORM_URL'], None, open_browser=False, observer=observe, store=MemoryStore())
login = pkce.refresh_in_background()
assert asked.wait(30)
print('AUTHORIZE', urls[0], pkce.redirect_uri)
"""

FINISH_PKCE = """
c = login.result(timeout=60)
print('SUBJECT', c.subject)
""" + CALL_API.format(name="pkce")


def test_alice_and_bob_sign_in_through_hub_user_redirect_at_once(hub: HubRig, users: HubUsers) -> None:
    kernels = {user: users.kernel(user) for user in ("alice", "bob")}
    try:
        authorize = {}
        for user, kernel in kernels.items():  # both logins wait at the same time
            out = kernel.run(START_PKCE)
            match = re.search(r"AUTHORIZE (\S+) (\S+)", out)
            assert match, out
            authorize[user] = match.group(1)
            assert match.group(2) == f"{hub.url}{RELAY_PATH}"  # one redirect URI for every user
        alice_state = parse_qs(urlsplit(authorize["alice"]).query)["state"][0]

        # refused: bob's browser with alice's state, at alice's server and through user-redirect
        bob = users.browser.context("bob").new_page()
        direct = bob.goto(f"{hub.url}/user/alice/flyteauth/callback?{urlencode({'state': alice_state, 'code': 'forged'})}")
        assert direct is not None and direct.status == 403
        forwarded = bob.goto(f"{hub.url}{RELAY_PATH}?{urlencode({'state': alice_state, 'code': 'forged'})}")
        assert urlsplit(bob.url).path == "/user/bob/flyteauth/callback"  # the Hub sends bob to his own server,
        assert forwarded is not None and forwarded.status == 400  # whose relay knows no such sign-in
        expect(bob.locator("#relay-title")).to_have_text("No sign-in is waiting for this", timeout=30_000)
        # refused: no Hub login at all
        stranger = requests.Session()
        stranger.trust_env = False
        anonymous = stranger.get(f"{hub.url}/user/alice/flyteauth/callback",
                                 params={"state": alice_state, "code": "forged"}, timeout=30)
        assert urlsplit(anonymous.url).path == "/hub/login"  # the Hub's own OAuth sends it to the Hub login
        stranger.close()

        for user in ("alice", "bob"):  # each person allows their own sign-in
            page = users.browser.context(user).new_page() if user == "alice" else bob
            page.goto(authorize[user])
            if user == "alice":
                shoot(page, "hub-4-pkce-consent.png")
            page.locator("#allow").click()
            expect(page.locator("#relay-title")).to_have_text("Signed in", timeout=60_000)
            assert urlsplit(page.url).path == f"/user/{user}/flyteauth/callback"
            if user == "alice":
                shoot(page, "hub-5-pkce-relayed.png")
            page.close()
        for user, kernel in kernels.items():
            out = kernel.run(FINISH_PKCE, timeout=120)
            assert f"SUBJECT {user}" in out and f"projects 200 {user}" in out, out
    finally:
        for kernel in kernels.values():
            kernel.stop()


def test_hub_sign_in_falls_back_saying_why(hub: HubRig, users: HubUsers, hub_idp: Any,
                                           make_idp: Any, make_flyteadmin: Any) -> None:
    """The Hub's token is not for the endpoint: the panel says why in one line and auto's choice runs.

    * another identity provider (issuer): device code, as auto picks on a Hub;
    * the same provider, another audience, FlyteAdmin naming the relay redirect URI: the browser
      sign-in through hub/user-redirect (the relay URI counts though only FlyteAdmin names it)."""
    other_issuer = make_flyteadmin(make_idp())
    other_audience = make_flyteadmin(hub_idp, client_id=KERNEL_CLIENT, redirect_uri=f"{hub.url}{RELAY_PATH}",
                                     audience="urn:another:api")
    kernel = users.kernel("alice")
    try:
        out = kernel.run(
            "%load_ext flyteauth_jupyter\n"
            f"%flyte_login --endpoint {other_issuer.endpoint} --flow hub --name by_issuer\n"
            f"%flyte_login --endpoint {other_audience.endpoint} --name by_audience\n"
            "import time\n"
            "for s in (by_issuer, by_audience):\n"
            "    deadline = time.monotonic() + 30\n"
            "    while s.view.flow in ('', 'hub', None) and time.monotonic() < deadline: time.sleep(0.2)\n"
            "    print('FLOW', s.view.flow, '|', s.view.flow_reason)\n"
            "    s.cancel()\n"
        )
        lines = [line for line in out.splitlines() if line.startswith("FLOW ")]
        assert len(lines) == 2, out
        assert lines[0].startswith("FLOW device | the JupyterHub sign-in is not usable (The Hub at"), out
        assert f"but {other_issuer.service} trusts" in lines[0], out
        assert lines[1].startswith("FLOW pkce | the JupyterHub sign-in is not usable (The Hub's token is for"), out
        assert "'urn:another:api'" in lines[1] and lines[1].endswith("comes back through this Jupyter server's relay")
    finally:
        kernel.stop()


# ---------------------------------------------------------------- 5. naming the user (issue 17.11)
def test_the_panel_names_the_user_when_the_hubs_token_does_not(hub: HubRig, users: HubUsers, hub_idp: Any,
                                                                make_flyteadmin: Any) -> None:
    """An opaque access token names nobody; the Hub's auth_state also holds the id token, which does.

    The tokens are real: a device sign-in of alice at the Hub's identity provider without the API's
    scope, which that provider answers with an opaque access token (and an id token). The Hub keeps
    them as alice's auth_state (the rig's service writes it through the Hub's API, as the Hub's
    authenticator would have), for an endpoint that names no audience (an opaque token's cannot be
    checked). Restored afterwards."""
    from flyteauth_jupyter import DeviceCodeAuthenticator
    from flyteauth_jupyter.credentials import jwt_claims
    from flyteauth_jupyter.stores import MemoryStore
    from rig.user import DeviceApprover

    admin = make_flyteadmin(hub_idp, scopes=("openid", "profile", "offline_access"))  # no API scope, no audience
    approver = DeviceApprover(hub_idp.issuer or "", username="alice", password=PASSWORDS["alice"]).start()
    try:
        creds = DeviceCodeAuthenticator(admin.endpoint, None, store=MemoryStore(), timeout=60).refresh_credentials()
    finally:
        approver.stop()
    assert creds.access_token and not jwt_claims(creds.access_token) and creds.id_token  # opaque, and an id token
    original = hub.api("GET", "/users/alice").json()["auth_state"]
    now = int(time.time())
    opaque_state = {"access_token": creds.access_token, "id_token": creds.id_token, "token_type": "Bearer",
                    "refresh_token": original["refresh_token"], "expires_at": now + 3600, "expires_in": 3600,
                    "scope": ["openid", "profile", "offline_access"]}
    assert hub.api("PATCH", "/users/alice", json={"auth_state": opaque_state}).status_code == 200
    kernel = users.kernel("alice")
    try:
        out = kernel.run(
            "%load_ext flyteauth_jupyter\n"
            f"%flyte_login --endpoint {admin.endpoint} --flow hub --name named --wait\n"
            "print('STATUS', named.view.status_line())\n"
            "print('FLOW', named.view.flow_line())\n"
        )
        assert f"STATUS Signed in as alice to {admin.service}" in out, out
        assert f"FLOW JupyterHub sign-in: your JupyterHub login (127.0.0.1:{hub.port}) is reused" in out, out
    finally:
        kernel.stop()
        hub.api("PATCH", "/users/alice", json={"auth_state": original})
