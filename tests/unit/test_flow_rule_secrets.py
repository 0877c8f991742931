"""The --flow rule for a client secret (issue 18.4): a secret makes the user's sign-in a confidential
client's; client credentials only when chosen, by flytekit's authType, or by auto when the server
offers no user sign-in (environment.decide_flow's docstring)."""

from __future__ import annotations

import pytest

from flyteauth_jupyter.environment import BrowserLocation, FlowRequest, ServerFacts, choose_flow, decide_flow
from flyteauth_jupyter.errors import ConfigurationError

LOCAL = BrowserLocation(True, "the browser runs on the kernel's machine (local Jupyter)")
REMOTE = BrowserLocation(False, "the kernel runs over SSH; your browser is on another machine")


class Server:
    def __init__(self, **facts):
        self.facts = ServerFacts(**facts)
        self.asked = 0

    def server(self):
        self.asked += 1
        return self.facts

    def hub(self):  # pragma: no cover - no Hub in these requests
        raise AssertionError("the Hub was asked")


BOTH = {"authorization_endpoint": "https://idp/auth", "device_endpoint": "https://idp/device"}


@pytest.mark.parametrize("location, facts, flow", [
    (LOCAL, BOTH, "pkce"),
    (REMOTE, BOTH, "device"),
    (REMOTE, {"authorization_endpoint": "https://idp/auth"}, "pkce"),  # Cognito: no device endpoint
    (LOCAL, {"device_endpoint": "https://idp/device"}, "device"),
])
def test_auto_with_a_secret_picks_the_users_sign_in(location, facts, flow):
    server = Server(**facts)
    choice = decide_flow(FlowRequest(flow="auto", location=location, has_client_secret=True), server)
    assert choice.flow == flow and server.asked == 1


def test_auto_with_a_secret_and_no_user_sign_in_picks_client_credentials():
    choice = decide_flow(FlowRequest(flow="auto", location=LOCAL, has_client_secret=True, endpoint="api:443"), Server())
    assert choice.flow == "client-credentials"
    assert choice.reason == "the server at api:443 offers no user sign-in, and a client secret was given"
    with pytest.raises(ConfigurationError, match="neither an authorization endpoint nor a device endpoint"):
        decide_flow(FlowRequest(flow="auto", location=LOCAL, endpoint="api:443"), Server())


@pytest.mark.parametrize("flow", ["device", "pkce", "client-credentials"])
def test_an_explicit_flow_with_a_secret_is_kept(flow):
    server = Server(**BOTH)
    assert decide_flow(FlowRequest(flow=flow, location=LOCAL, has_client_secret=True), server).flow == flow
    assert server.asked == 0


def test_flytekits_client_secret_auth_type_still_picks_client_credentials():
    choice = decide_flow(FlowRequest(flow="auto", location=LOCAL, has_client_secret=True,
                                     configured_auth_type="ClientSecret"), Server(**BOTH))
    assert choice.flow == "client-credentials" and "authType ClientSecret" in choice.reason


def test_choose_flow_alone_follows_the_same_rule():
    assert choose_flow("auto", location=LOCAL, has_client_secret=True, **BOTH).flow == "pkce"
    assert choose_flow("auto", location=LOCAL, has_client_secret=True).flow == "client-credentials"
