"""One normal form for origins (DESIGN.md pinned 22): IDNA host, lower case, explicit port.

``BearerAuth`` and the gRPC plug-in decide who gets the token by comparing origins; requests sends an
internationalised host in punycode, so the authenticator's Unicode endpoint must compare equal to it.
"""

from __future__ import annotations

import idna
import pytest
from rig import rules
import requests
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flyteauth_jupyter.clients import BearerAuth, _authority
from flyteauth_jupyter.endpoint import origin

TOKEN = "Bearer idn-token-0123456789abcdef"

# labels of letters from a few scripts (and ASCII), which IDNA 2008 may or may not accept
_LETTERS = st.sampled_from("abcxyzäöüßéèñçøåłżšđ" "бвгдежзик" "αβγδεζ" "日本語中文" "0123456789")
_LABEL = st.text(_LETTERS, min_size=1, max_size=12)


def _a_label_host(labels: list[str]) -> tuple[str, str] | None:
    host = ".".join(labels)
    try:
        return host, idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return None


@settings(max_examples=100, deadline=None)
@given(labels=st.lists(_LABEL, min_size=1, max_size=3), scheme=st.sampled_from(["http", "https"]),
       port=st.one_of(st.none(), st.integers(1, 65535)), upper=st.booleans())
def test_unicode_and_punycode_spellings_are_one_origin(labels, scheme, port, upper):
    pair = _a_label_host(labels)
    assume(pair is not None)
    unicode_host, ascii_host = pair
    at = f":{port}" if port is not None else ""
    spellings = [f"{scheme}://{unicode_host}{at}/a", f"{scheme}://{ascii_host}{at}/b?c=d"]
    if upper:
        spellings.append(f"{scheme.upper()}://{ascii_host.upper()}{at}")  # (upper-casing "ß" gives "SS": another host)
    found = {origin(url) for url in spellings}
    expected = (scheme, ascii_host.lower(), port if port is not None else {"http": 80, "https": 443}[scheme])
    assert found == {expected}
    # the normal form is a fixed point, and the form gRPC's authority takes agrees with it
    assert origin(f"{expected[0]}://{expected[1]}:{expected[2]}") == expected
    assert _authority(f"{scheme}://{unicode_host}{at}/pkg.Service") == f"{expected[1]}:{expected[2]}"


@given(st.text(max_size=60))
def test_origin_never_raises(text):
    result = origin(text)
    assert result is None or (result[0] in ("http", "https") and result[1] == result[1].lower() and 0 < result[2] < 65536)


def test_default_ports_are_explicit_and_other_schemes_have_no_origin():
    assert origin("https://flyte.example.com") == origin("https://FLYTE.example.com:443/x") == ("https", "flyte.example.com", 443)
    assert origin("http://flyte.example.com") == ("http", "flyte.example.com", 80)
    assert origin("https://flyte.example.com:80") != origin("http://flyte.example.com")
    assert origin("ftp://flyte.example.com") is None and origin("flyte.example.com") is None
    assert origin("https://[::1]:8443/x") == ("https", "::1", 8443)


class IdnAuthenticator:
    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url

    def fetch_grpc_call_auth_metadata(self) -> tuple[str, str]:
        return ("authorization", TOKEN)


@pytest.mark.parametrize("endpoint", ["https://bücher.example", "https://xn--bcher-kva.example", "https://BÜCHER.example:443"])
@pytest.mark.parametrize("request_url", ["https://bücher.example/api/v1/projects", "https://xn--bcher-kva.example/api/v1/projects"])
def test_bearer_auth_sends_the_token_to_an_idn_deployment(endpoint, request_url, reliability_rule):
    prepared = requests.Request("GET", request_url).prepare()
    assert prepared.url.startswith("https://xn--bcher-kva.example/")  # what requests really sends to
    BearerAuth(IdnAuthenticator(endpoint))(prepared)
    assert prepared.headers.get("authorization") == TOKEN
    reliability_rule(rules.ORIGINS, "requests to an internationalised deployment (https://bücher.example)",
                     "token sent to xn--bcher-kva.example:443 only; not to look-alike hosts, http or another port")


def test_bearer_auth_keeps_the_token_from_a_lookalike_idn_host():
    for url in ("https://bucher.example/x", "https://xn--bcher-kva.example.evil/x", "http://bücher.example/x",
                "https://bücher.example:8443/x"):
        prepared = requests.Request("GET", url).prepare()
        BearerAuth(IdnAuthenticator("https://bücher.example"))(prepared)
        assert "authorization" not in prepared.headers, url


def test_extra_origins_in_unicode_match_punycode_requests():
    class Anywhere:
        def fetch_grpc_call_auth_metadata(self) -> tuple[str, str]:
            return ("authorization", TOKEN)

    prepared = requests.Request("GET", "https://xn--mnchen-3ya.example/x").prepare()
    BearerAuth(Anywhere(), origins=["https://München.example"])(prepared)
    assert prepared.headers.get("authorization") == TOKEN
