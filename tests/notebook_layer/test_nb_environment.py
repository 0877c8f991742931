"""--flow auto: where the browser runs, and the rules."""

from __future__ import annotations

import pytest

from flyteauth_jupyter.errors import ConfigurationError
from flyteauth_jupyter.environment import BrowserLocation, browser_location, choose_flow

LOCAL_LINUX = {"DISPLAY": ":0"}


def where(env, platform="linux", modules=(), dockerenv=False):
    return browser_location(env, platform=platform, modules=modules, dockerenv=dockerenv)


@pytest.mark.parametrize(
    ("env", "modules", "needle"),
    [
        ({**LOCAL_LINUX, "JUPYTERHUB_API_TOKEN": "x"}, (), "JupyterHub"),
        ({**LOCAL_LINUX, "JUPYTERHUB_SERVICE_PREFIX": "/user/a/"}, (), "JupyterHub"),
        (LOCAL_LINUX, ("google.colab",), "Colab"),
        ({**LOCAL_LINUX, "COLAB_RELEASE_TAG": "r"}, (), "Colab"),
        ({**LOCAL_LINUX, "KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, (), "Kaggle"),
        ({**LOCAL_LINUX, "CODESPACES": "true"}, (), "Codespaces"),
        ({**LOCAL_LINUX, "VSCODE_AGENT_FOLDER": "/root/.vscode-server"}, (), "VS Code remote"),
        ({**LOCAL_LINUX, "SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22"}, (), "SSH"),
        ({**LOCAL_LINUX, "BINDER_SERVICE_HOST": "x"}, (), "Binder"),
        ({}, (), "no display"),
    ],
)
def test_remote_environments(env, modules, needle):
    location = where(env, modules=modules)
    assert not location.local
    assert needle in location.reason


def test_local_environments():
    assert where(LOCAL_LINUX).local
    assert where({"WAYLAND_DISPLAY": "wayland-0"}).local
    assert where({}, platform="darwin").local
    assert where({}, platform="win32").local
    assert not where(LOCAL_LINUX, dockerenv=True).local


LOCAL = BrowserLocation(True, "the browser runs on the kernel's machine (local Jupyter)")
REMOTE = BrowserLocation(False, "JupyterHub detected; the kernel is not on your machine")


def test_auto_rules():
    both = dict(authorization_endpoint="https://idp/auth", device_endpoint="https://idp/device")
    assert choose_flow("auto", location=LOCAL, **both).flow == "pkce"
    remote = choose_flow("auto", location=REMOTE, **both)
    assert remote.flow == "device" and "JupyterHub" in remote.reason
    assert choose_flow("auto", location=LOCAL, device_endpoint="d").flow == "device"
    pkce_only = choose_flow("auto", location=REMOTE, authorization_endpoint="a")
    assert pkce_only.flow == "pkce" and "no device flow" in pkce_only.reason
    with pytest.raises(ConfigurationError, match="neither"):
        choose_flow("auto", location=LOCAL, endpoint="h:1")


def test_explicit_and_configured_choices():
    assert choose_flow("device", location=LOCAL, authorization_endpoint="a").reason == "chosen with --flow"
    assert choose_flow("auto", location=LOCAL, has_client_secret=True).flow == "client-credentials"
    assert choose_flow("auto", location=LOCAL, has_command=True).flow == "command"
    configured = choose_flow("auto", location=LOCAL, authorization_endpoint="a", configured_auth_type="DeviceFlow")
    assert configured.flow == "device" and "authType DeviceFlow" in configured.reason
    # flytekit's default authType does not force PKCE on a remote kernel
    assert choose_flow("auto", location=REMOTE, authorization_endpoint="a", device_endpoint="d",
                       configured_auth_type="Pkce").flow == "device"
    assert choose_flow("auto", location=REMOTE, authorization_endpoint="a", device_endpoint="d",
                       configured_auth_type="notebook_pkce").flow == "pkce"
    with pytest.raises(ConfigurationError, match="Unknown flow"):
        choose_flow("magic", location=LOCAL)


def test_auto_picks_pkce_through_the_relay_on_a_remote_kernel():
    """A relay redirect URI (JupyterHub) makes PKCE work remotely, so auto prefers it there."""
    from flyteauth_jupyter.config import ClientConfig, StaticClientConfigStore
    from flyteauth_jupyter.endpoint import parse_endpoint
    from flyteauth_jupyter.environment import FlowRequest, decide_flow
    from flyteauth_jupyter.notebook.connect import LoginSpec, Lookups

    cfg = StaticClientConfigStore(ClientConfig(
        token_endpoint="https://idp/token", authorization_endpoint="https://idp/auth",
        redirect_uri="http://localhost:53593/callback", client_id="c", device_authorization_endpoint="https://idp/device"))
    hub = where({**LOCAL_LINUX, "JUPYTERHUB_SERVICE_PREFIX": "/user/a/"})
    base = dict(endpoint=parse_endpoint("https://flyte.example.com"), location=hub)
    request = FlowRequest(flow="auto", location=hub)
    assert decide_flow(request, Lookups(LoginSpec(**base), cfg)).flow == "device"
    relayed = decide_flow(request, Lookups(LoginSpec(**base, redirect_uri="https://hub.example.com/user/a/flyteauth/callback"), cfg))
    assert relayed.flow == "pkce" and "relay" in relayed.reason
