"""The identity-aware proxy's credential (flyteauth_jupyter.proxy): a real command, run as the command
flow runs one, cached per process, renewed near its JWT expiry or on the proxy's refusal, single flight.

The command is tests/rig/proxy_token.py, which counts its own runs in a file (so the counts do not trust
the code under test). Time is a fake clock only where a token's expiry is the point.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from requests.structures import CaseInsensitiveDict
from rig.proxy import proxy_command, runs

from flyteauth_jupyter.clients import BearerAuth, grpc_auth_plugin
from flyteauth_jupyter.errors import CommandError, ConfigurationError
from flyteauth_jupyter.proxy import PROXY_HEADER, ProxyAuth, ProxyCredential, proxy_refused, shared_credential
from flyteauth_jupyter.sdk_config import FlytekitSettings

from flow_fakes import FakeClock

PY = sys.executable
SECRET_ARG = "--client-secret=sk-live-0123456789abcdefghij"
THREADS = 8


def fixed(token: str) -> list[str]:
    return [PY, "-c", f"print({token!r})"]


# ------------------------------------------------------------------------------ what is sent
def test_the_header_is_what_flytekit_and_the_flyte2_sdk_send(monkeypatch):
    """flytekit: ``CommandAuthenticator(proxy_command, header_key="proxy-authorization")`` gives
    ``("proxy-authorization", "Bearer <stdout>")``. The Flyte 2 SDK formats the value the same way
    (``f"Bearer {token}"``); its 2.12 proxy authenticator drops ``header_key`` into ``**kwargs``, so it
    really sends that value under ``authorization`` (a bug of that SDK): we keep flytekit's header name."""
    command = fixed("iap-token-0123456789")
    ours = ProxyAuth(credential=ProxyCredential(command), endpoint="https://flyte.example.com").current()

    from flytekit.clients.auth.authenticator import CommandAuthenticator

    kit = CommandAuthenticator(command, header_key="proxy-authorization")
    kit.refresh_credentials()
    assert ours == kit.fetch_grpc_call_auth_metadata() == (PROXY_HEADER, "Bearer iap-token-0123456789")

    import asyncio
    import concurrent.futures

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    from flyte.remote._client.auth._authenticators.factory import get_async_proxy_authenticator

    async def flyte2_headers() -> dict[str, str]:
        authenticator = get_async_proxy_authenticator(endpoint="dns:///flyte.example.com", proxy_command=command)
        await authenticator.refresh_credentials()
        return (await authenticator.get_auth_headers()).headers

    # in a thread of its own: Playwright's sync API (the browser suite's session-scoped fixture) keeps
    # an event loop marked as running on the main thread, where asyncio.run() refuses to start
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        headers = pool.submit(asyncio.run, flyte2_headers()).result(timeout=60)
    assert list(headers.values()) == [ours[1]]


def test_the_command_runs_once_per_process(tmp_path):
    command = proxy_command(tmp_path)
    first = ProxyAuth(command, endpoint="https://flyte.example.com")
    second = ProxyAuth(list(command), endpoint="flyte.example.com:443")
    assert first.credential is second.credential is shared_credential(command)
    values = {first.value(), second.value(), first.value(), *(second.current()[1] for _ in range(5))}
    assert len(values) == 1 and runs(command) == 1


# --------------------------------------------------------------------------------- renewal
def test_a_jwt_is_renewed_within_its_margin_and_not_before(tmp_path):
    clock = FakeClock(start=time.time())
    command = proxy_command(tmp_path, "--jwt", "120")  # margin min(60, 120 / 2) = 60 s
    credential = ProxyCredential(command, clock=clock)
    first = credential.token()
    clock.advance(55)
    assert credential.token() == first and runs(command) == 1
    clock.advance(10)  # 55 s left: inside the margin
    second = credential.token()
    assert second != first and runs(command) == 2
    assert credential.token() == second and runs(command) == 2


def test_a_short_lived_jwt_uses_half_its_lifetime_as_margin(tmp_path):
    clock = FakeClock(start=time.time())
    command = proxy_command(tmp_path, "--jwt", "40")  # margin 20 s
    credential = ProxyCredential(command, clock=clock)
    first = credential.token()
    clock.advance(15)
    assert credential.token() == first
    clock.advance(10)
    assert credential.token() != first and runs(command) == 2


def test_a_token_that_comes_already_expired_is_used_until_refused_not_rerun_per_request(tmp_path):
    command = proxy_command(tmp_path, "--jwt", "-10")
    credential = ProxyCredential(command)
    first = credential.token()
    assert [credential.token() for _ in range(5)] == [first] * 5 and runs(command) == 1
    assert credential.renew(first) != first and runs(command) == 2


def test_an_opaque_token_is_kept_until_refused_and_a_stale_refusal_costs_no_run(tmp_path):
    command = proxy_command(tmp_path)
    credential = ProxyCredential(command)
    first = credential.token()
    second = credential.renew(first)
    assert second != first and runs(command) == 2
    assert credential.renew(first) == second and runs(command) == 2  # someone already replaced it
    assert credential.renew() != second and runs(command) == 3  # no value named: the held one


def _gated(tmp_path: Path, *options: str) -> tuple[list[str], Path]:
    gate = tmp_path / "gate"
    return proxy_command(tmp_path, "--gate", str(gate), *options), gate


def _overlap(call, gate: Path, count: int = THREADS) -> list[object]:
    """``count`` threads make ``call()`` while the command is held open; their results (or exceptions)."""
    results: list[object] = [None] * count
    arrived = [threading.Event() for _ in range(count)]

    def worker(i: int) -> None:
        arrived[i].set()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - compared below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    started = Path(f"{gate}.started")
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:  # the first run is waiting at the gate
        time.sleep(0.01)
    assert started.exists(), "the proxy command never started"
    assert all(event.wait(30) for event in arrived)
    gate.touch()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_first_use_from_many_threads_runs_the_command_once(tmp_path):
    command, gate = _gated(tmp_path)
    credential = ProxyCredential(command)
    results = _overlap(credential.token, gate)
    assert len(set(results)) == 1 and isinstance(results[0], str)
    assert runs(command) == 1 and credential.runs == 1


def test_overlapping_renewals_after_a_refusal_share_one_run(tmp_path):
    command, gate = _gated(tmp_path)
    gate.touch()
    credential = ProxyCredential(command)
    refused = credential.token()
    gate.unlink()
    Path(f"{gate}.started").unlink()
    results = _overlap(lambda: credential.renew(refused), gate)
    assert len(set(results)) == 1 and results[0] != refused
    assert runs(command) == 2


def test_a_failing_command_is_one_sentence_naming_the_program_for_every_waiter(tmp_path):
    command, gate = _gated(tmp_path, "--fail", SECRET_ARG)
    credential = ProxyCredential(command)
    results = _overlap(credential.token, gate)
    assert all(isinstance(r, CommandError) for r in results) and runs(command) == 1
    text = str(results[0])
    assert text.startswith(f"The proxy command '{Path(PY).name}' exited with status 3")
    assert "not signed in" in text and len(text) <= 500
    assert SECRET_ARG.split("=")[1] not in text and "proxy_token.py" not in text and "proxy-1-" not in text


def test_a_missing_program_and_an_empty_command_are_one_sentence():
    with pytest.raises(CommandError, match=r"^The proxy command 'flyte-iap' was not found"):
        ProxyCredential(["/nonexistent/flyte-iap", "generate-token", SECRET_ARG]).token()
    with pytest.raises(ConfigurationError, match="proxy command is empty"):
        ProxyCredential([])
    with pytest.raises(ConfigurationError, match="timeout"):
        ProxyCredential(["flyte-iap"], timeout=float("nan"))


def test_nothing_shows_or_logs_the_token(tmp_path, caplog):
    command = proxy_command(tmp_path, SECRET_ARG)
    proxy = ProxyAuth(credential=ProxyCredential(command), endpoint="https://flyte.example.com")
    with caplog.at_level(logging.DEBUG, logger="flyteauth_jupyter"):
        token = proxy.credential.token()
        proxy.renew(f"Bearer {token}")
        token2 = proxy.credential.token()
    shown = [repr(proxy), str(proxy), repr(proxy.credential), repr(proxy.credential._held.creds), caplog.text]
    for text in shown:
        assert token not in text and token2 not in text and SECRET_ARG not in text
    assert "python" in repr(proxy) and "flyte.example.com" in repr(proxy)


# ------------------------------------------------------------------------------ whose refusal
def _response(status: int, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(headers)
    return response


@pytest.mark.parametrize(("status", "headers", "expected"), [
    (407, {}, True),
    (401, {"X-Goog-IAP-Generated-Response": "true"}, True),
    (401, {"Proxy-Authenticate": 'Bearer realm="iap"'}, True),
    (401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, False),  # the deployment's: the bearer token
    (401, {}, False),
    (403, {"X-Goog-IAP-Generated-Response": "true"}, False),  # not signed-in trouble: no renewal helps
    (200, {}, False),
])
def test_which_refusals_are_the_proxys(status, headers, expected):
    assert proxy_refused(_response(status, **headers)) is expected


# ------------------------------------------------------------------------------ which origins
def test_only_the_deployments_origins_get_the_header():
    proxy = ProxyAuth(fixed("t"), endpoint="flyte.example.com", origins=["https://console.example.com"])
    assert proxy.allows("https://FLYTE.example.com:443/api/v1/projects")
    assert proxy.allows("https://console.example.com/x")
    for url in ("http://flyte.example.com/api", "https://flyte.example.com:8443/api", "https://idp.example.com/token",
                "https://flyte.example.com.evil.example/api", "flyte.example.com/api"):
        assert not proxy.allows(url), url
    local = ProxyAuth(fixed("t"), endpoint="127.0.0.1:30080", insecure=True)
    assert local.allows("http://127.0.0.1:30080/config/v1/flyte_client")
    assert not local.allows("http://127.0.0.1:30081/token")  # the IdP on the same host, another port
    idn = ProxyAuth(fixed("t"), endpoint="https://bücher.example")
    assert idn.allows(requests.Request("GET", "https://bücher.example/x").prepare().url)
    with pytest.raises(ConfigurationError, match="origins"):
        ProxyAuth(fixed("t"), endpoint="flyte.example.com", origins=["console.example.com"])
    with pytest.raises(ConfigurationError):
        ProxyAuth(endpoint="flyte.example.com")


def test_from_settings_builds_one_only_when_a_proxy_command_is_configured():
    assert ProxyAuth.from_settings(FlytekitSettings(endpoint="flyte.example.com")) is None
    settings = FlytekitSettings(endpoint="127.0.0.1:30080", insecure=True, proxy_command=("flyte-iap", "generate-token"))
    proxy = ProxyAuth.from_settings(settings)
    assert proxy is not None and proxy.credential.argv == ("flyte-iap", "generate-token")
    assert proxy.allows("http://127.0.0.1:30080/x")
    with pytest.raises(ConfigurationError, match="no endpoint"):
        ProxyAuth.from_settings(FlytekitSettings(proxy_command=("flyte-iap",)))


def test_a_request_to_another_origin_never_runs_the_command(tmp_path):
    command = proxy_command(tmp_path)
    proxy = ProxyAuth(credential=ProxyCredential(command), endpoint="https://flyte.example.com")
    prepared = proxy(requests.Request("GET", "https://idp.example.com/token").prepare())
    assert PROXY_HEADER not in prepared.headers and runs(command) == 0
    prepared = proxy(requests.Request("GET", "https://flyte.example.com/api").prepare())
    assert prepared.headers[PROXY_HEADER].startswith("Bearer proxy-1-") and runs(command) == 1


# ------------------------------------------------------------------------------ gRPC plug-in
class Deployment:
    """An authenticator as the SDK seam sees it: an endpoint, a header, maybe a proxy credential."""

    def __init__(self, proxy_auth: ProxyAuth | None = None) -> None:
        self.endpoint_url = "https://flyte.example.com"
        self.proxy_auth = proxy_auth
        self.refreshes = 0

    def fetch_grpc_call_auth_metadata(self) -> tuple[str, str]:
        return ("flyte-authorization", "Bearer access-token-0123456789")

    def refresh_credentials(self) -> None:
        self.refreshes += 1


class Context:
    def __init__(self, service_url: str) -> None:
        self.service_url = service_url
        self.method_name = "ListProjects"


def _plugin_metadata(plugin, service_url: str) -> tuple:
    got: list[tuple] = []
    plugin(Context(service_url), lambda metadata, error: got.append((metadata, error)))
    (metadata, error), = got
    assert error is None
    return metadata


def test_the_grpc_plugin_adds_the_proxy_pair_beside_the_bearer_pair_on_the_deployment_only():
    proxy = ProxyAuth(fixed("iap-token-0123456789"), endpoint="https://flyte.example.com")
    plugin = grpc_auth_plugin(Deployment(proxy))  # the authenticator's proxy_auth is picked up
    assert dict(_plugin_metadata(plugin, "https://flyte.example.com:443/flyteidl.service.AdminService")) == {
        "proxy-authorization": "Bearer iap-token-0123456789",
        "flyte-authorization": "Bearer access-token-0123456789",
    }
    assert _plugin_metadata(plugin, "https://other.example.com/flyteidl.service.AdminService") == ()
    # the method path is the caller's: naming the deployment there does not count
    assert _plugin_metadata(plugin, "https://other.example.com/flyte.example.com:443/Svc") == ()
    no_proxy = grpc_auth_plugin(Deployment(proxy), proxy_auth=None)
    assert dict(_plugin_metadata(no_proxy, "https://flyte.example.com/Svc")) == {
        "flyte-authorization": "Bearer access-token-0123456789"}


def test_a_failing_proxy_command_fails_the_grpc_call_with_its_sentence():
    proxy = ProxyAuth(["/nonexistent/flyte-iap", SECRET_ARG], endpoint="https://flyte.example.com")
    got: list[tuple] = []
    grpc_auth_plugin(Deployment(proxy))(Context("https://flyte.example.com/Svc"), lambda m, e: got.append((m, e)))
    (metadata, error), = got
    assert metadata == () and "proxy command 'flyte-iap' was not found" in str(error)
    assert SECRET_ARG not in str(error)


def test_bearer_auth_picks_up_the_authenticators_proxy_credential():
    proxy = ProxyAuth(fixed("iap-token-0123456789"), endpoint="https://flyte.example.com")
    auth = BearerAuth(Deployment(proxy))
    prepared = auth(requests.Request("GET", "https://flyte.example.com/api/v1/projects").prepare())
    assert prepared.headers["proxy-authorization"] == "Bearer iap-token-0123456789"
    assert prepared.headers["flyte-authorization"] == "Bearer access-token-0123456789"
    other = auth(requests.Request("GET", "https://idp.example.com/token").prepare())
    assert "proxy-authorization" not in other.headers and "flyte-authorization" not in other.headers
    plain = BearerAuth(Deployment(proxy), proxy_auth=None)(requests.Request("GET", "https://flyte.example.com/").prepare())
    assert "proxy-authorization" not in plain.headers
