"""The identity-aware proxy's credential (GCP IAP and the like; flyte#3965, flytekit's ``proxy_command``).

A deployment behind an identity-aware proxy needs a second credential on every request to it: the
proxy's, sent as ``proxy-authorization: Bearer <output of the proxy command>``. That is the value
flytekit (``get_proxy_authenticator``: a ``CommandAuthenticator`` with header key
``proxy-authorization``, whose ``fetch_grpc_call_auth_metadata`` says ``Bearer <token>``) and the Flyte 2
SDK (``AsyncCommandAuthenticator(header_key="proxy-authorization")``, ``headers={key: f"Bearer {token}"}``)
both send, so one proxy command serves all three.

* :class:`ProxyCredential` runs the command as the command flow does (:func:`~flyteauth_jupyter.flows.command.run_token_command`:
  an argv list, no shell, stdin closed, 60 s timeout, a failure is one sentence naming the program and
  never its arguments) and keeps its output for the process (:func:`shared_credential`: one per command,
  so the notebook's session, the configuration store and the SDK plug-ins run it once). It runs again
  when the token is a JWT whose ``exp`` (read by ``credentials.jwt_times``, the one expiry reader) is
  within the refresh margin (pinned 5: min(60 s, half its lifetime)), or when the proxy refused it.
  Renewals are single flight across threads: callers that overlap share one run and its result, and a
  caller whose refused value was already replaced gets the replacement without a run. The token is
  held in a :class:`~flyteauth_jupyter.credentials.Credentials` (its repr shows lengths only) and never
  logged, shown or put in a message.
* :class:`ProxyAuth` is that credential bound to the deployment: the origins (endpoint's, plus any
  ``origins=``) that may receive it, in the one normal form (``endpoint.origin``, pinned 22). It is a
  ``requests`` auth of its own (:class:`~flyteauth_jupyter.clients.OriginBoundAuth`: the header only to
  those origins, re-decided on every redirect hop, one renewal and resend on the proxy's refusal) and
  a header grant inside :class:`~flyteauth_jupyter.clients.BearerAuth` and the gRPC plug-in. Give it to
  ``Transport(proxy_auth=...)`` and ``RemoteClientConfigStore(proxy_auth=...)``: their requests to
  the deployment carry it, and their requests to the identity provider (token, device, revocation,
  discovery) never do, because the provider is another origin, even on the same host. An identity
  provider served from the deployment's own origin (FlyteAdmin's built-in authorization server) is
  behind the same proxy and gets it.

Which refusals are the proxy's (:func:`proxy_refused`, defined in ``transport.http``: one rule for
both): HTTP 407 (Proxy Authentication Required, RFC 9110 15.5.8), and a 401 that the proxy marked as
its own: GCP IAP adds
``X-Goog-IAP-Generated-Response`` to every response it generates (Google's IAP documentation, "Detecting
responses from IAP"), and a proxy asking for proxy credentials sends ``Proxy-Authenticate``. Any other
401 is the deployment's, about the bearer token, and goes to the bearer refresh; flytekit re-runs the
proxy command on every 401, which spends a command run (and may open a browser in ``gcloud``) for each
expired bearer token.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import requests

from .clients import OriginBoundAuth
from .control import Clock, at_fork_in_child, end_in_child, survive_fork
from .credentials import Credentials, jwt_times
from .endpoint import Origin, origin, parse_endpoint
from .errors import CommandError, ConfigurationError
from .flows.command import DEFAULT_TIMEOUT, normalise_command, run_token_command
from .transport.http import IAP_GENERATED, proxy_refused

if TYPE_CHECKING:
    from .sdk_config import FlytekitSettings

log = logging.getLogger(__name__)

#: the header both SDKs send the proxy's token in (flytekit ``get_proxy_authenticator``, flyte 2 likewise)
PROXY_HEADER = "proxy-authorization"
#: pinned 5: renew when less than min(60 s, half the lifetime) is left
MAX_MARGIN = 60.0
#: how long a caller joining a run waits beyond the command's own timeout (its kill and reaping)
JOIN_GRACE = 10.0
COMMAND_WHAT = "proxy command"


def refresh_margin(lifetime: float | None) -> float:
    """Pinned 5: min(60 s, half the lifetime); 60 s when the lifetime is unknown."""
    if lifetime is None or not math.isfinite(lifetime) or lifetime <= 0:
        return MAX_MARGIN
    return min(MAX_MARGIN, lifetime / 2)


class _Held:
    """The token the command printed last, when it was obtained, and from when on to renew it."""

    __slots__ = ("creds", "renew_at")

    def __init__(self, token: str, now: float) -> None:
        self.creds = Credentials(token, for_endpoint=COMMAND_WHAT)
        iat, exp = jwt_times(token)
        self.renew_at: float | None = None
        if exp is not None:
            start = iat if iat is not None and iat <= exp else now
            at = exp - refresh_margin(exp - start)
            # a token already inside its margin when it came is used until the proxy refuses it (one
            # run per refusal), not re-run on every request
            self.renew_at = at if at > now else None

    @property
    def token(self) -> str:
        return self.creds.access_token or ""


class ProxyCredential:
    """The proxy command's output for this process: run when needed, renewed near expiry or on refusal.

    Parameters
    ----------
    command:
        The argv list (a string is split like a shell would, never run by one).
    timeout:
        Seconds the command may run (default 60); it is killed with its process group after that.
    env:
        The command's environment (default: the kernel's).
    clock:
        Wall-clock time (a fake one in unit tests).
    """

    def __init__(
        self,
        command: Sequence[str] | str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.argv = tuple(normalise_command(command, what=COMMAND_WHAT))
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
            raise ConfigurationError("The proxy command's timeout must be a finite number of seconds above 0.")
        self.timeout = float(timeout)
        self._env = dict(env) if env is not None else None
        self.clock = clock or Clock()
        self._guard = threading.Lock()
        self._held: _Held | None = None
        self._flight: concurrent.futures.Future[str] | None = None
        #: how many times this process ran the command (for status and tests; never the output)
        self.runs = 0
        survive_fork(self)

    @property
    def program(self) -> str:
        """The command's program name (its arguments may hold secrets and are never shown)."""
        return os.path.basename(self.argv[0]) or self.argv[0]

    def __repr__(self) -> str:
        held = "held" if self._held is not None else "none yet"
        return f"ProxyCredential(program={self.program!r}, token={held}, runs={self.runs})"

    # -- the token ---------------------------------------------------------------------------------
    def token(self) -> str:
        """The proxy's token: the held one while fresh, else the command's new output."""
        held = self._held
        if held is not None and (held.renew_at is None or self.clock.time() < held.renew_at):
            return held.token
        return self._obtain(stale=held.token if held is not None else None)

    def renew(self, rejected: str | None = None) -> str:
        """A new token after the proxy refused ``rejected`` (default: the one held). When another caller
        already replaced it, that replacement is returned without running the command again."""
        if rejected is None:
            held = self._held
            rejected = held.token if held is not None else None
        return self._obtain(stale=rejected, force=True)

    def _obtain(self, *, stale: str | None, force: bool = False) -> str:
        with self._guard:
            held = self._held
            if held is not None and held.token != stale and (
                force or held.renew_at is None or self.clock.time() < held.renew_at
            ):
                return held.token  # someone renewed since the caller looked
            flight = self._flight
            leader = flight is None
            if flight is None:
                flight = self._flight = concurrent.futures.Future()
        if leader:
            return self._lead(flight)
        try:
            return flight.result(timeout=self.timeout + JOIN_GRACE)
        except concurrent.futures.TimeoutError:
            raise CommandError(
                f"The {COMMAND_WHAT} {self.program!r} did not finish within {self.timeout:g} s; run it in a terminal "
                "to check that it does not wait for input."
            ) from None

    def _lead(self, flight: concurrent.futures.Future[str]) -> str:
        try:
            token = run_token_command(self.argv, timeout=self.timeout, env=self._env, what=COMMAND_WHAT)
            held = _Held(token, self.clock.time())
            with self._guard:
                self.runs += 1
                self._held = held
            log.debug("ran the proxy command %r (run %d)", self.program, self.runs)
            flight.set_result(token)
        except Exception as exc:  # noqa: BLE001 - handed to every caller of this flight
            with self._guard:
                self.runs += 1
            flight.set_exception(exc)
        except BaseException:  # an interrupt in the leading thread: the others get a sentence, not it
            flight.set_exception(CommandError(f"The {COMMAND_WHAT} {self.program!r} was interrupted; try again."))
            raise
        finally:
            with self._guard:
                self._flight = None
        return flight.result()

    def _after_fork_in_child(self) -> None:
        """control.survive_fork: a run in progress in the parent has no thread in the child, so its
        flight ends at once there (a parent thread may also have held the guard at the fork)."""
        self._guard = threading.Lock()
        flight, self._flight = self._flight, None
        if flight is not None:
            end_in_child(flight, f"the {COMMAND_WHAT} {self.program!r}")


_shared: dict[tuple[tuple[str, ...], float], ProxyCredential] = {}
_shared_guard = threading.Lock()


def _new_shared_guard() -> None:
    global _shared_guard
    _shared_guard = threading.Lock()


at_fork_in_child(_new_shared_guard)


def shared_credential(command: Sequence[str] | str, *, timeout: float = DEFAULT_TIMEOUT) -> ProxyCredential:
    """The process's one :class:`ProxyCredential` for ``command`` (and ``timeout``): its output is
    cached per process, whichever session, store or client asks."""
    candidate = ProxyCredential(command, timeout=timeout)
    key = (candidate.argv, candidate.timeout)
    with _shared_guard:
        return _shared.setdefault(key, candidate)


class ProxyAuth(OriginBoundAuth):
    """The identity-aware proxy's credential for one deployment: ``proxy-authorization`` on its origins only.

    Use it as ``requests`` auth (``requests.get(url, auth=proxy)``), or hand it to what talks to the
    deployment: ``BearerAuth(..., proxy_auth=proxy)``, ``grpc_call_credentials(..., proxy_auth=proxy)``,
    ``Transport(proxy_auth=proxy)``, ``RemoteClientConfigStore(endpoint, proxy_auth=proxy)``; an
    authenticator's ``proxy_auth`` attribute is picked up by ``BearerAuth`` and the gRPC plug-in.

    Parameters
    ----------
    command:
        The proxy command (argv list, or a string split like a shell would); its stdout is the token.
        Not needed when ``credential`` is given.
    endpoint:
        The deployment (URL or flytekit's ``host:port``, HTTPS unless ``insecure``).
    origins:
        More origins behind the same proxy (``https://console.example.com``).
    insecure:
        A bare ``host:port`` endpoint means plain HTTP (flytekit's ``insecure``).
    timeout:
        Seconds the command may run (default 60).
    credential:
        A :class:`ProxyCredential` to use (default: the process's shared one for ``command``).
    """

    header = PROXY_HEADER

    def __init__(
        self,
        command: Sequence[str] | str | None = None,
        *,
        endpoint: str,
        origins: Iterable[str] = (),
        insecure: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        credential: ProxyCredential | None = None,
    ) -> None:
        if credential is None:
            if command is None:
                raise ConfigurationError("ProxyAuth needs the proxy command (or a ProxyCredential).")
            credential = shared_credential(command, timeout=timeout)
        self.credential = credential
        own = origin(parse_endpoint(endpoint, insecure=insecure).url)
        found: set[Origin] = {own} if own is not None else set()
        for url in origins:
            extra = origin(url)
            if extra is None:
                raise ConfigurationError(f"ProxyAuth origins must be http(s)://host[:port] URLs, not {url!r}.")
            found.add(extra)
        if not found:
            raise ConfigurationError("ProxyAuth cannot tell which origin the proxy guards; check the endpoint.")
        self.origins: frozenset[Origin] = frozenset(found)
        self._grants = (self,)

    @classmethod
    def from_settings(cls, settings: FlytekitSettings, *, endpoint: str | None = None,
                      insecure: bool | None = None) -> ProxyAuth | None:
        """The proxy credential flytekit's or the Flyte 2 SDK's configuration names (``admin.proxyCommand``,
        ``FLYTE_CREDENTIALS_PROXY_COMMAND``, ``FLYTE_AUTH_PROXY_COMMAND``: :mod:`flyteauth_jupyter.sdk_config`)
        for ``endpoint`` (default: the settings' own), or None when they name no proxy command."""
        if not settings.proxy_command:
            return None
        target = endpoint or settings.endpoint
        if not target:
            raise ConfigurationError("A proxy command is configured but no endpoint; pass --endpoint.")
        return cls(settings.proxy_command, endpoint=target,
                   insecure=settings.insecure if insecure is None else insecure)

    # -- the header grant (clients.HeaderGrant) ----------------------------------------------------------
    def allows(self, url: str) -> bool:
        """True when a request to ``url`` goes to an origin behind the proxy (the deployment's)."""
        found = origin(url)
        return found is not None and found in self.origins

    def value(self) -> str:
        """The header's value, ``Bearer <token>`` (as flytekit and the Flyte 2 SDK send it)."""
        return f"Bearer {self.credential.token()}"

    def current(self) -> tuple[str, str]:
        """``("proxy-authorization", "Bearer <token>")``, running the command when needed."""
        return PROXY_HEADER, self.value()

    def claims(self, response: requests.Response) -> bool:
        """True for the proxy's refusals (:func:`proxy_refused`)."""
        return proxy_refused(response)

    def renew(self, sent: str | None = None) -> None:
        """Run the command again after the proxy refused the header value ``sent`` (single flight)."""
        rejected = sent[len("Bearer "):] if isinstance(sent, str) and sent.startswith("Bearer ") else sent
        self.credential.renew(rejected)

    def __repr__(self) -> str:
        where = ", ".join(sorted(f"{s}://{h}:{p}" for s, h, p in self.origins))
        return f"ProxyAuth(program={self.credential.program!r}, origins=[{where}])"


__all__ = [
    "IAP_GENERATED",
    "PROXY_HEADER",
    "ProxyAuth",
    "ProxyCredential",
    "proxy_refused",
    "refresh_margin",
    "shared_credential",
]
