"""``LoginSession``: the object ``%flyte_login`` binds to ``--name``, a waitable authenticator.

Where to look: :mod:`.attempt` (one attempt's pieces), :mod:`.background` (attempts in the background,
the view), :mod:`.waitable` (``LoginSession``: waiting, the authenticator's interface, paste-back,
sign-out).

Thread model
------------
``%flyte_login`` builds a session and calls :meth:`LoginSession.start` in the cell. ``start`` captures
the cell's context (``contextvars.copy_context()``, which holds ipykernel's per-request parent header)
and the parent message (``get_ipython().get_parent()``) and hands one *attempt* to
:func:`flyteauth_jupyter.control.run_in_background`. The attempt's thread runs inside a copy of that
context and, where ipykernel has it (7+), ``shell.set_thread_parent(parent)``: every widget and display
update it makes is attributed to the cell that started the login (ipykernel 7 routes output by the
thread's parent; see DESIGN.md, Known pitfalls). ``set_parent()`` itself is *not* called from the
thread: it changes the kernel-wide parent and would steal the output of whatever cell runs then.

A second background job per attempt ticks the countdown once a second; it ends with the attempt
(it waits on the attempt's ``done_event``), so a signed-in, idle kernel runs nothing of ours.

The attempt: build the authenticator (``prepare``: may read the server's configuration), use a
cached token if one is valid (no prompt, no device request), else run the interactive flow with the
session as observer. Its :class:`concurrent.futures.Future` is what :meth:`wait`,
:meth:`get_credentials` and :meth:`fetch_grpc_call_auth_metadata` wait on, so a later cell (Run All,
papermill) blocks until the login ends, with a bound. Once a wait has returned for the current
attempt and view (``_finished``), a call is one lock-free check and the authenticator's own hot path. :meth:`cancel` (the Cancel button) stops the flow
within one poll; :meth:`retry` starts a new attempt without blocking (the Retry button runs in the
kernel's main thread). Events of a superseded attempt are ignored.

Paste-back: while a browser (PKCE) sign-in waits, :meth:`submit_redirect` hands the address the
user's browser ended on to the attempt's authenticator (from code, or through the panel's Submit,
:meth:`handle_paste`). It returns at once: the receiver only checks the address and wakes the
attempt, whose background thread exchanges the code. A refused paste is shown in the status line
and the sign-in keeps waiting. The pasted text is kept nowhere.

A forked child (``control.survive_fork``): a sign-in in progress at the fork goes on in the parent
only; in the child its attempt ends at once (``InterruptedByForkError`` from :meth:`wait`), the lock
is re-created, the panel stays the parent's (no display), and :meth:`retry` starts afresh.

Nothing here holds a secret in an attribute that a repr shows; ``repr(session)`` names the endpoint,
flow, phase and subject only.
"""

from __future__ import annotations

from .attempt import DEFAULT_WAIT, WAIT_MARGIN, Prepared
from .waitable import LoginSession

__all__ = ["DEFAULT_WAIT", "WAIT_MARGIN", "LoginSession", "Prepared"]
