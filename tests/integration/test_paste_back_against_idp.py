"""Paste-back against the real provider: the browser is on "another machine", so its redirect never
reaches the kernel's loopback receiver; the user pastes the address the browser ended on.

The rig's AuthCodeUser signs in with ``get_redirect=False`` (the laptop's browser shows a connection
error; its address bar keeps the redirect) and the test hands that address to
``PKCEAuthenticator.submit_redirect``. The token is checked at the FlyteAdmin stand-in's API.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests

from flyteauth_jupyter import PKCEAuthenticator
from flyteauth_jupyter.errors import AccessDeniedError, StateMismatchError
from flyteauth_jupyter.stores import MemoryStore

pytestmark = pytest.mark.idp


def call_api(admin: Any, metadata: tuple[str, str] | None) -> int:
    assert metadata is not None
    with requests.Session() as s:
        s.trust_env = False
        return s.get(admin.url("/api/v1/projects"), headers=dict([metadata]), timeout=10).status_code


def with_state(url: str, state: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["state"] = state
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


class RemoteBrowser:
    """An ``open_browser`` callable: a person on another machine signs in and pastes the final address.

    ``first_paste`` (optional) turns the final address into something pasted before the real one
    (e.g. a stale tab's address); its outcome is recorded. ``paste`` turns the final address into what
    is pasted (default: all of it).
    """

    def __init__(self, user: Any, auth_ref: list[PKCEAuthenticator], *, action: str = "approve",
                 first_paste: Any = None, paste: Any = None) -> None:
        self.user = user
        self.auth_ref = auth_ref
        self.action = action
        self.first_paste = first_paste
        self.paste = paste or (lambda final: final)
        self.outcome: dict[str, Any] = {}
        self.done = threading.Event()

    def __call__(self, url: str) -> bool:
        threading.Thread(target=self._person, args=(url,), daemon=True).start()
        return False  # no browser could be opened on the kernel's machine

    def _person(self, url: str) -> None:
        auth = self.auth_ref[0]
        try:
            final = self.user.follow(url, action=self.action, get_redirect=False)
            self.outcome["final_url"] = final
            self.outcome["redirect_requested"] = self.user.last_redirect_status is not None
            if self.first_paste is not None:
                try:
                    auth.submit_redirect(self.first_paste(final))
                    self.outcome["first"] = "accepted"
                except StateMismatchError as exc:
                    self.outcome["first"] = exc
                self.outcome["still_waiting"] = auth.awaiting_redirect
            auth.submit_redirect(self.paste(final))
            self.outcome["pasted"] = True
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.outcome["error"] = exc
        finally:
            self.done.set()


def remote_login(admin: Any, user: Any, **kwargs: Any) -> tuple[PKCEAuthenticator, RemoteBrowser]:
    ref: list[PKCEAuthenticator] = []
    browser = RemoteBrowser(user, ref, **kwargs)
    auth = PKCEAuthenticator(admin.endpoint, None, store=MemoryStore(), open_browser=browser, timeout=30)
    ref.append(auth)
    return auth, browser


def test_pasted_redirect_signs_in(flyteadmin: Any, auth_code_user: Any) -> None:
    auth, browser = remote_login(flyteadmin, auth_code_user)
    creds = auth.refresh_credentials()
    assert browser.done.wait(10) and "error" not in browser.outcome, browser.outcome
    assert browser.outcome["pasted"] and not browser.outcome["redirect_requested"]  # nothing reached the loopback
    final = browser.outcome["final_url"]
    assert "code=" in final and urlsplit(final).hostname == "127.0.0.1"
    assert creds.access_token and creds.refresh_token and creds.subject == "alice"
    assert not auth.awaiting_redirect
    assert call_api(flyteadmin, auth.fetch_grpc_call_auth_metadata()) == 200


def test_wrong_state_paste_is_refused_then_the_right_one_signs_in(flyteadmin: Any, auth_code_user: Any) -> None:
    auth, browser = remote_login(flyteadmin, auth_code_user, first_paste=lambda final: with_state(final, "stale-tab"))
    creds = auth.refresh_credentials()
    assert browser.done.wait(10) and "error" not in browser.outcome, browser.outcome
    refused = browser.outcome["first"]
    assert isinstance(refused, StateMismatchError) and browser.outcome["still_waiting"] is True
    code = parse_qs(urlsplit(browser.outcome["final_url"]).query)["code"][0]
    assert code not in str(refused)
    assert call_api(flyteadmin, auth.fetch_grpc_call_auth_metadata()) == 200
    assert creds.subject == "alice"


def test_query_only_paste_signs_in(flyteadmin: Any, auth_code_user: Any) -> None:
    auth, browser = remote_login(flyteadmin, auth_code_user, paste=lambda final: "?" + urlsplit(final).query)
    auth.refresh_credentials()
    assert browser.done.wait(10) and "error" not in browser.outcome, browser.outcome
    assert call_api(flyteadmin, auth.fetch_grpc_call_auth_metadata()) == 200


def test_pasted_denial_ends_the_login_as_denied(flyteadmin: Any, auth_code_user: Any) -> None:
    auth, browser = remote_login(flyteadmin, auth_code_user, action="deny")
    with pytest.raises(AccessDeniedError, match="denied"):
        auth.refresh_credentials()
    assert browser.done.wait(10) and "error=access_denied" in browser.outcome["final_url"]
    assert auth.get_credentials() is None
