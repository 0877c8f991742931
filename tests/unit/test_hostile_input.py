"""Hostile servers and bad user input (issue 10): each test here reproduces one defect found by review.

Real sockets (tests/faults/servers.py) where the defect lives in how bytes are read; fakes for the
clock and HTTP seam where it lives in protocol logic. Small timeouts keep it fast.
"""

from __future__ import annotations

import base64
import json
import logging

import pytest
from faults.servers import FaultServer, hang, respond

from flyteauth_jupyter import ClientConfig, Credentials, DeviceCodeAuthenticator, StaticClientConfigStore
from flyteauth_jupyter.config import RemoteClientConfigStore, config_from_documents
from flyteauth_jupyter.control import Waiter
from flyteauth_jupyter.endpoint import parse_endpoint
from flyteauth_jupyter.errors import (
    ConfigurationError,
    FlyteAuthError,
    ProtocolError,
    TransportTimeoutError,
    oauth_error,
)
from flyteauth_jupyter.flows.device import poll_for_token, run_device_flow, DeviceAuthorization
from flyteauth_jupyter.stores import MemoryStore
from flyteauth_jupyter.transport.http import Transport
from flyteauth_jupyter.validate import user_seconds
from flow_fakes import FakeClock, FakeTransport, ok

FAST = dict(timeout=(1.0, 1.0), deadline=3.0)
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlMTIzNDU2Nzg5MA"


def device_answer(**over) -> bytes:
    body = {"device_code": "DC-secret-789", "user_code": "ABCD-EFGH", "verification_uri": "http://127.0.0.1/device",
            "expires_in": 600}
    body.update(over)
    return json.dumps(body, allow_nan=True).encode()


# ------------------------------------------------------------------------------ numbers
def test_nan_interval_is_a_protocol_error_not_a_busy_poll(reliability_record) -> None:
    with FaultServer(respond(200, device_answer(interval=float("nan")))) as server:
        with pytest.raises(ProtocolError, match=f"127.0.0.1:{server.port}"):
            run_device_flow(Transport(**FAST), device_authorization_endpoint=server.url + "/device",
                            token_endpoint=server.url + "/token", client_id="cli",
                            waiter=Waiter(2.0), endpoint="127.0.0.1:1")
        assert server.hits == 1  # no token request was sent at all
    reliability_record("hostile-answers", {"answer": '"interval": NaN (device authorization)',
                                           "outcome": f"ProtocolError; {server.hits - 1} token requests sent"},
                       title="Hostile answers (tests/unit/test_hostile_input.py)", order=20)


@pytest.mark.parametrize("interval", [-1, 1e9, "NaN"])
def test_out_of_range_interval_is_a_protocol_error(interval) -> None:
    from flyteauth_jupyter.flows.device import parse_device_authorization

    with pytest.raises(ProtocolError, match="interval"):
        parse_device_authorization(json.loads(device_answer(interval=interval)), where="idp:1")


def test_expires_in_1e999_is_a_protocol_error_and_get_credentials_survives_it(reliability_record) -> None:
    body = b'{"access_token": "AT-secret-123", "token_type": "Bearer", "expires_in": 1e999}'
    with FaultServer(respond(200, body)) as server:
        cfg = ClientConfig(token_endpoint=server.url + "/token", authorization_endpoint=server.url + "/auth",
                           redirect_uri="http://127.0.0.1:1/callback", client_id="cli",
                           device_authorization_endpoint=server.url + "/device")

        def expired_auth():
            auth = DeviceCodeAuthenticator(server.url, StaticClientConfigStore(cfg), store=MemoryStore())
            auth._transport = Transport(**FAST)
            auth._set_credentials(Credentials("AT-old", "RT-secret-456", auth.service, expires_at=1.0))
            return auth

        assert expired_auth().get_credentials().access_token == "AT-old"  # a warning, not a bare OverflowError
        with pytest.raises(ProtocolError, match="not finite"):
            expired_auth().refresh_credentials(interactive=False)
    from flyteauth_jupyter.flows.tokens import credentials_from_response

    for value in (float("inf"), float("nan"), 10**400, -1, 1e12):
        with pytest.raises(ProtocolError, match="expires_in"):
            credentials_from_response({"access_token": "x", "expires_in": value}, endpoint="e")
    reliability_record("hostile-answers", {"answer": '"expires_in": 1e999 (refresh)',
                                           "outcome": "ProtocolError; get_credentials() keeps the old token"})


def test_jwt_exp_in_milliseconds_is_read_as_seconds_and_the_panel_can_show_it() -> None:
    from flyteauth_jupyter.notebook.state import clock_time

    def jwt(claims):
        part = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"eyJhbGciOiJub25lIn0.{part}.sig"

    creds = Credentials(jwt({"exp": 1_900_000_000_000, "sub": "alice"}))
    assert creds.expires_at == 1_900_000_000.0
    assert clock_time(creds.expires_at)  # "year 58887 is out of range" before
    assert Credentials(jwt({"exp": 1e300})).expires_at is None  # absurd: unknown, used until rejected
    assert Credentials("x", expires_at=float("inf")).expires_at is None


# ------------------------------------------------------------------------------ bodies
@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000])
def test_deeply_nested_json_is_a_protocol_error(body: bytes, reliability_record) -> None:
    with FaultServer(respond(200, body)) as server:
        with pytest.raises(ProtocolError, match=f"127.0.0.1:{server.port}"):
            Transport(**FAST).get_json(server.url + "/x")
    reliability_record("hostile-answers", {"answer": f"JSON nested {body.count(body[:1]):,} levels deep",
                                           "outcome": "ProtocolError (no RecursionError)"})


@pytest.mark.parametrize("announce", [True, False])
def test_a_30_mb_body_is_refused_after_at_most_the_cap(announce: bool, reliability_record) -> None:
    big = b'{"access_token": "' + b"x" * (30 * 1024 * 1024) + b'"}'

    def behaviour(server, conn, request):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        head += f"Content-Length: {len(big)}\r\n".encode() if announce else b""
        try:
            conn.sendall(head + b"\r\n" + big)
        except OSError:
            pass  # the client hung up after the cap: what we want

    with FaultServer(behaviour) as server:
        with pytest.raises(ProtocolError, match="KiB"):
            Transport(**FAST).post_form(server.url + "/token", {"grant_type": "x"})
    how = "announced in Content-Length" if announce else "without Content-Length"
    read = "nothing read" if announce else f"read stopped at the {Transport().max_body // 1024} KiB cap"
    reliability_record("hostile-answers", {"answer": f"30 MB token response, {how}", "outcome": f"ProtocolError; {read}"})


def test_200_with_authorization_pending_body_is_the_oauth_error_it_says(reliability_record) -> None:
    clock = FakeClock()
    transport = FakeTransport([ok({"error": "authorization_pending"}), ok({"access_token": "AT-1", "token_type": "Bearer"})],
                              clock=clock)
    authorization = DeviceAuthorization("DC-secret-789", "ABCD", "http://127.0.0.1/d", 600, 1.0)
    creds = poll_for_token(transport, "http://127.0.0.1/token", authorization, client_id="cli",
                           waiter=Waiter(60, clock=clock), endpoint="e")
    assert creds.access_token == "AT-1" and len(transport.posts) == 2
    reliability_record("hostile-answers", {"answer": 'HTTP 200 {"error": "authorization_pending"}',
                                           "outcome": "read as authorization_pending; polling goes on"})


# ------------------------------------------------------------------------------ deadline
def test_the_default_deadline_ends_a_hanging_metadata_fetch_within_45_s() -> None:
    store = RemoteClientConfigStore("https://flyte.example.com")
    assert store._deadline == store._transport.deadline == 40.0 < 45
    assert Transport().timeout == (10.0, 30.0) and Transport().deadline == 40.0


def test_a_hanging_metadata_server_ends_with_a_typed_error_naming_host_port() -> None:
    with FaultServer(hang) as server:
        store = RemoteClientConfigStore(server.url, timeout=(0.5, 0.5), deadline=1.5, use_issuer_metadata=False)
        with pytest.raises(TransportTimeoutError) as info:
            store.get_client_config()
        assert f"127.0.0.1:{server.port}" in str(info.value) and "1.5 s" in str(info.value)


# ------------------------------------------------------------------------------ secrets
def test_userinfo_in_the_endpoint_is_refused_without_repeating_it() -> None:
    for endpoint in ("https://alice:hunter2-Secret9@flyte.example.com", "alice:hunter2-Secret9@flyte.example.com:443",
                     "ftp://alice:hunter2-Secret9@h", "https://alice:hunter2-Secret9@h:bad"):
        with pytest.raises(ConfigurationError) as info:
            parse_endpoint(endpoint)
        assert "hunter2" not in str(info.value) and "alice" not in str(info.value)


def test_a_token_in_a_server_description_is_scrubbed_from_message_and_log(caplog) -> None:
    error = oauth_error("invalid_grant", f"refresh token {TOKEN} was revoked", status=400, where="idp:1")
    assert TOKEN not in str(error) and TOKEN not in (error.description or "")
    assert "revoked" in str(error)
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    transport = FakeTransport([ok({"error": "invalid_grant", "error_description": f"bad {TOKEN}"}, status=400)],
                              clock=clock)
    cfg = ClientConfig(token_endpoint="http://127.0.0.1:1/token", authorization_endpoint="http://127.0.0.1:1/a",
                       redirect_uri="http://127.0.0.1:1/callback", client_id="cli")
    auth = DeviceCodeAuthenticator("http://127.0.0.1:1", StaticClientConfigStore(cfg), store=MemoryStore(), clock=clock)
    auth._transport = transport
    auth._set_credentials(Credentials("AT-old", "RT-secret-456", auth.service, expires_at=1.0))
    auth.get_credentials()
    assert TOKEN not in caplog.text


# ------------------------------------------------------------------------------ user input
@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0, -1, "soon", 1e12])
def test_user_timeouts_that_are_not_usable_get_one_sentence(value) -> None:
    with pytest.raises(ConfigurationError, match="--timeout must be a number of seconds"):
        user_seconds(value)


def test_scopes_given_as_one_string_are_space_separated_everywhere() -> None:
    cfg = ClientConfig(token_endpoint="https://i/t", authorization_endpoint="https://i/a", redirect_uri="x",
                       client_id="c", scopes="openid offline_access")
    assert cfg.scopes == ["openid", "offline_access"]
    auth = DeviceCodeAuthenticator("https://flyte.example.com", StaticClientConfigStore(cfg),
                                   scopes="openid api:read", store=MemoryStore())
    assert auth.scopes == ["openid", "api:read"]


# ------------------------------------------------------------------------------ advertised endpoints
@pytest.mark.parametrize("field", ["token_endpoint", "device_authorization_endpoint", "authorization_endpoint",
                                   "revocation_endpoint"])
def test_plain_http_endpoints_in_metadata_are_refused_unless_loopback_or_insecure(field: str) -> None:
    meta = {"issuer": "https://idp.example.com", "token_endpoint": "https://idp.example.com/token",
            field: "http://evil.example.com/steal"}
    with pytest.raises(ProtocolError, match="plain-HTTP") as info:
        config_from_documents({"client_id": "c"}, meta, where="flyte.example.com:443")
    assert "flyte.example.com:443" in str(info.value)
    assert config_from_documents({"client_id": "c"}, meta, insecure=True).client_id == "c"
    meta[field] = "http://127.0.0.1:8080/x"
    assert config_from_documents({"client_id": "c"}, meta).client_id == "c"
    meta[field] = "javascript:alert(1)"
    with pytest.raises(ProtocolError, match="not a usable"):
        config_from_documents({"client_id": "c"}, meta)


def test_every_hostile_answer_raises_only_our_exceptions() -> None:
    bodies = [b"NaN", b'{"interval": Infinity}', b"\xff\xfe\x00garbage", b'{"a": 1' , b"1" * 5000,
              b'{"access_token": "x", "expires_in": -Infinity}']
    for body in bodies:
        with FaultServer(respond(200, body)) as server:
            try:
                Transport(**FAST).get_json(server.url)
            except FlyteAuthError:
                pass


def test_gzip_bodies_are_decoded_and_a_gzip_bomb_is_capped() -> None:
    import gzip

    small = gzip.compress(json.dumps({"access_token": "abc"}).encode())
    with FaultServer(respond(200, small, headers={"Content-Encoding": "gzip"})) as server:
        assert Transport(**FAST).get_json(server.url).data == {"access_token": "abc"}
    bomb = gzip.compress(b'{"a": "' + b"0" * (30 * 1024 * 1024) + b'"}')  # 30 KB on the wire
    with FaultServer(respond(200, bomb, headers={"Content-Encoding": "gzip"})) as server:
        with pytest.raises(ProtocolError, match="KiB"):
            Transport(**FAST).get_json(server.url)


def test_a_body_that_drips_in_ends_at_the_deadline(reliability_record) -> None:
    from faults.servers import drip

    with FaultServer(drip(1000, 0.2)) as server:  # a byte every 0.2 s: each read is "on time", the whole is not
        with pytest.raises(TransportTimeoutError, match=f"127.0.0.1:{server.port}"):
            Transport(timeout=(1.0, 1.0), deadline=1.5).get_json(server.url)
    reliability_record("hostile-answers", {"answer": "a body dripping in a byte every 0.2 s (read timeout 1 s)",
                                           "outcome": "TransportTimeoutError at the 1.5 s deadline"})
