"""``LoginWidget``: the live login panel, composed from standard ipywidgets (no custom JavaScript).

Layout (top to bottom): title (endpoint, flow and why), the link and the user code with a copy
button, the QR code of ``verification_uri_complete``, the paste-back row (browser sign-in only: a
text field and Submit for the address a browser on another machine ended on), the status line (with
a countdown), and the Cancel / Retry buttons. :class:`WidgetDisplay` shows it together with
render.py's HTML fallback in one output. The widget never talks to a server: a
:class:`~.session.LoginSession` hands it :class:`~.state.LoginView` snapshots
(:meth:`LoginWidget.update`, from the login's background thread, the documented ipywidgets pattern)
and the buttons call back into the session.

Secret hygiene: every synced trait holds only what is on screen. The code, links and QR are emptied
when the login ends, so the saved widget state of a finished login holds the summary sentence only.
The paste field is emptied the moment Submit is pressed (before the address is handed on), and
whenever the paste row is hidden, so its synced ``value`` never keeps an authorization code; its
``value`` is not echoed back on iopub (ipywidgets 8 echoes every frontend edit to all frontends
unless the trait says ``echo_update=False``), so the pasted code is not broadcast either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from traitlets import Unicode

from .render import HTMLDisplay, bundle, code_html, link_html, notice_html, qr_html, status_html, title_html
from .state import LoginView

HIDDEN = "none"
SHOWN = ""

PASTE_PROMPT = "Browser on another machine? After signing in, paste the address your browser ended on:"
PASTE_PLACEHOLDER = "http://127.0.0.1:…/callback?code=…"


class PasteText(widgets.Text):
    """A text field whose edits are not echoed to every frontend (the pasted address holds a code)."""

    value = Unicode("", help="String value").tag(sync=True, echo_update=False)


class LoginWidget(widgets.VBox):
    """The login panel. ``on_cancel`` / ``on_retry`` are called (without arguments) by the buttons;
    ``on_paste(text)`` by Submit in the paste row (which is shown only when ``on_paste`` is given)."""

    def __init__(
        self,
        *,
        on_cancel: Callable[[], Any] | None = None,
        on_retry: Callable[[], Any] | None = None,
        on_paste: Callable[[str], Any] | None = None,
    ) -> None:
        self.title = widgets.HTML(value="")
        self.link = widgets.HTML(value="")
        self.code = widgets.HTML(value="")
        self.qr = widgets.HTML(value="")
        self.status = widgets.HTML(value="")
        self.notice = widgets.HTML(value="")
        self.cancel_button = widgets.Button(
            description="Cancel", icon="times", tooltip="Stop this sign-in", layout=widgets.Layout(width="auto")
        )
        self.retry_button = widgets.Button(
            description="Retry",
            icon="redo",
            tooltip="Start the sign-in again",
            button_style="primary",
            layout=widgets.Layout(width="auto", display=HIDDEN),
        )
        self.details = widgets.HBox(
            [widgets.VBox([self.link, self.code]), self.qr],
            layout=widgets.Layout(align_items="center", grid_gap="1.5em", display=HIDDEN),
        )
        self.buttons = widgets.HBox([self.cancel_button, self.retry_button])
        self.paste_prompt = widgets.HTML(value=PASTE_PROMPT)
        self.paste_text = PasteText(
            value="", placeholder=PASTE_PLACEHOLDER, layout=widgets.Layout(width="36em", max_width="100%")
        )
        self.paste_button = widgets.Button(
            description="Submit", tooltip="Finish the sign-in with the pasted address", layout=widgets.Layout(width="auto")
        )
        self.paste_row = widgets.VBox(
            [self.paste_prompt, widgets.HBox([self.paste_text, self.paste_button])],
            layout=widgets.Layout(display=HIDDEN),
        )
        super().__init__(
            [self.title, self.details, self.paste_row, self.status, self.notice, self.buttons],
            layout=widgets.Layout(border_left="3px solid #8c959f", padding="0 0 0 0.8em"),
        )
        self._lock = threading.RLock()
        self._on_cancel = on_cancel
        self._on_retry = on_retry
        self._on_paste = on_paste
        self.add_class("flyteauth-widget")
        self.paste_text.add_class("flyteauth-paste")
        self.paste_button.add_class("flyteauth-paste-submit")
        self.paste_button.on_click(lambda _button: self._submit_paste())
        self.cancel_button.add_class("flyteauth-cancel")
        self.retry_button.add_class("flyteauth-retry")
        self.cancel_button.on_click(lambda _button: self._press(self._on_cancel))
        self.retry_button.on_click(lambda _button: self._press(self._on_retry))
        self.view: LoginView | None = None

    @staticmethod
    def _press(callback: Callable[[], Any] | None) -> None:
        if callback is not None:
            callback()

    def _submit_paste(self) -> None:
        """Submit: take the pasted text, empty the field at once (its synced value must not keep the
        code), then hand the text on; the session checks it and reports in the status line."""
        with self._lock:
            text = self.paste_text.value
            self.paste_text.value = ""
        if self._on_paste is not None:
            self._on_paste(text)

    # -- drawing ---------------------------------------------------------------------------------
    @staticmethod
    def _set(widget: widgets.Widget, name: str, value: Any) -> None:
        if getattr(widget, name) != value:
            setattr(widget, name, value)

    def update(self, view: LoginView, now: float | None = None) -> None:
        """Draw ``view`` (any thread)."""
        with self._lock:
            self.view = view
            self._set(self.title, "value", title_html(view))
            self._set(self.link, "value", link_html(view))
            self._set(self.code, "value", code_html(view))
            self._set(self.qr, "value", qr_html(view))
            self._set(self.status, "value", status_html(view, now))
            self._set(self.notice, "value", notice_html(view))
            has_details = bool(self.link.value or self.code.value or self.qr.value)
            self._set(self.details.layout, "display", SHOWN if has_details else HIDDEN)
            self._set(self.cancel_button.layout, "display", SHOWN if view.active else HIDDEN)
            retry = view.failed or view.phase == "signed_out"
            self._set(self.retry_button.layout, "display", SHOWN if retry else HIDDEN)
            self._set(self.retry_button, "description", "Sign in again" if view.phase == "signed_out" else "Retry")
            self._set(self.buttons.layout, "display", SHOWN if (view.active or retry) else HIDDEN)
            paste = view.accepts_paste and self._on_paste is not None
            self._set(self.paste_row.layout, "display", SHOWN if paste else HIDDEN)
            if not paste:
                self._set(self.paste_text, "value", "")

    def tick(self, view: LoginView | None = None, now: float | None = None) -> None:
        """Refresh the countdown in the status line."""
        with self._lock:
            view = view or self.view
            if view is not None and view is self.view:
                self._set(self.status, "value", status_html(view, now))

    def all_widgets(self) -> list[widgets.Widget]:
        """This widget and every widget (and layout) it owns, for state inspection in tests."""
        found: list[widgets.Widget] = []

        def walk(w: widgets.Widget) -> None:
            if w in found:
                return
            found.append(w)
            for name in ("layout", "style"):
                sub = getattr(w, name, None)
                if isinstance(sub, widgets.Widget):
                    walk(sub)
            for child in getattr(w, "children", ()):
                walk(child)

        walk(self)
        return found

    @property
    def status_text(self) -> str:
        view = self.view
        return view.status_line() if view is not None else ""


class WidgetDisplay(HTMLDisplay):
    """The live widget plus the HTML fallback, in one output under one ``display_id``.

    Frontends with a widget manager draw the widget; nbconvert, papermill and frontends without one
    draw the HTML, which is rewritten in place on every phase change (render.HTMLDisplay)."""

    def __init__(
        self,
        *,
        on_cancel: Callable[[], Any],
        on_retry: Callable[[], Any],
        on_paste: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__()
        self.widget = LoginWidget(on_cancel=on_cancel, on_retry=on_retry, on_paste=on_paste)

    def _bundle(self, view: LoginView) -> dict[str, Any]:
        data = bundle(view)
        data["application/vnd.jupyter.widget-view+json"] = {
            "version_major": 2,
            "version_minor": 0,
            "model_id": self.widget.model_id,
        }
        return data

    def _key(self, view: LoginView) -> tuple[str, ...]:
        # only a new phase (or where the name points, why it asks, a notice, where the tokens are kept)
        # rewrites the output; the widget itself updates continuously
        return view.phase, view.binding, view.why, view.notice or "", view.store

    def show(self, view: LoginView) -> None:
        self.widget.update(view)
        super().show(view)

    def update(self, view: LoginView) -> None:
        self.widget.update(view)
        super().update(view)

    def refresh(self, view: LoginView) -> None:
        self.widget.update(view)
        super().refresh(view)

    def tick(self, view: LoginView) -> None:
        self.widget.tick(view)

    def redisplay(self, view: LoginView) -> None:
        self.widget.update(view)
        super().redisplay(view)
