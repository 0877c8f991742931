"""``prompt`` of the browser sign-in (issue 18, item 5): None = OIDC Core 11's rule, a string as given, "" never."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from flyteauth_jupyter.config import ClientConfig
from flyteauth_jupyter.errors import ConfigurationError
from flyteauth_jupyter.flows.authcode import build_authorization_url, prompt_value


def url_prompt(scopes, prompt) -> list[str] | None:
    url = build_authorization_url("https://idp.test/auth?tenant=a", client_id="c", redirect_uri="http://127.0.0.1/cb",
                                  scopes=scopes, state="s", code_challenge="x" * 43, prompt=prompt)
    return parse_qs(urlsplit(url).query).get("prompt")


@pytest.mark.parametrize("scopes, prompt, sent", [
    (["openid", "offline_access"], None, ["consent"]),   # the default rule: consent with offline_access
    (["openid"], None, None),                            # nothing without it
    ("openid offline_access", "", None),                 # "" never sends one (Entra ID, Keycloak)
    (["openid"], "login", ["login"]),                    # a string is sent as given
    (["openid", "offline_access"], "select_account consent", ["select_account consent"]),
    (["openid"], "  none ", ["none"]),
])
def test_prompt_rule(scopes, prompt, sent) -> None:
    assert url_prompt(scopes, prompt) == sent


@pytest.mark.parametrize("bad", ["x" * 101, "consent\n", 5])
def test_a_bad_prompt_is_one_sentence(bad) -> None:
    with pytest.raises(ConfigurationError):
        prompt_value(bad, ["openid"])


def test_client_config_keeps_the_prompt() -> None:
    assert ClientConfig("t", "a", "r", "c").prompt is None
    assert ClientConfig("t", "a", "r", "c", prompt="").prompt == ""
