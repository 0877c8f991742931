"""What the benchmarks run against: the loopback IdP (tests/idp, via tests/rig), the FlyteAdmin
stand-in, a request-counting requests.Session, and the client configurations for both SDKs."""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))  # the rig package (tests/rig) is imported as ``rig``

SCOPES = ["openid", "offline_access", "api:read"]
NATIVE_CLIENT = "jupyter-native"


class CountingSession(requests.Session):
    """A Session that records every request it sends: (method, path, grant_type, start, end)."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.sent: list[tuple[str, str, str, float, float]] = []
        self._lock = threading.Lock()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        data = kwargs.get("data")
        grant = data.get("grant_type", "") if isinstance(data, dict) else ""
        start = time.perf_counter()
        try:
            return super().request(method, url, *args, **kwargs)
        finally:
            with self._lock:
                self.sent.append((method.upper(), urlsplit(url).path, grant, start, time.perf_counter()))

    def count(self, path: str | None = None, grant: str | None = None) -> int:
        with self._lock:
            return sum(1 for m, p, g, *_ in self.sent if (path is None or p == path) and (grant is None or g == grant))

    def posts(self, grant: str) -> list[tuple[float, float]]:
        with self._lock:
            return [(s, e) for m, p, g, s, e in self.sent if m == "POST" and g == grant]


class Rig:
    """One IdP (device interval 1 s, slow_down on, refresh tokens not rotated so that flytekit's
    concurrent refreshes can all succeed, access tokens as JWTs: what node-oidc-provider, Okta and
    Entra issue for an API) and a FlyteAdmin stand-in in front of it."""

    def __init__(self) -> None:
        from rig.flyteadmin import FlyteAdminStandIn
        from rig.idp import IdP

        self.idp = IdP(device_interval=1, slow_down=True, rt_rotation="never", at_format="jwt").start()
        self.admin = FlyteAdminStandIn(self.idp).start()

    def close(self) -> None:
        self.admin.stop()
        self.idp.stop()

    def access_token(self) -> str:
        """A real access token from the IdP (client credentials of its confidential client, for the
        API's scope): the JWT the per-call rows hold on both sides."""
        from rig.idp import CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET

        with requests.Session() as http:
            http.trust_env = False
            answer = http.post(self.idp.token_endpoint, data={"grant_type": "client_credentials", "scope": "api:read"},
                               auth=(CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET), timeout=30)
        answer.raise_for_status()
        token = answer.json()["access_token"]
        if not isinstance(token, str) or token.count(".") != 2:
            raise RuntimeError("the IdP issued no JWT access token")
        return token

    def our_config(self, redirect_uri: str = "http://127.0.0.1:53593/callback") -> Any:
        from flyteauth_jupyter.config import ClientConfig, StaticClientConfigStore

        return StaticClientConfigStore(
            ClientConfig(
                token_endpoint=self.idp.token_endpoint,
                authorization_endpoint=self.idp.authorization_endpoint,
                redirect_uri=redirect_uri,
                client_id=NATIVE_CLIENT,
                device_authorization_endpoint=self.idp.device_authorization_endpoint,
                scopes=list(SCOPES),
                header_key="flyte-authorization",
            )
        )

    def flytekit_config(self) -> Any:
        from flytekit.clients.auth.authenticator import ClientConfig, StaticClientConfigStore

        return StaticClientConfigStore(
            ClientConfig(
                token_endpoint=self.idp.token_endpoint,
                authorization_endpoint=self.idp.authorization_endpoint,
                redirect_uri="http://127.0.0.1:53593/callback",
                client_id=NATIVE_CLIENT,
                device_authorization_endpoint=self.idp.device_authorization_endpoint,
                scopes=list(SCOPES),
                header_key="flyte-authorization",
            )
        )


def use_memory_keyring() -> Any:
    """flytekit's KeyringStore talks to ``keyring``: give this process an in-memory backend."""
    import keyring
    from rig.memory_keyring import MemoryKeyring

    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


def quiet_env() -> dict[str, str]:
    """The environment for probe subprocesses: no proxies, the tests' rig importable."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env
