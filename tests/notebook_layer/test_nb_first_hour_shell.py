"""Issue 17, "the first hour of a real user": the items an InteractiveShell (or no shell) can prove.

* 17.2: ``--help`` and ``-h`` print the usage of each of the three magics.
* 17.1 (the rules, with a scripted flow): the name goes back to the earlier working sign-in after a
  failure or cancel, never after a success, never after %flyte_logout; a chain of replacements keeps
  the earliest working one.
* 17.12: the command flow that %flyte_login builds sends the token under the deployment's header key
  (pinned 3), as every other flow for that endpoint; flytekit's bare ``CommandAuthenticator`` keeps
  ``authorization``.
* Reviews: the paste-back hint keeps no code in a cell (``submit_redirect()`` prompts); a broken
  config file skipped because of ``--endpoint`` is noted once in the panel; a session's repr says it
  is a snapshot.
(The same items in a real kernel against the identity provider: test_nb_first_hour.py.)
"""

from __future__ import annotations

import sys

import pytest
from IPython.utils.capture import capture_output
from nb_fakes import FakeFactory, magics_of, wait_until

from flyteauth_jupyter import CommandAuthenticator, sessions
from flyteauth_jupyter.errors import LoginCancelledError
from flyteauth_jupyter.notebook import connect as connect_module
from flyteauth_jupyter.notebook.state import LoginView


@pytest.fixture
def fake(monkeypatch):
    factory = FakeFactory()
    monkeypatch.setattr(connect_module, "prepare", factory)
    return factory


def started(shell, fake, line: str) -> object:
    count = len(fake.built)
    assert shell.run_cell(line).success
    authenticator = fake.latest(count + 1)
    assert authenticator.started.wait(10)
    return authenticator


def signed_in(shell, fake, line: str = "%flyte_login --endpoint http://127.0.0.1:9") -> object:
    started(shell, fake, line).approve()
    session = shell.user_ns["flyte_auth"]
    session.wait(10)
    return session


# ------------------------------------------------------------------------------------ 17.2
@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("magic", ["flyte_login", "flyte_logout", "flyte_status"])
def test_help_flags_print_the_usage(shell, magic, flag):
    with capture_output() as out:
        result = shell.run_cell(f"%{magic} {flag}")
    assert result.error_in_exec is None, result.error_in_exec
    text = " ".join(out.stdout.split())
    if magic == "flyte_status":
        assert text.startswith("%flyte_status") and "never a token" in text
    else:  # the usage line and every option, as %flyte_login? shows them
        assert text.startswith(f"%{magic} [--endpoint URL]") and "options: --endpoint URL" in text
    assert "flyte_auth" not in shell.user_ns


def test_help_after_command_belongs_to_the_command(shell, fake):
    started(shell, fake, f"%flyte_login --endpoint http://127.0.0.1:9 --flow command --command {sys.executable} --help")
    assert fake.specs[-1].command[-1] == "--help"


# ------------------------------------------------------------------------------- 17.1 rules
def test_a_failure_gives_the_name_back_and_a_success_keeps_it(shell, fake):
    earlier = signed_in(shell, fake)
    # fails: the name goes back, the earlier panel claims it again, %flyte_status lists both
    failing = started(shell, fake, "%flyte_login --endpoint http://127.0.0.1:7")
    new = shell.user_ns["flyte_auth"]
    assert new is not earlier and "points to" in earlier.view.status_line()
    failing.deny()
    wait_until(lambda: shell.user_ns["flyte_auth"] is earlier, what="the name to come back")
    assert new.view.binding_line() == "`flyte_auth` still refers to your earlier sign-in to 127.0.0.1:9 (as alice)."
    assert "; available as `flyte_auth`;" in earlier.view.status_line()
    assert sessions.get_session("127.0.0.1:9") is earlier and sessions.get_session("127.0.0.1:7") is None
    lines = magics_of(shell).status_text().splitlines()
    assert lines[0].startswith("flyte_auth: 127.0.0.1:9 · as alice") and lines[1].startswith("(not bound;")
    assert "127.0.0.1:7" in lines[1] and "denied" in lines[1]
    # a chain: a login replaced while it runs keeps the earliest working sign-in as the one to return to
    started(shell, fake, "%flyte_login --endpoint http://127.0.0.1:7")
    second = started(shell, fake, "%flyte_login --endpoint http://127.0.0.1:8")
    second.deny()
    wait_until(lambda: shell.user_ns["flyte_auth"] is earlier, what="the name to come back")
    # succeeds: the name stays with the new sign-in, the earlier panel says where it points now
    third = started(shell, fake, "%flyte_login --endpoint http://127.0.0.1:6")
    third.approve()
    newest = shell.user_ns["flyte_auth"]
    newest.wait(10)
    assert newest is not earlier and newest.endpoint == "127.0.0.1:6"
    assert "`flyte_auth` now refers to the sign-in started in" in earlier.view.status_line()
    assert len(magics_of(shell).status_text().splitlines()) == 1


def test_logout_during_a_replacement_gives_nothing_back(shell, fake):
    earlier = signed_in(shell, fake)
    started(shell, fake, "%flyte_login --endpoint http://127.0.0.1:7")
    with capture_output():
        shell.run_line_magic("flyte_logout", "")
    assert "flyte_auth" not in shell.user_ns and earlier.status == "signed_out"
    assert magics_of(shell).status_text().startswith("Not signed in")


def test_a_waiting_cell_gets_the_attempts_error_and_the_note(shell, fake):
    signed_in(shell, fake)
    started(shell, fake, "%flyte_login --endpoint http://127.0.0.1:7")
    session = shell.user_ns["flyte_auth"]
    session.cancel()  # the panel's Cancel
    with pytest.raises(LoginCancelledError, match="still refers to your earlier sign-in to 127.0.0.1:9") as caught:
        session.wait(10)
    assert "retry()" not in str(caught.value)  # flyte_auth.retry() would be the earlier sign-in's now
    assert shell.user_ns["flyte_auth"] is not session and shell.user_ns["flyte_auth"].endpoint == "127.0.0.1:9"


# ------------------------------------------------------------------------------------ 17.12
def test_the_command_flow_uses_the_deployments_header_key(shell, flyteadmin):
    shell.run_line_magic("config", "FlyteAuthMagics.display = 'text'")
    with capture_output():
        result = shell.run_cell(f"%flyte_login --endpoint {flyteadmin.endpoint} --flow command --name cmd_auth --wait "
                                f"--command {sys.executable} -c \"print('static-demo-token')\"")
    assert result.error_in_exec is None, result.error_in_exec
    header, value = shell.user_ns["cmd_auth"].fetch_grpc_call_auth_metadata()
    assert (header, value) == (flyteadmin.authorization_metadata_key, "Bearer static-demo-token")
    assert flyteadmin.authorization_metadata_key == "flyte-authorization"


def test_command_authenticator_header_key_rules(flyteadmin):
    command = [sys.executable, "-c", "print('t0ken')"]
    assert CommandAuthenticator(command).header_key == "authorization"  # flytekit's: no endpoint, no server
    assert CommandAuthenticator(command, "x-token", endpoint=flyteadmin.endpoint).header_key == "x-token"
    auth = CommandAuthenticator(command, endpoint=flyteadmin.endpoint)
    auth.refresh_credentials()
    assert auth.fetch_grpc_call_auth_metadata() == ("flyte-authorization", "Bearer t0ken")
    # an endpoint without FlyteAdmin's configuration: the default, read once
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bare = CommandAuthenticator(command, endpoint=f"http://127.0.0.1:{port}", http_deadline=2)
    bare.refresh_credentials()
    assert bare.fetch_grpc_call_auth_metadata() == ("authorization", "Bearer t0ken")
    assert bare._hot_header[2] == ("authorization", "Bearer t0ken")  # cached: no second configuration read


# ------------------------------------------------------------------------------------ reviews
def test_paste_hint_keeps_no_code_in_a_cell():
    import time

    from flyteauth_jupyter.flows.events import AuthorizationRequested, FlowStarted
    from flyteauth_jupyter.notebook.render import view_html, view_text

    view = LoginView(endpoint="127.0.0.1:9", name="auth2").apply(FlowStarted("pkce", "127.0.0.1:9")).apply(
        AuthorizationRequested(url="http://127.0.0.1:9/auth?state=s", redirect_uri="http://127.0.0.1:5/callback",
                               expires_at=time.time() + 300))
    assert view.paste_call() == "auth2.submit_redirect()"
    text = view_text(view)
    assert "auth2.submit_redirect()" in text and "prompt" in text and "<paste here>" not in text
    assert "<code>auth2.submit_redirect()</code>" in view_html(view)


def test_submit_redirect_without_an_address_prompts_hidden(monkeypatch):
    import getpass

    from nb_fakes import FakeAuthenticator

    from flyteauth_jupyter.notebook.session import LoginSession, Prepared

    address = "http://127.0.0.1:5/callback?code=c0de&state=s"

    class PastedTo(FakeAuthenticator):
        pasted: list[str] = []

        def submit_redirect(self, url: str) -> None:
            self.pasted.append(url)
            self.approve()

    built: list[PastedTo] = []
    session = LoginSession(lambda observer: Prepared(built.append(PastedTo(observer)) or built[-1], "pkce"),
                           endpoint="127.0.0.1:9", timeout=30).start()
    wait_until(lambda: built and built[-1].started.is_set(), what="the sign-in to wait")
    asked: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": asked.append(prompt) or address)
    session.submit_redirect()  # no address in the cell: a hidden prompt asks for it
    assert session.wait(10) is not None and PastedTo.pasted == [address]
    assert asked and "address" in asked[0]


def test_a_skipped_config_file_is_noted_once_in_the_panel(shell, fake, isolated_config):
    config = isolated_config / ".flyte" / "config.yaml"
    config.parent.mkdir()
    config.write_bytes(b"admin:\n  endpoint: caf\xe9.example.com\n")
    started(shell, fake, "%flyte_login --endpoint http://127.0.0.1:9")
    notice = shell.user_ns["flyte_auth"].view.notice
    assert notice and str(config) in notice and "--endpoint" in notice
    fake.latest().approve()
    shell.user_ns["flyte_auth"].wait(10)
    assert shell.user_ns["flyte_auth"].view.notice.count(str(config)) == 1


def test_the_repr_of_a_pending_session_says_it_is_a_snapshot(shell, fake):
    started(shell, fake, "%flyte_login --endpoint http://127.0.0.1:9")
    text = repr(shell.user_ns["flyte_auth"])
    assert "status='waiting'" in text and "as_of=" in text, text
