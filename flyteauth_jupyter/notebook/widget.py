"""``LoginWidget``: the live login panel, composed from standard ipywidgets (no custom JavaScript).

Layout (top to bottom): title (endpoint, flow and why), the link and the user code with a copy
button, the QR code of ``verification_uri_complete``, the paste-back row (browser sign-in only: a
text field and Submit for the address a browser on another machine ended on; behind a "Didn't
work?" link when the redirect comes back through the Jupyter relay), the status line (with a
countdown), and the Cancel / Retry buttons. :class:`WidgetDisplay` shows it together with
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

A panel whose kernel has gone (restarted, shut down, or a notebook reopened with its saved widget
state) is drawn by the front end from the models it still holds, every view marked
``jupyter-widgets-disconnected``, which ipywidgets shows as a broken-link icon per row. The kernel
cannot replace that output: JupyterLab 4 and Notebook 7 drop a kernel's pending outputs
(``KernelConnection.restart`` disposes every future before it asks the server to restart), so an
``update_display`` sent while the kernel shuts down never reaches the old cell. So the panel carries
its own static look: :data:`PANEL_CSS`, a ``<style>`` in one of its HTML children, hides the icons
and the parts that need a kernel (buttons, paste row, code and link) once the panel is disconnected,
and shows one line saying so; the last title and status line stay, as in a saved notebook's HTML.
CSS only, scoped to ``.flyteauth-widget``: the package ships no front-end code.
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

#: the panel once its kernel has gone (module docstring): ipywidgets marks every view of a model whose
#: comm is not live with ``jupyter-widgets-disconnected`` and draws a ``::before`` icon on each
GONE_CLASS = "jupyter-widgets-disconnected"
#: the panel's own style (one <style>, every rule scoped to the panel): how it looks once its kernel
#: has gone, and the "Didn't work?" button drawn as a link
PANEL_CSS = (
    "<style>"
    ".flyteauth-widget .flyteauth-paste-reveal{background:none!important;border:none;box-shadow:none;"
    "color:#0969da;text-decoration:underline;padding:0 0.6em}"
    f".flyteauth-widget.{GONE_CLASS}::before,.flyteauth-widget .{GONE_CLASS}::before"
    "{content:none!important;display:none!important}"
    f".flyteauth-widget.{GONE_CLASS} .flyteauth-live{{display:none!important}}"
    ".flyteauth-widget .flyteauth-gone{display:none}"
    f".flyteauth-widget.{GONE_CLASS} .flyteauth-gone{{display:flex}}"
    "</style>"
)
GONE_LINE = "The kernel behind this panel has stopped or restarted: this is its last state."

PASTE_PROMPT = "Browser on another machine? After signing in, paste the address your browser ended on:"
PASTE_PLACEHOLDER = "http://127.0.0.1:…/callback?code=…"
#: a sign-in whose redirect comes back through the Jupyter relay: the field waits behind this link
PASTE_REVEAL = "Didn't work? Paste the address instead"
RELAY_PASTE_PROMPT = "If the sign-in did not come back here, paste the address your browser ended on:"
RELAY_PASTE_PLACEHOLDER = "https://…/flyteauth/callback?code=…"


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
        self.gone = widgets.HTML(value=f'{PANEL_CSS}<span style="color:#57606a">{GONE_LINE}</span>')
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
        self.paste_reveal = widgets.Button(
            description=PASTE_REVEAL, tooltip="Show a field for the address your browser ended on",
            layout=widgets.Layout(width="auto", display=HIDDEN),
        )
        self.buttons = widgets.HBox([self.cancel_button, self.retry_button, self.paste_reveal])
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
            [self.title, self.details, self.paste_row, self.status, self.notice, self.buttons, self.gone],
            layout=widgets.Layout(border_left="3px solid #8c959f", padding="0 0 0 0.8em"),
        )
        self._lock = threading.RLock()
        self._on_cancel = on_cancel
        self._on_retry = on_retry
        self._on_paste = on_paste
        self.add_class("flyteauth-widget")
        for live in (self.details, self.paste_row, self.buttons):  # hidden once the kernel has gone
            live.add_class("flyteauth-live")
        self.gone.add_class("flyteauth-gone")  # shown only then
        self.paste_text.add_class("flyteauth-paste")
        self.paste_button.add_class("flyteauth-paste-submit")
        self.paste_button.on_click(lambda _button: self._submit_paste())
        self._paste_revealed = False  # "Didn't work?" was pressed during this wait for a redirect
        self.paste_reveal.add_class("flyteauth-paste-reveal")
        self.paste_reveal.on_click(lambda _button: self._reveal_paste())
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

    def _reveal_paste(self) -> None:
        """"Didn't work?": show the paste field of a sign-in whose redirect goes through the relay."""
        with self._lock:
            self._paste_revealed = True
            if self.view is not None:
                self.update(self.view)

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
            self._draw_paste(view, paste)

    def _draw_paste(self, view: LoginView, paste: bool) -> None:
        """The paste row: shown while a browser sign-in waits; behind "Didn't work?" when the redirect
        comes back through the relay (the address to paste is then the relay's, not a loopback one)."""
        if not paste:
            self._paste_revealed = False
            self._set(self.paste_text, "value", "")
        behind_link = paste and view.relayed and not self._paste_revealed
        self._set(self.paste_reveal.layout, "display", SHOWN if behind_link else HIDDEN)
        self._set(self.paste_row.layout, "display", SHOWN if paste and not behind_link else HIDDEN)
        self._set(self.paste_prompt, "value", RELAY_PASTE_PROMPT if view.relayed else PASTE_PROMPT)
        self._set(self.paste_text, "placeholder", RELAY_PASTE_PLACEHOLDER if view.relayed else PASTE_PLACEHOLDER)

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
