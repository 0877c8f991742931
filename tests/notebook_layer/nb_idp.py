"""Driving ``%flyte_login`` against the real test servers: sign in, approve a device code, the two servers' options.

Shared by test_nb_idp.py, test_nb_confidential.py, test_nb_issuer.py and test_nb_proxy.py.
"""

from __future__ import annotations

from nb_fakes import wait_until

from flyteauth_jupyter.environment import BrowserLocation
from flyteauth_jupyter.notebook.session import LoginSession

NODE = "node-oidc-provider"
REMOTE = BrowserLocation(False, "the kernel runs over SSH; your browser is on another machine")
LOCAL = BrowserLocation(True, "the browser runs on the kernel's machine (local Jupyter)")


def login(ip, line: str, name: str | None = None) -> LoginSession:
    """``%flyte_login line``; the session it binds (``--name`` in the line, else ``flyte_auth``, unless ``name``)."""
    result = ip.run_cell(f"%flyte_login {line}")
    result.raise_error()
    session = ip.user_ns[name or _name(line)]
    assert isinstance(session, LoginSession)
    return session


def _name(line: str) -> str:
    parts = line.split()
    return parts[parts.index("--name") + 1] if "--name" in parts else "flyte_auth"


def device_option(server) -> str:
    """node advertises its device endpoint; django-oauth-toolkit does not: give it explicitly."""
    return "" if server.name == NODE else f"--device-authorization-endpoint {server.device_authorization_endpoint}"


def approve_device(session: LoginSession, device_user, *, in_widget: bool = False,
                   complete_uri: bool = True) -> None:
    """The device user approves the session's code.

    ``in_widget`` first waits until the widget shows the code (not only the view); ``complete_uri=False``
    opens the bare verification address and types the code instead of following the complete one.
    """
    if in_widget:
        widget = session.widget
        wait_until(lambda: session.view.user_code is not None and session.view.user_code in widget.code.value,
                   30, "the widget to show the user code")
    else:
        wait_until(lambda: session.view.user_code is not None, 30, "the user code")
    view = session.view
    complete = view.verification_uri_complete if complete_uri else None
    outcome = device_user.complete(view.verification_uri, view.user_code, verification_uri_complete=complete)
    assert outcome["status"] == "approved"
