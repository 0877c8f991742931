"""``Authenticator``: flytekit's surface over the token lifecycle (:mod:`..lifecycle`).

Constructor (flytekit's parameters: endpoint, header_key, credentials, http_proxy_url, verify; our
extras keyword-only), ``fetch_grpc_call_auth_metadata()`` (its hot path: a clock read, a compare and
the cached header tuple), ``refresh_credentials(*, interactive=True)``, the header key (the
argument, else the server's ``authorization_metadata_key``, else ``authorization``: pinned 3), the
client configuration (read once), sign-out with revocation (RFC 7009) and redacted reprs.

Sign-out (``logout``): a flight in progress is cancelled or waited for and writes nothing after it;
the held tokens are revoked as this authenticator's client (``_revoke_all``; the Hub's never), and
with ``everywhere=True`` what every other store this process can reach holds for the endpoint is
revoked as the deployment's public client (``_revoke_found``, issue 16.5), then deleted (pinned 14).

Without an endpoint (``%flyte_login --issuer`` with no ``--endpoint``: an OIDC API, no Flyte deployment)
the tokens are kept under the configuration store's ``service`` (``IssuerClientConfigStore``: the
issuer and the client id), and the authenticator has no origin of its own: ``BearerAuth`` and the gRPC
plug-in then need ``origins=[...]``, so a token is never sent to the identity provider by default.

Behind an identity-aware proxy (``proxy_auth=``, a :class:`flyteauth_jupyter.proxy.ProxyAuth` for the
deployment) the authenticator's transport and the configuration store it makes send the proxy's
credential to the deployment's origins only (never to the identity provider); its ``proxy_auth``
attribute is what ``BearerAuth`` and the gRPC plug-in pick up.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from typing import Any

import requests

from ..config import ClientConfig, ClientConfigStore, RemoteClientConfigStore
from ..control import Clock, run_in_background
from ..credentials import DEFAULT_ENDPOINT, Credentials
from ..endpoint import Endpoint, parse_endpoint
from ..errors import ConfigurationError, FlyteAuthError
from ..flows import refresh
from ..flows.events import Observer
from ..lifecycle import TokenLifecycle
from ..transport.http import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, Transport

log = logging.getLogger("flyteauth_jupyter.authenticators")

DEFAULT_HEADER_KEY = "authorization"


def _default_store() -> Any:
    """The store ``$FLYTEAUTH_TOKEN_CACHE`` names (default: the keyring where a usable one exists, else
    the private file cache; fallbacks built in, see stores.make_store); memory when it cannot be built."""
    from ..stores import MemoryStore, make_store

    try:
        return make_store()
    except Exception:  # noqa: BLE001 - a store problem never breaks a login
        log.warning("the keyring token store is unavailable; tokens are kept in memory for this kernel")
        return MemoryStore()


def reachable_stores(own: Any = None) -> list[Any]:
    """Every token store this process can reach besides ``own``: the system keyring (when a working
    backend is configured), the private file cache and process memory (for a complete sign-out)."""
    from ..stores import reachable_stores as every_store  # stores/factory.py owns the list

    return every_store(own)


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
        endpoint: str | Endpoint,
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
        proxy_auth: requests.auth.AuthBase | None = None,
    ) -> None:
        if isinstance(endpoint, Endpoint):  # parsed once by the caller (%flyte_login's spec)
            self._endpoint: str | None = endpoint.url
            self._parsed: Endpoint | None = endpoint
        else:
            self._endpoint = endpoint
            self._parsed = parse_endpoint(endpoint, insecure=insecure) if endpoint else None
        self._insecure = insecure
        # no endpoint (an issuer's sign-in for an API): the store says under which name tokens are kept
        store_service = getattr(cfg_store, "service", None)
        self.service = self._parsed.service if self._parsed else (
            store_service if isinstance(store_service, str) and store_service else DEFAULT_ENDPOINT
        )
        self._header_key_arg = header_key or None
        self._http_proxy_url = http_proxy_url or None
        self._verify = verify
        self._session = session
        # http_timeout (connect, read) and http_deadline (one call with its retries): small in tests
        self._http_options: dict[str, Any] = {"timeout": http_timeout, "deadline": http_deadline}
        #: the identity-aware proxy's credential for the deployment (None: no proxy); BearerAuth and the
        #: gRPC plug-in read it from here
        self.proxy_auth = proxy_auth
        self._transport = Transport(session, http_proxy_url=self._http_proxy_url, verify=verify,
                                    proxy_auth=proxy_auth, **self._http_options)
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
        client_id = self._public_client_id(cfg)
        return self._revoke(found, cfg.revocation_endpoint, client_id, self._found_client_auth(client_id))

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
                    session=self._session, proxy_auth=self.proxy_auth, **self._http_options,
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

    def _found_client_auth(self, client_id: str | None) -> Any:
        """How to authenticate when revoking what other stores kept for ``client_id`` (None: as a public client)."""
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
                        proxy_auth=self.proxy_auth,
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
