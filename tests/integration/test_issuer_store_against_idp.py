"""Sign-in to any OIDC API (issue 18, item 3): IssuerClientConfigStore against the real provider, no FlyteAdmin.

The store reads the provider's own discovery document (tests/idp: node-oidc-provider); the existing
authenticator classes, given that store, complete device and browser (PKCE) sign-ins as a person
would. Nothing here starts a FlyteAdmin stand-in.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from rig.sign_in import Recorder

from flyteauth_jupyter import DeviceCodeAuthenticator, PKCEAuthenticator
from flyteauth_jupyter.config import IssuerClientConfigStore
from flyteauth_jupyter.errors import ProtocolError
from flyteauth_jupyter.flows.events import DeviceCodeIssued
from flyteauth_jupyter.stores import MemoryStore
from flyteauth_jupyter.transport.http import build_session

pytestmark = pytest.mark.idp


def loopback_session() -> requests.Session:
    session = build_session()
    session.trust_env = False
    return session


def store_for(idp: Any, **kw: Any) -> IssuerClientConfigStore:
    kw.setdefault("scopes", ["openid", "offline_access", "api:read"])
    return IssuerClientConfigStore(idp.issuer, "jupyter-native", session=loopback_session(), **kw)


def test_discovery_reads_the_providers_own_document(idp: Any) -> None:
    cfg = IssuerClientConfigStore(idp.issuer, "jupyter-native", session=loopback_session()).get_client_config()
    assert cfg.issuer == idp.issuer
    assert cfg.token_endpoint == idp.token_endpoint and cfg.authorization_endpoint == idp.authorization_endpoint
    assert cfg.device_authorization_endpoint == idp.device_authorization_endpoint
    assert cfg.revocation_endpoint == idp.revocation_endpoint
    assert cfg.code_challenge_methods_supported == ["S256"]
    assert "client_secret_basic" in (cfg.token_endpoint_auth_methods_supported or [])
    assert cfg.scopes == ["openid", "offline_access"]  # offline_access is advertised, so asked for


def test_device_sign_in_with_the_issuer_store(idp: Any, device_user: Any) -> None:
    recorder = Recorder()
    auth = DeviceCodeAuthenticator(idp.issuer, store_for(idp), observer=recorder, store=MemoryStore(), timeout=60)
    future = auth.refresh_in_background()
    code = recorder.first(DeviceCodeIssued, 15)
    device_user.complete(code.verification_uri, code.user_code, verification_uri_complete=code.verification_uri_complete)
    creds = future.result(timeout=30)
    assert creds.access_token and creds.refresh_token and creds.subject == "alice"
    assert idp.introspect(creds.access_token)["active"] is True


def test_pkce_sign_in_with_the_issuer_store(idp: Any, auth_code_user: Any) -> None:
    outcome: dict[str, Any] = {}

    def opener(url: str) -> bool:
        def go() -> None:
            try:
                outcome["final"] = auth_code_user.follow(url)
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome["error"] = exc

        threading.Thread(target=go, daemon=True).start()
        return True

    store = store_for(idp, redirect_uri="http://127.0.0.1/callback")
    auth = PKCEAuthenticator(idp.issuer, store, open_browser=opener, store=MemoryStore(), timeout=30)
    creds = auth.refresh_credentials()
    assert "error" not in outcome, outcome.get("error")
    assert creds.access_token and creds.refresh_token  # offline_access kept: prompt=consent went with it
    assert idp.introspect(creds.access_token)["active"] is True
    refreshed = auth.refresh_credentials(interactive=False)
    assert refreshed.access_token != creds.access_token


def test_a_wrong_issuer_path_is_refused(idp: Any) -> None:
    store = IssuerClientConfigStore(idp.issuer + "/tenant", "jupyter-native", session=loopback_session())
    with pytest.raises(ProtocolError) as info:
        store.get_client_config()
    assert f"127.0.0.1:{idp.port}" in str(info.value) and "issuer URL" in str(info.value)


@pytest.mark.parametrize("prompt, refresh_token", [(None, True), ("consent", True), ("", False)])
def test_prompt_setting_and_the_refresh_token(idp: Any, auth_code_user: Any, prompt: Any, refresh_token: bool) -> None:
    """The default obtains a refresh token here (node-oidc-provider drops offline_access without
    prompt=consent, OIDC Core 11); "" never sends a prompt, and then none comes back."""
    from flyteauth_jupyter.flows import authcode
    from flyteauth_jupyter.control import Waiter
    from flyteauth_jupyter.transport.http import Transport

    cfg = store_for(idp, prompt=prompt, redirect_uri="http://127.0.0.1/callback").get_client_config()
    assert cfg.prompt == prompt
    seen: dict[str, str] = {}

    def opener(url: str) -> bool:
        seen["url"] = url
        threading.Thread(target=lambda: auth_code_user.follow(url), daemon=True).start()
        return True

    creds = authcode.run_authcode_flow(
        Transport(loopback_session()), authorization_endpoint=cfg.authorization_endpoint,
        token_endpoint=cfg.token_endpoint, client_id=cfg.client_id, redirect_uri=cfg.redirect_uri,
        waiter=Waiter(30), endpoint="prompt.test", scopes=cfg.scopes, open_browser=opener, issuer=cfg.issuer,
        prompt=cfg.prompt,
    )
    assert creds.access_token
    assert bool(creds.refresh_token) is refresh_token
    assert ("prompt=consent" in seen["url"]) is (prompt != "")
