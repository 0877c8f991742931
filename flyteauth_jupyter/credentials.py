"""``Credentials``: flytekit's token record plus an absolute expiry, with secrets kept out of reprs.

Field names and order are flytekit's (``flytekit.clients.auth.keyring.Credentials``):
``access_token, refresh_token=None, for_endpoint="flyte-default", expires_in=None, id_token=None``.
We add ``expires_at`` (epoch seconds). When only ``expires_in`` is given, ``expires_at`` is computed
from the clock at construction; when neither is given and the access token is a JWT, its ``exp``
claim (read, never verified) is used (DESIGN.md, pinned 4). ``repr()``/``str()`` show lengths only.
Every expiry passes ``validate.epoch_seconds``: an ``exp`` in milliseconds is read as seconds, and a
non-finite or absurd one (from a token, a store or a caller) means "unknown", never a crash later.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import ProtocolError
from .validate import MAX_LIFETIME, as_number, epoch_seconds, loads

DEFAULT_ENDPOINT = "flyte-default"


def jwt_claims(token: str | None) -> dict[str, Any]:
    """The claims of a JWT, read without verification; {} when ``token`` is not a JWT."""
    if not isinstance(token, str) or not token or token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    if len(payload) > 64 * 1024:
        return {}
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = loads(raw.decode("utf-8"), where="the token")
    except (ValueError, UnicodeDecodeError, binascii.Error, ProtocolError):
        return {}
    return claims if isinstance(claims, dict) else {}


def jwt_times(token: str | None) -> tuple[float | None, float | None]:
    """``(iat, exp)`` of a JWT in epoch seconds, each read by :func:`~flyteauth_jupyter.validate.epoch_seconds`
    (seconds, milliseconds or a numeric string; None when absent or unusable); (None, None) for a token
    that is not a JWT. The one way the package reads a token's own times (DESIGN.md pinned 22)."""
    claims = jwt_claims(token)
    return epoch_seconds(claims.get("iat")), epoch_seconds(claims.get("exp"))


def _redacted(value: str | None) -> str:
    return "None" if value is None else f"<redacted {len(value)} chars>"


@dataclass(eq=True)
class Credentials:
    """Tokens for one endpoint. Secrets never appear in ``repr``/``str``."""

    access_token: str | None
    refresh_token: str | None = None
    for_endpoint: str = DEFAULT_ENDPOINT
    expires_in: int | None = None
    id_token: str | None = None
    expires_at: float | None = field(default=None, compare=False)
    scopes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.expires_in is not None:
            seconds = as_number(self.expires_in)
            if seconds is None or not math.isfinite(seconds) or not -MAX_LIFETIME <= seconds <= MAX_LIFETIME:
                self.expires_in = None
            elif self.expires_at is None:
                self.expires_at = time.time() + seconds
        if self.expires_at is not None:
            self.expires_at = epoch_seconds(self.expires_at)
        if self.expires_at is None:
            self.expires_at = jwt_times(self.access_token)[1]
        if isinstance(self.scopes, str):
            self.scopes = tuple(self.scopes.split())
        else:
            self.scopes = tuple(self.scopes or ())

    # -- derived facts, no secrets ----------------------------------------------------------------
    def lifetime_left(self, now: float | None = None) -> float | None:
        """Seconds until expiry (negative once expired), or None when the expiry is unknown."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    @property
    def subject(self) -> str | None:
        """Who signed in: ``preferred_username``/``email``/``sub`` of the id token (unverified), else of the access token."""
        for token in (self.id_token, self.access_token):
            claims = jwt_claims(token)
            for key in ("preferred_username", "email", "name", "sub"):
                if isinstance(claims.get(key), str) and claims[key]:
                    return claims[key]
        return None

    def __repr__(self) -> str:
        return (
            f"Credentials(access_token={_redacted(self.access_token)}, "
            f"refresh_token={_redacted(self.refresh_token)}, for_endpoint={self.for_endpoint!r}, "
            f"expires_in={self.expires_in!r}, id_token={_redacted(self.id_token)}, "
            f"expires_at={self.expires_at!r})"
        )

    __str__ = __repr__
