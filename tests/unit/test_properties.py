"""Property-based tests (hypothesis) over every parser of server and user input (issue 10).

Each property: whatever the input, the parser returns or raises one of our exceptions
(``FlyteAuthError``; ``UsageError`` where IPython's argument parser speaks), within hypothesis'
per-example deadline, and no secret that was in the input appears in a message. Example counts are
modest (CI time); ``HYPOTHESIS_PROFILE=thorough`` runs ten times as many.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flyteauth_jupyter.config import config_from_documents
from flyteauth_jupyter.credentials import Credentials, jwt_claims
from flyteauth_jupyter.endpoint import check_server_url, parse_endpoint
from flyteauth_jupyter.errors import FlyteAuthError, oauth_error
from flyteauth_jupyter.flows.command import run_token_command
from flyteauth_jupyter.flows.device import parse_device_authorization
from flyteauth_jupyter.flows.tokens import credentials_from_response
from flyteauth_jupyter.transport.http import JsonResponse, Transport
from flyteauth_jupyter.transport.loopback import accept_pasted_redirect, interpret_redirect, read_pasted_redirect
from flyteauth_jupyter.validate import loads, scope_list, user_seconds

settings.register_profile("ci", max_examples=40, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=600, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SECRET = "sEcReT0token0Value0123456789abcXYZ"  # token-shaped, as real tokens are

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40), st.just(SECRET),
    st.sampled_from(["Bearer", "bearer", "DPoP", "", " ", "3600", "-1", "1e999", "NaN", "http://evil.example.com/x",
                     "https://idp.example.com/token", "authorization_pending", "slow_down", "invalid_grant"]),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                           max_leaves=6)
TOKEN_FIELDS = ["access_token", "token_type", "expires_in", "refresh_token", "id_token", "scope", "error",
                "error_description"]
DEVICE_FIELDS = ["device_code", "user_code", "verification_uri", "verification_uri_complete", "verification_url",
                 "expires_in", "interval", "error"]
META_FIELDS = ["issuer", "token_endpoint", "authorization_endpoint", "device_authorization_endpoint",
               "revocation_endpoint", "tokenEndpoint", "client_id", "clientId", "redirect_uri", "scopes",
               "authorization_metadata_key", "audience"]


def documents(fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(fields) | st.text(max_size=10), json_values, max_size=len(fields))


def only_ours(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; any exception must be a FlyteAuthError without the secret, at most 500 characters."""
    try:
        return fn(*args, **kwargs)
    except FlyteAuthError as exc:
        text = str(exc)
        assert SECRET not in text and len(text) <= 500, text
        assert SECRET not in (getattr(exc, "description", None) or "")
        return exc


# ------------------------------------------------------------------------------ server input
@given(documents(TOKEN_FIELDS))
def test_token_responses(body: dict[str, Any]) -> None:
    result = only_ours(credentials_from_response, body, endpoint="e", where="idp:1")
    if isinstance(result, Credentials):
        assert SECRET not in repr(result)
        assert result.expires_at is None or abs(result.expires_at) < 1e12


@given(documents(TOKEN_FIELDS), st.integers(min_value=100, max_value=599))
def test_oauth_error_bodies(body: dict[str, Any], status: int) -> None:
    response = JsonResponse(status=status, data=body, where="idp:1")
    only_ours(response.raise_for_error, "token request")


@given(st.text(max_size=200), st.text(max_size=300))
def test_oauth_error_texts_are_scrubbed(code: str, description: str) -> None:
    error = oauth_error(code, f"{description} {SECRET}", status=400, where="idp:1")
    assert SECRET not in str(error) and SECRET not in (error.description or "") and len(str(error)) <= 500


@given(documents(DEVICE_FIELDS))
def test_device_authorization_responses(body: dict[str, Any]) -> None:
    result = only_ours(parse_device_authorization, body, where="idp:1")
    if not isinstance(result, FlyteAuthError):
        assert 1 <= result.interval <= 3600 and result.expires_in > 0
        assert "device_code" not in repr(result) or SECRET not in repr(result)


@settings(max_examples=25)
@given(documents(META_FIELDS), documents(META_FIELDS), st.one_of(st.none(), documents(META_FIELDS)), st.booleans())
def test_metadata_and_discovery_documents(client: dict, meta: dict, issuer_meta: Any, insecure: bool) -> None:
    only_ours(config_from_documents, client, meta, issuer_meta, where="flyte:443", insecure=insecure)


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
                 json_values.map(lambda v: json.dumps(v, allow_nan=True))))
def test_json_bodies(text: str) -> None:
    only_ours(loads, text, where="idp:1")


@given(st.binary(max_size=400), st.sampled_from(["application/json", "text/html", "text/plain", "",
                                                 "application/json; charset=bogus"]),
       st.integers(min_value=100, max_value=599))
def test_http_bodies(body: bytes, ctype: str, status: int) -> None:
    response = requests.Response()
    response.status_code, response._content = status, body
    response.headers["Content-Type"] = ctype
    only_ours(Transport._parse, response, body, "http://127.0.0.1:1/token", "POST")


@given(st.text(max_size=200))
def test_jwt_claims_and_expiry(token: str) -> None:
    from flyteauth_jupyter.notebook.state import clock_time

    assert isinstance(jwt_claims(token), dict)
    creds = Credentials(token)
    clock_time(creds.expires_at)  # the panel and %flyte_status can always show it


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=20)))
@example(-62_135_510_401)  # found by CI: a year-1 `exp` made the panel's clock raise "year 0 is out of range"
def test_jwt_exp_values(exp: Any) -> None:
    import base64

    from flyteauth_jupyter.notebook.state import clock_time

    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}, allow_nan=True).encode()).rstrip(b"=").decode()
    creds = Credentials(f"e30.{payload}.sig")
    clock_time(creds.expires_at)


# ------------------------------------------------------------------------------ redirects and pastes
query_values = st.one_of(st.text(max_size=30), st.just(SECRET), st.just("s1"))
queries = st.dictionaries(st.sampled_from(["code", "state", "error", "error_description", "iss", "x"]), query_values,
                          max_size=5)


@given(queries, st.one_of(st.none(), st.text(max_size=30)))
def test_redirect_query_strings(params: dict[str, str], issuer: Any) -> None:
    response, error = interpret_redirect(params, issuer)
    if error is not None:
        assert isinstance(error, FlyteAuthError) and SECRET not in str(error)


@given(st.one_of(st.text(max_size=300), queries.map(lambda q: "http://127.0.0.1:5/callback?" + "&".join(
    f"{k}={v}" for k, v in q.items()))))
def test_pasted_addresses(text: str) -> None:
    only_ours(read_pasted_redirect, text)
    only_ours(accept_pasted_redirect, text, state="s1", path_ok=lambda p: p == "/callback", expected_issuer=None)


# ------------------------------------------------------------------------------ user input
@given(st.one_of(st.text(max_size=80), st.sampled_from([
    "https://user:" + SECRET + "@flyte.example.com", "user:" + SECRET + "@h:443", "http://evil.example.com",
    "dns:///h:99999", "https://[::1]:30080", "http://[::1", "h:port", "https://h/path?q#f", "\x00", "https://h:0"])),
       st.booleans())
def test_endpoints(text: str, insecure: bool) -> None:
    only_ours(parse_endpoint, text, insecure=insecure)
    only_ours(check_server_url, text, what="token endpoint", where="flyte:443", insecure=insecure)


@given(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=20)))
def test_user_timeouts(value: Any) -> None:
    result = only_ours(user_seconds, value)
    assert result is None or isinstance(result, FlyteAuthError) or 0 < result <= 86400


@given(st.one_of(st.text(max_size=60), st.lists(st.one_of(st.text(max_size=20), st.integers()), max_size=5)))
def test_scopes(value: Any) -> None:
    result = only_ours(scope_list, value)
    if isinstance(result, tuple):
        assert all(s and not any(c.isspace() for c in s) for s in result)


@settings(max_examples=15)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=3))
def test_command_output(output: bytes, status: int) -> None:
    script = ("import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1])); "
              f"sys.stderr.write('token {SECRET} rejected'); sys.exit(int(sys.argv[2]))")
    only_ours(run_token_command, [sys.executable, "-c", script, output.hex(), str(status)], timeout=20)


MAGIC_WORDS = ["--endpoint", "--timeout", "--scopes", "--flow", "--client-id", "--insecure", "--audience",
               "--name", "--ca-cert", "--proxy", "--no-cache", "inf", "nan", "-1", "1e400", "30", "device", "pkce",
               "auto", "openid offline_access", "'quoted", '"', "http://127.0.0.1:9", "https://u:" + SECRET + "@h",
               "http://evil.example.com", "127.0.0.1:9", "x y", "/nonexistent/ca.pem", "0"]


@pytest.fixture(scope="module")
def magics() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    from flyteauth_jupyter.notebook.magics import FlyteAuthMagics

    return FlyteAuthMagics(shell=InteractiveShell.instance())  # the process's shell, whichever test made it


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.sampled_from(MAGIC_WORDS) | st.text(max_size=12), max_size=6))
def test_magic_arguments(magics: Any, words: list[str]) -> None:
    from IPython.core.error import UsageError
    from flyteauth_jupyter.notebook.options import parse_args, unquoted

    line = " ".join(words)
    try:
        args = unquoted(parse_args(magics.flyte_login, line))
    except UsageError as exc:
        assert SECRET not in str(exc)
        return
    only_ours(magics.build_spec, args, name="flyte_auth")


HUB_FIELDS = ["access_token", "id_token", "refresh_token", "expires_at", "token_response", "auth_state", "name"]


@given(documents(HUB_FIELDS), st.one_of(st.none(), st.text(max_size=20), st.just("https://idp.example.com")))
def test_hub_answers(user_model: dict[str, Any], issuer: Any) -> None:
    from flyteauth_jupyter.flows.hub import Expected, auth_state_of, credentials_from_auth_state

    state = only_ours(auth_state_of, user_model, where="hub:8081")
    if isinstance(state, dict):
        only_ours(credentials_from_auth_state, state, expected=Expected(issuer), endpoint="flyte:443",
                  where="hub:8081", now=1_700_000_000.0)


# ------------------------------------------------------------------ issuer discovery and form bodies
ISSUER_FIELDS = META_FIELDS + ["code_challenge_methods_supported", "token_endpoint_auth_methods_supported",
                               "scopes_supported"]


@given(documents(ISSUER_FIELDS))
def test_issuer_documents_give_a_config_or_our_error(doc: dict[str, Any]) -> None:
    from flyteauth_jupyter.config import ClientConfig, IssuerClientConfigStore

    store = IssuerClientConfigStore("https://idp.example.com", "client")
    result = only_ours(store._config, doc)
    if isinstance(result, ClientConfig):
        assert result.token_endpoint.startswith("https://")
        assert all(isinstance(s, str) and s for s in result.scopes)


@given(st.binary(max_size=2000), st.integers(min_value=100, max_value=599))
def test_form_bodies_parse_to_strings_or_our_error(body: bytes, status: int) -> None:
    from flyteauth_jupyter.transport.http import _form_body

    result = only_ours(_form_body, body, where="idp.test:443", status=status)
    if isinstance(result, dict):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())
