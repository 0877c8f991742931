"""The magics in a real InteractiveShell against the real identity provider (tests/idp) and FlyteAdmin stand-in.

Every login is driven as a person would: the device user reads the code the widget shows, the PKCE
user is the BROWSER command ``webbrowser`` launches (or, for paste-back, follows the widget's link and
pastes the address back into the panel). Tokens are checked against FlyteAdmin's protected
API; widget state and every displayed output are searched for the real token strings.
"""

from __future__ import annotations

import html
import json
import re
import threading
import webbrowser
from urllib.parse import parse_qs, urlencode, urlsplit

import ipywidgets
import pytest
import requests
from nb_fakes import wait_until
from nb_idp import login

from flyteauth_jupyter.clients import BearerAuth
from flyteauth_jupyter.errors import AccessDeniedError, ExpiredTokenError, LoginTimeoutError
from flyteauth_jupyter.notebook import connect
from flyteauth_jupyter.environment import BrowserLocation
from flyteauth_jupyter.notebook.session import LoginSession

pytestmark = pytest.mark.idp


def code_shown(session: LoginSession, timeout: float = 20.0):
    """Wait until the widget shows a user code; return the view (what a person reads off the screen)."""
    widget = session.widget
    wait_until(lambda: session.view.user_code is not None and session.view.user_code in widget.code.value
               and widget.details.layout.display == "",  # set after the link, code and QR
               timeout, "the widget to show the user code")
    return session.view


def call_api(flyteadmin, session) -> requests.Response:
    return requests.get(flyteadmin.url("/api/v1/projects"), auth=BearerAuth(session), timeout=10)


def all_widget_state() -> str:
    instances = ipywidgets.widgets.widget._instances  # what Widget.widgets returned (deprecated alias)
    return json.dumps([w.get_state() for w in list(instances.values())], default=str)


def assert_no_tokens(creds, *texts: str) -> None:
    secrets = [s for s in (creds.access_token, creds.refresh_token, creds.id_token) if s]
    assert secrets
    for text in texts:
        for secret in secrets:
            assert secret not in text


def outputs_text(captured) -> str:
    parts = [captured.stdout, captured.stderr]
    for output in captured.outputs:
        parts.append(json.dumps(output.data, default=str))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------
def test_device_approve(nb, flyteadmin, device_user):
    ip, captured = nb
    session = login(ip, f"--endpoint {flyteadmin.endpoint} --flow device")
    assert not session.done  # the cell returned before the login ended
    view = code_shown(session)
    assert session.status in ("waiting", "slowed_down")
    widget = session.widget
    assert 'target="_blank"' in widget.link.value and view.verification_uri in widget.link.value
    assert ("<svg" in widget.qr.value) == bool(view.verification_uri_complete)
    assert widget.cancel_button.layout.display == ""
    outcome = device_user.complete(view.verification_uri, view.user_code,
                                   verification_uri_complete=view.verification_uri_complete)
    assert outcome["status"] == "approved"
    creds = session.wait(30)
    assert session.status == "signed_in"
    assert session.view.history[0] == "starting" and "waiting" in session.view.history
    assert session.view.history[-1] == "signed_in"
    wait_until(lambda: "Signed in" in widget.status.value, what="the summary sentence")
    assert f"to {flyteadmin.service}, token valid until" in widget.status.value
    assert "available as <code>flyte_auth</code>" in widget.status.value
    assert widget.code.value == widget.link.value == widget.qr.value == ""
    # the bound authenticator works for an SDK call, through the server's header key
    assert session.fetch_grpc_call_auth_metadata()[0] == "flyte-authorization"
    assert call_api(flyteadmin, session).status_code == 200
    # no token in any widget's state, any output or the repr
    assert_no_tokens(creds, all_widget_state(), outputs_text(captured), repr(session))


def test_device_deny(nb, flyteadmin, device_user):
    ip, _ = nb
    session = login(ip, f"--endpoint {flyteadmin.endpoint} --flow device")
    view = code_shown(session)
    outcome = device_user.complete(view.verification_uri, view.user_code, action="deny")
    assert outcome["status"] == "denied"
    with pytest.raises(AccessDeniedError):
        session.wait(30)
    assert session.status == "denied"
    assert "denied" in session.widget.status.value.lower()
    assert session.widget.retry_button.layout.display == "" and session.widget.code.value == ""
    with pytest.raises(AccessDeniedError):
        session.get_credentials()


def test_device_code_expiry(nb, make_idp, make_flyteadmin):
    ip, _ = nb
    idp = make_idp(device_code_ttl=3)
    admin = make_flyteadmin(idp)
    session = login(ip, f"--endpoint {admin.endpoint} --flow device")
    code_shown(session)
    assert "Code expires in 0:0" in session.widget.status.value
    with pytest.raises((ExpiredTokenError, LoginTimeoutError)):
        session.wait(30)
    assert session.status == "expired"
    assert session.widget.retry_button.layout.display == ""


def test_retry_after_cancel(nb, flyteadmin, device_user):
    ip, _ = nb
    session = login(ip, f"--endpoint {flyteadmin.endpoint} --flow device")
    first = code_shown(session)
    session.widget.cancel_button.click()  # as the browser's click would
    wait_until(lambda: session.status == "cancelled", 10, "the cancel")
    session.widget.retry_button.click()
    wait_until(lambda: session.view.user_code not in (None, first.user_code), 20, "a new code")
    view = session.view
    device_user.complete(view.verification_uri, view.user_code)
    session.wait(30)
    assert session.status == "signed_in" and session.view.attempt == 2


def test_wait_blocks_the_cell_until_a_person_approves(nb, flyteadmin, device_user):
    ip, _ = nb

    def person():
        wait_until(lambda: isinstance(ip.user_ns.get("flyte_auth"), LoginSession)
                   and ip.user_ns["flyte_auth"].view.user_code, 20, "the code")
        view = ip.user_ns["flyte_auth"].view
        device_user.complete(view.verification_uri, view.user_code)

    helper = threading.Thread(target=person, daemon=True)
    helper.start()
    result = ip.run_cell(f"%flyte_login --endpoint {flyteadmin.endpoint} --flow device --wait --timeout 60")
    helper.join(30)
    result.raise_error()
    assert ip.user_ns["flyte_auth"].status == "signed_in"


def test_pkce_through_the_browser_user(nb, flyteadmin, pkce_browser):
    ip, captured = nb
    browser = pkce_browser()
    session = login(ip, f"--endpoint {flyteadmin.endpoint} --flow pkce")
    assert not session.done
    creds = session.wait(60)
    assert browser.wait(30)["status"] == "ok"
    assert session.status == "signed_in" and "waiting" in session.view.history
    assert session.view.flow == "pkce"
    assert call_api(flyteadmin, session).status_code == 200
    assert_no_tokens(creds, all_widget_state(), outputs_text(captured))


def test_auto_picks_pkce_locally_and_device_remotely(nb, flyteadmin, device_user, pkce_browser, monkeypatch):
    ip, _ = nb
    monkeypatch.setattr(connect, "browser_location",
                        lambda: BrowserLocation(False, "JupyterHub detected; the kernel is not on your machine"))
    remote = login(ip, f"--endpoint {flyteadmin.endpoint} --name remote")
    view = code_shown(remote)
    assert view.flow == "device" and "JupyterHub detected" in remote.widget.title.value
    device_user.complete(view.verification_uri, view.user_code)
    remote.wait(30)

    monkeypatch.setattr(connect, "browser_location",
                        lambda: BrowserLocation(True, "the browser runs on the kernel's machine (local Jupyter)"))
    pkce_browser()
    local = login(ip, f"--endpoint {flyteadmin.endpoint} --name local --no-cache")
    local.wait(60)
    assert local.view.flow == "pkce" and "local Jupyter" in local.view.flow_reason


def test_client_credentials(nb, flyteadmin, monkeypatch):
    ip, captured = nb
    monkeypatch.setenv("NB_TEST_CLIENT_SECRET", "confidential-secret")
    session = login(ip, f"--endpoint {flyteadmin.endpoint} --flow client-credentials --client-id jupyter-confidential "
                        "--client-secret-env NB_TEST_CLIENT_SECRET --scopes api:read --name machine")
    creds = session.wait(30)
    assert session.status == "signed_in" and session.view.flow == "client-credentials"
    assert call_api(flyteadmin, session).status_code == 200
    text = all_widget_state() + outputs_text(captured) + repr(session)
    assert "confidential-secret" not in text
    assert_no_tokens(creds, text)


def test_cached_token_signs_in_without_prompt(nb, flyteadmin, device_user, memory_keyring):
    ip, _ = nb
    first = login(ip, f"--endpoint {flyteadmin.endpoint} --flow device")
    view = code_shown(first)
    device_user.complete(view.verification_uri, view.user_code)
    first.wait(30)
    assert (flyteadmin.service, "access_token") in memory_keyring.entries
    flyteadmin.reset_requests()

    again = login(ip, f"--endpoint {flyteadmin.endpoint} --flow device --name again")
    again.wait(30)
    assert again.status == "signed_in" and again.view.flow == "cached"
    assert "waiting" not in again.view.history and again.view.user_code is None
    assert "Signed in" in again.widget.status.value
    # only the configuration documents were read; no device request was made
    assert not any("device" in path for path in flyteadmin.requests)
    assert call_api(flyteadmin, again).status_code == 200


def test_logout_clears_the_cache_and_the_variable(nb, flyteadmin, device_user, memory_keyring, capsys):
    ip, captured = nb
    session = login(ip, f"--endpoint {flyteadmin.endpoint} --flow device")
    view = code_shown(session)
    device_user.complete(view.verification_uri, view.user_code)
    session.wait(30)
    capsys.readouterr()
    ip.run_line_magic("flyte_status", "")
    status = capsys.readouterr().out
    assert f"flyte_auth: {flyteadmin.service} · as alice · device code · signed in" in status
    assert "valid until" in status
    assert_no_tokens(session.get_credentials(), status)
    ip.run_line_magic("flyte_logout", "")
    assert "flyte_auth" not in ip.user_ns
    assert not [key for key in memory_keyring.entries if key[0] == flyteadmin.service]
    assert session.status == "signed_out"


def test_pkce_paste_back_through_the_widget(nb, flyteadmin, auth_code_user, monkeypatch):
    """A browser on another machine: the redirect never reaches the kernel; the person pastes the
    address their browser ended on into the panel's field and presses Submit."""
    launched = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: launched.append(url) or False)  # no browser here
    ip, captured = nb
    session = login(ip, f"--endpoint {flyteadmin.endpoint} --flow pkce --no-cache")
    widget = session.widget
    wait_until(lambda: widget.paste_row.layout.display == "" and "href=" in widget.link.value, 20,
               "the sign-in link and the paste field")
    assert "Browser on another machine?" in widget.paste_prompt.value
    href = html.unescape(re.search(r'href="([^"]+)"', widget.link.value).group(1))  # what the person clicks
    final = auth_code_user.follow(href, get_redirect=False)  # the laptop's browser: connection error there
    assert auth_code_user.last_redirect_status is None
    query = parse_qs(urlsplit(final).query)
    code = query["code"][0]

    # a stale tab's address first: refused with one sentence, the login keeps waiting
    stale = final.split("?", 1)[0] + "?" + urlencode({"code": code, "state": "stale-tab"})
    widget.paste_text.value = stale
    widget.paste_button.click()
    assert widget.paste_text.value == ""
    wait_until(lambda: "another sign-in" in widget.status.value, 5, "the refusal sentence")
    assert session.status == "waiting" and not session.done and widget.paste_row.layout.display == ""
    assert code not in all_widget_state()

    widget.paste_text.value = final
    widget.paste_button.click()
    assert widget.paste_text.value == ""
    creds = session.wait(30)
    assert session.status == "signed_in" and session.view.flow == "pkce"
    wait_until(lambda: widget.paste_row.layout.display == "none", 5, "the paste row to hide")
    assert call_api(flyteadmin, session).status_code == 200
    state = all_widget_state()
    assert code not in state
    assert code not in outputs_text(captured) and code not in repr(session)
    assert_no_tokens(creds, state, outputs_text(captured), repr(session))
    assert launched  # the kernel tried to open a browser on its own machine, in vain
