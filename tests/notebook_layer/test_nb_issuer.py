"""``%flyte_login --issuer`` (issue 18.3) and the ``prompt`` default (18.5) in a real InteractiveShell,
against BOTH real test servers (the parametrised ``oauth_server``: node-oidc-provider and
django-oauth-toolkit), with no FlyteAdmin in the sign-in: the issuer's own discovery document.

django-oauth-toolkit advertises no device endpoint, so its device sign-in needs
``--device-authorization-endpoint``, and ``--flow auto`` on a remote kernel falls back to PKCE there
with its sentence. People are driven as in test_nb_idp.py: the device user reads the code off the
widget, the PKCE user is the BROWSER command ``webbrowser`` launches.
"""

from __future__ import annotations

import json

import ipywidgets
import pytest
import requests
from nb_idp import LOCAL, NODE, REMOTE, approve_device, device_option, login

from flyteauth_jupyter.clients import BearerAuth
from flyteauth_jupyter.endpoint import issuer_service
from flyteauth_jupyter.errors import AuthenticationError, ConfigurationError
from flyteauth_jupyter.notebook import connect

pytestmark = pytest.mark.idp



def shown_text(captured) -> str:
    instances = ipywidgets.widgets.widget._instances
    parts = [captured.stdout, captured.stderr, json.dumps([w.get_state() for w in list(instances.values())], default=str)]
    parts += [json.dumps(output.data, default=str) for output in captured.outputs]
    return "\n".join(parts)


def assert_not_shown(text: str, *secrets: str | None) -> None:
    assert [s for s in secrets if s]
    for secret in secrets:
        if secret:
            assert secret not in text


# ------------------------------------------------------------------------------------------------
def test_device_sign_in_at_the_issuer(nb, oauth_server, device_user, capsys):
    ip, captured = nb
    line = f"--issuer {oauth_server.issuer} --client-id jupyter-native --flow device {device_option(oauth_server)}"
    session = login(ip, line)
    approve_device(session, device_user, in_widget=True)
    creds = session.wait(60)
    service = issuer_service(oauth_server.issuer, "jupyter-native")
    assert session.status == "signed_in" and session.view.flow == "device"
    assert session.endpoint == service == session.view.endpoint  # the panel's title and the store's key
    assert creds.refresh_token and oauth_server.introspect(creds.access_token)["active"] is True
    # no API endpoint: the token goes nowhere by default, the panel says so in one sentence
    assert session.endpoint_url is None and "No --endpoint names the API" in session.view.notice
    with pytest.raises(ConfigurationError, match="origins"):
        BearerAuth(session)
    api = "http://127.0.0.1:9"
    bearer = BearerAuth(session, origins=[api])
    assert bearer.allows(api + "/x") and not bearer.allows(oauth_server.issuer + "/userinfo")
    capsys.readouterr()
    ip.run_line_magic("flyte_status", "")
    status = capsys.readouterr().out
    assert status.startswith(f"flyte_auth: {service} · ") and "device code · signed in" in status
    assert "No --endpoint names the API" in status
    assert_not_shown(shown_text(captured) + status + repr(session), creds.access_token, creds.refresh_token)
    # the issuer is what names this sign-in: %flyte_logout --endpoint finds it by the issuer's URL
    ip.run_line_magic("flyte_logout", f"--endpoint {oauth_server.issuer}/")
    assert "flyte_auth" not in ip.user_ns and session.status == "signed_out"
    assert oauth_server.introspect(creds.refresh_token)["active"] is False


def test_device_sign_in_needs_the_endpoint_where_the_metadata_has_none(nb, idp2):
    ip, _ = nb
    session = login(ip, f"--issuer {idp2.issuer} --client-id jupyter-native --flow device")
    with pytest.raises(AuthenticationError) as info:
        session.wait(30)
    text = str(info.value)
    assert f"127.0.0.1:{idp2.port} does not offer device sign-in" in text
    assert "give the device authorization endpoint explicitly" in text


def test_pkce_sign_in_at_the_issuer_for_an_api(nb, oauth_server, oauth_admin, pkce_browser):
    """The default prompt obtains a refresh token on both servers (node-oidc-provider drops
    offline_access without prompt=consent; django-oauth-toolkit takes the consent prompt as given)."""
    ip, captured = nb
    browser = pkce_browser()
    session = login(ip, f"--issuer {oauth_server.issuer} --client-id jupyter-native --flow pkce "
                        f"--endpoint {oauth_admin.endpoint}")
    creds = session.wait(60)
    assert browser.wait(30)["status"] == "ok"
    assert session.status == "signed_in" and session.view.flow == "pkce"
    assert creds.refresh_token  # the default prompt: a refresh token from both servers
    # --endpoint names the API: its host:port is the name and the only origin the token goes to
    assert session.endpoint == oauth_admin.service and session.endpoint_url == oauth_admin.endpoint
    assert not session.view.notice
    bearer = BearerAuth(session)
    assert not bearer.allows(oauth_server.issuer + "/userinfo")
    assert requests.get(oauth_admin.url("/api/v1/projects"), auth=bearer, timeout=10).status_code == 200
    renewed = session.refresh_credentials(interactive=False)
    assert renewed.access_token != creds.access_token
    assert_not_shown(shown_text(captured) + repr(session), creds.access_token, creds.refresh_token)


def test_auto_decides_from_the_issuers_metadata(nb, oauth_server, device_user, pkce_browser, monkeypatch):
    ip, _ = nb
    monkeypatch.setattr(connect, "browser_location", lambda: REMOTE)
    browser = pkce_browser()
    remote = login(ip, f"--issuer {oauth_server.issuer} --client-id jupyter-native --name remote", name="remote")
    if oauth_server.name == NODE:  # a device endpoint: the device code on a remote kernel
        approve_device(remote, device_user, in_widget=True)
        remote.wait(60)
        assert remote.view.flow == "device" and "over SSH" in remote.view.flow_reason
    else:  # none advertised (as Cognito): the browser sign-in, with the sentence that says why
        remote.wait(60)
        assert browser.wait(30)["status"] == "ok"
        assert remote.view.flow == "pkce" and "offers no device flow" in remote.view.flow_reason

    monkeypatch.setattr(connect, "browser_location", lambda: LOCAL)
    pkce_browser()
    local = login(ip, f"--issuer {oauth_server.issuer} --client-id jupyter-native --name local --no-cache",
                  name="local")
    local.wait(60)
    assert local.view.flow == "pkce" and "local Jupyter" in local.view.flow_reason


def test_the_issuer_needs_a_client_id_and_the_device_endpoint_needs_the_issuer(shell, idp):
    with pytest.raises(Exception, match="--issuer needs --client-id"):
        shell.run_line_magic("flyte_login", f"--issuer {idp.issuer}")
    with pytest.raises(Exception, match="goes with --issuer"):
        shell.run_line_magic("flyte_login", f"--endpoint http://127.0.0.1:9 --device-authorization-endpoint "
                                            f"{idp.device_authorization_endpoint}")
    with pytest.raises(Exception, match="not a usable https URL"):  # in the cell, before anything is sent
        shell.run_line_magic("flyte_login", "--issuer http://idp.example.com --client-id c")
    with pytest.raises(Exception, match="not a usable https URL"):
        shell.run_line_magic("flyte_login", f"--issuer {idp.issuer} --client-id c --device-authorization-endpoint "
                                            "http://idp.example.com/device")
    assert "flyte_auth" not in shell.user_ns


def test_the_prompt_setting_reaches_the_browser_sign_in(nb, oauth_server, pkce_browser):
    """``%config FlyteAuthMagics.prompt = ''`` never sends a prompt: node-oidc-provider then drops
    offline_access and issues no refresh token (why the default sends consent); django-oauth-toolkit
    issues one either way."""
    ip, _ = nb
    ip.run_line_magic("config", "FlyteAuthMagics.prompt = ''")
    browser = pkce_browser()
    session = login(ip, f"--issuer {oauth_server.issuer} --client-id jupyter-native --flow pkce --no-cache")
    creds = session.wait(60)
    assert browser.wait(30)["status"] == "ok"
    assert session.authenticator.prompt == ""
    assert bool(creds.refresh_token) is (oauth_server.name != NODE)
