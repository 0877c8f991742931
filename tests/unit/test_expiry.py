"""One expiry parser (DESIGN.md pinned 22): a JWT ``exp`` (and ``iat``) in seconds, in milliseconds or as
a numeric string means the same instant to every reader: Credentials, the Hub sign-in, the refresh
margin, and the keyring store (its own layout, the side entry it keeps, and reconciling the two SDK
layouts)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from flyteauth_jupyter.credentials import Credentials, jwt_times
from flyteauth_jupyter.flows.hub import Expected, HubSignInUnavailable, credentials_from_auth_state
from flyteauth_jupyter.lifecycle import refresh_margin
from flyteauth_jupyter.stores import KeyringStore, MemoryStore
from rig import rules
from rig.memory_keyring import MemoryKeyring

ISSUER = "http://127.0.0.1:30091"
SVC = "flyte.example.com:443"


def jwt(**claims: object) -> str:
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


FORMS = {
    "seconds": lambda t: t,
    "milliseconds": lambda t: t * 1000,
    "a numeric string": lambda t: str(t),
    "a numeric string of milliseconds": lambda t: str(t * 1000),
}


@pytest.mark.parametrize("form", FORMS)
def test_the_hub_refuses_an_expired_token_whatever_the_form_of_exp(form, reliability_rule):
    now = time.time()
    expired = jwt(iss=ISSUER, sub="alice", exp=FORMS[form](int(now) - 30))
    with pytest.raises(HubSignInUnavailable, match="expired"):
        credentials_from_auth_state({"access_token": expired}, expected=Expected(ISSUER), endpoint=SVC,
                                    where="hub:8081", now=now)
    fresh = jwt(iss=ISSUER, sub="alice", exp=FORMS[form](int(now) + 600))
    creds = credentials_from_auth_state({"access_token": fresh}, expected=Expected(ISSUER), endpoint=SVC,
                                        where="hub:8081", now=now)
    assert creds.expires_at == int(now) + 600
    # the Hub's own expires_at (an opaque token) is read by the same parser
    with pytest.raises(HubSignInUnavailable, match="expired"):
        credentials_from_auth_state({"access_token": "opaque-token-value", "id_token": jwt(iss=ISSUER),
                                     "expires_at": FORMS[form](int(now) - 30)},
                                    expected=Expected(ISSUER), endpoint=SVC, where="hub:8081", now=now)
    reliability_rule(rules.EXPIRY, "the Hub's sign-in: an expired token, exp (or the Hub's expires_at) in "
                     + ", ".join(FORMS), "refused as expired (HubSignInUnavailable)")


@pytest.mark.parametrize("form", FORMS)
def test_every_reader_reads_exp_and_iat_alike(form, reliability_rule):
    iat, exp = 1_800_000_000, 1_800_000_040  # a 40 s token: refresh 20 s before expiry
    token = jwt(iat=FORMS[form](iat), exp=FORMS[form](exp))
    assert jwt_times(token) == (iat, exp)
    assert Credentials(token).expires_at == exp
    assert refresh_margin(Credentials(token)) == 20.0
    reliability_rule(rules.EXPIRY, "exp and iat read by Credentials, the refresh margin, the keyring store and its two-layout reconciling",
                     "the same instant from every form")


@pytest.mark.parametrize("form", FORMS)
def test_the_keyring_store_takes_the_tokens_own_exp_over_its_side_entry(form):
    backend = MemoryKeyring()
    exp = int(time.time()) - 30  # expired, though the side entry (stale) says otherwise
    backend.entries[(SVC, "access_token")] = jwt(exp=FORMS[form](exp))
    backend.entries[(SVC, "expires_at")] = str(exp + 3600)
    loaded = KeyringStore(keyring=backend, flyte2=False, fallback=MemoryStore()).load(SVC)
    assert loaded is not None and loaded.expires_at == exp


@pytest.mark.parametrize("form", FORMS)
def test_reconciling_the_two_layouts_reads_exp_and_iat_alike(form):
    """flytekit rewrote its pair since our save: the expiry comes from its token's exp; the Flyte 2 pair
    issued later wins when neither pair is the one we wrote."""
    backend = MemoryKeyring()
    older = jwt(iat=FORMS[form](1_800_000_000), exp=FORMS[form](1_800_000_600))
    newer = jwt(iat=FORMS[form](1_800_000_100), exp=FORMS[form](1_800_000_700))
    backend.entries[(SVC, "access_token")] = older
    backend.entries[(SVC, "refresh_token")] = "kit-refresh-token"
    backend.entries[(SVC, "expires_at")] = "1900000000"
    backend.entries[(SVC, "tokens")] = json.dumps({"access_token": newer, "refresh_token": "flyte2-refresh-token"})
    backend.entries[(SVC, "flyteauth_pair")] = "0" * 32  # neither pair is the one we wrote
    loaded = KeyringStore(keyring=backend, fallback=MemoryStore()).load(SVC)
    assert loaded is not None and loaded.access_token == newer and loaded.expires_at == 1_800_000_700
    backend.entries[(SVC, "tokens")] = json.dumps({"access_token": older, "refresh_token": "x"})
    backend.entries[(SVC, "access_token")] = newer
    backend.entries[(SVC, "refresh_token")] = "kit-refresh-token-2"
    loaded = KeyringStore(keyring=backend, fallback=MemoryStore()).load(SVC)
    assert loaded is not None and loaded.access_token == newer and loaded.expires_at == 1_800_000_700
