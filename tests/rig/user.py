"""A "user" who signs in on the test IdPs' pages as a person would, with requests.

``DeviceUser.complete(...)`` opens the verification page, enters or confirms the user code, signs in
and allows (or denies / aborts). ``AuthCodeUser.follow(url)`` follows an authorize URL through login
and consent to the client's redirect, GETs that redirect (so a loopback receiver gets it) and returns
it. Pages are recognised by stable ids that both test IdPs use (tests/idp/provider.js and the
templates of tests/idp2): ``login-form``, ``consent-form``, ``deny-form``, ``#error``, ``#done``,
plus each one's device-code form. Both walk whatever page comes next, so the order differs freely:
node-oidc-provider asks for the code, then the sign-in; django-oauth-toolkit the other way round.
Each run is bounded in steps and time. Nothing here prints or logs tokens or codes.
"""

from __future__ import annotations

import concurrent.futures
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

MAX_STEPS = 20
#: The form where a person types the user code: tests/idp's (oidc-provider's id) and tests/idp2's.
DEVICE_CODE_FORMS = ("op.deviceInputForm", "device-code-form")


class LoginPageError(Exception):
    """The IdP showed an error on a page (``#error``); ``.text`` is that text."""

    def __init__(self, text: str, *, url: str = "", code: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.url = url
        self.code = code  # data-error attribute, e.g. NotFoundError, invalid_redirect_uri


# --------------------------------------------------------------------------------- HTML reading
@dataclass
class Form:
    id: str
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Page:
    url: str
    status: int
    title: str = ""
    forms: dict[str, Form] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # element id -> text
    attrs: dict[str, dict[str, str]] = field(default_factory=dict)  # element id -> attributes
    buttons: list[dict[str, str]] = field(default_factory=list)

    def has(self, element_id: str) -> bool:
        return element_id in self.texts

    def first_form(self) -> Form | None:
        return next(iter(self.forms.values()), None)


class _Parser(HTMLParser):
    VOID = {"input", "meta", "link", "br", "img", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.forms: dict[str, Form] = {}
        self.texts: dict[str, str] = {}
        self.attrs: dict[str, dict[str, str]] = {}
        self.buttons: list[dict[str, str]] = []
        self._form: Form | None = None
        self._open: list[tuple[str, str | None]] = []  # (tag, id)
        self._in_title = False

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        eid = attrs.get("id")
        if eid:
            self.texts.setdefault(eid, "")
            self.attrs[eid] = attrs
        if tag == "title":
            self._in_title = True
        if tag == "form":
            fid = eid or f"form{len(self.forms)}"
            self._form = Form(fid, attrs.get("action", ""), attrs.get("method", "get").lower())
            self.forms[fid] = self._form
        elif tag == "input" and attrs.get("name"):
            target = self.forms.get(attrs["form"]) if attrs.get("form") else self._form
            if target is not None and attrs.get("type", "text") not in ("submit", "button", "image"):
                target.fields[attrs["name"]] = attrs.get("value", "")
        elif tag == "button":
            self.buttons.append({**attrs, "_form": attrs.get("form") or (self._form.id if self._form else "")})
        if tag not in self.VOID:
            self._open.append((tag, eid))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag == "form":
            self._form = None
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        for _, eid in self._open:
            if eid:
                self.texts[eid] += data


def parse_page(response: requests.Response) -> Page:
    parser = _Parser()
    parser.feed(response.text)
    parser.close()
    texts = {k: " ".join(v.split()) for k, v in parser.texts.items()}
    return Page(response.url, response.status_code, parser.title.strip(), parser.forms, texts, parser.attrs, parser.buttons)


def new_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # a proxy in the environment must never see loopback traffic
    s.headers["User-Agent"] = "flyteauth-rig-user/1"
    return s


class _Person:
    def __init__(self, *, timeout: float = 10.0, session: requests.Session | None = None) -> None:
        self.timeout = timeout
        self.session = session or new_session()

    def _submit(self, page: Page, form: Form, extra: dict[str, str] | None = None,
                allow_redirects: bool = True) -> requests.Response:
        data = {**form.fields, **(extra or {})}
        url = urljoin(page.url, form.action or page.url)
        if form.method == "post":
            return self.session.post(url, data=data, timeout=self.timeout, allow_redirects=allow_redirects)
        return self.session.get(url, params=data, timeout=self.timeout, allow_redirects=allow_redirects)

    @staticmethod
    def _raise_error(page: Page) -> None:
        raise LoginPageError(page.texts.get("error", "") or page.title, url=page.url,
                             code=page.attrs.get("error", {}).get("data-error", ""))


# -------------------------------------------------------------------------------------- device
class DeviceUser(_Person):
    """Completes a device login (RFC 8628) on the IdP's pages."""

    def complete(
        self,
        verification_uri: str,
        user_code: str,
        *,
        verification_uri_complete: str | None = None,
        username: str = "alice",
        password: str = "wonderland",
        action: str = "approve",
        wrong_password: bool = False,
        wrong_code: bool = False,
    ) -> dict[str, Any]:
        """Returns ``{"status": "approved"|"denied"|"aborted", "final_url": ...}``.

        ``wrong_code`` types a wrong code, ``wrong_password`` signs in with a wrong password: both
        raise LoginPageError with the page's #error text. Any unexpected #error raises too.
        """
        if action not in ("approve", "deny", "abort"):
            raise ValueError(f"action must be approve, deny or abort, not {action!r}")
        s, t = self.session, self.timeout
        if verification_uri_complete and not wrong_code:
            page = parse_page(s.get(verification_uri_complete, timeout=t))
        else:
            page = parse_page(s.get(verification_uri, timeout=t))
        code = "WRNG-CODE" if wrong_code else user_code
        for _ in range(MAX_STEPS):
            if page.has("done"):
                return {"status": "approved", "final_url": page.url}
            if "login-form" in page.forms:  # before the code (tests/idp2) or after it (tests/idp)
                if page.has("error"):
                    self._raise_error(page)  # a wrong password, shown again
                pw = password + "-wrong" if wrong_password else password
                page = parse_page(self._submit(page, page.forms["login-form"], {"username": username, "password": pw}))
                continue
            code_form = next((f for f in DEVICE_CODE_FORMS if f in page.forms), None)
            if code_form is not None:
                if page.has("error"):
                    self._raise_error(page)  # a wrong, expired or used code
                page = parse_page(self._submit(page, page.forms[code_form], {"user_code": code}))
                continue
            if "op.deviceConfirmForm" in page.forms:  # tests/idp: "is this the code on your device?"
                extra = {"abort": "yes"} if action == "abort" else {}
                page = parse_page(self._submit(page, page.forms["op.deviceConfirmForm"], extra))
                if action == "abort":
                    return {"status": "aborted", "final_url": page.url, "message": page.texts.get("error", "")}
                continue
            if "consent-form" in page.forms:  # tests/idp2 has no separate abort: Deny it is
                form = page.forms["consent-form" if action == "approve" else "deny-form"]
                page = parse_page(self._submit(page, form))
                if action != "approve":
                    status = "denied" if action == "deny" else "aborted"
                    return {"status": status, "final_url": page.url, "message": page.texts.get("error", "")}
                continue
            form = page.first_form()
            if form is None or page.has("error"):
                self._raise_error(page)
            # oidc-provider answers verification_uri_complete with a self-submitting form
            # (xsrf + user_code): submit it as its script would
            page = parse_page(self._submit(page, form))
        raise LoginPageError(f"device login did not finish in {MAX_STEPS} steps", url=page.url)

    def complete_in_thread(self, *args: Any, **kwargs: Any) -> "concurrent.futures.Future[dict[str, Any]]":
        """``complete(...)`` in a daemon thread; returns a Future with its result or exception."""
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self.complete(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the Future
                future.set_exception(exc)

        threading.Thread(target=run, name="device-user", daemon=True).start()
        return future


# ---------------------------------------------------------------------------------- auth code
class AuthCodeUser(_Person):
    """Follows an authorization URL through the IdP's login and consent pages to the redirect.

    By default every ``follow`` uses a fresh cookie session (a fresh browser profile);
    ``keep_session=True`` keeps the IdP session between calls (the second login skips the password).
    """

    def __init__(self, *, timeout: float = 10.0, keep_session: bool = False) -> None:
        super().__init__(timeout=timeout)
        self.keep_session = keep_session
        self.last_redirect_status: int | None = None

    def follow(
        self,
        authorize_url: str,
        username: str = "alice",
        password: str = "wonderland",
        action: str = "approve",
        *,
        get_redirect: bool = True,
    ) -> str:
        """Returns the final redirect URL (``...?code=...&state=...`` or ``...?error=...``).

        action: ``approve`` (sign in, Allow), ``deny`` (sign in, Deny) or ``abort`` (Cancel on the
        login page). A page with ``#error`` (e.g. invalid_redirect_uri, wrong password) raises
        LoginPageError.
        """
        if action not in ("approve", "deny", "abort"):
            raise ValueError(f"action must be approve, deny or abort, not {action!r}")
        if not self.keep_session:
            self.session.close()
            self.session = new_session()
        idp_origin = _origin(authorize_url)
        url, method, data = authorize_url, "GET", None
        for _ in range(MAX_STEPS):
            r = self.session.request(method, url, data=data, timeout=self.timeout, allow_redirects=False)
            if r.is_redirect:
                url = urljoin(r.url, r.headers["Location"])
                method, data = "GET", None
                if _origin(url) != idp_origin:
                    if get_redirect:
                        self._get_redirect(url)
                    return url
                continue
            page = parse_page(r)
            if "login-form" in page.forms:
                if page.has("error"):
                    self._raise_error(page)
                if action == "abort" and "cancel-form" in page.forms:
                    form, fields = page.forms["cancel-form"], {}
                else:
                    form, fields = page.forms["login-form"], {"username": username, "password": password}
            elif "consent-form" in page.forms:
                form, fields = page.forms["consent-form" if action == "approve" else "deny-form"], {}
            else:
                self._raise_error(page)
            url = urljoin(page.url, form.action or page.url)
            method, data = form.method.upper(), {**form.fields, **fields}
        raise LoginPageError(f"authorization did not reach a redirect in {MAX_STEPS} steps", url=url)

    def _get_redirect(self, url: str) -> None:
        try:
            r = self.session.get(url, timeout=self.timeout, allow_redirects=False)
            self.last_redirect_status = r.status_code
        except requests.RequestException:
            self.last_redirect_status = None  # nobody listening: a browser would show an error page


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


# ------------------------------------------------------------------------------ device approver
class DeviceApprover:
    """A person watching for device codes: completes each user code the IdP issues after it starts.

    It reads the IdP's test-only feed ``GET /rig/device-codes`` (user codes and verification URLs,
    what a user sees on the screen; never a device code), so a kernel that shows a code in a widget
    (nbval, the browser suite) gets it approved without anyone scraping the kernel's output. Runs in
    a daemon thread polling every ``poll`` seconds; ``stop()`` ends it; ``results`` lists outcomes.
    """

    def __init__(self, issuer: str, *, action: str = "approve", username: str = "alice",
                 password: str = "wonderland", poll: float = 0.2) -> None:
        self.issuer = issuer.rstrip("/")
        self.action, self.username, self.password, self.poll = action, username, password, poll
        self.results: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._seen: set[str] = set()
        self._thread: threading.Thread | None = None

    def _issued(self) -> list[dict[str, Any]]:
        resp = requests.get(f"{self.issuer}/rig/device-codes", timeout=5)
        resp.raise_for_status()
        return list(resp.json()["issued"])

    def start(self) -> "DeviceApprover":
        self._seen = {item["user_code"] for item in self._issued()}  # only codes issued from now on
        self._thread = threading.Thread(target=self._run, name="device-approver", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                fresh = [item for item in self._issued() if item["user_code"] not in self._seen]
            except requests.RequestException:
                continue  # the IdP is going away at the end of a run
            for item in fresh:
                self._seen.add(item["user_code"])
                try:
                    outcome = DeviceUser().complete(
                        item["verification_uri"], item["user_code"],
                        verification_uri_complete=item.get("verification_uri_complete"),
                        username=self.username, password=self.password, action=self.action,
                    )
                except Exception as exc:  # noqa: BLE001 - recorded for the test to inspect
                    outcome = {"status": "error", "error": str(exc)}
                self.results.append({"user_code": item["user_code"], **outcome})

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "DeviceApprover":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
