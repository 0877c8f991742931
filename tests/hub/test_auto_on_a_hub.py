"""``--flow auto`` where the identity provider refuses the device grant for the client: the same login
continues as the browser sign-in and says so (real IdP: the Hub rig's, whose ``flyteauth-no-device``
client may not use device code; no Hub needed)."""

from __future__ import annotations

from typing import Any

import pytest

from flyteauth_jupyter.endpoint import parse_endpoint
from flyteauth_jupyter.environment import BrowserLocation
from flyteauth_jupyter.flows.events import FlowStarted
from flyteauth_jupyter.notebook.connect import LoginSpec, prepare

from rig.hub import NO_DEVICE_CLIENT

pytestmark = [pytest.mark.idp]


def test_auto_falls_back_to_the_browser_when_device_code_is_refused(
        hub_idp: Any, make_flyteadmin: Any, pkce_browser: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER"):
        monkeypatch.delenv(name, raising=False)
    admin = make_flyteadmin(hub_idp, client_id=NO_DEVICE_CLIENT)  # advertises a device endpoint
    browser = pkce_browser()
    events: list[Any] = []
    spec = LoginSpec(endpoint=parse_endpoint(admin.endpoint, insecure=True), flow="auto", no_cache=True,
                     location=BrowserLocation(False, "JupyterHub detected; the kernel is not on your machine"))
    prepared = prepare(spec, events.append)
    assert prepared.flow == "device"  # what auto picks from the environment
    creds = prepared.authenticator.refresh_credentials()
    assert browser.wait(60)["status"] == "ok"
    assert creds.access_token and admin.validate(creds.access_token)
    started = [e for e in events if isinstance(e, FlowStarted)]
    assert [e.flow for e in started] == ["device", "pkce"]
    assert started[1].reason == f"{admin.service} does not allow device code for this client, so the browser sign-in is used"
