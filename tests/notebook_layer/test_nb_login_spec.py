"""``%flyte_login``'s wave-3 options down to the spec and the configuration store, without a network:
--issuer (the name, the origin, which settings apply), the secret's two sources, the prompt setting,
--proxy-command and the SDKs' proxy command. (Against the real servers: test_nb_issuer.py,
test_nb_confidential.py, test_nb_proxy.py.)"""

from __future__ import annotations

import pytest

from flyteauth_jupyter.config import IssuerClientConfigStore, RemoteClientConfigStore
from flyteauth_jupyter.errors import ConfigurationError
from flyteauth_jupyter.environment import BrowserLocation, FlowRequest, decide_flow
from flyteauth_jupyter.notebook import connect
from flyteauth_jupyter.notebook.options import parse_args, unquoted

ISSUER = "https://login.example.com/realms/lab"


def spec_of(shell, line: str):
    magics = shell.magics_manager.registry["FlyteAuthMagics"]
    return magics.build_spec(unquoted(parse_args(magics.flyte_login, line)), name="flyte_auth")


def test_an_issuer_without_an_endpoint_is_named_after_the_issuer_and_has_no_origin(shell, monkeypatch):
    monkeypatch.setenv("FLYTE_PLATFORM_URL", "flyte.example.com")  # flytekit's: not for an OIDC API
    monkeypatch.setenv("FLYTE_CREDENTIALS_CLIENT_ID", "flytectl")
    shell.run_line_magic("config", "FlyteAuthMagics.default_endpoint = 'https://other.example.com'")
    spec = spec_of(shell, f"--issuer {ISSUER} --client-id lab --scopes openid offline_access api "
                          f"--device-authorization-endpoint {ISSUER}/device")
    assert spec.endpoint is None and spec.endpoint_url is None
    assert spec.service == "login.example.com/realms/lab (client lab)" and spec.client_id == "lab"
    store = connect.config_store_for(spec)
    assert isinstance(store, IssuerClientConfigStore) and store.service == spec.service
    assert store._device == f"{ISSUER}/device" and store._scopes == ["openid", "offline_access", "api"]
    assert store._redirect_uri == "http://127.0.0.1:53593/callback"


def test_an_issuer_with_an_endpoint_is_named_after_the_api(shell):
    spec = spec_of(shell, f"--issuer {ISSUER} --client-id lab --endpoint https://api.example.com")
    assert spec.service == "api.example.com" and spec.endpoint_url == "https://api.example.com"
    assert isinstance(connect.config_store_for(spec), IssuerClientConfigStore)
    flyte = spec_of(shell, "--endpoint https://flyte.example.com")
    assert isinstance(connect.config_store_for(flyte), RemoteClientConfigStore)


def test_a_secret_on_the_line_is_a_confidential_clients_and_one_from_the_settings_is_not(shell, monkeypatch):
    monkeypatch.setenv("LAB_SECRET", "very-secret-value-1234")
    spec = spec_of(shell, "--endpoint https://flyte.example.com --client-secret-env LAB_SECRET")
    assert spec.confidential and spec.has_client_secret and "very-secret" not in repr(spec)
    monkeypatch.setenv("FLYTE_PLATFORM_URL", "flyte.example.com")
    monkeypatch.setenv("FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR", "LAB_SECRET")
    from_settings = spec_of(shell, "")
    assert from_settings.has_client_secret and not from_settings.confidential


def test_the_prompt_setting_reaches_the_spec_and_the_store(shell):
    assert spec_of(shell, "--endpoint https://flyte.example.com").prompt is None
    shell.run_line_magic("config", "FlyteAuthMagics.prompt = ''")
    spec = spec_of(shell, f"--issuer {ISSUER} --client-id lab")
    assert spec.prompt == "" and connect.config_store_for(spec)._prompt == ""
    shell.run_line_magic("config", "FlyteAuthMagics.prompt = 'select_account'")
    flyte = spec_of(shell, "--endpoint https://flyte.example.com")
    assert connect.config_store_for(flyte)._prompt == "select_account"
    shell.run_line_magic("config", "FlyteAuthMagics.prompt = 'x' * 200")
    with pytest.raises(ConfigurationError, match="prompt must be a short text"):
        shell.run_line_magic("flyte_login", "--endpoint https://flyte.example.com")


def test_the_proxy_command_from_the_line_or_the_settings(shell, monkeypatch):
    spec = spec_of(shell, "--endpoint https://flyte.example.com --proxy-command 'iap-helper --audience X'")
    assert spec.proxy_command == ("iap-helper", "--audience", "X")
    proxy = connect.proxy_auth_for(spec)
    assert proxy.allows("https://flyte.example.com/api") and not proxy.allows("https://login.example.com/token")
    assert connect.config_store_for(spec, proxy)._transport.proxy_auth is proxy
    monkeypatch.setenv("FLYTE_PLATFORM_URL", "flyte.example.com")
    monkeypatch.setenv("FLYTE_CREDENTIALS_PROXY_COMMAND", "gcloud,auth,print-identity-token")
    assert spec_of(shell, "").proxy_command == ("gcloud", "auth", "print-identity-token")
    other = spec_of(shell, "--endpoint https://elsewhere.example.com")  # settings for another deployment
    assert other.proxy_command == () and connect.proxy_auth_for(other) is None
    with pytest.raises(ConfigurationError, match="--proxy-command needs the program"):
        shell.run_line_magic("flyte_login", "--endpoint https://flyte.example.com --proxy-command ''")


def test_auto_on_a_remote_kernel_picks_pkce_through_the_relay_from_the_issuers_metadata(shell):
    """With the relay redirect (redirect_uri trait), auto prefers PKCE for an issuer too."""
    shell.run_line_magic("config", "FlyteAuthMagics.redirect_uri = 'https://hub.example/hub/user-redirect/flyteauth/callback'")
    spec = spec_of(shell, f"--issuer {ISSUER} --client-id lab")
    store = connect.config_store_for(spec)
    from flyteauth_jupyter.config import ClientConfig

    store.get_client_config = lambda: ClientConfig(  # type: ignore[method-assign]  # the seam: no request
        f"{ISSUER}/token", f"{ISSUER}/auth", store._redirect_uri, "lab", device_authorization_endpoint=f"{ISSUER}/device")
    remote = BrowserLocation(False, "JupyterHub detected; the kernel is not on your machine")
    choice = decide_flow(FlowRequest(flow="auto", location=remote, endpoint=spec.service), connect.Lookups(spec, store))
    assert choice.flow == "pkce" and "relay" in choice.reason
