"""Which tokens belong to one grant (issue 16.2): the one rule every store uses before it puts an
access token, a refresh token and an id token from different writes side by side.

Tokens are combined only when they provably belong to one grant: the same access token, the same
refresh token, or JWTs naming the same subject (``sub``, and ``iss`` where both carry one). An opaque
token proves nothing, so "unknown" means "not the same grant": the newer whole pair is kept and the
rest of the other dropped. Dropping costs at worst a new sign-in; combining wrongly pairs one
person's refresh token with another's access token (the status shows the wrong user, and the next
refresh silently switches identity). The keyring's layouts add one more proof, the fingerprint of
the pair we last wrote (``layouts.pair_mark``). Claims are read, never verified: they only decide
what to keep together, never whom to trust.
"""

from __future__ import annotations

import dataclasses

from ..credentials import Credentials, jwt_claims


def _subject(token: str | None) -> tuple[str | None, str] | None:
    claims = jwt_claims(token)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        return None
    iss = claims.get("iss")
    return (iss if isinstance(iss, str) and iss else None, sub)


def same_subject(one: str | None, other: str | None) -> bool | None:
    """Whether two tokens name the same subject: True, False, or None when that cannot be told
    (either is not a JWT with ``sub``, or both name an issuer and the issuers differ, as Azure's
    access and id tokens do: their ``sub`` values are not comparable)."""
    a, b = _subject(one), _subject(other)
    if a is None or b is None:
        return None
    if a[0] is not None and b[0] is not None and a[0] != b[0]:
        return None
    return a[1] == b[1]


def same_grant(one: Credentials, other: Credentials) -> bool:
    """True only when ``one`` and ``other`` provably belong to one grant (see the module doc)."""
    if one.access_token and one.access_token == other.access_token:
        return True
    if one.refresh_token and one.refresh_token == other.refresh_token:
        return True
    for mine, theirs in ((one.access_token, other.access_token), (one.id_token, other.id_token)):
        same = same_subject(mine, theirs)
        if same is not None:
            return same
    return False


def id_token_fits(creds: Credentials) -> bool | None:
    """Whether ``creds.id_token`` names the subject of its access token (None: cannot be told)."""
    if not creds.id_token:
        return True
    return same_subject(creds.access_token, creds.id_token)


def merge_saved(old: Credentials | None, new: Credentials) -> Credentials:
    """What a store keeps when ``new`` is saved over ``old``: a missing refresh or id token is taken
    from ``old`` only when both belong to one grant (RFC 6749: keep the refresh token when none comes
    back); otherwise ``new`` alone, and nothing of ``old`` survives beside it."""
    if old is None or (new.refresh_token and new.id_token) or not same_grant(old, new):
        return new
    merged = dataclasses.replace(new, expires_at=new.expires_at)
    merged.refresh_token = new.refresh_token or old.refresh_token
    merged.id_token = new.id_token or old.id_token
    return merged
