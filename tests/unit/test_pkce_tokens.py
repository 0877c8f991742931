"""PKCE (RFC 7636) and token-response parsing / error mapping (RFC 6749 5.1, 5.2)."""

from __future__ import annotations

import re

import pytest

from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.errors import (
    AccessDeniedError,
    ConfigurationError,
    ExpiredTokenError,
    InvalidClientError,
    InvalidGrantError,
    InvalidScopeError,
    OAuthError,
    ProtocolError,
    UnauthorizedClientError,
    oauth_error,
)
from flyteauth_jupyter.flows import pkce
from flyteauth_jupyter.flows.tokens import credentials_from_response, parse_expires_in
from flow_fakes import FakeClock

UNRESERVED = re.compile(r"^[A-Za-z0-9\-._~]+$")


def test_rfc7636_appendix_b_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce.code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_verifier_length_charset_and_freshness() -> None:
    seen = set()
    for _ in range(50):
        pair = pkce.new_pkce()
        assert 43 <= len(pair.verifier) <= 128
        assert UNRESERVED.match(pair.verifier)
        assert pair.method == "S256"
        assert pair.challenge == pkce.code_challenge(pair.verifier)
        assert "=" not in pair.challenge
        seen.add(pair.verifier)
    assert len(seen) == 50
    assert len(pkce.generate_code_verifier(32)) == 43
    assert len(pkce.generate_code_verifier(96)) == 128


def test_verifier_bounds_and_bad_verifiers_rejected() -> None:
    for bad in ("short", "x" * 129, "a" * 42, "ä" * 50, "a b" * 20):
        with pytest.raises(ConfigurationError):
            pkce.code_challenge(bad)
    with pytest.raises(ConfigurationError):
        pkce.generate_code_verifier(31)


def test_state_is_random_and_url_safe() -> None:
    states = {pkce.generate_state() for _ in range(50)}
    assert len(states) == 50
    assert all(UNRESERVED.match(s) and len(s) >= 43 for s in states)


def test_pkce_pair_repr_hides_verifier() -> None:
    pair = pkce.new_pkce()
    assert pair.verifier not in repr(pair)


# ------------------------------------------------------------------------------ token responses
def test_full_token_response() -> None:
    clock = FakeClock(start=5000.0)
    creds = credentials_from_response(
        {"access_token": "AT", "token_type": "Bearer", "expires_in": 300, "refresh_token": "RT", "id_token": "IDT",
         "scope": "api:read openid", "unknown_field": 1},
        endpoint="h:1", clock=clock,
    )
    assert (creds.access_token, creds.refresh_token, creds.id_token) == ("AT", "RT", "IDT")
    assert creds.expires_in == 300 and creds.expires_at == 5300.0
    assert creds.for_endpoint == "h:1"
    assert creds.scopes == ("api:read", "openid")


def test_token_type_is_case_insensitive_and_optional() -> None:
    for token_type in ("bearer", "BEARER", None):
        body = {"access_token": "AT"}
        if token_type:
            body["token_type"] = token_type
        assert credentials_from_response(body, endpoint="e").access_token == "AT"


def test_non_bearer_token_rejected() -> None:
    with pytest.raises(ProtocolError, match="Bearer"):
        credentials_from_response({"access_token": "AT", "token_type": "mac"}, endpoint="e")


@pytest.mark.parametrize("body", [{}, {"access_token": ""}, {"access_token": 5}, {"token_type": "Bearer"}])
def test_missing_access_token_is_protocol_error(body: dict) -> None:
    with pytest.raises(ProtocolError, match="without an access token"):
        credentials_from_response(body, endpoint="e", where="idp:1")


def test_expires_in_optional_and_lenient() -> None:
    assert parse_expires_in(None) is None
    assert parse_expires_in("3600") == 3600
    assert parse_expires_in(12.7) == 12
    assert parse_expires_in("soon") is None
    with pytest.raises(ProtocolError):
        parse_expires_in(-5)
    assert parse_expires_in(True) is None
    creds = credentials_from_response({"access_token": "AT"}, endpoint="e")
    assert creds.expires_in is None and creds.expires_at is None


def test_refresh_keeps_old_refresh_token_when_none_returned() -> None:
    old = Credentials("AT0", "RT0", "e", id_token="ID0", scopes=("api:read",))
    creds = credentials_from_response({"access_token": "AT1", "expires_in": 60}, endpoint="e", previous=old,
                                      requested_scopes=old.scopes)
    assert creds.refresh_token == "RT0" and creds.id_token == "ID0" and creds.scopes == ("api:read",)
    rotated = credentials_from_response({"access_token": "AT2", "refresh_token": "RT2"}, endpoint="e", previous=old)
    assert rotated.refresh_token == "RT2"


def test_missing_scope_means_requested_scopes() -> None:
    creds = credentials_from_response({"access_token": "AT"}, endpoint="e", requested_scopes=["a", "b"])
    assert creds.scopes == ("a", "b")


# ------------------------------------------------------------------------------ error mapping
@pytest.mark.parametrize(
    "code,cls",
    [
        ("access_denied", AccessDeniedError),
        ("expired_token", ExpiredTokenError),
        ("invalid_grant", InvalidGrantError),
        ("invalid_client", InvalidClientError),
        ("invalid_scope", InvalidScopeError),
        ("unauthorized_client", UnauthorizedClientError),
        ("invalid_request", OAuthError),
        ("server_error", OAuthError),
        ("something_new", OAuthError),
    ],
)
def test_error_codes_map_to_classes(code: str, cls: type) -> None:
    exc = oauth_error(code, "the description", status=400, where="idp.test:443")
    assert type(exc) is cls
    assert exc.error == code and exc.description == "the description" and exc.status == 400
    assert "idp.test:443" in str(exc) and "the description" in str(exc)
    assert len(str(exc)) <= 500


def test_denied_message_says_denied() -> None:
    exc = oauth_error("access_denied", "End-User aborted interaction")
    assert "denied" in str(exc).lower()


def test_hostile_error_fields_are_sanitised_and_clipped() -> None:
    exc = oauth_error("bad\ncode<script>", "line1\nline2\x00" + "x" * 2000, status=400)
    text = str(exc)
    assert "\n" not in text and "\x00" not in text and "<script>" not in text
    assert len(text) <= 500
    assert len(exc.description or "") <= 500
