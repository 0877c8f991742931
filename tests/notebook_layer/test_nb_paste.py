"""The paste-back row of the panel and LoginSession.submit_redirect, without the identity provider.

The session runs a real PKCEAuthenticator with its real loopback receiver; only the token endpoint is
scripted (tests/unit/flow_fakes style). The end-to-end version against the real IdP, in an
InteractiveShell, is in test_nb_idp.py.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from nb_fakes import FakeAuthenticator, wait_until

from flyteauth_jupyter import PKCEAuthenticator, StaticClientConfigStore
from flyteauth_jupyter.config import ClientConfig
from flyteauth_jupyter.errors import FlyteAuthError, StateMismatchError
from flyteauth_jupyter.flows.events import AuthorizationRequested, DeviceCodeIssued, FlowStarted, Succeeded
from flyteauth_jupyter.notebook.render import paste_html
from flyteauth_jupyter.notebook.session import LoginSession, Prepared
from flyteauth_jupyter.notebook.state import LoginView
from flyteauth_jupyter.notebook.widget import (
    PASTE_PROMPT,
    PASTE_REVEAL,
    RELAY_PASTE_PROMPT,
    LoginWidget,
    WidgetDisplay,
)
from flyteauth_jupyter.stores import MemoryStore
from flyteauth_jupyter.transport.http import JsonResponse

CODE = "CODE-pasted-SECRET-4242"
ACCESS = "AT-paste-SECRET-0001"
TOKEN = {"access_token": ACCESS, "refresh_token": "RT-paste-SECRET-0002", "token_type": "Bearer", "expires_in": 600}


class ScriptedTokenEndpoint:
    """Stands in for the transport: every POST (the code exchange) answers with TOKEN."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []

    def post_form(self, url: str, data: dict[str, Any], auth: Any = None, **kwargs: Any) -> JsonResponse:
        self.posts.append(dict(data))
        return JsonResponse(status=200, data=TOKEN, where="idp.test:443")


class WidgetOnly(WidgetDisplay):
    """The widget display without IPython's display() (no kernel here)."""

    def show(self, view: LoginView) -> None:
        self.widget.update(view)

    update = refresh = redisplay = show


RELAY_URI = "https://hub.example.org/hub/user-redirect/flyteauth/callback"


def pkce_view(redirect_uri: str = "http://127.0.0.1:5/callback") -> LoginView:
    view = LoginView(endpoint="127.0.0.1:9", name="flyte_auth").apply(FlowStarted("pkce", "127.0.0.1:9"))
    return view.apply(
        AuthorizationRequested(url="http://127.0.0.1:9/auth?state=s", redirect_uri=redirect_uri,
                               expires_at=time.time() + 300, browser_opened=False)
    )


def widget_state(widget: LoginWidget) -> str:
    return json.dumps([w.get_state() for w in widget.all_widgets()], default=str)


# ---------------------------------------------------------------------------------- the widget
def test_paste_row_only_while_a_browser_sign_in_waits() -> None:
    w = LoginWidget(on_paste=lambda text: None)
    w.update(pkce_view())
    assert w.paste_row.layout.display == "" and w.paste_prompt.value == PASTE_PROMPT
    assert w.paste_text.placeholder == "http://127.0.0.1:…/callback?code=…" and w.paste_button.description == "Submit"
    device = LoginView(endpoint="e").apply(FlowStarted("device", "e")).apply(
        DeviceCodeIssued("http://127.0.0.1:9/device", "ABCD-EFGH", time.time() + 300, 5))
    w.update(device)
    assert w.paste_row.layout.display == "none"
    w.update(pkce_view())
    w.paste_text.value = "half-typed"
    w.update(pkce_view().apply(Succeeded("pkce", "127.0.0.1:9", time.time() + 60, "alice")))
    assert w.paste_row.layout.display == "none" and w.paste_text.value == ""
    without_callback = LoginWidget()
    without_callback.update(pkce_view())
    assert without_callback.paste_row.layout.display == "none"  # nobody to hand a paste to


def test_through_the_relay_the_paste_field_waits_behind_a_link() -> None:
    """Issue 17.11: the relay receives the redirect, so no loopback address is offered for pasting;
    the field is one click away ("Didn't work?") and shows the relay's kind of address."""
    w = LoginWidget(on_paste=lambda text: None)
    view = pkce_view(RELAY_URI)
    assert view.relayed and view.accepts_paste and not pkce_view().relayed
    w.update(view)
    assert w.paste_row.layout.display == "none" and w.paste_reveal.layout.display == ""
    assert w.paste_reveal.description == PASTE_REVEAL and w.buttons.layout.display == ""
    w.paste_reveal.click()
    assert w.paste_row.layout.display == "" and w.paste_reveal.layout.display == "none"
    assert w.paste_prompt.value == RELAY_PASTE_PROMPT and "127.0.0.1" not in w.paste_text.placeholder
    w.tick()
    w.update(view)  # the countdown and later draws keep it open
    assert w.paste_row.layout.display == ""
    w.update(view.apply(Succeeded("pkce", "127.0.0.1:9", time.time() + 60, "alice")))
    assert w.paste_row.layout.display == w.paste_reveal.layout.display == "none"
    w.update(pkce_view(RELAY_URI))  # the next attempt: behind the link again
    assert w.paste_row.layout.display == "none" and w.paste_reveal.layout.display == ""
    loopback = LoginWidget(on_paste=lambda text: None)
    loopback.update(pkce_view())  # a loopback redirect: the field at once, no link
    assert loopback.paste_row.layout.display == "" and loopback.paste_reveal.layout.display == "none"
    # the HTML fallback (no widgets, or a saved notebook) keeps the same order: behind a <details>
    hint = paste_html(view)
    assert hint.startswith('<details class="flyteauth-paste-call"><summary>Didn\'t work?</summary>')
    assert "submit_redirect()" in hint and "Browser on another machine" not in hint
    assert paste_html(pkce_view()).startswith('<div class="flyteauth-paste-call">Browser on another machine?')
    text = "\n".join(view.text_lines())  # the text display says the same as the HTML one
    assert "If the sign-in did not come back here, run flyte_auth.submit_redirect()" in text
    assert "Browser on another machine" not in text


def test_submit_clears_the_field_before_handing_the_text_on() -> None:
    seen: list[tuple[str, str]] = []
    w = LoginWidget(on_paste=lambda text: seen.append((text, w.paste_text.value)))
    w.update(pkce_view())
    w.paste_text.value = f"http://127.0.0.1:5/callback?code={CODE}&state=s"
    w.paste_button.click()
    assert seen == [(f"http://127.0.0.1:5/callback?code={CODE}&state=s", "")]
    assert CODE not in widget_state(w)


def test_view_paste_transitions() -> None:
    view = pkce_view()
    refused = view.with_paste_refused("The pasted address belongs to another sign-in.")
    assert refused.phase == "waiting" and refused.accepts_paste
    assert refused.status_line().startswith("The pasted address belongs to another sign-in. Still waiting")
    accepted = refused.with_paste_accepted()
    assert accepted.phase == "waiting" and not accepted.accepts_paste and "accepted" in accepted.message
    done = accepted.apply(Succeeded("pkce", "127.0.0.1:9", None, "alice"))
    assert not done.accepts_paste and done.with_paste_refused("x") is done


# --------------------------------------------------------------------------------- the session
def static_store() -> StaticClientConfigStore:
    return StaticClientConfigStore(ClientConfig(
        token_endpoint="https://idp.test/token", authorization_endpoint="https://idp.test/auth",
        redirect_uri="http://127.0.0.1:0/callback", client_id="cli", scopes=["openid"],
    ))


@pytest.fixture
def pkce_session():

    def prepare(observer):
        auth = PKCEAuthenticator("http://127.0.0.1:9", static_store(), open_browser=False, observer=observer,
                                 store=MemoryStore(), timeout=30)
        auth._transport = ScriptedTokenEndpoint()  # the token endpoint is scripted here
        return Prepared(auth, "pkce", "test")

    session = LoginSession(prepare, endpoint="127.0.0.1:9", timeout=30)
    session.display = WidgetOnly(on_cancel=session.cancel, on_retry=session.retry, on_paste=session.handle_paste)
    session.start()
    yield session
    session.cancel()
    if session.future is not None:
        session.future.exception(10)


def sign_in_link(session: LoginSession) -> dict[str, str]:
    wait_until(lambda: session.view.accepts_paste, 10, "the browser sign-in to wait")
    return {k: v[0] for k, v in parse_qs(urlsplit(session.view.auth_url).query).items()}


def test_session_paste_through_the_widget(pkce_session: LoginSession) -> None:
    session, widget = pkce_session, pkce_session.widget
    q = sign_in_link(session)
    assert widget.paste_row.layout.display == ""
    widget.paste_text.value = f"{q['redirect_uri']}?code={CODE}&state=stale"
    widget.paste_button.click()
    assert widget.paste_text.value == ""
    assert "belongs to another sign-in" in widget.status.value and "Still waiting" in widget.status.value
    assert session.status == "waiting" and not session.done
    widget.paste_text.value = f"{q['redirect_uri']}?code={CODE}&state={q['state']}"
    widget.paste_button.click()
    creds = session.wait(10)
    assert creds.access_token == ACCESS and session.status == "signed_in"
    exchange = session.authenticator._transport.posts[0]
    assert exchange["code"] == CODE and exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]
    assert widget.paste_row.layout.display == "none"
    state = widget_state(widget)
    assert CODE not in state and ACCESS not in state and CODE not in repr(session)
    with pytest.raises(FlyteAuthError, match="No browser sign-in to 127.0.0.1:9 is waiting"):
        session.submit_redirect(f"?code={CODE}&state={q['state']}")


def test_session_submit_redirect_from_code(pkce_session: LoginSession) -> None:
    q = sign_in_link(pkce_session)
    with pytest.raises(StateMismatchError):
        pkce_session.submit_redirect(f"?code={CODE}&state=nope")
    assert "another sign-in" in pkce_session.view.message and not pkce_session.done
    pkce_session.submit_redirect(f"?code={CODE}&state={q['state']}")
    assert pkce_session.wait(10).access_token == ACCESS


def test_device_session_has_no_paste() -> None:
    fakes: list[FakeAuthenticator] = []

    def prepare(observer):
        fakes.append(FakeAuthenticator(observer))
        return Prepared(fakes[-1], "device", "test")

    session = LoginSession(prepare, endpoint="127.0.0.1:9", timeout=30)
    session.display = WidgetOnly(on_cancel=session.cancel, on_retry=session.retry, on_paste=session.handle_paste)
    session.start()
    try:
        wait_until(lambda: session.view.user_code is not None, 5, "the device code")
        assert session.widget.paste_row.layout.display == "none"
        with pytest.raises(FlyteAuthError, match="No browser sign-in"):
            session.submit_redirect(f"?code={CODE}&state=s")
        session.handle_paste("anything")  # the button's path never raises
        assert session.status in ("waiting", "slowed_down")
    finally:
        session.cancel()
        session.future.exception(10)
