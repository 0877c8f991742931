"""The OAuth redirect relay, in a real Jupyter server started as a subprocess on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from flyteauth_jupyter.transport.relay import pending_file, register_pending, relay_file, sweep, take_redirect, write_redirect

TOKEN = "relay-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A real Jupyter server subprocess on 127.0.0.1 with the extension; its log (stdout and stderr, every
    logger: Jupyter's, tornado's access, application and general logs) goes to ``log_path``."""

    def __init__(self, tmp_path, *extra: str, env: dict | None = None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.relay = tmp_path / "runtime" / "flyteauth-relay"
        self.log_path = tmp_path / "server.log"
        full_env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
        full_env.update(env or {})
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             f"--IdentityProvider.token={TOKEN}", "--ServerApp.jpserver_extensions={'flyteauth_jupyter.server': True}",
             f"--ServerApp.root_dir={tmp_path}", *extra] + (["--allow-root"] if os.geteuid() == 0 else []),
            env=full_env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/api/status", headers={"Authorization": f"token {TOKEN}"}, timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            assert self.proc.poll() is None, self.log()
            time.sleep(0.1)
        self.stop()
        pytest.fail("jupyter server did not start within 60 s")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self._log.close()

    def __iter__(self):  # ``base, relay = jupyter_server``
        return iter((self.base, self.relay))


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("jupyter"), "--log-level=DEBUG")
    server.relay.mkdir(parents=True, mode=0o700)
    yield server
    server.stop()
    assert "the-code" not in server.log(), "the server logged the authorization code"


def get(base: str, **params: str) -> requests.Response:
    return requests.get(f"{base}/flyteauth/callback", params=params, headers={"Authorization": f"token {TOKEN}"},
                        timeout=10)


def test_relay_hands_the_redirect_to_the_kernel(jupyter_server):
    base, relay = jupyter_server
    register_pending("s1", relay)  # the kernel waits for this state
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
    register_pending("s2", relay)
    resp = requests.get(
        f"{base}/flyteauth/callback", params={"error": "access_denied", "error_description": "<b>no</b>", "state": "s2"},
        headers={"Authorization": f"token {TOKEN}"}, timeout=10,
    )
    assert resp.status_code == 200 and "&lt;b&gt;no&lt;/b&gt;" in resp.text
    assert take_redirect("s2", relay)["error"] == "access_denied"


def test_relay_requires_jupyter_login(jupyter_server):
    base, relay = jupyter_server
    register_pending("s3", relay)
    resp = requests.get(f"{base}/flyteauth/callback", params={"code": "c", "state": "s3"}, timeout=10, allow_redirects=False)
    assert resp.status_code in (302, 403)
    assert take_redirect("s3", relay) is None


def test_relay_without_state_is_refused(jupyter_server):
    base, _ = jupyter_server
    resp = requests.get(f"{base}/flyteauth/callback", params={"code": "c"}, headers={"Authorization": f"token {TOKEN}"}, timeout=10)
    assert resp.status_code == 400


def test_write_and_take_are_atomic_and_private(tmp_path):
    register_pending("s", tmp_path)
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


# ------------------------------------------------------------------ issue 10: the relay's five defects
def test_a_state_no_kernel_waits_for_is_refused_and_nothing_is_written(jupyter_server):
    base, relay = jupyter_server
    resp = get(base, code="the-code", state="nobody-waits")
    assert resp.status_code == 400 and "No sign-in is waiting for this" in resp.text
    assert "Signed in" not in resp.text and "the-code" not in resp.text
    assert not relay_file("nobody-waits", relay).exists()
    # a marker is claimed by the first redirect: a second one for the same state is refused too
    register_pending("once", relay)
    assert get(base, code="the-code", state="once").status_code == 200
    assert get(base, code="the-code", state="once").status_code == 400
    assert take_redirect("once", relay)["code"] == "the-code"


def test_stale_relay_files_are_removed(jupyter_server):
    base, relay = jupyter_server
    register_pending("old-kernel", relay)  # a kernel that died while waiting
    register_pending("left-over", relay)
    assert get(base, code="the-code", state="left-over").status_code == 200  # never taken
    old = time.time() - 3600
    for path in (pending_file("old-kernel", relay), relay_file("left-over", relay)):
        os.utime(path, (old, old))
    assert get(base, code="the-code", state="old-kernel").status_code == 400  # stale marker: not waiting
    assert not pending_file("old-kernel", relay).exists() and not relay_file("left-over", relay).exists()
    assert sweep(relay) == 0


def test_the_relay_asks_jupyters_authorizer(tmp_path):
    here = os.path.dirname(__file__)
    server = Server(tmp_path, "--ServerApp.authorizer_class=deny_kernels_authorizer.DenyKernels",
                    env={"PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))})
    try:
        register_pending("s-auth", server.relay)
        resp = get(server.base, code="the-code", state="s-auth")
        assert resp.status_code == 403
        assert not relay_file("s-auth", server.relay).exists() and pending_file("s-auth", server.relay).exists()
    finally:
        server.stop()


def test_the_access_log_carries_no_query_value(jupyter_server):
    base, relay = jupyter_server
    register_pending("state-marker-42", relay)
    resp = get(base, code="code-marker-42", state="state-marker-42", iss="http://iss-marker-42",
               error_description="desc-marker-42 eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.c2ln")
    assert resp.status_code == 200
    take_redirect("state-marker-42", relay)
    deadline = time.monotonic() + 10
    while "/flyteauth/callback?" not in jupyter_server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in jupyter_server.log().splitlines() if "/flyteauth/callback" in line]
    assert any("/flyteauth/callback?code=[secret]&state=[secret]" in line for line in lines), lines
    assert "marker-42" not in jupyter_server.log() and "eyJ" not in jupyter_server.log()


def _plant(relay, state: str, payload: dict, mode: int = 0o600):
    target = relay_file(state, relay)
    target.write_text(__import__("json").dumps(payload))
    os.chmod(target, mode)
    return target


def test_the_kernel_accepts_only_a_private_file_with_its_own_state(tmp_path):
    relay = tmp_path / "relay"
    register_pending("mine", relay)
    planted = _plant(relay, "mine", {"code": "planted", "state": "not-mine"})
    assert take_redirect("mine", relay) is None and not planted.exists()  # wrong state inside: ignored
    open_to_all = _plant(relay, "mine", {"code": "planted", "state": "mine"}, mode=0o644)
    assert take_redirect("mine", relay) is None and not open_to_all.exists()  # readable by others
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"code": "planted", "state": "mine"}')
    os.chmod(elsewhere, 0o600)
    relay_file("mine", relay).symlink_to(elsewhere)
    assert take_redirect("mine", relay) is None  # a symlink is never followed
    _plant(relay, "mine", {"code": "real", "state": "mine"})
    assert take_redirect("mine", relay) == {"code": "real", "state": "mine"}


# ------------------------------------------------------- issue 16: every log path of the relay is scrubbed
def _wait_for_log(server: Server, text: str, count: int = 1) -> str:
    """The server's log once ``text`` appears in it ``count`` times (bounded: 10 s)."""
    deadline = time.monotonic() + 10
    log = server.log()
    while log.count(text) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        log = server.log()
    return log


def _secret_free(log: str, *markers: str) -> None:
    leaked = [m for m in markers if m in log]
    assert not leaked, f"the server log holds {leaked}: " + "\n".join(
        line for line in log.splitlines() if any(m in line for m in leaked))[:2000]


def test_a_relay_that_fails_with_500_logs_no_code_or_state(jupyter_server, reliability_rule):
    from rig import rules

    base, relay = jupyter_server
    state, code = "state-marker-500", "code-marker-500"
    register_pending(state, relay)
    relay_file(state, relay).mkdir()  # the hand-off cannot be written: the handler fails unexpectedly
    try:
        resp = requests.get(f"{base}/flyteauth/callback", params={"code": code, "state": state, "iss": "http://iss-marker-500"},
                            headers={"Authorization": f"token {TOKEN}", "Referer": f"http://idp/consent?state={state}&code={code}"},
                            timeout=10)
        assert resp.status_code == 500
        assert code not in resp.text and state not in resp.text
        log = _wait_for_log(jupyter_server, "500 GET /flyteauth/callback")
        assert "Uncaught exception" in log or "Traceback" in log  # the failure itself is logged ...
        _secret_free(log, code, state, "iss-marker-500")  # ... without the code, the state or any value
        assert "/flyteauth/callback?code=[secret]&state=[secret]" in log
    finally:
        relay_file(state, relay).rmdir()
    reliability_rule(rules.RELAY_LOGS, "the relay fails (500): error log, traceback, access log, request headers",
                     "the request is logged with [secret] for every query value")


def test_a_refused_relay_request_logs_no_code_or_state(tmp_path, reliability_rule):
    """403 from Jupyter's authorizer (tornado's warning log) and the login redirect (the code in ?next=)."""
    from rig import rules

    here = os.path.dirname(__file__)
    server = Server(tmp_path, "--log-level=DEBUG", "--ServerApp.authorizer_class=deny_kernels_authorizer.DenyKernels",
                    env={"PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))})
    try:
        register_pending("state-marker-403", server.relay)
        assert get(server.base, code="code-marker-403", state="state-marker-403").status_code == 403
        # not signed in to Jupyter: sent to the login page, which names the relay address in ?next=
        anonymous = requests.Session()
        resp = anonymous.get(f"{server.base}/flyteauth/callback", params={"code": "code-marker-302", "state": "state-marker-302"},
                             timeout=10, allow_redirects=True)
        assert resp.history and resp.history[0].status_code == 302 and "/login" in resp.url
        log = _wait_for_log(server, "/login", 1)
        log = _wait_for_log(server, "GET /flyteauth/callback", 2)
        _secret_free(log, "code-marker-403", "state-marker-403", "code-marker-302", "state-marker-302")
    finally:
        server.stop()
    _secret_free(server.log(), "code-marker-403", "state-marker-403", "code-marker-302", "state-marker-302")
    reliability_rule(rules.RELAY_LOGS, "refused by Jupyter's authorizer (403); not signed in to Jupyter (302 to /login?next=)",
                     "neither the warning nor the login page's access line holds a value")
