"""The widget and the HTML/text renderings of a view (no kernel: ipywidgets uses comm's DummyComm)."""

from __future__ import annotations

import io
import re
import time

from flyteauth_jupyter.errors import AccessDeniedError
from flyteauth_jupyter.flows.events import (
    AuthorizationRequested,
    DeviceCodeIssued,
    Failed,
    FlowStarted,
    Succeeded,
)
from flyteauth_jupyter.notebook.render import TextDisplay, link, view_html, view_text
from flyteauth_jupyter.notebook.state import LoginView
from flyteauth_jupyter.notebook.widget import PANEL_CSS, GONE_LINE, LoginWidget


def waiting_view(complete=True):
    view = LoginView(endpoint="127.0.0.1:8089", name="flyte_auth")
    return view.apply(FlowStarted("device", "127.0.0.1:8089", "the kernel's machine has no display")).apply(
        DeviceCodeIssued(
            verification_uri="http://127.0.0.1:9/device",
            user_code="WDJB-MJHT",
            expires_at=time.time() + 300,
            interval=5,
            verification_uri_complete="http://127.0.0.1:9/device?user_code=WDJB-MJHT" if complete else None,
        )
    )


def test_widget_while_waiting_shows_link_code_qr_and_cancel():
    w = LoginWidget()
    w.update(waiting_view())
    assert 'target="_blank"' in w.link.value and "http://127.0.0.1:9/device" in w.link.value
    assert "WDJB-MJHT" in w.code.value and "clipboard" in w.code.value
    assert "<svg" in w.qr.value
    assert "device code: the kernel&#x27;s machine has no display" in w.title.value
    assert "Code expires in" in w.status.value
    assert w.details.layout.display == "" and w.cancel_button.layout.display == ""
    assert w.retry_button.layout.display == "none"


def test_widget_without_complete_uri_has_no_qr():
    w = LoginWidget()
    w.update(waiting_view(complete=False))
    assert w.qr.value == "" and "WDJB-MJHT" in w.code.value


def test_widget_after_success_keeps_only_the_summary():
    w = LoginWidget()
    view = waiting_view().apply(Succeeded("device", "127.0.0.1:8089", time.time() + 3600, "alice"))
    w.update(view)
    assert w.link.value == w.code.value == w.qr.value == ""
    assert w.details.layout.display == "none" and w.buttons.layout.display == "none"
    assert "Signed in as alice to 127.0.0.1:8089, token valid until" in w.status.value
    assert "available as <code>flyte_auth</code>" in w.status.value
    for widget in w.all_widgets():
        assert "WDJB-MJHT" not in str(widget.get_state())


def test_widget_failure_shows_retry_and_buttons_call_back():
    calls = []
    w = LoginWidget(on_cancel=lambda: calls.append("cancel"), on_retry=lambda: calls.append("retry"))
    w.update(waiting_view())
    w.cancel_button.click()
    w.update(waiting_view().apply(Failed("device", "The sign-in was denied.", AccessDeniedError("x"))))
    assert w.retry_button.layout.display == "" and w.cancel_button.layout.display == "none"
    assert "Denied: The sign-in was denied." in w.status.value
    w.retry_button.click()
    assert calls == ["cancel", "retry"]


def test_the_panel_marks_what_needs_its_kernel_for_when_the_kernel_has_gone():
    """The browser suite proves the look after a restart; here: the marks its CSS relies on."""
    w = LoginWidget(on_paste=lambda text: None)
    assert all("flyteauth-live" in part._dom_classes for part in (w.details, w.paste_row, w.buttons))
    assert "flyteauth-gone" in w.gone._dom_classes and GONE_LINE in w.gone.value and PANEL_CSS in w.gone.value
    assert w.children[-1] is w.gone
    # every rule is scoped to the panel, so its <style> changes nothing else on the page
    body = PANEL_CSS.removeprefix("<style>").removesuffix("</style>")
    selectors = [sel.strip() for rule in re.findall(r"([^{}]+)\{[^{}]*\}", body) for sel in rule.split(",")]
    assert len(selectors) == 6 and all(sel.startswith(".flyteauth-widget") for sel in selectors)


def test_tick_updates_countdown_only():
    w = LoginWidget()
    view = waiting_view()
    w.update(view, now=view.expires_at - 100)
    before = w.status.value
    w.tick(view, now=view.expires_at - 50)
    assert w.status.value != before and "0:50" in w.status.value


def test_pkce_link_and_escaping():
    view = LoginView(endpoint="<b>h</b>").apply(FlowStarted("pkce", "<b>h</b>")).apply(
        AuthorizationRequested("https://idp/auth?a=1&b=<x>", "http://127.0.0.1:1/callback", time.time() + 60)
    )
    html = view_html(view)
    assert "<b>h</b>" not in html and "&lt;b&gt;h&lt;/b&gt;" in html
    assert 'href="https://idp/auth?a=1&amp;b=&lt;x&gt;"' in html and "Open the sign-in page" in html
    assert "javascript" not in link("javascript:alert(1)", "x") and "href" not in link("javascript:alert(1)", "x")


def test_text_rendering_and_text_display():
    view = waiting_view()
    text = view_text(view)
    assert "WDJB-MJHT" in text and "http://127.0.0.1:9/device" in text
    out = io.StringIO()
    display = TextDisplay(out)
    display.show(view)
    display.update(view)
    display.update(view)  # nothing new: nothing printed twice
    display.update(view.apply(Succeeded("device", "127.0.0.1:8089", None, "alice")))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Flyte sign-in to 127.0.0.1:8089")
    assert sum("enter the code WDJB-MJHT" in line for line in lines) == 1
    assert lines[-1].startswith("Signed in as alice")


def pkce_waiting_view(name="flyte_auth"):
    view = LoginView(endpoint="127.0.0.1:8089", name=name).apply(FlowStarted("pkce", "127.0.0.1:8089"))
    return view.apply(AuthorizationRequested(url="http://127.0.0.1:9/auth?state=s", redirect_uri="http://127.0.0.1:5/callback",
                                             expires_at=time.time() + 300, browser_opened=False))


def test_html_fallback_shows_the_paste_call_while_a_browser_sign_in_waits():
    html_text = view_html(pkce_waiting_view(name="auth2"))
    assert "<code>auth2.submit_redirect()</code>" in html_text  # a hidden prompt: no cell holds the code
    assert "auth2.submit_redirect()" in view_text(pkce_waiting_view(name="auth2"))
    assert "submit_redirect" not in view_html(waiting_view())  # device: nothing to paste
    done = pkce_waiting_view().apply(Succeeded("pkce", "127.0.0.1:8089", time.time() + 60, "alice"))
    assert "submit_redirect" not in view_html(done) and "submit_redirect" not in view_text(done)


def test_render_does_not_import_the_widget():
    """The dependency between the HTML rendering and the widget runs one way (widget -> render)."""
    import ast
    from pathlib import Path

    import flyteauth_jupyter.notebook.render as render

    tree = ast.parse(Path(render.__file__).read_text(encoding="utf-8"))
    names = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    names |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not any("widget" in name for name in names), names
