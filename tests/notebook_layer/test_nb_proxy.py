"""``%flyte_login`` behind an identity-aware proxy (issue 18.6), end to end in an InteractiveShell.

The FlyteAdmin stand-in sits behind ``ProxyGate`` (tests/rig/proxy.py): without the proxy's
``proxy-authorization`` every request to it is refused. The sign-in is a real device sign-in at the real
tests/idp, which records the header names of every request it receives, so "the identity provider never
saw the proxy's header" is read from its side. The command is ``--proxy-command`` (one quoted command
line, beside ``--command``), or flytekit's own setting (``FLYTE_CREDENTIALS_PROXY_COMMAND``).
"""

from __future__ import annotations

import shlex

import pytest
import requests
from nb_idp import approve_device, login
from rig.proxy import ProxyGate, proxy_command, runs

from flyteauth_jupyter import RemoteClientConfigStore
from flyteauth_jupyter.clients import BearerAuth, proxy_auth_of
from flyteauth_jupyter.errors import ProtocolError

pytestmark = pytest.mark.idp


def proxy_headers_at_the_idp(idp, mark: int) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in idp.requests_seen(mark) if "proxy-authorization" in r["headers"]]


@pytest.fixture
def gated(make_flyteadmin, idp, tmp_path):
    gate = ProxyGate()
    admin = make_flyteadmin(idp, proxy=gate)
    RemoteClientConfigStore.clear_cache()
    yield admin, gate, proxy_command(tmp_path)
    RemoteClientConfigStore.clear_cache()


def test_sign_in_and_api_calls_behind_the_proxy(nb, gated, idp, device_user, reliability_rule):
    ip, _ = nb
    admin, gate, command = gated
    refused = login(ip, f"--endpoint {admin.endpoint} --flow device --name refused", name="refused")
    with pytest.raises(ProtocolError) as info:  # no proxy command: FlyteAdmin's metadata is refused
        refused.wait(30)
    assert info.value.status == 407 and "--proxy-command" in str(info.value) and admin.service in str(info.value)

    gate.reset()
    mark = idp.last_request()
    session = login(ip, f"--endpoint {admin.endpoint} --flow device --no-cache "
                        f"--proxy-command {shlex.quote(shlex.join(command))}")
    approve_device(session, device_user, complete_uri=False)
    creds = session.wait(60)
    assert session.status == "signed_in" and runs(command) == 1
    proxy = proxy_auth_of(session)
    assert proxy is not None and proxy is session.authenticator.proxy_auth
    token = proxy.credential.token()
    assert None not in gate.tokens("http") and set(gate.tokens("http")) == {token}

    # the API through the proxy: both headers on the deployment's origin
    response = requests.get(admin.url("/api/v1/projects"), auth=BearerAuth(session), timeout=20)
    assert response.status_code == 200 and gate.tokens("http")[-1] == token
    assert session.refresh_credentials(interactive=False).access_token != creds.access_token  # at the IdP
    ip.run_line_magic("flyte_logout", "")  # revocation at the IdP
    seen = [f"{r['method']} {r['path']}" for r in idp.requests_seen(mark)]
    assert {"POST /device/auth", "POST /token", "POST /token/revocation"} <= set(seen), seen
    assert proxy_headers_at_the_idp(idp, mark) == []
    assert runs(command) == 1  # one run for the metadata, the sign-in, the API call and the sign-out
    reliability_rule("The identity-aware proxy's credential goes to the deployment only, never to the identity provider.",
                     "%flyte_login --proxy-command: metadata, device sign-in, API call, refresh, sign-out",
                     "header on every deployment request, none of 4+ IdP requests")


def test_flytekits_proxy_command_setting_is_honoured(nb, gated, idp, device_user, monkeypatch):
    ip, _ = nb
    admin, gate, command = gated
    monkeypatch.setenv("FLYTE_PLATFORM_URL", admin.endpoint)
    monkeypatch.setenv("FLYTE_CREDENTIALS_PROXY_COMMAND", ",".join(command))  # flytekit's comma-separated list
    mark = idp.last_request()
    session = login(ip, "--flow device --no-cache")
    approve_device(session, device_user, complete_uri=False)
    session.wait(60)
    assert requests.get(admin.url("/me"), auth=BearerAuth(session), timeout=20).status_code == 200
    assert runs(command) == 1 and None not in gate.tokens("http")
    assert proxy_headers_at_the_idp(idp, mark) == []


def test_the_proxy_command_stands_beside_the_token_command_and_needs_an_endpoint(shell, idp, tmp_path):
    magics = shell.magics_manager.registry["FlyteAuthMagics"]
    from flyteauth_jupyter.notebook.options import parse_args, unquoted

    args = unquoted(parse_args(magics.flyte_login, "--endpoint http://127.0.0.1:9 --proxy-command "
                                                   "'helper --audience \"a b\"' --command print-token --x"))
    spec = magics.build_spec(args, name="flyte_auth")
    assert spec.proxy_command == ("helper", "--audience", "a b") and spec.command == ("print-token", "--x")
    with pytest.raises(Exception, match="pass --endpoint URL for the API behind the proxy"):
        shell.run_line_magic("flyte_login", f"--issuer {idp.issuer} --client-id c --proxy-command helper")
