"""IPython connectivity: ``%flyte_login``, ``%flyte_logout``, ``%flyte_status`` (syntax pinned in DESIGN.md).

This module owns the magics class (:class:`FlyteAuthMagics`): its ``%config`` traits, the three
magics and their argument declarations (the reference page's usage and traits are generated from
them), the choice of display, and load / unload. The rest of what a magic does has a room of its own:

* :mod:`.options`: the line read (quotes, ``-h`` / ``--help``, parse errors) and ``%flyte_login``'s
  options, the traits and the SDKs' settings turned into a :class:`~.connect.LoginSpec`;
* :mod:`.names`: which session a name points to (the rule that gives a name back to the earlier
  sign-in when a new one fails), sign-out and ``%flyte_status``'s list;
* :mod:`.connect` and :mod:`.session`: the sign-in itself, in the background.

``%flyte_login`` decides everything that needs no network in the cell (endpoint, options, the
display), binds a :class:`~.session.LoginSession` to ``--name`` in the user namespace, shows the
login and returns at once; the flow runs in the background (``--wait`` blocks the cell instead).
Defaults come from ``%config FlyteAuthMagics.<trait>`` and, without ``--endpoint``, from flytekit's
own configuration (``FLYTE_PLATFORM_URL``, ``~/.flyte/config.yaml``, ...).

``--issuer URL`` signs in at any OpenID Connect provider from its own discovery document, with no
FlyteAdmin: then ``--endpoint`` (optional) is the API the token is for, and the SDKs' settings and
``default_endpoint`` (which describe a Flyte deployment) apply only to an ``--endpoint`` they name.

Errors: a :class:`~flyteauth_jupyter.errors.FlyteAuthError` is raised as itself, typed
(``LoginCancelledError``, ``ConfigurationError``, ...), and shown as its one line without a traceback
(``errors.one_line``: IPython draws an exception's ``_render_traceback_``); only what IPython's argument
parser refuses stays its ``UsageError``. ``-h`` / ``--help`` print the usage, as ``%flyte_login?``.
"""

from __future__ import annotations

import argparse
import functools
import keyword
import threading
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, CaselessStrEnum, Float, List, Unicode, observe

from ..environment import FLOWS
from ..errors import ConfigurationError, FlyteAuthError, one_line
from . import options
from .names import SessionNames, registry

if TYPE_CHECKING:  # imported where used: loading the extension only registers the magics
    from ..sdk_config import FlytekitSettings
    from .connect import LoginSpec
    from .render import LoginDisplay
    from .session import LoginSession

FLOW_METAVAR = "|".join(FLOWS)


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
        #: which session each name points to
        self.names = SessionNames(shell)
        self._settings_problem: str | None = None

    @observe("interactive_refresh")
    def _interactive_refresh_changed(self, change: Any) -> None:
        for session in self.names.sessions.values():
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
        if options.asks_for_help(line):
            return options.print_usage(type(self).flyte_login)
        args = options.read_line(self.flyte_login, line)
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
        session.on_start = self.names.bind  # attempts started later from the panel bind the variable again
        session.on_end = self.names.settle  # a failed or cancelled attempt gives the name back
        self.names.bind(session, by=f"the sign-in started in {cell}" + (
            f" (`%flyte_login --name {name}`)" if name != self.default_name else ""))
        session.start(self.shell)
        return session

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
        """``%flyte_login``'s parsed ``args`` as the spec of a sign-in bound to ``name``
        (:func:`.options.build_spec`: these traits and the SDKs' settings fill what the line leaves out)."""
        return options.build_spec(self, args, name=name)

    # ------------------------------------------------------------------------------------------
    # %flyte_logout
    # ------------------------------------------------------------------------------------------
    @line_magic
    @magic_arguments()
    @argument("--endpoint", metavar="URL", help="Sign out of this endpoint, or of the identity provider an --issuer "
                                                "sign-in used (default: the session bound to --name).")
    @argument("--name", metavar="VAR", help="The variable of the session to sign out (default: flyte_auth).")
    def flyte_logout(self, line: str = "") -> None:
        """Sign out: revoke the refresh token (when the server can), clear the saved tokens for the
        endpoint (both SDK layouts) and remove the variable."""
        if options.asks_for_help(line):
            return options.print_usage(type(self).flyte_logout)
        args = options.read_line(self.flyte_logout, line)
        try:
            message = self.logout(args)
        except FlyteAuthError as exc:
            raise one_line(exc) from None
        print(message)

    def logout(self, args: argparse.Namespace) -> str:
        """Sign out of the session ``args`` name (or, with none in this kernel, clear ``--endpoint``'s
        saved tokens); the sentence ``%flyte_logout`` prints."""
        from .session import LoginSession

        session = self.names.find(name=args.name, endpoint=args.endpoint, default_name=self.default_name)
        if session is None:
            if not args.endpoint:
                name = args.name or self.default_name
                raise ConfigurationError(
                    f"There is no sign-in bound to `{name}`; pass --endpoint URL to clear that endpoint's saved tokens."
                )
            # no session in this kernel: clear the endpoint's cache all the same
            defaults = options.default_args(self.flyte_login, endpoint=args.endpoint, flow="device")
            spec = self.build_spec(defaults, name=args.name or self.default_name)
            from . import connect

            session = LoginSession(functools.partial(connect.prepare, spec), endpoint=spec.service,
                                   name=spec.name)
        return self.names.sign_out(session)

    # ------------------------------------------------------------------------------------------
    # %flyte_status
    # ------------------------------------------------------------------------------------------
    @line_magic
    def flyte_status(self, line: str = "") -> None:
        """Every sign-in this kernel holds and which name points to it: endpoint, subject, flow, status,
        scopes, token expiry and where the tokens are kept (never a token)."""
        if options.asks_for_help(line):
            return options.print_usage(type(self).flyte_status)
        if line.strip():
            raise UsageError("%flyte_status takes no arguments.")
        print(self.status_text())

    def status_text(self) -> str:
        """What ``%flyte_status`` prints (:meth:`.names.SessionNames.status_text`)."""
        return self.names.status_text()

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
        self.names.close()


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


def _cell_number(shell: Any) -> int | None:
    """The running cell's number (its ``In [n]``), when the shell numbers cells."""
    result = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    number = getattr(result, "execution_count", None)
    return number if isinstance(number, int) and number > 0 else None


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
        registry().set_observer_factory(magics.observer_for_plugin)
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
            registry().set_observer_factory(None)
        except Exception:  # noqa: BLE001
            pass
        try:
            ip.configurables.remove(magics)
        except ValueError:
            pass
