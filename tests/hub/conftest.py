"""The JupyterHub rig's fixtures (session-scoped: the Hub starts once per test session).

* :func:`hub_idp`: a node-oidc-provider of its own (tests/idp) that knows the Hub's clients
  (rig/hub.py ``hub_clients``), issues JWT access tokens for the Flyte API (audience
  ``urn:jupyter:api``) that live :data:`AT_TTL` seconds, so that refreshing through the Hub happens
  within a test.
* :func:`hub_flyteadmin`: the FlyteAdmin stand-in for it, whose client config names the kernels'
  public client and the one relay redirect URI ``<hub>/hub/user-redirect/flyteauth/callback`` and
  the API's audience; it advertises a device endpoint, which that client may not use (as on many
  real deployments), so ``--flow auto`` must not pick device code.
* :func:`hub`: the Hub (rig/hub.py) with alice and bob, signing users in at :func:`hub_idp`.
* :func:`hub_browser`: Debian chromium through Playwright (loopback only), one context per user.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rig.chromium import launch
from rig.flyteadmin import FlyteAdminStandIn
from rig.hub import KERNEL_CLIENT, RELAY_PATH, HubRig, ensure_proxy, free_port, hub_clients
from rig.idp import RESOURCE, IdP, ensure_node_modules

AT_TTL = 24  # seconds: the kernel asks the Hub again when less than 12 s are left


@pytest.fixture(scope="session")
def hub_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def hub_idp(hub_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdP]:
    ensure_node_modules()
    clients = tmp_path_factory.mktemp("hub-idp") / "clients.json"
    clients.write_text(json.dumps(hub_clients(f"http://127.0.0.1:{hub_port}")))
    with IdP(device_interval=1, at_format="jwt", at_ttl=AT_TTL, rt_rotation="always",
             extra_clients_file=str(clients)) as provider:
        yield provider


@pytest.fixture(scope="session")
def hub_flyteadmin(hub_idp: IdP, hub_port: int) -> Iterator[FlyteAdminStandIn]:
    with FlyteAdminStandIn(
        hub_idp, client_id=KERNEL_CLIENT, redirect_uri=f"http://127.0.0.1:{hub_port}{RELAY_PATH}",
        scopes=("openid", "offline_access", "api:read"), audience=RESOURCE,
    ) as admin:
        yield admin


@pytest.fixture(scope="session")
def hub(hub_idp: IdP, hub_flyteadmin: FlyteAdminStandIn, hub_port: int,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubRig]:
    ensure_proxy()
    rig = HubRig(hub_idp.issuer or "", hub_flyteadmin.endpoint, tmp_path_factory.mktemp("hub"), port=hub_port)
    with rig:
        print(f"\nJupyterHub answered through its proxy {rig.started_in:.1f} s after start")
        yield rig


class HubBrowser:
    """Playwright's chromium; ``.context(user)`` is that user's own browser profile (cookies)."""

    def __init__(self, pw: Any, root: Path) -> None:
        self.pw = pw
        self.root = root
        self.blocked: list[str] = []
        self._contexts: dict[str, Any] = {}

    def context(self, name: str) -> Any:
        if name not in self._contexts:
            context = launch(self.pw, self.root / name, self.blocked, viewport={"width": 1100, "height": 800})
            context.set_default_timeout(30_000)
            self._contexts[name] = context
        return self._contexts[name]

    def close(self) -> None:
        for context in self._contexts.values():
            context.close()


@pytest.fixture(scope="session")
def hub_browser(playwright: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubBrowser]:
    browser = HubBrowser(playwright, tmp_path_factory.mktemp("hub-chromium"))  # fresh user-data dirs
    try:
        yield browser
    finally:
        browser.close()
