"""The authenticators: flytekit's public classes, re-implemented on top of the flows.

Each class takes the seed's parameters (flytekit's names, order and defaults) and keyword-only
extras (``observer=``, ``timeout=``, ``store=``, ``clock=``, ``insecure=``, and for the browser and
device logins ``client_id=``, ``redirect_uri=``, ``open_browser=``, ``audience=``). This module owns
flytekit's surface; the token lifecycle under it (current credentials, the refresh margin, single
flight, store adoption) is :mod:`.lifecycle`:

* ``get_credentials()``: the current Credentials or None before any login (pinned 10), refreshed
  first (without user interaction) when less than min(60 s, half the lifetime) is left (pinned 5).
* ``refresh_credentials(*, interactive=True)``: the refresh grant when possible, else the interactive
  flow if allowed (else AccessTokenNotFoundError); overlapping calls share one request (single flight).
* ``fetch_grpc_call_auth_metadata()``: ``(header_key, "Bearer <token>")`` or None; the header key is
  the argument, else the server's ``authorization_metadata_key``, else ``authorization`` (pinned 3).
* ``cancel()`` ends an interactive login in progress (any thread); ``logout()`` revokes (RFC 7009)
  when a revocation endpoint is known and clears the store.
* ``PKCEAuthenticator.submit_redirect(url)`` hands the waiting browser sign-in the address the user's
  browser ended on, when the redirect cannot reach this machine (paste-back; any thread).

Progress goes to the observer as events (flows.events); nothing prints. Reprs redact every secret.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import requests

from .config import ClientConfig, ClientConfigStore, RemoteClientConfigStore
from .control import Clock, Waiter, run_in_background
from .credentials import DEFAULT_ENDPOINT, Credentials
from .endpoint import parse_endpoint
from .errors import AuthenticationError, ConfigurationError, FlyteAuthError
from .flows import authcode, client_credentials, device, refresh
from .flows import command as command_flow
from .flows.events import Observer
from .lifecycle import TokenLifecycle, needs_refresh, refresh_margin
from .transport.http import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, Transport
from .validate import scope_list

log = logging.getLogger(__name__)

DEFAULT_HEADER_KEY = "authorization"


def _default_store() -> Any:
    """The store ``$FLYTEAUTH_TOKEN_CACHE`` names (default: the keyring, memory fallback built in);
    memory when that store cannot be built."""
    from .stores import MemoryStore, make_store

    try:
        return make_store()
    except Exception:  # noqa: BLE001 - a store problem never breaks a login
        log.warning("the keyring token store is unavailable; tokens are kept in memory for this kernel")
        return MemoryStore()


def reachable_stores(own: Any = None) -> list[Any]:
    """Every token store this process can reach besides ``own``: the system keyring (when a working
    backend is configured), the private file cache and process memory (for a complete sign-out)."""
    from . import stores

    found: list[Any] = []
    with contextlib.suppress(Exception):
        keyring_store = stores.KeyringStore(fallback=stores.MemoryStore())
        keyring_store._checked_backend()  # a fail/null backend has nothing to clear
        found.append(keyring_store)
    found.append(stores.FileStore())
    found.append(stores.PROCESS_FALLBACK)
    return [store for store in found if store is not own]


#: How long logout() waits for a refresh in flight to end (its requests have their own timeouts).
LOGOUT_FLIGHT_WAIT = 45.0


class Authenticator(TokenLifecycle):
    """Base authenticator (flytekit's constructor: endpoint, header_key, credentials, http_proxy_url, verify).

    On its own it only serves the credentials it was given; subclasses know how to get new ones.
    """

    #: Name of the flow in events ('device', 'pkce', 'client-credentials', 'command').
    flow_name = "login"
    #: True when obtaining new credentials needs a person (browser or device login).
    needs_user = False
    #: True when, without a cfg_store, the endpoint's metadata is read (RemoteClientConfigStore).
    discovers_config = False

    def __init__(
        self,
        endpoint: str,
        header_key: str | None,
        credentials: Credentials | None = None,
        http_proxy_url: str | None = None,
        verify: bool | str | None = None,
        *,
        observer: Observer | None = None,
        timeout: float | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any = None,
        clock: Clock | None = None,
        insecure: bool = False,
        session: requests.Session | None = None,
        cfg_store: ClientConfigStore | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._insecure = insecure
        self._parsed = parse_endpoint(endpoint, insecure=insecure) if endpoint else None
        self.service = self._parsed.service if self._parsed else DEFAULT_ENDPOINT
        self._header_key_arg = header_key or None
        self._http_proxy_url = http_proxy_url or None
        self._verify = verify
        self._session = session
        # http_timeout (connect, read) and http_deadline (one call with its retries): small in tests
        self._http_options: dict[str, Any] = {"timeout": http_timeout, "deadline": http_deadline}
        self._transport = Transport(session, http_proxy_url=self._http_proxy_url, verify=verify, **self._http_options)
        self._cfg_store = cfg_store
        self._cfg: ClientConfig | None = None
        self._cfg_lock = threading.Lock()
        self.observer = observer
        self.timeout = timeout
        self._init_lifecycle(credentials=credentials, store=store, clock=clock)

    # -- flytekit's surface (get_credentials, wait, cancel: lifecycle.TokenLifecycle) ----------------
    # The hot path (every SDK call): a clock read, a compare and the lifecycle's cached header tuple
    # while the token is fresh; no lock, no store, no network. Else the slow path below.
    def fetch_grpc_call_auth_metadata(self) -> tuple[str, str] | None:
        """``(header_key, "Bearer <access token>")``, or None without an access token."""
        now, until, header = self._hot_header
        if now() < until:
            return header
        creds = self.get_credentials()
        if creds is None or not creds.access_token:
            return None
        header = self.header_key, f"Bearer {creds.access_token}"
        self._publish(creds)  # the header key is known now (it may have needed the server's configuration)
        return header

    def refresh_credentials(self, *, interactive: bool = True) -> Credentials:
        """Obtain new credentials: refresh grant if possible, else the interactive flow (if allowed).

        Blocks until done; overlapping calls share one request and its result.
        """
        return self._refresh(interactive=interactive)

    def _known_header_key(self) -> str | None:
        """The header key if it is known without a request, else None (the configuration is unread)."""
        if self._header_key_arg:
            return self._header_key_arg
        if self._cfg is None and (self._cfg_store is not None or (self.discovers_config and self._endpoint)):
            return None  # reading the configuration may need the server; fetch_... reads it first
        return self.header_key

    # -- extras --------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str | None:
        return self._endpoint

    @property
    def header_key(self) -> str:
        """The metadata key: the argument, else the server's, else 'authorization' (pinned 3)."""
        if self._header_key_arg:
            return self._header_key_arg
        server_key = self._server_header_key()
        return server_key or DEFAULT_HEADER_KEY

    @property
    def store(self) -> Any:
        return self._store

    @property
    def fallback_reason(self) -> str | None:
        """Why tokens are only kept in memory (None when the store works)."""
        return self._store_warning or getattr(self._store, "fallback_reason", None)

    def refresh_in_background(self, *, interactive: bool = True) -> concurrent.futures.Future[Credentials]:
        """Start :meth:`refresh_credentials` in a daemon thread; the Future carries its outcome."""
        return run_in_background(
            self.refresh_credentials, interactive=interactive, name=f"flyteauth-{self.flow_name}"
        )

    def logout(self, *, everywhere: bool = False) -> bool:
        """Revoke (RFC 7009, when a revocation endpoint is known) and forget the tokens.

        A refresh or login in flight is cancelled or waited for (at most LOGOUT_FLIGHT_WAIT s) and
        writes nothing afterwards; a refresh token it obtained is revoked, never stored.
        ``everywhere=True`` also revokes and clears what every other token store this process can
        reach holds for the endpoint (the keyring, the file cache, process memory: pinned 14).
        Returns True when the server confirmed the revocation.
        """
        with self._state_lock:
            self._epoch += 1
        self.cancel()
        with self._flight_lock:
            flight = self._flight
        if flight is not None and flight.thread != threading.get_ident():
            with contextlib.suppress(BaseException):
                flight.future.result(timeout=LOGOUT_FLIGHT_WAIT)
        creds = self._current()
        own = [creds] if creds is not None else []
        others = reachable_stores(self._store) if everywhere else []
        found: list[Credentials] = []
        for other in others:
            with contextlib.suppress(Exception):
                saved = other.load(self.service)
                if saved is not None:
                    found.append(saved)
        # every refresh token removed below is revoked first (issue 16.5), whatever flow this is
        revoked = self._revoke_all(own)
        revoked = self._revoke_found([c for c in found if c not in own]) or revoked
        with self._state_lock:
            self._creds = None
            self._loaded = True
            self._failures, self._retry_at = 0, None
            self._store_call("delete")
        for other in others:
            try:
                other.delete(self.service)
            except Exception as exc:  # noqa: BLE001 - one unreachable store never stops a sign-out
                log.warning("Could not clear the saved tokens for %s in %s (%s).", self.service,
                            type(other).__name__, type(exc).__name__)
        return revoked

    def _revoke_all(self, held: list[Credentials]) -> bool:
        """Revoke each distinct token this authenticator holds or obtained (its refresh token, else its
        access token), as this authenticator's client."""
        endpoint = self._revocation_endpoint() if held else None
        if not endpoint:
            return False
        return self._revoke(held, endpoint, self._revocation_client_id(), self._client_auth())

    def _revoke_found(self, found: list[Credentials]) -> bool:
        """Revoke what other stores kept for the endpoint (an earlier sign-in, maybe of another flow),
        as the deployment's public client, before those entries are deleted."""
        if not found:
            return False
        cfg = self._logout_config()
        if cfg is None or not cfg.revocation_endpoint:
            if any(c.refresh_token for c in found):
                log.warning("Could not revoke the saved refresh token for %s: no revocation endpoint is known; "
                            "it is deleted all the same.", self.service)
            return False
        return self._revoke(found, cfg.revocation_endpoint, self._public_client_id(cfg), None)

    def _revoke(self, tokens: list[Credentials], endpoint: str, client_id: str | None, auth: Any) -> bool:
        revoked, seen = False, set()
        for creds in tokens:
            token, hint = (
                (creds.refresh_token, "refresh_token") if creds.refresh_token else (creds.access_token, "access_token")
            )
            if not token or token in seen:
                continue
            seen.add(token)
            try:
                refresh.revoke_token(self._transport, endpoint, token, token_type_hint=hint, client_id=client_id,
                                     auth=auth)
                revoked = True
            except FlyteAuthError as exc:
                log.warning("Could not revoke the token for %s: %s", self.service, exc)
        return revoked

    def _logout_config(self) -> ClientConfig | None:
        """The configuration to revoke with at sign-out: this authenticator's, else (one that reads
        none, e.g. the command flow) the endpoint's own, when it has an endpoint."""
        cfg = self._config_or_none()
        if cfg is None and self._endpoint and self._cfg_store is None and not self.discovers_config:
            try:
                cfg = RemoteClientConfigStore(
                    self._endpoint, insecure=self._insecure, verify=self._verify, http_proxy_url=self._http_proxy_url,
                    session=self._session, **self._http_options,
                ).get_client_config()
            except FlyteAuthError as exc:
                log.info("client configuration for %s unavailable: %s", self.service, exc)
        return cfg

    def _public_client_id(self, cfg: ClientConfig) -> str | None:
        """The public client that signed in before (the deployment's, unless overridden for this flow)."""
        return cfg.client_id or None

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._cfg_lock = threading.Lock()

    def _set_header_key(self, header_key: str | None) -> None:
        with self._state_lock:
            self._header_key_arg = header_key or None
            self._cool()

    # -- hooks for subclasses --------------------------------------------------------------------------
    def _client_auth(self) -> Any:
        return None

    def _revocation_client_id(self) -> str | None:
        return None

    def _revocation_endpoint(self) -> str | None:
        cfg = self._config_or_none()
        return cfg.revocation_endpoint if cfg is not None else None

    def _server_header_key(self) -> str | None:
        cfg = self._config_or_none()
        return cfg.header_key if cfg is not None else None

    # -- configuration -----------------------------------------------------------------------------------
    def _config(self) -> ClientConfig:
        """The client configuration (fetched once per authenticator; the remote store caches too)."""
        if self._cfg is not None:
            return self._cfg
        with self._cfg_lock:
            if self._cfg is None:
                store = self._cfg_store
                if store is None:
                    if not self.discovers_config or not self._endpoint:
                        raise ConfigurationError("No endpoint and no client configuration were given.")
                    store = self._cfg_store = RemoteClientConfigStore(
                        self._endpoint,
                        insecure=self._insecure,
                        verify=self._verify,
                        http_proxy_url=self._http_proxy_url,
                        session=self._session,
                        **self._http_options,
                    )
                self._cfg = store.get_client_config()
            return self._cfg

    def _config_or_none(self) -> ClientConfig | None:
        if self._cfg_store is None and not (self.discovers_config and self._endpoint):
            return None
        try:
            return self._config()
        except FlyteAuthError as exc:
            log.info("client configuration for %s unavailable: %s", self.service, exc)
            return None

    # -- reprs ------------------------------------------------------------------------------------------
    def _repr_fields(self) -> list[str]:
        return [f"endpoint={self.service!r}", f"header_key={self._header_key_arg!r}"]

    def __repr__(self) -> str:
        creds = self._creds
        fields = self._repr_fields() + [f"credentials={creds!r}"]
        return f"{type(self).__name__}({', '.join(fields)})"

    __str__ = __repr__


class _ConfiguredAuthenticator(Authenticator):
    """Shared settings of the authenticators that read a ClientConfig."""

    discovers_config = True

    def __init__(
        self,
        endpoint: str,
        cfg_store: ClientConfigStore | None,
        *,
        header_key: str | None,
        scopes: Sequence[str] | None,
        audience: str | None,
        http_proxy_url: str | None,
        verify: bool | str | None,
        session: requests.Session | None,
        client_id: str | None,
        observer: Observer | None,
        timeout: float | None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any,
        clock: Clock | None,
        insecure: bool,
    ) -> None:
        super().__init__(
            endpoint,
            header_key,
            None,
            http_proxy_url,
            verify,
            observer=observer,
            timeout=timeout,
            http_timeout=http_timeout,
            http_deadline=http_deadline,
            store=store,
            clock=clock,
            insecure=insecure,
            session=session,
            cfg_store=cfg_store,
        )
        self._scopes_arg = list(scope_list(scopes)) or None
        self._audience_arg = audience or None
        self._client_id_arg = client_id or None

    @property
    def scopes(self) -> list[str]:
        return list(self._scopes_arg or scope_list(self._config().scopes))

    @property
    def audience(self) -> str | None:
        return self._audience_arg or self._config().audience

    @property
    def client_id(self) -> str:
        client_id = self._client_id_arg or self._config().client_id
        if not client_id:
            raise ConfigurationError(f"{self.service} does not advertise a client id; pass client_id=.")
        return client_id

    def _revocation_client_id(self) -> str | None:
        try:
            return self.client_id
        except FlyteAuthError:
            return None

    def _public_client_id(self, cfg: ClientConfig) -> str | None:
        return self._client_id_arg or cfg.client_id or None

    def _refresh_grant(self, creds: Credentials) -> Credentials | None:
        cfg = self._config()
        return refresh.refresh_access_token(
            self._transport,
            cfg.token_endpoint,
            creds,
            client_id=self.client_id,
            endpoint=self.service,
            auth=self._client_auth(),
            clock=self.clock,
        )


class PKCEAuthenticator(_ConfiguredAuthenticator):
    """Browser sign-in: authorization code + PKCE with a loopback redirect (RFC 8252).

    Extras: ``client_id``/``redirect_uri`` override the server's, ``audience``, ``http_proxy_url``,
    ``open_browser`` (False, or a callable ``(url) -> bool``), ``timeout`` (default 300 s).
    :meth:`submit_redirect` is the paste-back fallback for a browser on another machine.
    """

    flow_name = "pkce"
    needs_user = True

    def __init__(
        self,
        endpoint: str,
        cfg_store: ClientConfigStore | None,
        scopes: list[str] | None = None,
        header_key: str | None = None,
        verify: bool | str | None = None,
        session: requests.Session | None = None,
        *,
        client_id: str | None = None,
        redirect_uri: str | None = None,
        audience: str | None = None,
        http_proxy_url: str | None = None,
        open_browser: bool | Callable[[str], bool] = True,
        observer: Observer | None = None,
        timeout: float | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any = None,
        clock: Clock | None = None,
        insecure: bool = False,
    ) -> None:
        super().__init__(
            endpoint,
            cfg_store,
            header_key=header_key,
            scopes=scopes,
            audience=audience,
            http_proxy_url=http_proxy_url,
            verify=verify,
            session=session,
            client_id=client_id,
            observer=observer,
            timeout=timeout,
            http_timeout=http_timeout,
            http_deadline=http_deadline,
            store=store if store is not None else _default_store(),
            clock=clock,
            insecure=insecure,
        )
        self._loaded = False
        self._redirect_uri_arg = redirect_uri or None
        self.open_browser = open_browser
        self._inbox = authcode.RedirectInbox(self.service)

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._inbox = authcode.RedirectInbox(self.service)  # the parent's receiver is not ours

    def submit_redirect(self, url: str) -> None:
        """Complete the waiting browser sign-in with the address the browser ended on (any thread).

        For a browser on another machine (VS Code remote, SSH, containers): the redirect to
        ``http://127.0.0.1:<port>/callback?code=...&state=...`` fails there, but its address can be
        pasted here (the whole address, or just its query). The state is checked first; a wrong or
        unusable paste raises StateMismatchError / ProtocolError and the sign-in keeps waiting; with
        no PKCE sign-in waiting, FlyteAuthError. Returns once the address is accepted; the code is
        exchanged by the sign-in itself (``refresh_credentials()`` returns or raises as usual).
        """
        self._inbox.submit(url)

    @property
    def awaiting_redirect(self) -> bool:
        """True while a browser sign-in waits for its redirect (so :meth:`submit_redirect` can complete it)."""
        return self._inbox.waiting

    @property
    def redirect_uri(self) -> str:
        uri = self._redirect_uri_arg or self._config().redirect_uri
        if not uri:
            raise ConfigurationError(f"{self.service} does not advertise a redirect URI; pass redirect_uri=.")
        return uri

    def _login_deadline(self) -> float | None:
        return self.timeout if self.timeout is not None else authcode.DEFAULT_TIMEOUT

    def _waiting_for(self) -> str:
        return "the browser sign-in"

    def _login(self, waiter: Waiter) -> Credentials:
        cfg = self._config()
        if not cfg.authorization_endpoint:
            raise ConfigurationError(f"{self.service} does not advertise an authorization endpoint for browser sign-in.")
        return authcode.run_authcode_flow(
            self._transport,
            authorization_endpoint=cfg.authorization_endpoint,
            token_endpoint=cfg.token_endpoint,
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            waiter=waiter,
            endpoint=self.service,
            scopes=self.scopes,
            audience=self.audience,
            observer=self.observer,
            open_browser=self.open_browser,
            issuer=cfg.issuer,
            inbox=self._inbox,
        )


class DeviceCodeAuthenticator(_ConfiguredAuthenticator):
    """Device sign-in (RFC 8628): show a code and a URL, poll until the user approves.

    Extras: ``client_id`` overrides the server's, ``timeout`` caps the wait (default: the code's life).
    """

    flow_name = "device"
    needs_user = True

    def __init__(
        self,
        endpoint: str,
        cfg_store: ClientConfigStore | None,
        header_key: str | None = None,
        audience: str | None = None,
        scopes: list[str] | None = None,
        http_proxy_url: str | None = None,
        verify: bool | str | None = None,
        session: requests.Session | None = None,
        *,
        client_id: str | None = None,
        observer: Observer | None = None,
        timeout: float | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any = None,
        clock: Clock | None = None,
        insecure: bool = False,
    ) -> None:
        super().__init__(
            endpoint,
            cfg_store,
            header_key=header_key,
            scopes=scopes,
            audience=audience,
            http_proxy_url=http_proxy_url,
            verify=verify,
            session=session,
            client_id=client_id,
            observer=observer,
            timeout=timeout,
            http_timeout=http_timeout,
            http_deadline=http_deadline,
            store=store if store is not None else _default_store(),
            clock=clock,
            insecure=insecure,
        )
        self._loaded = False

    def _waiting_for(self) -> str:
        return "the device sign-in"

    def _login(self, waiter: Waiter) -> Credentials:
        cfg = self._config()
        if not cfg.device_authorization_endpoint:
            raise AuthenticationError(
                f"{self.service} does not offer device sign-in (no device authorization endpoint); use the browser "
                "(PKCE) login instead."
            )
        return device.run_device_flow(
            self._transport,
            device_authorization_endpoint=cfg.device_authorization_endpoint,
            token_endpoint=cfg.token_endpoint,
            client_id=self.client_id,
            waiter=waiter,
            endpoint=self.service,
            scopes=self.scopes,
            audience=self.audience,
            observer=self.observer,
        )


class ClientCredentialsAuthenticator(_ConfiguredAuthenticator):
    """Machine sign-in with a client id and secret (client_secret_basic); tokens kept in memory."""

    flow_name = "client-credentials"
    needs_user = False

    def __init__(
        self,
        endpoint: str,
        client_id: str,
        client_secret: str,
        cfg_store: ClientConfigStore | None,
        header_key: str | None = None,
        scopes: list[str] | None = None,
        http_proxy_url: str | None = None,
        verify: bool | str | None = None,
        audience: str | None = None,
        session: requests.Session | None = None,
        *,
        observer: Observer | None = None,
        timeout: float | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
        store: Any = None,
        clock: Clock | None = None,
        insecure: bool = False,
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigurationError("Client credentials need both a client id and a client secret.")
        super().__init__(
            endpoint,
            cfg_store,
            header_key=header_key,
            scopes=scopes,
            audience=audience,
            http_proxy_url=http_proxy_url,
            verify=verify,
            session=session,
            client_id=client_id,
            observer=observer,
            timeout=timeout,
            http_timeout=http_timeout,
            http_deadline=http_deadline,
            store=store,
            clock=clock,
            insecure=insecure,
        )
        self._loaded = store is None
        self._client_secret = client_secret

    def _client_auth(self) -> Any:
        return client_credentials.ClientSecretBasic(self.client_id, self._client_secret)

    def _public_client_id(self, cfg: ClientConfig) -> str | None:
        return cfg.client_id or None  # ours is confidential: an earlier user sign-in was the public client's

    def _refresh_grant(self, creds: Credentials) -> Credentials | None:
        return None  # a new client credentials token is as cheap as a refresh

    def _login(self, waiter: Waiter) -> Credentials:
        cfg = self._config()
        return client_credentials.fetch_client_credentials_token(
            self._transport,
            cfg.token_endpoint,
            client_id=self.client_id,
            client_secret=self._client_secret,
            endpoint=self.service,
            scopes=self.scopes,
            audience=self.audience,
            clock=self.clock,
        )

    def _repr_fields(self) -> list[str]:
        return super()._repr_fields() + [f"client_id={self._client_id_arg!r}", "client_secret=<redacted>"]


class CommandAuthenticator(Authenticator):
    """Token from an external command (argv list, no shell, stdin closed, timeout 60 s by default)."""

    flow_name = "command"
    needs_user = False

    def __init__(
        self,
        command: list[str],
        header_key: str = None,  # type: ignore[assignment]  # flytekit's signature
        *,
        timeout: float | None = None,
        observer: Observer | None = None,
        clock: Clock | None = None,
        env: dict[str, str] | None = None,
        endpoint: str | None = None,
    ) -> None:
        if not command:
            raise AuthenticationError("Command cannot be empty for command authenticator.")
        self._command = command_flow.normalise_command(command)
        super().__init__(
            endpoint,  # type: ignore[arg-type]
            header_key,
            observer=observer,
            timeout=timeout,
            clock=clock,
        )
        self._env = env

    @property
    def command(self) -> list[str]:
        return list(self._command)

    def _server_header_key(self) -> str | None:
        return None

    def _login(self, waiter: Waiter) -> Credentials:
        waiter.check()
        token = command_flow.run_token_command(
            self._command,
            timeout=self.timeout if self.timeout is not None else command_flow.DEFAULT_TIMEOUT,
            env=self._env,
        )
        return Credentials(token, for_endpoint=self.service)

    def _repr_fields(self) -> list[str]:
        program = self._command[0].rsplit("/", 1)[-1]
        return [f"command=[{program!r}, ...]", f"header_key={self._header_key_arg!r}"]


__all__ = [
    "Authenticator",
    "ClientCredentialsAuthenticator",
    "CommandAuthenticator",
    "DeviceCodeAuthenticator",
    "PKCEAuthenticator",
    "needs_refresh",
    "refresh_margin",
]
