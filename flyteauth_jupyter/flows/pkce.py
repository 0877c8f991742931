"""RFC 7636 PKCE and the OAuth ``state``: fresh, ``secrets``-based values for every authorization attempt.

``new_pkce()`` returns a verifier (86 characters from the unreserved set, 512 bits of entropy) and its
S256 challenge; ``generate_state()`` a 43-character URL-safe random string. Only S256 is offered:
a client that can do S256 must (RFC 7636 section 4.2). The verifier is a secret and stays out of reprs.

``check_s256(methods, where)``: PKCE is used whenever the server's metadata does not list
``code_challenge_methods_supported`` (Amazon Cognito supports PKCE without advertising it:
akuity/kargo#4003); only a list that names methods but not S256 is refused.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field

from collections.abc import Iterable

from ..errors import ConfigurationError, ProtocolError

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
CHALLENGE_METHOD = "S256"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def generate_code_verifier(nbytes: int = 64) -> str:
    """A code verifier: base64url of ``nbytes`` random octets (32..96), i.e. 43..128 characters."""
    if not 32 <= nbytes <= 96:
        raise ConfigurationError("A PKCE code verifier needs 32 to 96 random bytes (43 to 128 characters).")
    return _b64url(secrets.token_bytes(nbytes))


def code_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(verifier)))`` without padding (the S256 method)."""
    if not isinstance(verifier, str) or not _VERIFIER.match(verifier):
        raise ConfigurationError("A PKCE code verifier must be 43 to 128 characters from A-Z a-z 0-9 - . _ ~.")
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def generate_state(nbytes: int = 32) -> str:
    """An unguessable ``state`` value for one authorization request (CSRF protection)."""
    return secrets.token_urlsafe(nbytes)


@dataclass(frozen=True)
class PKCEPair:
    """A verifier (secret) and its challenge; ``method`` is always S256."""

    verifier: str = field(repr=False)
    challenge: str
    method: str = CHALLENGE_METHOD


def check_s256(methods: Iterable[str] | None, where: str = "the server") -> None:
    """Refuse a server whose metadata lists PKCE methods without S256; absent or empty means "try S256"."""
    listed = [m for m in (methods or ()) if isinstance(m, str)]
    if listed and CHALLENGE_METHOD not in listed:
        shown = ", ".join(m[:20] for m in listed[:5])
        raise ProtocolError(
            f"{where} supports only the PKCE methods {shown}, not S256, which this client requires (RFC 7636 "
            "section 4.2); ask its administrator to enable S256."
        )


def new_pkce() -> PKCEPair:
    """A fresh verifier and challenge; call once per authorization attempt."""
    verifier = generate_code_verifier()
    return PKCEPair(verifier=verifier, challenge=code_challenge(verifier))


__all__ = ["CHALLENGE_METHOD", "PKCEPair", "check_s256", "code_challenge", "generate_code_verifier", "generate_state", "new_pkce"]
