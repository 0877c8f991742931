"""Auth code + PKCE (URL, fresh values, exchange, blocking launcher), client_secret_basic, token commands."""

from __future__ import annotations

import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from flyteauth_jupyter.control import Waiter
from flyteauth_jupyter.errors import CommandError, ConfigurationError, InvalidGrantError
from flyteauth_jupyter.flows import authcode, client_credentials, command, pkce
from flyteauth_jupyter.flows.events import AuthorizationRequested
from flow_fakes import SECRETS, FakeTransport, oauth, ok

TOKEN = {"access_token": SECRETS[0], "refresh_token": SECRETS[1], "token_type": "Bearer", "expires_in": 60}


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_authorization_url_parameters() -> None:
    url = authcode.build_authorization_url(
        "https://idp.test/auth?tenant=t1", client_id="cli", redirect_uri="http://127.0.0.1:5/cb",
        scopes=["openid", "offline_access"], state="st", code_challenge="ch", audience="aud",
    )
    q = query(url)
    assert q == {"tenant": "t1", "response_type": "code", "client_id": "cli", "redirect_uri": "http://127.0.0.1:5/cb",
                 "scope": "openid offline_access", "state": "st", "code_challenge": "ch",
                 "code_challenge_method": "S256", "prompt": "consent", "audience": "aud"}


def test_no_prompt_without_offline_access_and_no_empty_params() -> None:
    q = query(authcode.build_authorization_url("https://idp.test/auth", client_id="c", redirect_uri="http://127.0.0.1/cb",
                                               scopes=["api:read"], state="s", code_challenge="x"))
    assert "prompt" not in q and "audience" not in q and q["scope"] == "api:read"


def browser_hitting_receiver(params_override=None, calls=None):
    """An opener that behaves like a browser: follows the URL straight to the redirect URI."""

    def opener(url: str) -> bool:
        q = query(url)
        if calls is not None:
            calls.append(q)
        params = {"code": "CODE-" + q["state"][:4], "state": q["state"]}
        params.update(params_override or {})

        def go():
            s = requests.Session()
            s.trust_env = False
            s.get(q["redirect_uri"], params=params, timeout=5)

        threading.Thread(target=go, daemon=True).start()
        return True

    return opener


def test_flow_exchanges_code_with_matching_verifier() -> None:
    calls, events = [], []
    transport = FakeTransport([ok(TOKEN)])
    creds = authcode.run_authcode_flow(
        transport, authorization_endpoint="https://idp.test/auth", token_endpoint="https://idp.test/token",
        client_id="cli", redirect_uri="http://127.0.0.1:0/callback", waiter=Waiter(10), endpoint="flyte:1",
        scopes=["openid"], observer=events.append, open_browser=browser_hitting_receiver(calls=calls),
    )
    assert creds.access_token == SECRETS[0]
    url, data, _, _ = transport.posts[0]
    sent = calls[0]
    assert data["grant_type"] == "authorization_code" and data["client_id"] == "cli"
    assert data["code"] == "CODE-" + sent["state"][:4]
    assert data["redirect_uri"] == sent["redirect_uri"]
    assert pkce.code_challenge(data["code_verifier"]) == sent["code_challenge"]
    requested = [e for e in events if isinstance(e, AuthorizationRequested)]
    assert len(requested) == 1 and requested[0].browser_opened and requested[0].redirect_uri == sent["redirect_uri"]
    assert all(data["code_verifier"] not in repr(e) and data["code"] not in repr(e) for e in events)


def test_each_attempt_has_fresh_state_and_verifier() -> None:
    calls = []
    for _ in range(2):
        authcode.run_authcode_flow(
            FakeTransport([ok(TOKEN)]), authorization_endpoint="https://idp.test/auth",
            token_endpoint="https://idp.test/token", client_id="c", redirect_uri="http://127.0.0.1:0/cb",
            waiter=Waiter(10), endpoint="e", open_browser=browser_hitting_receiver(calls=calls),
        )
    assert calls[0]["state"] != calls[1]["state"]
    assert calls[0]["code_challenge"] != calls[1]["code_challenge"]


def test_a_launcher_that_blocks_does_not_stall_the_flow() -> None:
    release = threading.Event()
    events = []
    hit = browser_hitting_receiver()

    def blocking_opener(url: str) -> bool:
        hit(url)  # the "user" still completes the sign-in (e.g. from the link shown)
        release.wait(30)
        return True

    try:
        creds = authcode.run_authcode_flow(
            FakeTransport([ok(TOKEN)]), authorization_endpoint="https://idp.test/auth",
            token_endpoint="https://idp.test/token", client_id="c", redirect_uri="http://127.0.0.1:0/cb",
            waiter=Waiter(10), endpoint="e", observer=events.append, open_browser=blocking_opener,
        )
    finally:
        release.set()
    assert creds.access_token == SECRETS[0]
    requested = [e for e in events if isinstance(e, AuthorizationRequested)]
    assert len(requested) == 1 and requested[0].browser_opened is False


def test_no_browser_still_reports_the_url() -> None:
    events = []
    seen = threading.Event()

    def observer(e):
        events.append(e)
        if isinstance(e, AuthorizationRequested):
            browser_hitting_receiver()(e.url)
            seen.set()

    authcode.run_authcode_flow(
        FakeTransport([ok(TOKEN)]), authorization_endpoint="https://idp.test/auth", token_endpoint="https://idp.test/token",
        client_id="c", redirect_uri="http://127.0.0.1:0/cb", waiter=Waiter(10), endpoint="e", observer=observer,
        open_browser=False,
    )
    assert seen.is_set() and not events[-1].browser_opened


def test_exchange_error_is_mapped_and_receiver_closed() -> None:
    calls = []
    with pytest.raises(InvalidGrantError):
        authcode.run_authcode_flow(
            FakeTransport([oauth("invalid_grant", "grant request is invalid")]),
            authorization_endpoint="https://idp.test/auth", token_endpoint="https://idp.test/token", client_id="c",
            redirect_uri="http://127.0.0.1:0/cb", waiter=Waiter(10), endpoint="e",
            open_browser=browser_hitting_receiver(calls=calls),
        )
    port = int(urlsplit(calls[0]["redirect_uri"]).port)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/cb", timeout=2)


# ------------------------------------------------------------------------- client credentials
def test_basic_header_flytekit_vector() -> None:
    assert client_credentials.basic_authorization_header("client_id", "abc") == "Basic Y2xpZW50X2lkOmFiYw=="


def test_basic_header_form_encodes_both_id_and_secret() -> None:
    import base64

    header = client_credentials.basic_authorization_header("my client:1", "p@ss w:rd&")
    decoded = base64.b64decode(header.split()[1]).decode()
    assert decoded == "my+client%3A1:p%40ss+w%3Ard%26"


def test_client_credentials_request() -> None:
    t = FakeTransport([ok({"access_token": SECRETS[0], "token_type": "bearer", "expires_in": 600})])
    creds = client_credentials.fetch_client_credentials_token(
        t, "https://idp.test/token", client_id="svc", client_secret=SECRETS[3], endpoint="e", scopes=["api:read"],
        audience="aud")
    _, data, auth, _ = t.posts[0]
    assert data == {"grant_type": "client_credentials", "scope": "api:read", "audience": "aud"}
    assert SECRETS[3] not in repr(auth) and SECRETS[3] not in str(auth)
    prepared = auth(requests.Request("POST", "https://x/").prepare())
    assert prepared.headers["Authorization"] == client_credentials.basic_authorization_header("svc", SECRETS[3])
    assert creds.expires_in == 600 and creds.scopes == ("api:read",)


# ------------------------------------------------------------------------------- commands
PY = sys.executable


def test_command_prints_token() -> None:
    assert command.run_token_command([PY, "-c", f"print('  {SECRETS[0]}  ')"]) == SECRETS[0]


def test_command_stdin_is_closed() -> None:
    # a helper that reads stdin gets EOF at once instead of hanging the kernel
    token = command.run_token_command([PY, "-c", "import sys; sys.stdin.read(); print('tok')"], timeout=20)
    assert token == "tok"


def test_command_failure_shows_status_and_stderr_tail_not_stdout() -> None:
    script = f"import sys; print('{SECRETS[0]}'); sys.stderr.write('x'*1000 + ' login required'); sys.exit(3)"
    with pytest.raises(CommandError) as info:
        command.run_token_command([PY, "-c", script, "--password=" + SECRETS[3]])
    text = str(info.value)
    assert "status 3" in text and "login required" in text
    assert SECRETS[0] not in text and SECRETS[3] not in text and len(text) <= 500


def test_command_hang_is_stopped() -> None:
    start = time.monotonic()
    with pytest.raises(CommandError, match="did not finish within 0.5 s"):
        command.run_token_command([PY, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert time.monotonic() - start < 10


def test_command_hang_with_grandchild_holding_the_pipe_is_stopped() -> None:
    start = time.monotonic()
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    with pytest.raises(CommandError, match="did not finish"):
        command.run_token_command([PY, "-c", script], timeout=0.5)
    assert time.monotonic() - start < 10


def test_command_not_found_empty_and_bad_output() -> None:
    with pytest.raises(CommandError, match="not found"):
        command.run_token_command(["/nonexistent/token-helper"])
    with pytest.raises(ConfigurationError):
        command.run_token_command([])
    with pytest.raises(CommandError, match="no token"):
        command.run_token_command([PY, "-c", "pass"])
    with pytest.raises(CommandError, match="more than one word"):
        command.run_token_command([PY, "-c", "print('a b')"])


def test_command_is_never_a_shell() -> None:
    # shell syntax is passed as a literal argument, not interpreted
    out = command.run_token_command([PY, "-c", "import sys; print(sys.argv[1])", "$(echo_pwned);x|y"])
    assert out == "$(echo_pwned);x|y"
