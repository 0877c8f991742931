"""The magics in a real IPython InteractiveShell, with a scripted authenticator behind ``prepare``.

(The same magics against the real identity provider: test_nb_idp.py.)
"""

from __future__ import annotations

import threading

import pytest
from nb_fakes import magics_of
from IPython.core.error import UsageError
from nb_fakes import SECRET_ACCESS, SECRET_REFRESH, FakeFactory, wait_until

from flyteauth_jupyter import sessions
from flyteauth_jupyter.errors import AccessDeniedError, ConfigurationError
from flyteauth_jupyter.notebook import connect as connect_module
from flyteauth_jupyter.notebook.session import LoginSession


@pytest.fixture
def fake(monkeypatch):
    factory = FakeFactory()
    monkeypatch.setattr(connect_module, "prepare", factory)
    return factory


def run(ip, cell, fake=None):
    """Run a cell; with ``fake``, also wait until every login it started is showing its code, so that
    background output lands inside the test (pytest suspends capturing between phases)."""
    result = ip.run_cell(cell)
    if fake is not None:
        wait_until(lambda: len(fake.built) == len(fake.specs) and all(f.started.is_set() for f in fake.built),
                   what="the logins to start")
    return result


def usage_error(ip, cell, kind=ConfigurationError) -> str:
    """The error of ``cell``: a typed FlyteAuthError shown as one line (issue 17.3), or, for words the
    argument parser refuses (``kind=UsageError``), IPython's plain UsageError."""
    result = ip.run_cell(cell)
    error = result.error_in_exec
    assert type(error) is kind, error
    if kind is not UsageError:  # one line, no traceback: IPython draws _render_traceback_()
        assert error._render_traceback_() == [f"{type(error).__name__}: {error}"]
    return str(error)


def test_load_registers_and_unload_removes(shell):
    line = shell.magics_manager.magics["line"]
    for name in ("flyte_login", "flyte_logout", "flyte_status"):
        assert name in line
    shell.run_line_magic("unload_ext", "flyteauth_jupyter")
    for name in ("flyte_login", "flyte_logout", "flyte_status"):
        assert name not in shell.magics_manager.magics["line"]
    assert "FlyteAuthMagics" not in shell.magics_manager.registry
    shell.run_line_magic("load_ext", "flyteauth_jupyter")
    assert "flyte_login" in shell.magics_manager.magics["line"]
    # loading twice keeps one instance
    from flyteauth_jupyter.notebook.magics import load_ipython_extension

    assert load_ipython_extension(shell) is magics_of(shell)


def test_help_shows_the_pinned_syntax(shell):
    doc = shell.magics_manager.magics["line"]["flyte_login"].__doc__
    flat = " ".join(doc.split())
    assert ("%flyte_login [--endpoint URL] [--flow auto|device|pkce|client-credentials|command|hub] [--client-id ID] "
            "[--client-secret-env VAR] [--scopes S [S ...]] [--audience A] [--command ...] [--name VAR] [--wait] "
            "[--timeout SECONDS] [--no-cache] [--insecure] [--insecure-skip-verify] [--ca-cert PATH] "
            "[--proxy URL]") in flat
    logout = " ".join(shell.magics_manager.magics["line"]["flyte_logout"].__doc__.split())
    assert "%flyte_logout [--endpoint URL] [--name VAR]" in logout


def test_errors_are_one_line_typed_errors(shell, fake):
    assert "must use http or https" in usage_error(shell, "%flyte_login --endpoint ftp://x")
    assert "Refusing plain HTTP" in usage_error(shell, "%flyte_login --endpoint http://flyte.example.com")
    assert "No Flyte endpoint" in usage_error(shell, "%flyte_login")
    assert "not a valid Python variable name" in usage_error(shell, "%flyte_login --endpoint h:1 --name 1x")
    assert "NOPE_SECRET" in usage_error(shell, "%flyte_login --endpoint h:1 --client-secret-env NOPE_SECRET")
    assert "CA bundle" in usage_error(shell, "%flyte_login --endpoint h:1 --ca-cert /nonexistent.pem")
    usage_error(shell, "%flyte_login --flow sideways --endpoint h:1", UsageError)
    assert not fake.built


def test_login_returns_at_once_and_binds_a_pending_session(shell, fake):
    result = run(shell, "%flyte_login --endpoint http://127.0.0.1:9 --flow device")
    assert result.success and result.result is None
    session = shell.user_ns["flyte_auth"]
    assert isinstance(session, LoginSession)
    authenticator = fake.latest()
    wait_until(authenticator.started.is_set, what="the flow to start")
    assert not session.done and session.status == "waiting"  # the cell returned before the login ended
    assert sessions.get_session("127.0.0.1:9") is session
    spec = fake.specs[0]
    assert spec.flow == "device" and spec.endpoint.url == "http://127.0.0.1:9"
    authenticator.approve()
    later = run(shell, "token = flyte_auth.get_credentials().access_token")
    assert later.success and shell.user_ns["token"] == SECRET_ACCESS
    assert session.status == "signed_in"


def test_wait_blocks_the_cell(shell, fake):
    def approve_when_started():
        fake.latest().started.wait(10)
        fake.latest().approve()

    helper = threading.Thread(target=approve_when_started)
    helper.start()
    result = run(shell, "%flyte_login --endpoint http://127.0.0.1:9 --wait --timeout 20 --name mine")
    helper.join(10)
    assert result.success
    assert shell.user_ns["mine"].status == "signed_in"


def test_wait_reports_a_denied_login_as_its_typed_error(shell, fake):
    def deny_when_started():
        fake.latest().started.wait(10)
        fake.latest().deny()

    helper = threading.Thread(target=deny_when_started)
    helper.start()
    message = usage_error(shell, "%flyte_login --endpoint http://127.0.0.1:9 --wait", AccessDeniedError)
    helper.join(10)
    assert "denied" in message


def test_options_reach_the_spec_without_secrets(shell, fake, monkeypatch):
    monkeypatch.setenv("MY_CLIENT_SECRET", "very-SECRET-client-secret")
    run(shell, "%flyte_login --endpoint h.example.com:8443 --client-id cid --client-secret-env MY_CLIENT_SECRET "
               "--scopes openid api:read --audience aud --timeout 30 --no-cache --insecure-skip-verify "
               "--proxy http://127.0.0.1:3128", fake)
    spec = fake.specs[0]
    assert spec.endpoint.url == "https://h.example.com:8443" and spec.client_id == "cid"
    assert spec.client_secret_env == "MY_CLIENT_SECRET" and spec.scopes == ("openid", "api:read")
    assert spec.audience == "aud" and spec.timeout == 30 and spec.no_cache and spec.verify is False
    assert spec.http_proxy_url == "http://127.0.0.1:3128"
    assert "very-SECRET-client-secret" not in repr(spec)


def test_command_takes_the_rest_of_the_line(shell, fake):
    run(shell, "%flyte_login --endpoint h:1 --name c --command gcloud auth print-identity-token --quiet", fake)
    assert fake.specs[0].command == ("gcloud", "auth", "print-identity-token", "--quiet")
    run(shell, "%flyte_login --endpoint h:1 --name d --command 'my-token --json'", fake)
    assert fake.specs[1].command == ("my-token", "--json")


def test_config_traits_set_defaults(shell, fake):
    shell.run_line_magic("config", "FlyteAuthMagics.default_endpoint = 'http://127.0.0.1:7'")
    shell.run_line_magic("config", "FlyteAuthMagics.default_flow = 'pkce'")
    shell.run_line_magic("config", "FlyteAuthMagics.default_name = 'auth'")
    shell.run_line_magic("config", "FlyteAuthMagics.scopes = ['x']")
    run(shell, "%flyte_login", fake)
    spec = fake.specs[0]
    assert spec.endpoint.service == "127.0.0.1:7" and spec.flow == "pkce" and spec.scopes == ("x",)
    assert isinstance(shell.user_ns["auth"], LoginSession)


def test_flytekit_environment_is_used_without_endpoint(shell, fake, monkeypatch):
    monkeypatch.setenv("FLYTE_PLATFORM_URL", "dns:///flyte.internal:30080")
    monkeypatch.setenv("FLYTE_PLATFORM_INSECURE", "true")
    monkeypatch.setenv("FLYTE_CREDENTIALS_CLIENT_ID", "from-env")
    run(shell, "%flyte_login", fake)
    spec = fake.specs[0]
    assert spec.endpoint.url == "http://flyte.internal:30080" and spec.client_id == "from-env"


def test_flytekit_config_file_is_used_without_endpoint(shell, fake, isolated_config):
    (isolated_config / ".flyte").mkdir()
    (isolated_config / ".flyte" / "config.yaml").write_text(
        "admin:\n  endpoint: dns:///127.0.0.1:30081\n  insecure: true\n  authType: DeviceFlow\n  clientId: flytectl\n"
        "  scopes: [all]\n"
    )
    run(shell, "%flyte_login", fake)
    spec = fake.specs[0]
    assert spec.endpoint.url == "http://127.0.0.1:30081" and spec.configured_auth_type == "DeviceFlow"
    assert spec.client_id == "flytectl" and spec.scopes == ("all",)
    # another endpoint on the command line: the file's client settings do not apply to it
    run(shell, "%flyte_login --endpoint http://127.0.0.1:5 --name other", fake)
    assert fake.specs[1].client_id is None and fake.specs[1].configured_auth_type is None


def test_status_and_logout(shell, fake, capsys):
    shell.run_line_magic("flyte_status", "")
    assert "Not signed in" in capsys.readouterr().out
    run(shell, "%flyte_login --endpoint http://127.0.0.1:9")
    fake.latest().started.wait(10)
    fake.latest().approve()
    shell.user_ns["flyte_auth"].wait(10)
    capsys.readouterr()
    shell.run_line_magic("flyte_status", "")
    out = capsys.readouterr().out
    assert "flyte_auth: 127.0.0.1:9 · as alice · device code · signed in" in out
    assert "valid until" in out and SECRET_ACCESS not in out
    shell.run_line_magic("flyte_logout", "")
    out = capsys.readouterr().out
    assert "Signed out of 127.0.0.1:9; removed `flyte_auth`." in out
    assert "flyte_auth" not in shell.user_ns and fake.latest().logged_out
    assert sessions.get_session("127.0.0.1:9") is None
    assert "no sign-in bound" in usage_error(shell, "%flyte_logout")


def test_logout_by_endpoint_without_session(shell, fake, capsys):
    shell.run_line_magic("flyte_logout", "--endpoint http://127.0.0.1:9")
    assert "Signed out of 127.0.0.1:9." in capsys.readouterr().out
    assert fake.latest().logged_out


def test_logout_by_the_url_of_an_issuer_with_a_path(shell, fake, capsys):
    """An --issuer sign-in is named by its issuer (Keycloak's realms, Okta's custom servers have a
    path, which no Flyte endpoint has): %flyte_logout --endpoint ISSUER finds it."""
    run(shell, "%flyte_login --issuer https://login.example.com/realms/x --client-id nb")
    fake.latest().started.wait(10)
    fake.latest().approve()
    shell.user_ns["flyte_auth"].wait(10)
    capsys.readouterr()
    shell.run_line_magic("flyte_logout", "--endpoint https://Login.example.com/realms/x/")
    assert "Signed out of login.example.com/realms/x (client nb); removed `flyte_auth`." in capsys.readouterr().out
    assert "flyte_auth" not in shell.user_ns and fake.latest().logged_out


def test_widget_mode_and_no_secret_anywhere(shell, fake):
    shell.run_line_magic("config", "FlyteAuthMagics.display = 'widget'")
    run(shell, "%flyte_login --endpoint http://127.0.0.1:9")
    session = shell.user_ns["flyte_auth"]
    widget = session.widget
    fake.latest().started.wait(10)
    wait_until(lambda: "WDJB-MJHT" in widget.code.value, what="the code in the widget")
    fake.latest().approve()
    session.wait(10)
    wait_until(lambda: "Signed in as alice" in widget.status.value, what="the summary")
    states = " ".join(str(w.get_state()) for w in widget.all_widgets())
    for secret in (SECRET_ACCESS, SECRET_REFRESH):
        assert secret not in states
        assert secret not in repr(session)
    assert "WDJB-MJHT" not in states  # the code is gone once signed in
    history = " ".join(str(v) for v in shell.history_manager.output_hist.values())
    assert SECRET_ACCESS not in history


def test_unload_cancels_logins_in_progress(shell, fake):
    run(shell, "%flyte_login --endpoint http://127.0.0.1:9")
    authenticator = fake.latest()
    authenticator.started.wait(10)
    session = shell.user_ns["flyte_auth"]
    shell.run_line_magic("unload_ext", "flyteauth_jupyter")
    wait_until(lambda: session.done, what="the login to end")
    assert session.status == "cancelled"


def test_flytekit_plugin_logins_are_shown(shell):
    from flyteauth_jupyter.flows.events import DeviceCodeIssued, FlowStarted

    shell.run_line_magic("config", "FlyteAuthMagics.display = 'widget'")
    observer = sessions.observer_for("flyte.example.com")
    assert observer is not None
    from IPython.utils.capture import capture_output

    with capture_output(display=True) as captured:
        observer(FlowStarted("device", "flyte.example.com"))
        observer(DeviceCodeIssued("https://idp/device", "ABCD-EFGH", 4102444800.0, 5))
    shown = " ".join(str(output.data) for output in captured.outputs)
    assert "application/vnd.jupyter.widget-view+json" in shown and "ABCD-EFGH" in shown
    shell.run_line_magic("unload_ext", "flyteauth_jupyter")
    assert sessions.observer_for("flyte.example.com") is None
