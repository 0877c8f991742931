"""Confidential clients with every flow (issue 18.4) through ``%flyte_login``, against the real servers.

A client registered with a secret gets ``401 invalid_client`` without it, on the device and the
browser sign-in alike; with ``--client-secret-env VAR`` the same sign-in succeeds, as that flow (not
client credentials), sending ``client_secret_basic``, or ``client_secret_post`` where the metadata
allows only that (a node-oidc-provider whose token endpoint accepts only post). The secret is in no
output, widget state, repr or log record.
"""

from __future__ import annotations

import base64
import json
import logging

import ipywidgets
import pytest
from nb_idp import LOCAL, NODE, approve_device, device_option, login

from flyteauth_jupyter.errors import InvalidClientError, InvalidGrantError
from flyteauth_jupyter.flows.client_auth import ClientSecretBasic
from flyteauth_jupyter.flows.refresh import refresh_access_token
from flyteauth_jupyter.transport.http import Transport
from flyteauth_jupyter.notebook import connect
from flyteauth_jupyter.notebook.session import LoginSession

pytestmark = pytest.mark.idp

SECRET = "confidential-secret"
SECRET_ENV = "NB_TEST_CONFIDENTIAL_SECRET"


def everything_shown(captured, session, caplog) -> str:
    instances = ipywidgets.widgets.widget._instances
    parts = [captured.stdout, captured.stderr, repr(session), repr(session.authenticator), caplog.text,
             json.dumps([w.get_state() for w in list(instances.values())], default=str)]
    parts += [json.dumps(output.data, default=str) for output in captured.outputs]
    parts += [str(record.args) for record in caplog.records]
    return "\n".join(parts)


def assert_secret_not_shown(text: str, client_id: str) -> None:
    basic = base64.b64encode(f"{client_id}:{SECRET}".encode()).decode()
    assert SECRET not in text and basic not in text


def assert_invalid_client(session: LoginSession, where: str) -> None:
    with pytest.raises(InvalidClientError) as info:
        session.wait(60)
    assert info.value.status == 401 and where in str(info.value) and SECRET not in str(info.value)
    assert session.status == "error"


@pytest.fixture
def confidential(nb, monkeypatch, caplog):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    ip, captured = nb
    ip.run_line_magic("config", "FlyteAuthMagics.redirect_uri = 'http://127.0.0.1/callback'")  # as registered
    return ip, captured, caplog


def test_device_sign_in_of_a_confidential_client(confidential, oauth_server, device_user):
    ip, captured, caplog = confidential
    line = (f"--issuer {oauth_server.issuer} --client-id jupyter-confidential --flow device --no-cache "
            f"{device_option(oauth_server)}")
    assert_invalid_client(login(ip, line), f"127.0.0.1:{oauth_server.port}")

    session = login(ip, f"{line} --client-secret-env {SECRET_ENV}")
    approve_device(session, device_user)
    creds = session.wait(60)
    assert session.status == "signed_in" and session.view.flow == "device"
    assert creds.refresh_token and session.authenticator.confidential
    renewed = session.refresh_credentials(interactive=False)  # the refresh grant sends the secret too
    assert renewed.access_token != creds.access_token
    assert_secret_not_shown(everything_shown(captured, session, caplog), "jupyter-confidential")


def test_browser_sign_in_of_a_confidential_client_with_auto(confidential, oauth_server, pkce_browser, monkeypatch):
    """--flow auto with a secret is the user's sign-in of a confidential client, not client credentials."""
    ip, captured, caplog = confidential
    monkeypatch.setattr(connect, "browser_location", lambda: LOCAL)
    line = f"--issuer {oauth_server.issuer} --client-id jupyter-confidential --no-cache"
    pkce_browser()
    assert_invalid_client(login(ip, line), f"127.0.0.1:{oauth_server.port}")

    browser = pkce_browser()
    session = login(ip, f"{line} --client-secret-env {SECRET_ENV}")
    creds = session.wait(60)
    assert browser.wait(30)["status"] == "ok"
    assert session.view.flow == "pkce" and creds.refresh_token
    assert_secret_not_shown(everything_shown(captured, session, caplog), "jupyter-confidential")
    ip.run_line_magic("flyte_logout", "")  # revocation as the confidential client (with the secret)
    assert session.status == "signed_out"
    if oauth_server.name == NODE:  # django-oauth-toolkit's discovery document names no revocation endpoint
        with pytest.raises(InvalidGrantError):  # revoked, so refused even with the secret
            refresh_access_token(Transport(), oauth_server.token_endpoint, creds, client_id="jupyter-confidential",
                                 endpoint="check", auth=ClientSecretBasic("jupyter-confidential", SECRET))


def test_client_secret_post_where_the_metadata_allows_only_that(confidential, make_idp, device_user, pkce_browser,
                                                                 tmp_path):
    ip, captured, caplog = confidential
    clients = [{
        "client_id": "jupyter-confidential-post-native", "client_secret": SECRET, "application_type": "native",
        "token_endpoint_auth_method": "client_secret_post", "response_types": ["code"],
        "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        "redirect_uris": ["http://127.0.0.1/callback"],
    }]
    (tmp_path / "clients.json").write_text(json.dumps(clients))
    idp = make_idp(clients_file=str(tmp_path / "clients.json"), client_auth_methods="client_secret_post")
    assert idp.metadata["token_endpoint_auth_methods_supported"] == ["client_secret_post"]
    line = f"--issuer {idp.issuer} --client-id jupyter-confidential-post-native --no-cache"

    assert_invalid_client(login(ip, f"{line} --flow device"), f"127.0.0.1:{idp.port}")
    session = login(ip, f"{line} --flow device --client-secret-env {SECRET_ENV}")
    approve_device(session, device_user)
    creds = session.wait(60)
    assert session.view.flow == "device" and creds.refresh_token
    assert session.refresh_credentials(interactive=False).access_token != creds.access_token

    browser = pkce_browser()
    session = login(ip, f"{line} --flow pkce --client-secret-env {SECRET_ENV}")
    assert session.wait(60).refresh_token and browser.wait(30)["status"] == "ok"
    assert_secret_not_shown(everything_shown(captured, session, caplog), "jupyter-confidential-post-native")
