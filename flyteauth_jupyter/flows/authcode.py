"""The authorization code grant with PKCE for a local browser (RFC 6749 4.1, RFC 7636, RFC 8252).

Each attempt gets a fresh verifier and state and its own loopback receiver, started before the
browser is asked to open the authorization URL (so the redirect cannot arrive before anyone
listens). The URL carries response_type=code, client_id, redirect_uri, scope, state, the S256
challenge, ``prompt`` (see :func:`prompt_value`) and ``audience`` when set. The browser is launched with ``webbrowser.open`` (which honours
``BROWSER``) from a helper thread, so a launcher that blocks cannot stall the flow;
AuthorizationRequested is reported either way, with the URL for the user to open by hand. The code
is exchanged with its ``code_verifier``; the receiver is closed in ``finally``.

Paste-back: while an attempt waits, its receiver sits in the caller's :class:`RedirectInbox`, so
another thread (the notebook panel, ``PKCEAuthenticator.submit_redirect``) can hand it the address the
user's browser ended on when the redirect cannot reach this machine (VS Code remote, SSH, containers).
The receiver checks it; the code is exchanged here, exactly as for a received redirect.
"""

from __future__ import annotations

import logging
import threading
import webbrowser
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..control import Waiter, run_in_background
from ..credentials import Credentials
from ..errors import ConfigurationError, FlyteAuthError
from ..transport.http import Transport, host_port
from ..transport.loopback import AuthorizationResponse, LoopbackReceiver
from ..transport.relay import RelayReceiver, is_relay_uri
from ..validate import scope_list
from .client_auth import prepare
from .events import AuthorizationRequested, Observer, notify
from .pkce import CHALLENGE_METHOD, PKCEPair, check_s256, generate_state, new_pkce
from .tokens import credentials_from_response

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0
BROWSER_GRACE = 1.0  # how long we wait to learn whether the launcher succeeded

BrowserOpener = Callable[[str], bool]


def prompt_value(prompt: str | None, scopes: Iterable[str]) -> str | None:
    """The ``prompt`` to send. None (the default) is OpenID Connect Core section 11's rule: ``consent``
    when ``offline_access`` is asked for (a conforming provider may otherwise ignore it and issue no
    refresh token: node-oidc-provider does), else nothing. A string is sent as given; ``""`` means
    never send one (Entra ID and Keycloak show a consent screen at every sign-in when it is sent)."""
    if prompt is None:
        return "consent" if "offline_access" in scope_list(scopes) else None
    if not isinstance(prompt, str) or not prompt.isprintable() or len(prompt) > 100:
        raise ConfigurationError("prompt must be a short text such as consent, login, select_account or none.")
    return " ".join(prompt.split()) or None


def build_authorization_url(
    authorization_endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Iterable[str] | None,
    state: str,
    code_challenge: str,
    audience: str | None = None,
    extra: Mapping[str, str] | None = None,
    prompt: str | None = None,
) -> str:
    """The authorization request URL (query parameters appended to any the endpoint already has);
    ``prompt`` as :func:`prompt_value` says."""
    scopes = scope_list(scopes)
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
    }
    if scopes:
        params["scope"] = " ".join(scopes)
    params["state"] = state
    params["code_challenge"] = code_challenge
    params["code_challenge_method"] = CHALLENGE_METHOD
    prompt_param = prompt_value(prompt, scopes)
    if prompt_param:
        params["prompt"] = prompt_param
    if audience:
        params["audience"] = audience
    params.update(extra or {})
    parts = urlsplit(authorization_endpoint)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def exchange_code(
    transport: Transport,
    token_endpoint: str,
    *,
    code: str,
    redirect_uri: str,
    client_id: str,
    code_verifier: str,
    endpoint: str,
    scopes: Iterable[str] | None = None,
    auth: Any = None,
    waiter: Waiter | None = None,
) -> Credentials:
    """Exchange the authorization code for tokens (RFC 6749 4.1.3 with the PKCE verifier)."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": code_verifier,
    }
    body, request_auth = prepare(auth, data)
    response = transport.post_form(token_endpoint, body, auth=request_auth).raise_for_error("authorization code exchange")
    kwargs: dict[str, Any] = {"clock": waiter.clock} if waiter is not None else {}
    return credentials_from_response(
        response.data, endpoint=endpoint, where=response.where, requested_scopes=scopes, **kwargs
    )


def open_in_browser(url: str, waiter: Waiter, opener: BrowserOpener | None = None) -> bool:
    """Launch the browser from a helper thread; True when the launcher reported success in time."""
    launch = opener or webbrowser.open
    done = threading.Event()
    future = run_in_background(launch, url, name="flyteauth-browser")
    future.add_done_callback(lambda _f: done.set())
    if not waiter.wait_for(done, BROWSER_GRACE):
        return False
    try:
        return bool(future.result(timeout=0))
    except Exception as exc:  # noqa: BLE001 - a failing launcher means "show the link"
        log.info("could not open a browser (%s); the sign-in link is shown instead", type(exc).__name__)
        return False


class RedirectInbox:
    """The receiver of the sign-in attempt in progress, for a redirect the user pastes (thread-safe).

    The flow attaches the attempt's receiver once it listens and detaches it before closing it;
    :meth:`submit` forwards a pasted address to whichever receiver is attached at that moment.
    """

    def __init__(self, site: str | None = None) -> None:
        self._lock = threading.Lock()
        self._receiver: LoopbackReceiver | RelayReceiver | None = None
        self.site = site

    @property
    def waiting(self) -> bool:
        """True while an attempt's receiver waits for its redirect (a paste is possible)."""
        with self._lock:
            receiver = self._receiver
        return receiver is not None and not receiver.done.is_set()

    def attach(self, receiver: LoopbackReceiver | RelayReceiver) -> None:
        with self._lock:
            self._receiver = receiver

    def detach(self, receiver: LoopbackReceiver | RelayReceiver) -> None:
        with self._lock:
            if self._receiver is receiver:
                self._receiver = None

    def submit(self, url: str) -> None:
        """Hand ``url`` to the waiting receiver; FlyteAuthError when no attempt waits, or the
        receiver's StateMismatchError / ProtocolError for a refused paste (the attempt keeps waiting)."""
        with self._lock:
            receiver = self._receiver
        if receiver is None:
            to = f" to {self.site}" if self.site else ""
            raise FlyteAuthError(
                f"No browser sign-in{to} is waiting for a redirect, so there is nothing to paste the address "
                "into; start the browser (PKCE) login first."
            )
        receiver.submit_redirect(url)

    def __repr__(self) -> str:
        return f"RedirectInbox(waiting={self.waiting})"


def make_receiver(redirect_uri: str, **kwargs: Any) -> LoopbackReceiver | RelayReceiver:
    """The receiver for ``redirect_uri``: a loopback socket, or the Jupyter server's relay.

    A redirect to a loopback host is received on 127.0.0.1 (RFC 8252). A redirect to the Jupyter
    server's ``.../flyteauth/callback`` (JupyterHub, remote kernels) is picked up from the relay.
    """
    if is_relay_uri(redirect_uri):  # also on a local Jupyter (127.0.0.1:8888 is Jupyter's port, not ours)
        return RelayReceiver(redirect_uri, **kwargs)
    return LoopbackReceiver(redirect_uri, **kwargs)


def run_authcode_flow(
    transport: Transport,
    *,
    authorization_endpoint: str,
    token_endpoint: str,
    client_id: str,
    redirect_uri: str,
    waiter: Waiter,
    endpoint: str,
    scopes: Iterable[str] | None = None,
    audience: str | None = None,
    observer: Observer | None = None,
    open_browser: bool | BrowserOpener = True,
    issuer: str | None = None,
    auth: Any = None,
    pkce: PKCEPair | None = None,
    state: str | None = None,
    inbox: RedirectInbox | None = None,
    code_challenge_methods_supported: Iterable[str] | None = None,
    prompt: str | None = None,
) -> Credentials:
    """One browser sign-in attempt: receiver up, URL out, redirect in (or pasted), code exchanged.

    ``inbox`` (optional) holds this attempt's receiver while it waits, so a redirect address the user
    pastes can be handed to it from another thread (:meth:`RedirectInbox.submit`).
    ``code_challenge_methods_supported`` (the server's metadata): refused only when it lists methods
    without S256 (:func:`~flyteauth_jupyter.flows.pkce.check_s256`); absent, PKCE is used anyway.
    """
    check_s256(code_challenge_methods_supported, host_port(authorization_endpoint))
    scopes = scope_list(scopes)
    pkce = pkce or new_pkce()
    state = state or generate_state()
    waiter.check()
    receiver = make_receiver(redirect_uri, state=state, expected_issuer=issuer, site=endpoint)
    try:
        receiver.start()
        if inbox is not None:
            inbox.attach(receiver)
        url = build_authorization_url(
            authorization_endpoint,
            client_id=client_id,
            redirect_uri=receiver.redirect_uri,
            scopes=scopes,
            state=state,
            code_challenge=pkce.challenge,
            audience=audience,
            prompt=prompt,
        )
        opened = False
        if open_browser:
            opener = open_browser if callable(open_browser) else None
            opened = open_in_browser(url, waiter, opener)
        left = waiter.remaining()
        notify(
            observer,
            AuthorizationRequested(
                url=url,
                redirect_uri=receiver.redirect_uri,
                expires_at=waiter.clock.time() + (left if left is not None else DEFAULT_TIMEOUT),
                browser_opened=opened,
            ),
        )
        response: AuthorizationResponse = receiver.wait(waiter)
    finally:
        if inbox is not None:
            inbox.detach(receiver)
        receiver.close()
    waiter.check()
    return exchange_code(
        transport,
        token_endpoint,
        code=response.code,
        redirect_uri=receiver.redirect_uri,
        client_id=client_id,
        code_verifier=pkce.verifier,
        endpoint=endpoint,
        scopes=scopes,
        auth=auth,
        waiter=waiter,
    )


__all__ = ["DEFAULT_TIMEOUT", "RedirectInbox", "build_authorization_url", "prompt_value", "make_receiver", "exchange_code", "open_in_browser", "run_authcode_flow"]
