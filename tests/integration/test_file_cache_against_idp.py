"""The opt-in file cache against the real identity provider: a login survives a kernel restart.

A "restart" is a NEW authenticator (and a new FileStore object) reading the same directory; the
counting session shows it makes no request at all, and FlyteAdmin's protected API accepts the token.
"""

from __future__ import annotations

import os
import stat
import threading
from typing import Any

import pytest
import requests
from rig.sign_in import Recorder

from flyteauth_jupyter import ClientCredentialsAuthenticator, DeviceCodeAuthenticator
from flyteauth_jupyter.flows.events import DeviceCodeIssued
from flyteauth_jupyter.stores import TOKEN_CACHE_ENV, FileStore

pytestmark = pytest.mark.idp

CONFIDENTIAL = ("jupyter-confidential", "confidential-secret")


class CountingSession(requests.Session):
    """A loopback Session that counts every request it makes (method and path only)."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        with self._lock:
            self.calls.append(f"{method.upper()} {requests.utils.urlparse(url).path}")
        return super().request(method, url, *args, **kwargs)

    @property
    def token_requests(self) -> list[str]:
        return [c for c in self.calls if c.startswith("POST")]


def call_api(admin: Any, metadata: tuple[str, str] | None) -> int:
    assert metadata is not None
    with requests.Session() as s:
        s.trust_env = False
        return s.get(admin.url("/api/v1/projects"), headers=dict([metadata]), timeout=10).status_code


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_client_credentials_token_survives_a_restart(flyteadmin, cache_env):
    directory = cache_env / "tokens"
    first_session = CountingSession()
    first = ClientCredentialsAuthenticator(flyteadmin.endpoint, *CONFIDENTIAL, None, scopes=["api:read"],
                                           store=FileStore(directory), session=first_session)
    creds = first.refresh_credentials()
    assert first_session.token_requests  # the real login asked the IdP
    path = FileStore(directory).path_for(flyteadmin.service)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert creds.access_token not in path.name

    restarted_session = CountingSession()
    restarted = ClientCredentialsAuthenticator(flyteadmin.endpoint, *CONFIDENTIAL, None, scopes=["api:read"],
                                               store=FileStore(directory), session=restarted_session)
    again = restarted.get_credentials()
    assert again is not None and again.access_token == creds.access_token
    assert restarted_session.calls == []  # no token request, no request at all
    assert call_api(flyteadmin, restarted.fetch_grpc_call_auth_metadata()) == 200
    assert not restarted_session.token_requests  # (the header key may be read from the server's config)


def test_device_login_is_found_after_a_restart_through_the_environment(flyteadmin, device_user, cache_env,
                                                                       monkeypatch):
    monkeypatch.setenv(TOKEN_CACHE_ENV, "file")
    recorder = Recorder()
    first = DeviceCodeAuthenticator(flyteadmin.endpoint, None, observer=recorder, timeout=60,
                                    session=CountingSession())
    assert isinstance(first.store, FileStore)  # chosen by FLYTEAUTH_TOKEN_CACHE=file
    future = first.refresh_in_background()
    code = recorder.first(DeviceCodeIssued, 30)
    assert device_user.complete(code.verification_uri, code.user_code)["status"] == "approved"
    creds = future.result(timeout=30)
    assert creds.refresh_token and creds.subject == "alice"

    restarted_session = CountingSession()
    restarted = DeviceCodeAuthenticator(flyteadmin.endpoint, None, session=restarted_session)
    assert isinstance(restarted.store, FileStore) and restarted.store is not first.store
    found = restarted.get_credentials()
    assert found is not None
    assert (found.access_token, found.refresh_token) == (creds.access_token, creds.refresh_token)
    assert not restarted_session.token_requests
    assert call_api(flyteadmin, (restarted.header_key, f"Bearer {found.access_token}")) == 200
    assert not restarted_session.token_requests
