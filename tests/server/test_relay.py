"""The OAuth redirect relay, in a real Jupyter server started as a subprocess on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from flyteauth_jupyter.transport.relay import relay_file, take_redirect, write_redirect

TOKEN = "relay-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("jupyter")
    port = _free_port()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={TOKEN}", "--ServerApp.jpserver_extensions={'flyteauth_jupyter.server': True}",
         f"--ServerApp.root_dir={tmp_path}"] + (["--allow-root"] if os.geteuid() == 0 else []),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/api/status", headers={"Authorization": f"token {TOKEN}"}, timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("jupyter server did not start within 60 s")
    yield base, tmp_path / "runtime" / "flyteauth-relay"
    proc.terminate()
    try:
        _, stderr = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
    assert "code=the-code" not in stderr, "the server logged the authorization code"


def test_relay_hands_the_redirect_to_the_kernel(jupyter_server):
    base, relay = jupyter_server
    resp = requests.get(
        f"{base}/flyteauth/callback", params={"code": "the-code", "state": "s1", "iss": "http://127.0.0.1:1"},
        headers={"Authorization": f"token {TOKEN}"}, timeout=10,
    )
    assert resp.status_code == 200 and "close this tab" in resp.text and "the-code" not in resp.text
    assert oct(relay.stat().st_mode & 0o777) == "0o700"
    assert oct(relay_file("s1", relay).stat().st_mode & 0o777) == "0o600"
    assert take_redirect("s1", relay) == {"code": "the-code", "state": "s1", "iss": "http://127.0.0.1:1"}
    assert take_redirect("s1", relay) is None  # taken once, then gone


def test_relay_reports_a_denied_sign_in(jupyter_server):
    base, relay = jupyter_server
    resp = requests.get(
        f"{base}/flyteauth/callback", params={"error": "access_denied", "error_description": "<b>no</b>", "state": "s2"},
        headers={"Authorization": f"token {TOKEN}"}, timeout=10,
    )
    assert resp.status_code == 200 and "&lt;b&gt;no&lt;/b&gt;" in resp.text
    assert take_redirect("s2", relay)["error"] == "access_denied"


def test_relay_requires_jupyter_login(jupyter_server):
    base, relay = jupyter_server
    resp = requests.get(f"{base}/flyteauth/callback", params={"code": "c", "state": "s3"}, timeout=10, allow_redirects=False)
    assert resp.status_code in (302, 403)
    assert take_redirect("s3", relay) is None


def test_relay_without_state_is_refused(jupyter_server):
    base, _ = jupyter_server
    resp = requests.get(f"{base}/flyteauth/callback", params={"code": "c"}, headers={"Authorization": f"token {TOKEN}"}, timeout=10)
    assert resp.status_code == 400


def test_write_and_take_are_atomic_and_private(tmp_path):
    path = write_redirect({"code": "c", "state": "s", "unexpected": "x"}, tmp_path)
    assert path.name != "s.json" and "s" != path.stem
    assert take_redirect("s", tmp_path) == {"code": "c", "state": "s"}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.idp
@pytest.mark.parametrize("action", ["approve", "deny"])
def test_pkce_through_the_relay_against_the_real_idp(jupyter_server, flyteadmin, monkeypatch, action):
    """A remote kernel's sign-in: the IdP redirects to Jupyter's relay, not to a kernel socket."""
    from rig.user import AuthCodeUser

    from flyteauth_jupyter import PKCEAuthenticator
    from flyteauth_jupyter.errors import AccessDeniedError
    from flyteauth_jupyter.stores import MemoryStore

    base, relay = jupyter_server
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(relay.parent))
    user = AuthCodeUser(keep_session=True)  # keeps the Jupyter login header below
    user.session.headers["Authorization"] = f"token {TOKEN}"  # the user's browser is logged in to Jupyter
    followed = []

    def browser(url):
        followed.append(user.follow(url, action=action))
        return True

    auth = PKCEAuthenticator(
        flyteadmin.endpoint, None, redirect_uri=f"{base}/flyteauth/callback", open_browser=browser,
        store=MemoryStore(), timeout=30,
    )
    if action == "deny":
        with pytest.raises(AccessDeniedError, match="denied"):
            auth.refresh_credentials()
        return
    creds = auth.refresh_credentials()
    assert user.last_redirect_status == 200 and followed[0].startswith(f"{base}/flyteauth/callback?")
    assert creds.access_token and creds.refresh_token
    assert list(relay.glob("*.json")) == []  # the code did not linger on disk
    resp = requests.get(f"{flyteadmin.endpoint}/api/v1/projects", headers=dict([auth.fetch_grpc_call_auth_metadata()]), timeout=10)
    assert resp.status_code == 200


@pytest.mark.parametrize(("uri", "relay"), [
    ("https://hub.example.com/hub/user-redirect/flyteauth/callback", True),  # one URI for every Hub user
    ("https://hub.example.com/user/alice/flyteauth/callback", True),
    ("http://127.0.0.1:8888/flyteauth/callback", True),  # a local Jupyter's relay, not a kernel socket
    ("http://127.0.0.1:53593/callback", False),
    ("http://localhost/callback", False),
])
def test_the_redirect_uri_picks_the_receiver(uri, relay):
    from flyteauth_jupyter.flows.authcode import make_receiver
    from flyteauth_jupyter.transport.loopback import LoopbackReceiver
    from flyteauth_jupyter.transport.relay import RelayReceiver

    receiver = make_receiver(uri, state="s")
    assert isinstance(receiver, RelayReceiver if relay else LoopbackReceiver)
    assert receiver.redirect_uri == uri  # kept as registered
