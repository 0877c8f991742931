"""Drawing a :class:`~.state.LoginView`: HTML fragments, plain text, and the three kinds of display.

* :class:`HTMLDisplay`: the HTML bundle, updated in place under a ``display_id`` on every phase change
  (``%config FlyteAuthMagics.display = 'html'``, and the fallback half of the widget display), so a
  saved notebook shows the final state ("Signed in as ...") and never a code or link that is no
  longer needed. HTML has no live field: while a browser sign-in waits for its redirect, it shows the
  one-line call that asks for the address at a hidden prompt, ``flyte_auth.submit_redirect()`` (no
  cell keeps the code).
* ``widget.WidgetDisplay`` (a kernel with ipywidgets) builds on :class:`HTMLDisplay`: the live panel
  and this HTML in one MIME bundle. The dependency runs one way: widget.py imports render.py, never
  the reverse.
* :class:`TextDisplay`: one printed line per change, for a terminal IPython.

:func:`flyte_status_line` is a view as one line of ``%flyte_status``.

Every piece of text is escaped; only http(s) URLs become links; links open in the user's own browser
tab (``target="_blank"``): nothing here calls ``webbrowser`` on the kernel's machine.
"""

from __future__ import annotations

import html
import re
import threading
import time
from typing import IO, Any

from .state import LoginView, clock_time, flow_title

PHASE_COLOURS = {
    "signed_in": "#1a7f37",
    "denied": "#cf222e",
    "expired": "#9a6700",
    "cancelled": "#57606a",
    "error": "#cf222e",
    "signed_out": "#57606a",
}


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def safe_url(url: str | None) -> str | None:
    """``url`` if it is http(s), else None (never a javascript: link)."""
    if not url:
        return None
    lowered = url.strip().lower()
    return url.strip() if lowered.startswith(("https://", "http://")) else None


def link(url: str | None, label: str) -> str:
    href = safe_url(url)
    if href is None:
        return esc(label)
    return (
        f'<a class="flyteauth-link" href="{esc(href)}" target="_blank" rel="noopener noreferrer" '
        f'style="color:#0969da;text-decoration:underline">{esc(label)}</a>'
    )


def code_spans(escaped: str) -> str:
    """Already-escaped text with its `name` spans shown as <code> (the plain-text form keeps backticks)."""
    return re.sub(r"`([^`<>&]+)`", r"<code>\1</code>", escaped)


def title_html(view: LoginView) -> str:
    endpoint = esc(view.endpoint or "(endpoint pending)")
    why = f'<br><span class="flyteauth-why">{esc(view.why_line())}</span>' if view.why_line() else ""
    return (
        f'<div class="flyteauth-title"><b>Flyte sign-in</b> · <code>{endpoint}</code>'
        f'<br><span style="color:#57606a">{esc(view.flow_line())}</span>{why}</div>'
    )


def link_html(view: LoginView) -> str:
    """The link the user follows: the verification page (device) or the sign-in page (PKCE)."""
    if not view.active:
        return ""
    if view.user_code:
        target = view.verification_uri_complete or view.verification_uri
        shown = view.verification_uri or target or ""
        return f"<div>1. Open {link(target, shown)} in your browser</div>"
    if view.auth_url:
        return f"<div>{link(view.auth_url, 'Open the sign-in page')}</div>"
    return ""


def code_html(view: LoginView, *, copy_button: bool = True) -> str:
    """The user code, large and selectable, with a copy-to-clipboard button (frontend only)."""
    if not (view.active and view.user_code):
        return ""
    code = esc(view.user_code)
    button = ""
    if copy_button:
        button = (
            f' <button type="button" class="jupyter-button flyteauth-copy" title="Copy the code" data-code="{code}" '
            "onclick=\"navigator.clipboard &amp;&amp; navigator.clipboard.writeText(this.dataset.code);"
            "this.textContent='Copied'\">Copy</button>"
        )
    return (
        "<div>2. Enter the code "
        f'<span class="flyteauth-code" style="font-size:1.8em;font-family:monospace;font-weight:bold;'
        f'letter-spacing:0.08em;user-select:all">{code}</span>{button}</div>'
    )


def qr_html(view: LoginView, *, scale: int = 3) -> str:
    """An inline SVG QR code of ``verification_uri_complete`` (RFC 8628 section 3.3.1), when given."""
    url = safe_url(view.verification_uri_complete) if view.active else None
    if not url:
        return ""
    try:
        import segno
    except ImportError:  # segno is a dependency; be quiet if it is missing anyway
        return ""
    svg = segno.make(url, error="m").svg_inline(scale=scale, border=2)
    return f'<div class="flyteauth-qr" title="Scan to open the verification page on a phone">{svg}</div>'


def status_html(view: LoginView, now: float | None = None) -> str:
    colour = PHASE_COLOURS.get(view.phase, "inherit")
    weight = "bold" if view.done else "normal"
    binding = view.binding_line()
    where = f'<div class="flyteauth-binding">{code_spans(esc(binding))}</div>' if binding else ""
    return (
        f'<div class="flyteauth-status" data-phase="{esc(view.phase)}" '
        f'style="color:{colour};font-weight:{weight}">{code_spans(esc(view.status_line(now)))}</div>{where}'
    )


def notice_html(view: LoginView) -> str:
    return f'<div style="color:#9a6700">Note: {esc(view.notice)}</div>' if view.notice else ""


def paste_html(view: LoginView) -> str:
    """HTML has no live field: the one-line call that hands a pasted redirect address to the sign-in."""
    if not view.accepts_paste:
        return ""
    hint = view.paste_hint(f"<code>{esc(view.paste_call())}</code>")
    if view.relayed:  # the relay receives the redirect: the fallback waits behind "Didn't work?" (17.11)
        return f'<details class="flyteauth-paste-call"><summary>Didn\'t work?</summary>{hint}</details>'
    return f'<div class="flyteauth-paste-call">{hint}</div>'


def view_html(view: LoginView, now: float | None = None, *, copy_button: bool = False) -> str:
    """The whole login as one HTML block (the fallback for frontends without widgets)."""
    parts = [title_html(view)]
    details = link_html(view) + code_html(view, copy_button=copy_button)
    if details:
        parts.append(f'<div style="display:flex;gap:1.5em;align-items:center"><div>{details}</div>{qr_html(view)}</div>')
    parts.append(paste_html(view))
    parts.append(status_html(view, now))
    parts.append(notice_html(view))
    return '<div class="flyteauth-login" style="border-left:3px solid #8c959f;padding-left:0.8em">' + "".join(parts) + "</div>"


def view_text(view: LoginView, now: float | None = None) -> str:
    return "\n".join(view.text_lines(now))


def bundle(view: LoginView, now: float | None = None) -> dict[str, Any]:
    return {"text/html": view_html(view, now), "text/plain": view_text(view, now)}


def flyte_status_line(label: str, view: LoginView) -> str:
    """One line of %flyte_status for the session ``label`` names (and a second one for a notice)."""
    parts = [f"{label}: {view.endpoint}", flow_title(view.flow) if view.flow else "flow pending", view.phase.replace("_", " ")]
    if view.subject:
        parts.insert(1, f"as {view.subject}")
    if view.scopes:
        parts.append("scopes " + " ".join(view.scopes))
    if view.phase == "signed_in":
        if view.token_expires_at is not None:
            left = view.token_expires_at - time.time()
            parts.append(f"valid until {clock_time(view.token_expires_at)}" if left > 0 else "expired (refreshed on next use)")
        else:
            parts.append("expiry unknown")
        if view.store:
            parts.append(f"tokens in {view.store}")
    elif view.message and not view.active:
        parts.append(view.message)
    line = " · ".join(parts)
    return f"{line}\n  Note: {view.notice}" if view.notice else line


# -- displays -----------------------------------------------------------------------------------
class LoginDisplay:
    """What a :class:`~.session.LoginSession` draws on. Methods may be called from any thread."""

    def show(self, view: LoginView) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def update(self, view: LoginView) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def tick(self, view: LoginView) -> None:
        """Called about once a second while the login waits (countdown)."""

    def redisplay(self, view: LoginView) -> None:
        """Show the login again in the current cell (a later cell needs a new sign-in)."""
        self.show(view)


def _display(data: dict[str, Any], *, display_id: str, update: bool) -> None:
    from IPython.display import display, update_display

    if update:
        update_display(data, raw=True, display_id=display_id)
    else:
        display(data, raw=True, display_id=display_id)


class HTMLDisplay(LoginDisplay):
    """An HTML output updated in place (``display_id``) on every change of phase or message."""

    def __init__(self) -> None:
        import uuid

        self.display_id = f"flyteauth-{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        self._last: tuple[str, ...] | None = None
        self._shown = False

    def _bundle(self, view: LoginView) -> dict[str, Any]:
        return bundle(view)

    def _key(self, view: LoginView) -> tuple[str, ...]:
        """What must change for the output to be rewritten (not the countdown: it ticks every second)."""
        return view.phase, view.message, view.binding, view.why, view.notice or "", view.store

    def _changed(self, view: LoginView) -> bool:
        key = self._key(view)
        if key == self._last:
            return False
        self._last = key
        return True

    def show(self, view: LoginView) -> None:
        with self._lock:
            _display(self._bundle(view), display_id=self.display_id, update=self._shown)
            self._shown = True
            self._last = self._key(view)

    def update(self, view: LoginView) -> None:
        with self._lock:
            if self._changed(view):
                _display(self._bundle(view), display_id=self.display_id, update=True)

    def refresh(self, view: LoginView) -> None:
        """Send the current state again (from the thread that waits, so it carries that cell's parent)."""
        with self._lock:
            self._last = self._key(view)
            _display(self._bundle(view), display_id=self.display_id, update=True)

    def redisplay(self, view: LoginView) -> None:
        with self._lock:
            _display(self._bundle(view), display_id=self.display_id, update=False)
            self._shown = True


class TextDisplay(LoginDisplay):
    """Plain text lines for a terminal: printed once per meaningful change."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._printed: set[str] = set()

    def _write(self, lines: list[str]) -> None:
        import sys

        stream = self.stream or sys.stdout
        fresh = [line for line in lines if line not in self._printed]
        if not fresh:
            return
        self._printed.update(fresh)
        stream.write("\n".join(fresh) + "\n")
        stream.flush()

    def show(self, view: LoginView) -> None:
        with self._lock:
            self._write([view.text_lines()[0]])

    def update(self, view: LoginView) -> None:
        now = time.time()
        with self._lock:
            lines = view.text_lines(now)[1:]
            if view.active:
                # the countdown changes every second; print the waiting sentence without it
                lines = [line for line in lines if line != view.status_line(now)] + [view.message]
            self._write([line for line in lines if line])

    def redisplay(self, view: LoginView) -> None:
        with self._lock:
            self._printed.clear()
        self.show(view)
        self.update(view)
