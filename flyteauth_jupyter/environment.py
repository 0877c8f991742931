"""Where does the user's browser run, and which flow does ``--flow`` pick? The rules, without I/O.

PKCE needs the browser and the kernel on one machine: the identity provider redirects the browser to
``http://127.0.0.1:<port>/callback`` and only the kernel's machine answers there. Device code works
from anywhere. :func:`browser_location` looks at the kernel's environment (pure: it is handed the
environment mapping, the platform and the loaded module names).

:func:`decide_flow` is the one place where the flow is decided (issue 19.5): from the request (what
the user and flytekit's configuration asked for, and where the browser runs) and from facts it
asks for only when a rule needs them (the server's client configuration, the Hub's answer; the
caller looks them up, so the rules stay testable without I/O). Every decision comes with one
sentence the widget shows ("device code: JupyterHub detected, the browser is not on the kernel's
machine"); :func:`choose_flow` is the part that needs no Hub.

On JupyterHub, ``auto`` first tries the Hub's own sign-in (``hub``, no click) when the Hub shares
the user's tokens; :func:`hub_fallback_reason` words the line when it cannot. A redirect URI that
ends in the relay route (``/flyteauth/callback``) means the browser sign-in works from anywhere,
wherever that URI comes from (``redirect_uri`` trait or FlyteAdmin's client config).
:func:`device_grant_refused` tells when the identity provider refuses the device grant for the
client, so ``auto`` falls back to the browser sign-in.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from .errors import ConfigurationError

FLOWS = ("auto", "device", "pkce", "client-credentials", "command", "hub")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
RELAY_REASON = "the sign-in redirect comes back through this Jupyter server's relay"


@dataclass(frozen=True)
class BrowserLocation:
    local: bool
    reason: str


def browser_location(
    env: Mapping[str, str] | None = None,
    *,
    platform: str | None = None,
    modules: Iterable[str] | None = None,
    dockerenv: bool | None = None,
) -> BrowserLocation:
    """Guess whether the user's browser runs on the kernel's machine."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    modules = set(sys.modules if modules is None else modules)
    if dockerenv is None:
        dockerenv = os.path.exists("/.dockerenv")

    if "google.colab" in modules or "COLAB_RELEASE_TAG" in env or "COLAB_GPU" in env:
        return BrowserLocation(False, "Google Colab detected; the kernel runs in Google's cloud")
    if "KAGGLE_KERNEL_RUN_TYPE" in env or "KAGGLE_URL_BASE" in env:
        return BrowserLocation(False, "Kaggle detected; the kernel runs in Kaggle's cloud")
    if any(key in env for key in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_USER")):
        return BrowserLocation(False, "JupyterHub detected; the kernel is not on your machine")
    if "BINDER_SERVICE_HOST" in env or "BINDER_LAUNCH_HOST" in env:
        return BrowserLocation(False, "Binder detected; the kernel is not on your machine")
    if env.get("CODESPACES", "").lower() == "true":
        return BrowserLocation(False, "GitHub Codespaces detected; the kernel is not on your machine")
    if any(key in env for key in ("REMOTE_CONTAINERS", "VSCODE_REMOTE_CONTAINERS_SESSION", "VSCODE_AGENT_FOLDER")):
        return BrowserLocation(False, "VS Code remote detected; the kernel is not on your machine")
    if any(key in env for key in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")):
        return BrowserLocation(False, "the kernel runs over SSH; your browser is on another machine")
    if dockerenv or "KUBERNETES_SERVICE_HOST" in env:
        return BrowserLocation(False, "the kernel runs in a container; its loopback is not your browser's")
    if platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return BrowserLocation(False, "the kernel's machine has no display")
    return BrowserLocation(True, "the browser runs on the kernel's machine (local Jupyter)")


@dataclass(frozen=True)
class FlowChoice:
    flow: str
    reason: str


#: flytekit ``admin.authType`` values (case-insensitive) and our plug-in names -> our flow names
AUTH_TYPES = {
    "standard": "pkce",
    "pkce": "pkce",
    "basic": "client-credentials",
    "client_credentials": "client-credentials",
    "clientsecret": "client-credentials",
    "external_process": "command",
    "externalcommand": "command",
    "deviceflow": "device",
    "notebook": "auto",
    "notebook_device": "device",
    "notebook_pkce": "pkce",
}


def flow_from_auth_type(auth_type: str | None) -> str | None:
    if not auth_type:
        return None
    return AUTH_TYPES.get(auth_type.strip().lower())


def configured_choice(auth_type: str | None) -> FlowChoice | None:
    """The flow flytekit's ``authType`` setting decides, or None when it leaves the choice to us.

    flytekit's default (``standard``/``Pkce``) is a default, not a choice: it cannot work when the
    browser is on another machine, so ``auto`` still looks at the environment then."""
    flow = flow_from_auth_type(auth_type)
    if flow in ("device", "client-credentials", "command") or (
        flow == "pkce" and (auth_type or "").strip().lower() == "notebook_pkce"
    ):
        return FlowChoice(flow, f"flytekit config authType {auth_type}")
    return None


def choose_flow(
    requested: str,
    *,
    location: BrowserLocation,
    authorization_endpoint: str | None = None,
    device_endpoint: str | None = None,
    has_client_secret: bool = False,
    has_command: bool = False,
    configured_auth_type: str | None = None,
    endpoint: str = "",
    relay_redirect: bool = False,
) -> FlowChoice:
    """Apply the ``--flow`` rules. ``requested`` is the user's choice (``auto`` lets us pick).

    ``relay_redirect``: the redirect URI (from any source) goes through the Jupyter relay.
    ``has_client_secret``: a client secret is at hand; ``auto`` picks client credentials with it only
    when the server offers no user sign-in (see :func:`decide_flow`)."""
    if requested not in FLOWS:
        raise ConfigurationError(f"Unknown flow {requested!r}; use one of {', '.join(FLOWS)}.")
    if requested != "auto":
        return FlowChoice(requested, "chosen with --flow")
    if has_command:
        return FlowChoice("command", "a token command was given")
    configured = configured_choice(configured_auth_type)
    if configured is not None:
        return configured
    if authorization_endpoint and relay_redirect:
        return FlowChoice("pkce", RELAY_REASON)
    if authorization_endpoint and location.local:
        return FlowChoice("pkce", location.reason)
    if device_endpoint:
        if location.local:
            return FlowChoice("device", "the server advertises no authorization endpoint")
        return FlowChoice("device", location.reason)
    if authorization_endpoint:
        return FlowChoice(
            "pkce", f"{location.reason}, but the server offers no device flow; the sign-in page must reach this machine"
        )
    where = f" at {endpoint}" if endpoint else ""
    if has_client_secret:
        return FlowChoice(
            "client-credentials", f"the server{where} offers no user sign-in, and a client secret was given"
        )
    raise ConfigurationError(
        f"The server{where} advertises neither an authorization endpoint nor a device endpoint; "
        "pass --flow client-credentials or --flow command."
    )


def device_grant_refused(error: str | None, description: str | None) -> bool:
    """True when an OAuth error answer means the client may not use the device grant
    (``unauthorized_client``, or ``invalid_request`` naming the grant, as node-oidc-provider says)."""
    if error == "unauthorized_client":
        return True
    text = (description or "").lower()
    return error == "invalid_request" and (DEVICE_GRANT in text or "device_code" in text or "device code" in text)


def device_fallback_reason(where: str) -> str:
    return f"{where} does not allow device code for this client, so the browser sign-in is used"


def hub_fallback_reason(why: str, choice: FlowChoice) -> str:
    """One line: the Hub's sign-in was not usable (``why``), and what ``auto`` does instead."""
    why = why.strip().rstrip(".")
    return f"the JupyterHub sign-in is not usable ({why[:300]}); {choice.reason}"


# ------------------------------------------------------------------------------------------------
# the decision
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlowRequest:
    """What was asked: ``--flow``, what decides it without the server, and where the browser runs.

    ``on_hub``: the kernel runs under a Hub it could ask (its environment says so)."""

    flow: str
    location: BrowserLocation
    has_command: bool = False
    has_client_secret: bool = False
    configured_auth_type: str | None = None
    on_hub: bool = False
    endpoint: str = ""


@dataclass(frozen=True)
class ServerFacts:
    """What the rules read from the server's client configuration. ``relay_redirect``: the redirect
    URI in force (the ``redirect_uri`` trait, else the server's) goes through the Jupyter relay."""

    authorization_endpoint: str | None = None
    device_endpoint: str | None = None
    relay_redirect: bool = False


class Facts(Protocol):
    """What :func:`decide_flow` may ask for; each is looked up when asked, at most once."""

    def server(self) -> ServerFacts:
        """The server's client configuration (a request)."""

    def hub(self) -> tuple[bool, str]:
        """``(usable, why)``: can the Hub's own sign-in serve this endpoint (a read of the Hub's API)?"""


def wants_hub(request: FlowRequest) -> bool:
    """``--flow hub``, or ``auto`` on JupyterHub with nothing that decides otherwise."""
    if request.flow == "hub":
        return True
    return (request.flow == "auto" and request.on_hub and not request.has_command and not request.has_client_secret
            and configured_choice(request.configured_auth_type) is None)


def decide_flow(request: FlowRequest, facts: Facts) -> FlowChoice:
    """The flow for ``request`` and the sentence that says why: the Hub's sign-in when it is wanted and
    usable, else :func:`choose_flow` (with the server's configuration when ``auto`` needs it).

    The rules of ``--flow auto``, in order: a token command picks ``command``; flytekit's ``authType``
    decides when it names a flow (``ClientSecret`` is client credentials); on JupyterHub, the Hub's own
    sign-in when it is usable (not with a command or a client secret); then a user's sign-in from what
    the server offers: PKCE where the browser is on the kernel's machine or the redirect comes back
    through the relay, device code otherwise, PKCE when the server has no device endpoint. A client
    secret does not change that: with ``--flow auto``, ``device`` or ``pkce`` it makes the user's
    sign-in a confidential client's (the secret goes with every token request). Client credentials
    are chosen only by ``--flow client-credentials``, by ``authType``, or by ``auto`` with a client
    secret when the server offers no user sign-in at all (neither an authorization nor a device
    endpoint)."""
    if request.flow not in FLOWS:
        raise ConfigurationError(f"Unknown flow {request.flow[:40]!r}; use one of {', '.join(FLOWS)}.")
    if not wants_hub(request):
        return _without_hub(request, facts)
    usable, why = facts.hub()
    if usable:
        return FlowChoice("hub", why)
    fallback = _without_hub(request, facts)
    return FlowChoice(fallback.flow, hub_fallback_reason(why, fallback))


def _without_hub(request: FlowRequest, facts: Facts) -> FlowChoice:
    if request.flow not in ("auto", "hub") or request.has_command:
        return choose_flow(
            request.flow, location=request.location, has_client_secret=request.has_client_secret,
            has_command=request.has_command, configured_auth_type=request.configured_auth_type,
            endpoint=request.endpoint,
        )
    configured = configured_choice(request.configured_auth_type)
    if configured is not None and request.flow == "auto":
        return configured
    server = facts.server()
    return choose_flow(
        "auto", location=request.location, authorization_endpoint=server.authorization_endpoint,
        device_endpoint=server.device_endpoint, has_client_secret=request.has_client_secret,
        configured_auth_type=None if request.flow == "hub" else request.configured_auth_type,
        endpoint=request.endpoint, relay_redirect=server.relay_redirect,
    )

