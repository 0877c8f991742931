"""The names (``--name``, default ``flyte_auth``) and the sessions behind them: :class:`SessionNames`.

Which session a name points to, and when that changes: a new ``%flyte_login`` takes the name at once
(:meth:`SessionNames.bind`), and gives it back to the earlier working sign-in if it fails or is
cancelled (:meth:`SessionNames.settle`); ``%flyte_logout`` signs out a session and the one it would
have given the name back to (:meth:`SessionNames.sign_out`); ``%flyte_status`` lists them all
(:meth:`SessionNames.status_text`). The rule and why: docs/architecture.md, "Panel lifecycle".

The user namespace, the two tables here and the process registry of ``flyteauth_jupyter.sessions``
(what the flytekit plug-in reuses) change together, under one lock.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import LoginSession


class SessionNames:
    """The sessions the magics hold, by name, and the variables of ``shell``'s namespace naming them."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        #: name -> the session bound to it
        self.sessions: dict[str, LoginSession] = {}
        #: name -> the last sign-in that failed or was cancelled and gave the name back to an earlier one
        #: (shown by %flyte_status until another sign-in takes the name)
        self.gave_back: dict[str, LoginSession] = {}
        self.lock = threading.RLock()  # the two tables above, the namespace and the registry change together
        self.closed = False  # the extension was unloaded: nothing is given back any more

    def bind(self, session: LoginSession, by: str | None = None) -> None:
        """Bind ``session`` to its name and register it for flytekit (every login it starts, also the
        panel's Retry / "Sign in again" after %flyte_logout removed the variable).

        The session that had the name: a working one (signed in) lends it and is what the name goes
        back to if this one fails (``session.fallback``); one still signing in is replaced (cancelled),
        and what it would have gone back to is this one's fallback now."""
        by = by or f"the sign-in started again from an earlier panel of `{session.name}`"
        with self.lock:
            name = session.name
            previous = self.sessions.get(name)
            if previous is not None and previous is not session:
                if previous.working:
                    session.fallback = previous
                else:
                    session.fallback, previous.fallback = previous.fallback, None
                    previous.replaced(by)
                if session.fallback is session:
                    session.fallback = None
                if session.fallback is not None:
                    session.fallback.lend(by)
            if self.gave_back.get(name) is not None:
                del self.gave_back[name]  # that failed sign-in is superseded (or is this one, again)
            self.sessions[name] = session
            self.shell.user_ns[name] = session
            _register(session)

    def settle(self, session: LoginSession, error: BaseException | None) -> str | None:
        """An attempt of ``session`` ended (in its thread, before a waiting cell wakes). Signed in: the
        name stays, and the sign-in it was lent by says so. Failed or cancelled: the name goes back to
        the earlier working sign-in, if any; returns the clause saying so, for the panel and the error."""
        with self.lock:
            fallback, session.fallback = session.fallback, None
            if fallback is None:
                return None
            if error is None:
                fallback.give_up_name()
                return None
            name = session.name
            if self.closed or self.sessions.get(name) is not session or not fallback.working:
                return None
            self.sessions[name] = fallback
            if self.shell.user_ns.get(name) is session:  # unless the user bound the name to something else
                self.shell.user_ns[name] = fallback
            _forget(session)
            _register(fallback)
            self.gave_back[name] = session
            fallback.take_name_back()
        view = fallback.view
        who = f" (as {view.subject})" if view.subject else ""
        return f"`{name}` still refers to your earlier sign-in to {fallback.endpoint}{who}"

    def find(self, *, name: str | None, endpoint: str | None, default_name: str) -> LoginSession | None:
        """The session ``%flyte_logout`` means: the one ``name`` refers to (the variable first), else the
        one signed in to ``endpoint``, else the one ``default_name`` refers to."""
        from ..endpoint import is_issuer_service, parse_endpoint, same_service
        from .session import LoginSession

        if not name and endpoint:
            # an --issuer sign-in first: its issuer may have a path, which no Flyte endpoint has
            for session in self.sessions.values():
                if is_issuer_service(session.endpoint, endpoint):
                    return session
            service = parse_endpoint(endpoint, insecure=True).service
            for session in self.sessions.values():
                if same_service(session.endpoint, service):
                    return session
            return None
        name = name or default_name
        value = self.shell.user_ns.get(name)
        return value if isinstance(value, LoginSession) else self.sessions.get(name)

    def sign_out(self, session: LoginSession) -> str:
        """Sign out ``session`` and the earlier sign-in it would have given its name back to (nothing is
        given back: that one is signed out too); remove every variable and entry naming them. Returns
        the sentence ``%flyte_logout`` prints."""
        with self.lock:
            earlier, session.fallback = session.fallback, None
        signed_out = [session] + ([earlier] if earlier is not None and earlier is not session else [])
        for each in signed_out:
            each.logout()
        removed = []
        with self.lock:
            for var, value in list(self.shell.user_ns.items()):
                if any(value is each for each in signed_out):
                    del self.shell.user_ns[var]
                    removed.append(var)
            for table in (self.sessions, self.gave_back):
                for key, value in list(table.items()):
                    if any(value is each for each in signed_out):
                        del table[key]
            for each in signed_out:
                _forget(each)
        gone = f"; removed {', '.join(f'`{v}`' for v in removed)}" if removed else ""
        endpoints = " and ".join(dict.fromkeys(each.endpoint for each in signed_out))
        return f"Signed out of {endpoints}{gone}."

    def status_text(self) -> str:
        """One line per session: the bound ones (with every variable naming them), the earlier sign-in
        a running one would give its name back to, and the failed ones that gave it back."""
        from .render import flyte_status_line

        with self.lock:
            held: list[tuple[str, LoginSession]] = []
            for name, session in self.sessions.items():
                names = [var for var, value in self.shell.user_ns.items() if value is session] or [name]
                held.append((", ".join(dict.fromkeys([name] + names)), session))
                if session.fallback is not None:
                    held.append((f"(earlier sign-in; `{name}` goes back to it if the one above fails)",
                                 session.fallback))
            for name, failed in self.gave_back.items():
                started = f" of {failed.started_in}" if failed.started_in else ""
                held.append((f"(not bound; the sign-in{started}, `{name}` kept the earlier one)", failed))
        if not held:
            return "Not signed in to any Flyte endpoint; run %flyte_login."
        return "\n".join(flyte_status_line(label, session.view) for label, session in held)

    def close(self) -> None:
        """Cancel logins in progress (on unload); the names stay where they are."""
        self.closed = True
        for session in list(self.sessions.values()):
            session.cancel()


def registry() -> Any:
    """``flyteauth_jupyter.sessions``: the process registry the flytekit plug-in reads (imported on use)."""
    from .. import sessions

    return sessions


def _register(session: LoginSession) -> None:
    try:
        registry().register_session(session.endpoint, session)
    except Exception:  # noqa: BLE001 - flytekit reuse is a bonus, never a reason to fail
        pass


def _forget(session: LoginSession) -> None:
    try:
        registry().forget_session(session.endpoint, session)
    except Exception:  # noqa: BLE001
        pass
