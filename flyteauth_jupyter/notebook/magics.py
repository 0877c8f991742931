"""IPython connectivity: ``%flyte_login``, ``%flyte_logout``, ``%flyte_status`` (syntax pinned in DESIGN.md).

``%flyte_login`` decides everything that needs no network in the cell (endpoint, options, the
display), binds a :class:`~.session.LoginSession` to ``--name`` in the user namespace, shows the
login and returns at once; the flow runs in the background (``--wait`` blocks the cell instead).
Defaults come from ``%config FlyteAuthMagics.<trait>`` and, without ``--endpoint``, from flytekit's
own configuration (``FLYTE_PLATFORM_URL``, ``~/.flyte/config.yaml``, ...).

``--issuer URL`` signs in at any OpenID Connect provider from its own discovery document, with no
FlyteAdmin: then ``--endpoint`` (optional) is the API the token is for, and the SDKs' settings and
``default_endpoint`` (which describe a Flyte deployment) apply only to an ``--endpoint`` they name.
``--proxy-command`` takes one (quoted) command line, so that it can stand beside ``--command``,
which must come last.

Errors: a :class:`~flyteauth_jupyter.errors.FlyteAuthError` is raised as itself, typed
(``LoginCancelledError``, ``ConfigurationError``, ...), and shown as its one line without a traceback
(``errors.one_line``: IPython draws an exception's ``_render_traceback_``); only what IPython's argument
parser refuses stays its ``UsageError``. ``-h`` / ``--help`` print the usage, as ``%flyte_login?``.

The name (``--name``, default ``flyte_auth``) and the sessions behind it: a new ``%flyte_login`` takes
the name at once, and gives it back to the earlier working sign-in if it fails or is cancelled
(:meth:`FlyteAuthMagics._bind`, :meth:`FlyteAuthMagics._settle`; the rule and why: docs/architecture.md,
"Panel lifecycle").
"""

from __future__ import annotations

import argparse
import functools
import keyword
import os
import shlex
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, CaselessStrEnum, Float, List, Unicode, observe

from ..environment import FLOWS
from ..errors import ConfigurationError, FlyteAuthError, one_line, scrub
from ..validate import scope_list, user_seconds

if TYPE_CHECKING:  # imported where used: loading the extension only registers the magics
    from ..sdk_config import FlytekitSettings
    from .connect import LoginSpec
    from .render import LoginDisplay
    from .session import LoginSession

FLOW_METAVAR = "|".join(FLOWS)


def _sessions_registry() -> Any:
    from .. import sessions

    return sessions


@magics_class
class FlyteAuthMagics(Magics):
    """Sign in to a Flyte deployment from the notebook without blocking the kernel."""

    shell: Any  # set by IPython when the magics are registered (Magics types it Optional)

    default_endpoint = Unicode(
        "", help="Endpoint used when %flyte_login has no --endpoint (empty: flytekit's own configuration)."
    ).tag(config=True)
    default_flow = CaselessStrEnum(
        list(FLOWS), default_value="auto", help="Flow used when %flyte_login has no --flow."
    ).tag(config=True)
    default_name = Unicode("flyte_auth", help="Variable the authenticator is bound to when --name is absent.").tag(
        config=True
    )
    display = CaselessStrEnum(
        ["auto", "widget", "html", "text"],
        default_value="auto",
        help="How the login is shown: a live widget (with an HTML fallback), HTML updated in place, or "
        "plain text. auto: widget in a Jupyter kernel, text in a terminal.",
    ).tag(config=True)
    timeout = Float(
        None, allow_none=True, help="Deadline of an interactive login in seconds (None: the flow's own)."
    ).tag(config=True)
    open_browser = Bool(
        True,
        help="PKCE: also open the sign-in page with the kernel machine's browser (PKCE is only chosen "
        "automatically when that browser is the user's). The device flow never does.",
    ).tag(config=True)
    client_id = Unicode(None, allow_none=True, help="Client id overriding the server's configuration.").tag(
        config=True
    )
    scopes = List(Unicode(), help="Scopes overriding the server's configuration.").tag(config=True)
    audience = Unicode(None, allow_none=True, help="Audience to request (every flow and its refresh).").tag(
        config=True
    )
    redirect_uri = Unicode(None, allow_none=True, help="PKCE redirect URI overriding the server's.").tag(
        config=True
    )
    prompt = Unicode(
        None,
        allow_none=True,
        help="The browser sign-in's OpenID Connect prompt. None: 'consent' when offline_access is asked for (so "
        "a refresh token comes back), else none; a value such as 'login' or 'select_account' is sent as given; "
        "'' never sends one (Entra ID, Keycloak: no consent screen at every sign-in).",
    ).tag(config=True)
    token_cache = CaselessStrEnum(
        ["keyring", "file", "memory"],
        default_value=None,
        allow_none=True,
        help="Where tokens are kept: the system keyring, a private file under ~/.cache/flyteauth_jupyter/tokens, "
        "or memory only. None: $FLYTEAUTH_TOKEN_CACHE, else the keyring where a usable one exists, else the file.",
    ).tag(config=True)
    use_flytekit_config = Bool(
        True, help="Read flytekit's configuration (environment and config file) for missing settings."
    ).tag(config=True)

    interactive_refresh = Bool(
        False,
        help="Let an SDK call whose token was rejected (flytekit's UNAUTHENTICATED retry) start a new interactive "
        "sign-in in the cell that made it; False: it renews silently or raises, saying to run %flyte_login.",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        #: name -> the session bound to it
        self.sessions: dict[str, LoginSession] = {}
        #: name -> the last sign-in that failed or was cancelled and gave the name back to an earlier one
        #: (shown by %flyte_status until another sign-in takes the name)
        self.gave_back: dict[str, LoginSession] = {}
        self._naming = threading.RLock()  # the two tables above, the namespace and the registry change together
        self._closed = False
        self._settings_problem: str | None = None

    @observe("interactive_refresh")
    def _interactive_refresh_changed(self, change: Any) -> None:
        for session in self.sessions.values():
            session.interactive_refresh = bool(change["new"])

    # ------------------------------------------------------------------------------------------
    # %flyte_login
    # ------------------------------------------------------------------------------------------
    @line_magic
    @magic_arguments()
    @argument("--endpoint", metavar="URL", help="Flyte endpoint: https://host[:port] or host:port (default: flytekit's config); "
                                                "with --issuer, the API the token is for (optional).")
    @argument("--flow", metavar=FLOW_METAVAR, choices=FLOWS, default=None,
              help="Sign-in flow; auto picks your JupyterHub login when the Hub shares it (hub), else PKCE when your "
                   "browser runs on the kernel's machine or the redirect comes back through the relay, device code otherwise.")
    @argument("--client-id", metavar="ID", help="OAuth client id (default: the server's).")
    @argument("--client-secret-env", metavar="VAR",
              help="Environment variable holding the client secret of a confidential client, sent with every flow "
                   "(never shown).")
    @argument("--scopes", metavar="S", nargs="+", help="Scopes to request (default: the server's).")
    @argument("--audience", metavar="A", help="Audience to request.")
    @argument("--command", nargs=argparse.REMAINDER,
              help="External command printing a token (argv, no shell); must come last.")
    @argument("--name", metavar="VAR", help="Variable to bind the authenticator to (default: flyte_auth).")
    @argument("--wait", action="store_true", help="Block this cell until the sign-in ends.")
    @argument("--timeout", metavar="SECONDS", type=float, help="Give up the sign-in after this many seconds.")
    @argument("--no-cache", action="store_true", help="Ignore saved tokens and keep the new ones in memory only.")
    @argument("--insecure", action="store_true", help="Plain HTTP to a host:port endpoint (as flytekit's insecure).")
    @argument("--insecure-skip-verify", action="store_true", help="Do not verify TLS certificates.")
    @argument("--ca-cert", metavar="PATH", help="CA bundle to verify TLS certificates with.")
    @argument("--proxy", metavar="URL", help="HTTP(S) proxy for the sign-in requests.")
    @argument("--issuer", metavar="URL",
              help="Sign in at this OpenID Connect issuer, read from its discovery document (no FlyteAdmin needed); "
                   "needs --client-id.")
    @argument("--device-authorization-endpoint", metavar="URL",
              help="With --issuer: the device authorization endpoint, where the issuer's metadata has none.")
    @argument("--proxy-command", metavar="'CMD ARG ...'",
              help="Identity-aware proxy (GCP IAP): a quoted command line whose output goes to the endpoint as "
                   "proxy-authorization, never to the identity provider (run as an argument list, no shell; default: "
                   "flytekit's or the Flyte 2 SDK's proxy command).")
    def flyte_login(self, line: str = "") -> None:
        """Sign in to a Flyte deployment (or, with --issuer, any OpenID Connect API) without blocking the kernel.

        Returns at once with a live login panel; the sign-in runs in the background and the
        authenticator is bound to ``--name`` (default ``flyte_auth``) right away. Code that needs the
        token (``flyte_auth.get_credentials()``, ``flyte_auth.wait()``) waits for the sign-in to end.
        """
        if _asks_for_help(line):
            return _print_usage(type(self).flyte_login)
        args = _unquoted(_parse_args(self.flyte_login, line))
        try:
            session = self.start_login(args)
            if args.wait:
                session.wait(args.timeout if args.timeout is not None else None)
        except FlyteAuthError as exc:
            raise one_line(exc) from None

    def start_login(self, args: argparse.Namespace) -> LoginSession:
        """Resolve ``args`` into a spec, bind and start a session (the magic without its error boundary)."""
        from . import connect
        from .session import LoginSession

        name = args.name or self.default_name
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ConfigurationError(f"--name {name!r} is not a valid Python variable name.")
        self._settings_problem = None
        spec = self.build_spec(args, name=name)
        problem, self._settings_problem = self._settings_problem, None
        count = _cell_number(self.shell)
        cell = f"cell [{count}]" if count else "a later cell"
        session = LoginSession(
            functools.partial(connect.prepare, spec),  # in the background: look up, decide, build
            endpoint=spec.service,
            name=name,
            use_cache=not spec.no_cache,
            timeout=spec.timeout,
            display=None,
            flow_hint="" if spec.flow == "auto" else spec.flow,
        )
        session.started_in = cell
        session.display = make_display(
            self.display_mode(), on_cancel=session.cancel, on_retry=session.retry, on_paste=session.handle_paste
        )
        session.interactive_refresh = self.interactive_refresh
        session.endpoint_url = spec.endpoint_url  # None for an issuer's sign-in without --endpoint
        if problem:  # a configuration file skipped because --endpoint was given: said once, in this panel
            session.note(f"{problem.rstrip('.')}. It was skipped, since --endpoint was given.")
        session.on_start = self._bind  # attempts started later from the panel bind the variable again
        session.on_end = self._settle  # a failed or cancelled attempt gives the name back
        self._bind(session, by=f"the sign-in started in {cell}" + (
            f" (`%flyte_login --name {name}`)" if name != self.default_name else ""))
        session.start(self.shell)
        return session

    def _bind(self, session: LoginSession, by: str | None = None) -> None:
        """Bind ``session`` to its name and register it for flytekit (every login it starts, also the
        panel's Retry / "Sign in again" after %flyte_logout removed the variable).

        The session that had the name: a working one (signed in) lends it and is what the name goes
        back to if this one fails (``session.fallback``); one still signing in is replaced (cancelled),
        and what it would have gone back to is this one's fallback now."""
        by = by or f"the sign-in started again from an earlier panel of `{session.name}`"
        with self._naming:
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
            self._register(session)

    def _settle(self, session: LoginSession, error: BaseException | None) -> str | None:
        """An attempt of ``session`` ended (in its thread, before a waiting cell wakes). Signed in: the
        name stays, and the sign-in it was lent by says so. Failed or cancelled: the name goes back to
        the earlier working sign-in, if any; returns the clause saying so, for the panel and the error."""
        with self._naming:
            fallback, session.fallback = session.fallback, None
            if fallback is None:
                return None
            if error is None:
                fallback.give_up_name()
                return None
            name = session.name
            if self._closed or self.sessions.get(name) is not session or not fallback.working:
                return None
            self.sessions[name] = fallback
            if self.shell.user_ns.get(name) is session:  # unless the user bound the name to something else
                self.shell.user_ns[name] = fallback
            self._forget(session)
            self._register(fallback)
            self.gave_back[name] = session
            fallback.take_name_back()
        view = fallback.view
        who = f" (as {view.subject})" if view.subject else ""
        return f"`{name}` still refers to your earlier sign-in to {fallback.endpoint}{who}"

    @staticmethod
    def _register(session: LoginSession) -> None:
        try:
            _sessions_registry().register_session(session.endpoint, session)
        except Exception:  # noqa: BLE001 - flytekit reuse is a bonus, never a reason to fail
            pass

    @staticmethod
    def _forget(session: LoginSession) -> None:
        try:
            _sessions_registry().forget_session(session.endpoint, session)
        except Exception:  # noqa: BLE001
            pass

    def display_mode(self) -> str:
        if self.display != "auto":
            return self.display
        if getattr(self.shell, "kernel", None) is not None:
            try:
                import ipywidgets  # noqa: F401
            except ImportError:
                return "html"
            return "widget"
        return "text"

    def flytekit_settings(self, *, strict: bool = True) -> FlytekitSettings:
        from ..sdk_config import FlytekitSettings, read_sdk_settings

        # strict=False: the endpoint is given, so a broken config file is skipped, not fatal (issue 16);
        # start_login shows the skipped file's sentence in the panel (issue 17)
        settings = read_sdk_settings(strict=strict) if self.use_flytekit_config else FlytekitSettings()
        self._settings_problem = settings.problem
        return settings

    def build_spec(self, args: argparse.Namespace, *, name: str) -> LoginSpec:
        from ..endpoint import parse_endpoint
        from .connect import LoginSpec
        from ..sdk_config import FlytekitSettings

        issuer = getattr(args, "issuer", None) or None
        if issuer:
            # any OIDC API: the SDKs' settings and default_endpoint describe a Flyte deployment, so they
            # apply only to an --endpoint they name; without one there is no API endpoint at all
            from_settings = False
            settings = self.flytekit_settings(strict=False) if args.endpoint else FlytekitSettings()
            raw_endpoint = args.endpoint or None
        else:
            from_settings = not args.endpoint and not self.default_endpoint
            settings = self.flytekit_settings(strict=from_settings)  # an explicit endpoint never needs a config file
            raw_endpoint = args.endpoint or self.default_endpoint or settings.endpoint
            if not raw_endpoint:
                raise ConfigurationError(
                    "No Flyte endpoint: pass --endpoint URL, or set FLYTE_PLATFORM_URL or admin.endpoint in "
                    "~/.flyte/config.yaml (or sign in at an identity provider with --issuer URL --client-id ID)."
                )
        insecure = bool(args.insecure) or (from_settings and settings.insecure)
        # the one parse: the spec carries it on
        endpoint = parse_endpoint(raw_endpoint, insecure=insecure) if raw_endpoint else None
        # flytekit's other settings apply when they describe this endpoint
        same = from_settings or (
            endpoint is not None and bool(settings.endpoint) and _names(settings.endpoint, endpoint.service)
        )
        cfg = settings if same else FlytekitSettings()

        if args.insecure_skip_verify or cfg.insecure_skip_verify:
            verify: bool | str | None = False
        else:
            verify = args.ca_cert or cfg.ca_cert_file_path or None
            if verify and not Path(str(verify)).expanduser().exists():
                raise ConfigurationError(f"The CA bundle {verify} does not exist; pass --ca-cert with a readable file.")
            if verify:
                verify = str(Path(str(verify)).expanduser())

        secret_env = args.client_secret_env or None
        if secret_env and not os.environ.get(secret_env):
            raise ConfigurationError(f"The environment variable {secret_env} that should hold the client secret is empty or unset.")
        # a secret given here is a confidential client's, for every flow; one from the SDKs' settings
        # is for client credentials only (as flytekit uses it)
        confidential = bool(secret_env)
        secret_location = None
        if not secret_env:
            secret_env = cfg.client_secret_env
            secret_location = cfg.client_secret_location

        command = cfg.command
        if args.command:
            command = _command_line(args.command)
        if args.command is not None and not command:
            raise ConfigurationError("--command needs the program to run and its arguments.")

        proxy_command = cfg.proxy_command
        if args.proxy_command is not None:
            proxy_command = _command_line([args.proxy_command])
            if not proxy_command:
                raise ConfigurationError("--proxy-command needs the program to run, e.g. --proxy-command 'my-iap-helper --audience X'.")
        if proxy_command and endpoint is None:
            raise ConfigurationError("A proxy command guards a deployment; pass --endpoint URL for the API behind the proxy.")

        client_id = args.client_id or self.client_id or cfg.client_id
        device_endpoint = getattr(args, "device_authorization_endpoint", None) or None
        if issuer and not client_id:
            raise ConfigurationError("--issuer needs --client-id ID: the client registered with the provider for this notebook.")
        if device_endpoint and not issuer:
            raise ConfigurationError(
                "--device-authorization-endpoint goes with --issuer; a Flyte deployment's configuration names its own."
            )
        for option, url in (("--issuer", issuer), ("--device-authorization-endpoint", device_endpoint)):
            if url:
                _user_url(option, url, insecure=insecure)
        prompt = self.prompt
        if prompt is not None:
            from ..flows.authcode import prompt_value

            prompt_value(prompt, ())  # a bad value is one sentence here, not in the background

        flow = args.flow or self.default_flow
        timeout = user_seconds(args.timeout if args.timeout is not None else self.timeout)  # inf, nan, <= 0: one sentence
        scopes = scope_list(args.scopes) or scope_list(self.scopes) or scope_list(cfg.scopes)
        return LoginSpec(
            endpoint=endpoint,
            flow=flow,
            client_id=client_id,
            client_secret_env=secret_env,
            client_secret_location=secret_location,
            confidential=confidential,
            scopes=scopes,
            audience=args.audience or self.audience or cfg.audience,
            command=command,
            timeout=timeout,
            no_cache=bool(args.no_cache),
            token_cache=self.token_cache,
            insecure=insecure,
            verify=verify,
            http_proxy_url=args.proxy or cfg.http_proxy_url,
            open_browser=self.open_browser,
            redirect_uri=self.redirect_uri,
            configured_auth_type=cfg.auth_type,
            name=name,
            issuer=issuer,
            device_authorization_endpoint=device_endpoint,
            prompt=prompt,
            proxy_command=proxy_command,
        )

    # ------------------------------------------------------------------------------------------
    # %flyte_logout
    # ------------------------------------------------------------------------------------------
    @line_magic
    @magic_arguments()
    @argument("--endpoint", metavar="URL", help="Sign out of this endpoint (default: the session bound to --name).")
    @argument("--name", metavar="VAR", help="The variable of the session to sign out (default: flyte_auth).")
    def flyte_logout(self, line: str = "") -> None:
        """Sign out: revoke the refresh token (when the server can), clear the saved tokens for the
        endpoint (both SDK layouts) and remove the variable."""
        if _asks_for_help(line):
            return _print_usage(type(self).flyte_logout)
        args = _unquoted(_parse_args(self.flyte_logout, line))
        try:
            message = self.logout(args)
        except FlyteAuthError as exc:
            raise one_line(exc) from None
        print(message)

    def logout(self, args: argparse.Namespace) -> str:
        from .session import LoginSession

        session = self._find_session(args)
        if session is None:
            if not args.endpoint:
                name = args.name or self.default_name
                raise ConfigurationError(
                    f"There is no sign-in bound to `{name}`; pass --endpoint URL to clear that endpoint's saved tokens."
                )
            # no session in this kernel: clear the endpoint's cache all the same
            ns = argparse.Namespace(**{**vars(_default_login_args()), "endpoint": args.endpoint, "flow": "device"})
            spec = self.build_spec(ns, name=args.name or self.default_name)
            from . import connect

            session = LoginSession(functools.partial(connect.prepare, spec), endpoint=spec.service,
                                   name=spec.name)
        with self._naming:  # nothing is given back to an earlier sign-in: it is signed out too
            earlier, session.fallback = session.fallback, None
        signed_out = [session] + ([earlier] if earlier is not None and earlier is not session else [])
        for each in signed_out:
            each.logout()
        removed = []
        with self._naming:
            for var, value in list(self.shell.user_ns.items()):
                if any(value is each for each in signed_out):
                    del self.shell.user_ns[var]
                    removed.append(var)
            for table in (self.sessions, self.gave_back):
                for key, value in list(table.items()):
                    if any(value is each for each in signed_out):
                        del table[key]
            for each in signed_out:
                self._forget(each)
        gone = f"; removed {', '.join(f'`{v}`' for v in removed)}" if removed else ""
        endpoints = " and ".join(dict.fromkeys(each.endpoint for each in signed_out))
        return f"Signed out of {endpoints}{gone}."

    def _find_session(self, args: argparse.Namespace) -> LoginSession | None:
        from ..endpoint import parse_endpoint
        from .session import LoginSession

        if args.name:
            value = self.shell.user_ns.get(args.name)
            if isinstance(value, LoginSession):
                return value
            return self.sessions.get(args.name)
        if args.endpoint:
            service = parse_endpoint(args.endpoint, insecure=True).service
            for session in self.sessions.values():
                if _same_endpoint(session.endpoint, service, True):
                    return session
            return None
        value = self.shell.user_ns.get(self.default_name)
        return value if isinstance(value, LoginSession) else self.sessions.get(self.default_name)

    # ------------------------------------------------------------------------------------------
    # %flyte_status
    # ------------------------------------------------------------------------------------------
    @line_magic
    def flyte_status(self, line: str = "") -> None:
        """Every sign-in this kernel holds and which name points to it: endpoint, subject, flow, status,
        scopes, token expiry and where the tokens are kept (never a token)."""
        if _asks_for_help(line):
            return _print_usage(type(self).flyte_status)
        if line.strip():
            raise UsageError("%flyte_status takes no arguments.")
        print(self.status_text())

    def status_text(self) -> str:
        """One line per session: the bound ones (with every variable naming them), the earlier sign-in
        a running one would give its name back to, and the failed ones that gave it back."""
        with self._naming:
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
        return "\n".join(_status_line(label, session.view) for label, session in held)

    # ------------------------------------------------------------------------------------------
    def observer_for_plugin(self, service: str) -> Any:
        """An observer that shows a login the flytekit plug-in started (no ``%flyte_login`` session for
        ``service``): the panel appears in the cell that triggered it, on the flow's first event."""
        from .state import LoginView

        display = make_display(self.display_mode(), on_cancel=lambda: None, on_retry=lambda: None)
        state: dict[str, Any] = {"view": LoginView(endpoint=service, name="(flytekit)"), "shown": False}
        lock = threading.Lock()

        def observe(event: Any) -> None:
            with lock:
                state["view"] = state["view"].apply(event)
                if not state["shown"]:
                    state["shown"] = True
                    display.show(state["view"])
                else:
                    display.update(state["view"])

        return observe

    def close(self) -> None:
        """Cancel logins in progress (on unload); the names stay where they are."""
        self._closed = True
        for session in list(self.sessions.values()):
            session.cancel()


def make_display(
    mode: str,
    *,
    on_cancel: Any,
    on_retry: Any,
    on_paste: Any = None,
) -> LoginDisplay:
    """The display for ``mode`` (widget, html, text); ``on_paste`` enables the widget's paste-back row.
    (ipywidgets is imported only for the widget display.)"""
    if mode == "widget":
        from .widget import WidgetDisplay

        return WidgetDisplay(on_cancel=on_cancel, on_retry=on_retry, on_paste=on_paste)
    from .render import HTMLDisplay, TextDisplay

    if mode == "html":
        return HTMLDisplay()
    return TextDisplay()


def _status_line(label: str, view: Any) -> str:
    """One line of %flyte_status (and a second one for a notice)."""
    from .state import clock_time, flow_title

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


def _asks_for_help(line: str) -> bool:
    """``-h`` or ``--help`` among the magic's own words (not among --command's, which are the program's)."""
    words = line.split()
    if "--command" in words:
        words = words[: words.index("--command")]
    return "-h" in words or "--help" in words


def _print_usage(magic: Any) -> None:
    """What ``%magic?`` shows: the usage line, the description and the options (as the reference page
    renders them, docs/_tools/checks.py)."""
    import inspect

    doc = inspect.cleandoc(magic.__doc__ or "")
    if doc.startswith("::"):  # magic_arguments' usage text (a reST literal block)
        print(doc[2:].strip())
    else:  # a magic without arguments: its usage line, then its docstring
        print(f"%{magic.__name__}\n\n{doc}")


def _cell_number(shell: Any) -> int | None:
    """The running cell's number (its ``In [n]``), when the shell numbers cells."""
    result = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    number = getattr(result, "execution_count", None)
    return number if isinstance(number, int) and number > 0 else None


def _parse_args(magic: Any, line: str) -> argparse.Namespace:
    """parse_argstring, with its errors as one UsageError that quotes nothing shaped like a secret
    (argparse repeats unrecognised words, which may be a pasted URL with a password in it) and an
    unclosed quote as a sentence instead of shlex's ValueError."""
    try:
        return parse_argstring(magic, line)
    except UsageError as exc:
        raise UsageError(scrub(str(exc), limit=300)) from None
    except ValueError as exc:
        raise UsageError(f"Could not read the arguments ({scrub(str(exc), limit=80)}); check the quotes.") from None


def _user_url(option: str, url: str, *, insecure: bool) -> None:
    """A URL option checked in the cell (the endpoint's rule: https unless loopback or --insecure, no
    user:password@, and for an issuer no query or fragment, RFC 8414 section 2): one sentence."""
    from urllib.parse import urlsplit

    from ..endpoint import check_server_url, shown
    from ..errors import ProtocolError

    try:
        check_server_url(url, what=option, where=option, insecure=insecure)
        parts = urlsplit(url)
    except (ProtocolError, ValueError):
        parts = None
    if parts is None or (option == "--issuer" and (parts.query or parts.fragment)):
        raise ConfigurationError(
            f"{option} {shown(url)} is not a usable https URL (plain http only for loopback or with --insecure; "
            "an issuer has no query or fragment)."
        )


def _command_line(words: list[str]) -> tuple[str, ...]:
    """An argv from the words IPython's magic argument splitting left (it keeps quotes): re-split as a
    shell would (never run by one); one quoted word holding the whole command line is split too."""
    command = tuple(shlex.split(" ".join(words)))
    if len(command) == 1 and " " in command[0].strip():
        command = tuple(shlex.split(command[0]))
    return command if command and command[0].strip() else ()  # '' names no program


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _unquoted(args: argparse.Namespace) -> argparse.Namespace:
    """Strip the quotes IPython's argument splitting leaves around values (``--endpoint 'h:1'``)."""
    for key, value in vars(args).items():
        if key in ("command", "proxy_command"):
            continue
        if isinstance(value, str):
            setattr(args, key, _unquote(value))
        elif isinstance(value, list):
            setattr(args, key, [_unquote(v) if isinstance(v, str) else v for v in value])
    return args


def _default_login_args() -> argparse.Namespace:
    return parse_argstring(FlyteAuthMagics.flyte_login, "")


def _names(raw: str | None, service: str) -> bool:
    """Whether the endpoint ``raw`` (flytekit's setting, not yet parsed) is the one of ``service``."""
    from ..endpoint import parse_endpoint

    try:
        return parse_endpoint(raw or "", insecure=True).service.lower() == service.lower()
    except FlyteAuthError:
        return False


def _same_endpoint(a: str, b: str, insecure: bool) -> bool:
    from ..endpoint import parse_endpoint

    try:
        return parse_endpoint(a, insecure=True).service.lower() == parse_endpoint(b, insecure=True).service.lower()
    except FlyteAuthError:
        return False


# ------------------------------------------------------------------------------------------------
# load / unload
# ------------------------------------------------------------------------------------------------
MAGIC_NAMES = ("flyte_login", "flyte_logout", "flyte_status")


def load_ipython_extension(ip: Any) -> FlyteAuthMagics:
    """Register the magics (idempotent: a second load returns the registered instance)."""
    existing = ip.magics_manager.registry.get(FlyteAuthMagics.__name__)
    if isinstance(existing, FlyteAuthMagics):
        return existing
    magics = FlyteAuthMagics(shell=ip)
    ip.register_magics(magics)
    try:
        _sessions_registry().set_observer_factory(magics.observer_for_plugin)
    except Exception:  # noqa: BLE001 - flytekit integration is optional
        pass
    return magics


def unload_ipython_extension(ip: Any) -> None:
    """Remove the magics and cancel logins in progress; bound variables stay usable."""
    magics = ip.magics_manager.registry.pop(FlyteAuthMagics.__name__, None)
    table = ip.magics_manager.magics
    for name in MAGIC_NAMES:
        bound = table["line"].get(name)
        if bound is not None and getattr(bound, "__self__", None) is magics:
            del table["line"][name]
    if magics is not None:
        magics.close()
        try:
            _sessions_registry().set_observer_factory(None)
        except Exception:  # noqa: BLE001
            pass
        try:
            ip.configurables.remove(magics)
        except ValueError:
            pass
