"""Sign-in from JupyterHub's own login (pinned detail 17): the protocol, without I/O.

A single-user server started by JupyterHub has ``$JUPYTERHUB_API_URL``, ``$JUPYTERHUB_API_TOKEN``
(the server's own token) and ``$JUPYTERHUB_USER``. When the Hub's authenticator keeps the user's
tokens (``auth_state``, e.g. oauthenticator with ``enable_auth_state``) and grants the scope
``admin:auth_state!user`` to the ``server`` and ``user`` roles, ``GET {api}/users/{name}`` returns
them. This module decides, from what was read:

* :func:`hub_context`: are we under a Hub (and with what), from an environment mapping;
* :func:`auth_state_of`: the ``auth_state`` of a user model, or why the Hub does not share it;
* :func:`credentials_from_auth_state`: the access token as :class:`Credentials` when it is for the
  Flyte endpoint (its issuer is the endpoint's identity provider; its audience the one the endpoint
  names, when it names one) and not expired; else :class:`HubSignInUnavailable` with one sentence.
  They name the user (:func:`hub_user_name`) even when the access token does not: opaque tokens and
  JWTs without a name claim are common, and the Hub knows the user from its id token and its own
  user model, so the panel says "Signed in as alice" as every other flow does;
* :func:`reused_reason`: the panel's sentence for a reused Hub login, naming the Hub by its public
  address (``$JUPYTERHUB_PUBLIC_HUB_URL``, set when the Hub's ``public_url`` is), else just "JupyterHub":
  ``$JUPYTERHUB_API_URL`` is an internal address (``hub:8081``, ``127.0.0.1:8081``) the user never
  sees; refusals that quote an HTTP status still name it (pinned 7: host:port and status).

The Hub's refresh token belongs to the Hub's confidential client: it is never read into
Credentials, so the kernel can neither spend nor cache it. Near expiry the kernel asks the Hub again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from ..credentials import Credentials, jwt_claims, jwt_times
from ..errors import AuthenticationError, ProtocolError
from ..validate import epoch_seconds

#: the scope (on both the ``server`` and ``user`` roles) that lets a user's server read auth_state
AUTH_STATE_SCOPE = "admin:auth_state!user"
MAX_TOKEN_CHARS = 16_384
MAX_SECONDS = 10 * 365 * 24 * 3600  # an expiry further away than this is not a real one
MAX_NAME_CHARS = 256
#: the claims that name a person, in the order they are read (``sub`` is often an opaque id)
NAME_CLAIMS = ("preferred_username", "email", "name")
#: where a single-user server learns the Hub's public address (JupyterHub 4.1+; empty when unset)
PUBLIC_URL_VARIABLES = ("JUPYTERHUB_PUBLIC_HUB_URL", "JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_HOST")


class HubSignInUnavailable(AuthenticationError):
    """The Hub's sign-in cannot be used for this endpoint; the message says why in one sentence."""


@dataclass(frozen=True)
class HubContext:
    """The Hub this server runs under: API URL, user name and the server's API token (never shown)."""

    api_url: str
    user: str
    token: str = field(repr=False)
    #: the Hub's public address (what the user's browser shows), when the Hub says it
    public_url: str | None = None

    @property
    def where(self) -> str:
        """The Hub's API address (host:port): for sentences that quote an HTTP status from it."""
        parts = urlsplit(self.api_url)
        return parts.netloc or "the Hub"

    @property
    def public_name(self) -> str | None:
        """The Hub's public host[:port], or None when the Hub does not say it."""
        if not self.public_url:
            return None
        parts = urlsplit(self.public_url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host  # an IPv6 literal
        return f"{host}:{parts.port}" if parts.port else host  # never a user:password@ in it

    @property
    def user_url(self) -> str:
        return f"{self.api_url.rstrip('/')}/users/{quote(self.user, safe='')}"


def hub_context(env: Mapping[str, str]) -> HubContext | None:
    """The Hub from ``env`` (``JUPYTERHUB_API_URL``/``_API_TOKEN``/``_USER``), or None when not on one."""
    api_url = (env.get("JUPYTERHUB_API_URL") or "").strip()
    token = (env.get("JUPYTERHUB_API_TOKEN") or env.get("JPY_API_TOKEN") or "").strip()
    user = (env.get("JUPYTERHUB_USER") or "").strip()
    if not (api_url and token and user) or urlsplit(api_url).scheme not in ("http", "https"):
        return None
    return HubContext(api_url, user, token, public_url=_public_url(env))


def _public_url(env: Mapping[str, str]) -> str | None:
    """The first of :data:`PUBLIC_URL_VARIABLES` that is an http(s) URL with a host, else None."""
    for name in PUBLIC_URL_VARIABLES:
        value = (env.get(name) or "").strip()
        try:
            parts = urlsplit(value)
            host, _port = parts.hostname, parts.port  # .port raises on a port that is not one
        except ValueError:
            continue
        if parts.scheme in ("http", "https") and host and value.isprintable() and len(value) <= 2048:
            return value
    return None


def reused_reason(ctx: HubContext) -> str:
    """The panel's flow line for a reused Hub login: the Hub by its public address, else just by name."""
    shown = f" ({ctx.public_name})" if ctx.public_name else ""
    return f"your JupyterHub login{shown} is reused, no click needed"


def missing_hub_reason(env: Mapping[str, str]) -> str:
    """Why :func:`hub_context` found no Hub (one sentence)."""
    names = [n for n in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER") if not env.get(n)]
    if names:
        return f"This kernel does not run under JupyterHub ({', '.join(names)} not set)."
    return "JUPYTERHUB_API_URL is not an http(s) URL."


def auth_state_of(user_model: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """The user's ``auth_state`` from ``GET /users/{name}``'s answer, or why it is not there."""
    if "auth_state" not in user_model:
        raise HubSignInUnavailable(
            f"The Hub at {where} does not share your sign-in with your server; its administrator must grant "
            f"the scope {AUTH_STATE_SCOPE} to both the server and the user roles."
        )
    state = user_model["auth_state"]
    if state is None:
        raise HubSignInUnavailable(
            f"The Hub at {where} keeps no tokens for you (its authenticator needs enable_auth_state, "
            "or you signed in before that was on: sign in to the Hub again)."
        )
    if not isinstance(state, dict):
        raise ProtocolError(f"The Hub at {where} sent an auth_state that is not a JSON object.")
    return state


@dataclass(frozen=True)
class Expected:
    """What the Flyte endpoint trusts: its identity provider's issuer and, when named, the audience."""

    issuer: str | None
    audience: str | None = None


def _same_issuer(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _expiry(token: str, auth_state: Mapping[str, Any], now: float) -> float | None:
    """The token's ``exp``, else the Hub's ``expires_at``, by the package's one expiry parser (seconds,
    milliseconds or a numeric string: ``validate.epoch_seconds``); one further away than ten years is none."""
    for value in (jwt_times(token)[1], epoch_seconds(auth_state.get("expires_at"))):
        if value is not None and 0 < value < now + MAX_SECONDS:
            return value
    return None


@dataclass(eq=True, repr=False)  # repr=False: Credentials' own repr, which shows no token
class HubCredentials(Credentials):
    """The Hub's access token, with the user's name as the Hub knows it (:func:`hub_user_name`)."""

    name: str | None = field(default=None, compare=False)

    @property
    def subject(self) -> str | None:
        return self.name or super().subject


def _name(value: object) -> str | None:
    if isinstance(value, str) and value.strip() and value.isprintable():
        return value.strip()[:MAX_NAME_CHARS]
    return None


def hub_user_name(auth_state: Mapping[str, Any], hub_user: object = None) -> str | None:
    """Who signed in, for the panel: a naming claim (:data:`NAME_CLAIMS`) of the Hub's id token, then
    of its access token (a JWT; an opaque token says nothing), then the user's name on the Hub (the
    user model's ``name``, what the Hub shows them), then the tokens' ``sub``. Claims are read, never
    verified: this is what the panel shows, not a decision."""
    id_token = auth_state.get("id_token")
    tokens = [jwt_claims(id_token if isinstance(id_token, str) else None)]
    access = auth_state.get("access_token")
    tokens.append(jwt_claims(access if isinstance(access, str) else None))
    for claims in tokens:
        for claim in NAME_CLAIMS:
            if (found := _name(claims.get(claim))) is not None:
                return found
    if (found := _name(hub_user)) is not None:
        return found
    for claims in tokens:
        if (found := _name(claims.get("sub"))) is not None:
            return found
    return None


def credentials_from_auth_state(
    auth_state: Mapping[str, Any], *, expected: Expected, endpoint: str, where: str, now: float,
    hub_user: object = None,
) -> HubCredentials:
    """The Hub's access token for ``endpoint`` (service name), checked against ``expected``, naming the
    user (``hub_user``: the user model's ``name``) by :func:`hub_user_name`."""
    token = auth_state.get("access_token")
    if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_CHARS or not token.isprintable():
        raise HubSignInUnavailable(f"The Hub at {where} keeps no usable access token for you; sign in to the Hub again.")
    claims = jwt_claims(token)
    id_claims = jwt_claims(auth_state.get("id_token") if isinstance(auth_state.get("id_token"), str) else None)
    issuer = claims.get("iss") if isinstance(claims.get("iss"), str) else id_claims.get("iss")
    if not expected.issuer:
        raise HubSignInUnavailable(
            f"{endpoint} names no issuer for its identity provider, so the Hub's token cannot be checked against it."
        )
    if not isinstance(issuer, str) or not issuer:
        raise HubSignInUnavailable(
            f"The Hub at {where} keeps a token that names no issuer, so it cannot be checked against {endpoint}'s "
            "identity provider."
        )
    if not _same_issuer(issuer, expected.issuer):
        raise HubSignInUnavailable(
            f"The Hub at {where} signs you in at {_origin(issuer)}, but {endpoint} trusts {_origin(expected.issuer)}."
        )
    if expected.audience:
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []
        if not claims:
            raise HubSignInUnavailable(
                f"The Hub's access token is opaque, so its audience cannot be checked against {expected.audience!r} "
                f"that {endpoint} expects."
            )
        if expected.audience not in audiences:
            shown = ", ".join(repr(a[:80]) for a in audiences[:3]) or "no audience"
            raise HubSignInUnavailable(
                f"The Hub's token is for {shown}, not {expected.audience[:80]!r} that {endpoint} expects; the Hub "
                "must ask for the Flyte API's scope when you sign in."
            )
    expires_at = _expiry(token, auth_state, now)
    if expires_at is not None and expires_at <= now:
        raise HubSignInUnavailable(
            f"The Hub at {where} handed out an expired token and did not refresh it; its administrator must "
            "enable refresh_user (auth_refresh_age) with a refresh before expiry."
        )
    scope = auth_state.get("scope")
    scopes = tuple(s for s in scope if isinstance(s, str)) if isinstance(scope, list) else ()
    return HubCredentials(token.strip(), for_endpoint=endpoint, expires_at=expires_at, scopes=scopes,
                          name=hub_user_name(auth_state, hub_user))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url[:80]


__all__ = [
    "AUTH_STATE_SCOPE",
    "Expected",
    "HubContext",
    "HubCredentials",
    "HubSignInUnavailable",
    "auth_state_of",
    "credentials_from_auth_state",
    "hub_context",
    "hub_user_name",
    "missing_hub_reason",
    "reused_reason",
]
