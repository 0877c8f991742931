"""The fault matrix's last two rows: the IdP restarted mid-flow, and a keyring that raises (issue 10).

A restart loses the provider's in-memory grants (device codes, authorization codes, refresh tokens):
the flow in progress must end with a typed error saying to sign in again, within its deadline, and
the next login succeed. A keyring that raises (and echoes what it was given) must never break a
login: the private file cache takes over (DESIGN.md pinned 19), with one warning that names no secret.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import keyring.errors
import pytest
from faults.servers import FaultServer, relay, refused_port
from keyring.backend import KeyringBackend

from flyteauth_jupyter import (
    ClientConfig,
    ClientCredentialsAuthenticator,
    Credentials,
    DeviceCodeAuthenticator,
    KeyringStore,
    PKCEAuthenticator,
    StaticClientConfigStore,
)
from flyteauth_jupyter.errors import FlyteAuthError, OAuthError, TransportError
from flyteauth_jupyter.flows.events import DeviceCodeIssued
from flyteauth_jupyter.stores import FileStore, MemoryStore
from rig.idp import CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, NATIVE_CLIENT

from .test_fault_matrix import ADVICE, HEALTHY_HTTP, browser_follower, check_message

pytestmark = pytest.mark.idp
TABLE = dict(matrix=("case", "path", "outcome"), order=10)


def restart(provider: Any, *, stop: bool = True) -> None:
    """Stop the provider and start a new one on the same port (its memory of grants is gone)."""
    port = provider.port if provider.port else provider.requested_port
    if stop:
        provider.stop()
    provider.requested_port = port
    provider.start()  # the rig starts node again when a start stalls (rig.idp.IdP.ATTEMPTS)
    assert provider.port == port


def config(provider: Any, token_endpoint: str | None = None) -> StaticClientConfigStore:
    return StaticClientConfigStore(ClientConfig(
        token_endpoint=token_endpoint or provider.token_endpoint,
        authorization_endpoint=provider.authorization_endpoint,
        redirect_uri=f"http://127.0.0.1:{refused_port()}/callback",
        client_id=NATIVE_CLIENT,
        device_authorization_endpoint=provider.device_authorization_endpoint,
        scopes=["openid", "offline_access"],
    ))


def device_login(provider: Any, device_user: Any, **kwargs: Any) -> Credentials:
    def approve(event: Any) -> None:
        if isinstance(event, DeviceCodeIssued):
            device_user.complete_in_thread(event.verification_uri, event.user_code,
                                           verification_uri_complete=event.verification_uri_complete)

    kwargs.setdefault("store", MemoryStore())
    auth = DeviceCodeAuthenticator(provider.issuer, config(provider), timeout=60, observer=approve,
                                   **HEALTHY_HTTP, **kwargs)
    return auth.refresh_credentials()


@pytest.fixture(scope="module")
def restartable(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from rig.idp import IdP

    provider = IdP(device_interval=1, slow_down=False, rt_rotation="always").start()
    yield provider
    provider.stop()


def record_restart(reliability_record: Any, path: str, outcome: str) -> None:
    reliability_record("fault-matrix", {"case": "IdP restarted mid-flow", "path": path, "outcome": outcome}, **TABLE)


def test_restart_during_device_polling(restartable: Any, device_user: Any, reliability_record: Any) -> None:
    issued: concurrent.futures.Future[DeviceCodeIssued] = concurrent.futures.Future()
    auth = DeviceCodeAuthenticator(restartable.issuer, config(restartable), store=MemoryStore(), timeout=30,
                                   observer=lambda e: isinstance(e, DeviceCodeIssued) and issued.set_result(e),
                                   http_timeout=(1.0, 2.0), http_deadline=4.0)
    started = time.monotonic()
    future = auth.refresh_in_background()
    issued.result(timeout=20)
    restart(restartable)  # the user has not approved yet; the device code is gone with the old process
    with pytest.raises(FlyteAuthError) as info:
        future.result(timeout=45)
    elapsed = time.monotonic() - started
    assert isinstance(info.value, OAuthError), repr(info.value)
    text = str(info.value)
    assert len(text) <= 500 and ADVICE.search(text) and f"127.0.0.1:{restartable.port}" in text, text
    record_restart(reliability_record, "device", f"{type(info.value).__name__}, {elapsed:.1f} s")
    assert device_login(restartable, device_user).access_token  # the next login succeeds


def test_restart_between_the_browser_sign_in_and_the_code_exchange(restartable: Any, auth_code_user: Any,
                                                                     reliability_record: Any) -> None:
    def restart_then_relay(server: Any, conn: Any, request: Any) -> None:
        restart(restartable)
        relay(restartable.port)(server, conn, request)

    with FaultServer(restart_then_relay) as front:
        token = front.url + urlsplit(restartable.token_endpoint).path
        auth = PKCEAuthenticator(restartable.issuer, config(restartable, token), store=MemoryStore(), timeout=60,
                                 open_browser=browser_follower(auth_code_user), **HEALTHY_HTTP)
        started = time.monotonic()
        with pytest.raises(OAuthError) as info:
            auth.refresh_credentials()
        elapsed = time.monotonic() - started
        check_message(info.value, front.url.split("//")[1], {CONFIDENTIAL_SECRET})
        record_restart(reliability_record, "pkce", f"{type(info.value).__name__}, {elapsed:.1f} s")
        front.behaviour = relay(restartable.port)
        again = PKCEAuthenticator(restartable.issuer, config(restartable, token), store=MemoryStore(), timeout=60,
                                  open_browser=browser_follower(auth_code_user), **HEALTHY_HTTP)
        assert again.refresh_credentials().access_token


def test_restart_loses_the_refresh_token_and_says_to_sign_in_again(restartable: Any, device_user: Any,
                                                                     reliability_record: Any) -> None:
    creds = device_login(restartable, device_user)
    restart(restartable)
    auth = DeviceCodeAuthenticator(restartable.issuer, config(restartable), store=MemoryStore(), **HEALTHY_HTTP)
    auth._set_credentials(Credentials(creds.access_token, creds.refresh_token, auth.service, expires_at=1.0))
    started = time.monotonic()
    with pytest.raises(FlyteAuthError) as info:  # invalid_grant: the grant is over (AccessTokenNotFoundError)
        auth.refresh_credentials(interactive=False)
    elapsed = time.monotonic() - started
    text = check_message(info.value, f"127.0.0.1:{restartable.port}", {creds.refresh_token, creds.access_token})
    assert "sign in again" in text
    record_restart(reliability_record, "refresh", f"{type(info.value).__name__}, {elapsed:.1f} s")
    assert device_login(restartable, device_user).refresh_token


def test_client_credentials_while_the_idp_restarts(restartable: Any, reliability_record: Any) -> None:
    def attempt() -> Credentials:
        cfg = config(restartable)
        return ClientCredentialsAuthenticator(restartable.issuer, CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, cfg,
                                              scopes=["api:read"], http_timeout=(1.0, 2.0), http_deadline=4.0,
                                              ).refresh_credentials()

    port = restartable.port
    restartable.stop()
    started = time.monotonic()
    try:
        with pytest.raises(TransportError) as info:
            attempt()
        elapsed = time.monotonic() - started
    finally:
        restartable.requested_port = port
        restart(restartable, stop=False)
    check_message(info.value, f"127.0.0.1:{port}", {CONFIDENTIAL_SECRET})
    record_restart(reliability_record, "client-credentials", f"{type(info.value).__name__}, {elapsed:.1f} s")
    assert attempt().access_token


# ------------------------------------------------------------------------------------- keyring
class RaisingKeyring(KeyringBackend):
    """Every call fails, and the message repeats what it was given (a hostile backend)."""

    priority = -5  # type: ignore[assignment]

    def get_password(self, service, username):
        raise keyring.errors.KeyringLocked(f"locked: {service} {username}")

    def set_password(self, service, username, password):
        raise keyring.errors.PasswordSetError(f"cannot store {password} for {username}")

    def delete_password(self, service, username):
        raise keyring.errors.PasswordDeleteError(f"cannot delete {username}")


@pytest.mark.parametrize("path", ["client-credentials", "device"])
def test_a_keyring_that_raises_never_breaks_a_login(path: str, idp: Any, device_user: Any, caplog: Any,
                                                     reliability_record: Any) -> None:
    store = KeyringStore(keyring=RaisingKeyring())  # the default fallback: the private file cache
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    if path == "client-credentials":
        creds = ClientCredentialsAuthenticator(idp.issuer, CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, config(idp),
                                               scopes=["api:read"], store=store, **HEALTHY_HTTP).refresh_credentials()
    else:
        creds = device_login(idp, device_user, store=store)
    elapsed = time.monotonic() - started
    assert creds.access_token
    reason = store.fallback_reason or ""
    assert "private file cache" in reason and "KeyringLocked" in reason, reason
    assert FileStore().load(idp.issuer).access_token == creds.access_token  # a restarted kernel finds it
    for secret in (creds.access_token, creds.refresh_token, creds.id_token, CONFIDENTIAL_SECRET):
        assert not secret or (secret not in reason and secret not in caplog.text)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "private file cache" in r.getMessage()]
    assert len(warnings) == 1
    reliability_record("fault-matrix", {"case": "keyring raises", "path": path,
                                        "outcome": f"signed in (file cache fallback, one warning), {elapsed:.1f} s"},
                       **TABLE)
