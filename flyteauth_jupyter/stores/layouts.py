"""The keyring's two layouts read as one pair: which pair a reader takes, and whether the layouts
must be rewritten (DESIGN.md pinned 18; issues 16.1 and 16.2). Pure functions, no keyring I/O:
:mod:`.keyring_store` reads a :class:`Snapshot` and does what the :class:`Decision` says.

The fingerprint entry ``flyteauth_pair`` (``PAIR_MARK``) is also a write marker. A writer of ours
holds the store's cross-process lock and writes, in this order: the marker ``w:<fingerprint of the
new pair>``, then flytekit's refresh token, id token, expiry and lifetime, then its access token,
then the Flyte 2 ``tokens`` entry, then the plain fingerprint. A sign-out writes ``w:-`` first and
removes the marker last. A reader reads the marker, flytekit's entries (access token first), the
``tokens`` entry, and the marker again (a sequence lock):

* the same plain fingerprint both times: no write of ours overlapped the read (settled);
* anything else (a ``w:`` marker, or two different values): a write of ours was in progress, or a
  writer died half-way. Then only a layout that matches the fingerprint being written is a whole pair
  (flytekit's access token is written after its other entries, so a reader that saw the new access
  token saw the rest new too); failing that, flytekit's entries without their side entries (its
  refresh token is written before its access token, so a torn read may pair an older access token
  with a newer refresh token, never the reverse). A pair with one layout mid-write is never taken
  as the newer one.

Settled reads decide "newer" as before: the layout that no longer matches the fingerprint was
rewritten by its SDK after our save, so it is newer; when neither matches (both written since, or
never by us), the access tokens' JWT ``iat`` (then ``exp``) decide, and failing that flytekit's
layout. Tokens of the two layouts are combined only when they belong to one grant (:mod:`.grants`,
or the combination is exactly the pair we last wrote); otherwise the newer whole pair wins and what
is left of the other is dropped (issue 16.2).

A :class:`Decision` with ``rewrite`` is carried out only under the store's cross-process lock after
reading again; a reader that cannot take the lock at once returns its pair and writes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib

from ..credentials import Credentials, jwt_claims, jwt_times
from .grants import id_token_fits, same_grant

#: prefix of the marker while a write of ours is in progress (``w:-``: a sign-out in progress)
PENDING = "w:"
DELETING = PENDING + "-"


def pair_mark(access: str | None, refresh: str | None) -> str:
    """A fingerprint of a token pair (not reversible; safe beside the tokens themselves)."""
    return hashlib.sha256(f"{access or ''}\n{refresh or ''}".encode("utf-8")).hexdigest()[:32]


def _mark_of(creds: Credentials | None) -> str | None:
    return None if creds is None else pair_mark(creds.access_token, creds.refresh_token)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One read of both layouts: flytekit's pair, the Flyte 2 pair, the marker before and after."""

    kit: Credentials | None
    two: Credentials | None
    before: str | None = None
    after: str | None = None

    @property
    def settled(self) -> bool:
        """No write of ours overlapped this read (the marker was the same plain fingerprint, or absent, twice)."""
        return self.before == self.after and not (self.before or "").startswith(PENDING)


@dataclasses.dataclass(frozen=True)
class Decision:
    """The pair a reader takes, and whether both layouts must be rewritten with it (under the lock)."""

    creds: Credentials | None
    rewrite: bool = False


def decide(snap: Snapshot) -> Decision:
    """The pair to use for ``snap`` (see the module doc)."""
    if snap.settled:
        return _settled(snap.kit, snap.two, snap.after)
    return _unsettled(snap)


def _settled(kit: Credentials | None, two: Credentials | None, mark: str | None) -> Decision:
    stored_id = kit.id_token if kit is not None else None
    kit = _trusted(kit, whole=mark is None or mark == _mark_of(kit))
    if two is None:  # one layout: rewritten only to drop an id token of another sign-in
        return Decision(kit, rewrite=bool(stored_id) and kit is not None and not kit.id_token)
    if kit is None:
        return Decision(_alone(two), rewrite=True)
    joined = _joined(kit, two, mark)
    refresh_two = two.refresh_token or (kit.refresh_token if joined else None)
    if two.access_token == kit.access_token and refresh_two == kit.refresh_token:
        return Decision(kit)
    kit_mark, two_mark = _mark_of(kit), pair_mark(two.access_token, refresh_two)
    if mark == kit_mark and mark != two_mark:
        flyte2_newer = True
    elif mark == two_mark and mark != kit_mark:
        flyte2_newer = False
    else:  # both written since our save (or never by us): the tokens' own times, else flytekit's layout
        kit_time, two_time = _issued(kit), _issued(two)
        flyte2_newer = kit_time is not None and two_time is not None and two_time > kit_time
    if not flyte2_newer:
        return Decision(kit, rewrite=True)
    winner = Credentials(
        access_token=two.access_token,
        refresh_token=refresh_two,
        for_endpoint=kit.for_endpoint,
        id_token=kit.id_token if joined else None,
    )
    return Decision(winner, rewrite=True)


def _unsettled(snap: Snapshot) -> Decision:
    if snap.after == DELETING:  # a sign-out in progress (or cut short): nothing is kept
        return Decision(None, rewrite=True)
    if snap.after is None:  # the marker went away meanwhile: a sign-out finished
        return Decision(None)
    target = snap.after.removeprefix(PENDING)  # the pair being written, or written last
    kit, two = snap.kit, snap.two
    if kit is not None and target == _mark_of(kit):
        return Decision(_trusted(kit, whole=True), rewrite=True)
    if two is not None and target == _mark_of(two):
        return Decision(_alone(two), rewrite=True)
    if kit is not None and kit.access_token:
        return Decision(_trusted(kit, whole=False), rewrite=True)
    return Decision(None if two is None else _alone(two), rewrite=True)


def _trusted(kit: Credentials | None, *, whole: bool) -> Credentials | None:
    """flytekit's pair with only the side entries known to describe it. ``whole``: the pair is the one
    we wrote with its expiry and id token; otherwise flytekit rewrote it since (or the read was torn)
    and our expiry entries describe an older token, and the id token counts only when it names the
    access token's subject. An id token naming another subject is never kept."""
    if kit is None:
        return None
    fits = id_token_fits(kit)
    if whole:
        return kit if fits is not False else dataclasses.replace(kit, id_token=None, expires_at=kit.expires_at)
    return Credentials(
        access_token=kit.access_token,
        refresh_token=kit.refresh_token,
        for_endpoint=kit.for_endpoint,
        id_token=kit.id_token if fits is True else None,
    )  # expiry: the access token's own exp claim, if any (pinned 4)


def _alone(two: Credentials) -> Credentials:
    return Credentials(access_token=two.access_token, refresh_token=two.refresh_token, for_endpoint=two.for_endpoint)


def _joined(kit: Credentials, two: Credentials, mark: str | None) -> bool:
    """Whether the Flyte 2 pair and flytekit's belong to one grant (issue 16.2)."""
    if same_grant(kit, two):
        return True
    if jwt_claims(kit.access_token).get("sub") and jwt_claims(two.access_token).get("sub"):
        return False  # two subjects were compared above and differ
    return mark is not None and mark in (
        pair_mark(two.access_token, kit.refresh_token),
        pair_mark(kit.access_token, two.refresh_token),
    )


def _issued(creds: Credentials) -> tuple[float, float] | None:
    iat, exp = jwt_times(creds.access_token)
    return None if iat is None and exp is None else (iat or 0.0, exp or 0.0)
