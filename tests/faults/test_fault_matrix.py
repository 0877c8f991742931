"""The fault matrix: each fault, over real sockets, against each sign-in path (issue 10).

A ``FaultServer`` (tests/faults/servers.py) stands in front of the real IdP (tests/idp) and the
FlyteAdmin stand-in: healthy, it relays; with a fault set, it misbehaves. For every (fault, path):

1. the attempt ends with a ``FlyteAuthError`` of the expected kind, within its deadline (small
   timeouts via the constructors' ``http_timeout=`` / ``http_deadline=``; pytest-timeout guards it),
   with a message of at most 500 characters that names the host:port, says what to do and holds
   nothing shaped like a token;
2. once the fault is gone, the next attempt signs in for real.

Each outcome is recorded (``reliability_record``) for the README's fault matrix.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Callable
from urllib.parse import urlsplit

import pytest
from faults.servers import (
    FaultServer,
    Request,
    hang,
    redirect_loop,
    refused_port,
    relay,
    respond,
    truncated,
    wrong_types,
)

from flyteauth_jupyter import (
    ClientConfig,
    ClientCredentialsAuthenticator,
    Credentials,
    DeviceCodeAuthenticator,
    PKCEAuthenticator,
    StaticClientConfigStore,
)
from flyteauth_jupyter.config import RemoteClientConfigStore
from flyteauth_jupyter.errors import FlyteAuthError, ProtocolError, TransportError, TransportTimeoutError, scrub
from flyteauth_jupyter.flows.events import DeviceCodeIssued
from flyteauth_jupyter.stores import MemoryStore
from rig.idp import CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, NATIVE_CLIENT
from rig.netparts import make_tls_material

pytestmark = pytest.mark.idp

FAULT_HTTP = {"http_timeout": (1.0, 1.0), "http_deadline": 2.5}  # the attempt under a fault
HEALTHY_HTTP = {"http_timeout": (5.0, 20.0), "http_deadline": 40.0}  # the attempt after it (a loaded machine)
PATHS = ("metadata", "client-credentials", "refresh", "device", "pkce")
HTML = "<html><body><h1>{status}</h1><p>upstream trouble</p></body></html>"
ADVICE = re.compile(r"check|try again|sign in|run the login|pass |use |fix|add ", re.I)


def _html(status: int) -> Callable[..., None]:
    return respond(status, HTML.format(status=status), "text/html")


#: case -> (how the fault is made, the error classes it must end in)
CASES: dict[str, tuple[Any, tuple[type[FlyteAuthError], ...]]] = {
    "refused": ("refused", (TransportError,)),
    "accepted, never answered": (hang, (TransportTimeoutError,)),
    "answered after the timeout": (respond(200, '{"access_token": "late"}', delay=3.0), (TransportTimeoutError,)),
    "500 HTML": (_html(500), (ProtocolError,)),
    "502 HTML": (_html(502), (ProtocolError,)),
    "503 HTML": (_html(503), (ProtocolError,)),
    "truncated JSON": (truncated('{"access_token": "abc", "token_ty'), (TransportError,)),
    "wrong types": (wrong_types, (ProtocolError,)),
    # a token-shaped text that is neither JSON nor a form (application/x-www-form-urlencoded is GitHub's
    # dialect and is decoded: tests/unit/test_dialects.py)
    "wrong content type": (respond(200, "access_token=abc&token_type=bearer", "text/plain"), (ProtocolError,)),
    "redirect loop": (redirect_loop, (TransportError, ProtocolError)),
    "self-signed certificate": ("tls", (TransportError,)),
}


# ------------------------------------------------------------------------------------- the rig
class Front:
    """The fault server in front of the IdP and FlyteAdmin; ``healthy()`` makes it relay."""

    def __init__(self, idp: Any, admin: Any, tls: tuple[str, str] | None = None) -> None:
        self.idp, self.admin = idp, admin
        self.server = FaultServer(self._route, tls=tls)

    def _route(self, server: FaultServer, conn: Any, request: Request) -> None:
        admin_paths = ("/config/v1/flyte_client", "/.well-known/oauth-authorization-server")
        port = self.admin.port if request.target.startswith(admin_paths) else self.idp.port
        relay(port)(server, conn, request)

    def healthy(self) -> None:
        self.server.behaviour = self._route

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def where(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def config(self) -> ClientConfig:
        """Token and device endpoints through the front; the browser's pages at the IdP itself."""
        return ClientConfig(
            token_endpoint=self.url + urlsplit(self.idp.token_endpoint).path,
            authorization_endpoint=self.idp.authorization_endpoint,
            redirect_uri=f"http://127.0.0.1:{refused_port()}/callback",
            client_id=NATIVE_CLIENT,
            device_authorization_endpoint=self.url + urlsplit(self.idp.device_authorization_endpoint).path,
            scopes=["openid", "offline_access"],
        )


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_tls_material(tmp_path_factory.mktemp("fault-tls"))


@pytest.fixture(scope="module")
def fronts(idp: Any, flyteadmin: Any, tls_files: Any) -> Any:
    plain = Front(idp, flyteadmin)
    secure = Front(idp, flyteadmin, tls=(str(tls_files.server_cert), str(tls_files.server_key)))
    yield plain, secure
    plain.server.stop()
    secure.server.stop()


class Grant:
    """The refresh path's grant: a refresh token from one real device login, kept current as it rotates."""

    def __init__(self) -> None:
        self.creds: Credentials | None = None
        self.seen: set[str] = {CONFIDENTIAL_SECRET}

    def keep(self, creds: Credentials) -> Credentials:
        self.creds = creds
        self.seen.update(t for t in (creds.access_token, creds.refresh_token, creds.id_token) if t)
        return creds


@pytest.fixture(scope="module")
def grant() -> Grant:
    return Grant()


def device_approver(device_user: Any) -> Callable[[Any], None]:
    def observer(event: Any) -> None:
        if isinstance(event, DeviceCodeIssued):
            device_user.complete_in_thread(event.verification_uri, event.user_code,
                                           verification_uri_complete=event.verification_uri_complete)

    return observer


def browser_follower(auth_code_user: Any) -> Callable[[str], bool]:
    def opener(url: str) -> bool:
        threading.Thread(target=lambda: _follow(auth_code_user, url), daemon=True).start()
        return True

    return opener


def _follow(user: Any, url: str) -> None:
    try:
        user.follow(url)
    except Exception:  # noqa: BLE001 - the flow's own error is what the test looks at
        pass


def attempt(path: str, front: Front, http: dict[str, Any], *, grant: Grant, device_user: Any, auth_code_user: Any,
            verify: Any = None) -> Any:
    """One attempt at ``path`` through ``front``: the result, or the exception raised."""
    cfg = StaticClientConfigStore(front.config())
    common = dict(verify=verify, **http)
    if path == "metadata":
        RemoteClientConfigStore.clear_cache()
        return RemoteClientConfigStore(front.url, verify=verify, timeout=http["http_timeout"],
                                       deadline=http["http_deadline"]).get_client_config()
    if path == "client-credentials":
        auth = ClientCredentialsAuthenticator(front.url, CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, cfg,
                                              scopes=["api:read"], **common)
        return auth.refresh_credentials()
    if path == "refresh":
        if grant.creds is None:
            login = DeviceCodeAuthenticator(front.idp.issuer, cfg, store=MemoryStore(), timeout=60,
                                            observer=device_approver(device_user), **HEALTHY_HTTP)
            front.healthy()
            grant.keep(login.refresh_credentials())
        auth = DeviceCodeAuthenticator(front.url, cfg, store=MemoryStore(), timeout=30, **common)
        auth._set_credentials(Credentials(grant.creds.access_token, grant.creds.refresh_token, auth.service,
                                          expires_at=1.0))
        return grant.keep(auth.refresh_credentials(interactive=False))
    if path == "device":
        auth = DeviceCodeAuthenticator(front.url, cfg, store=MemoryStore(), timeout=60,
                                       observer=device_approver(device_user), **common)
        return grant.keep(auth.refresh_credentials())
    if path == "pkce":
        auth = PKCEAuthenticator(front.url, cfg, store=MemoryStore(), timeout=60,
                                 open_browser=browser_follower(auth_code_user), **common)
        return grant.keep(auth.refresh_credentials())
    raise AssertionError(path)


def check_message(exc: BaseException, where: str, secrets: set[str]) -> str:
    text = str(exc)
    assert isinstance(exc, FlyteAuthError), repr(exc)
    assert len(text) <= 500 and "<html" not in text.lower()
    assert not any(s and s in text for s in secrets)
    assert scrub(text, limit=1000) == " ".join(text.split()), f"token-shaped text in: {text}"
    assert where in text, text
    assert ADVICE.search(text), f"no advice in: {text}"
    return text


# ------------------------------------------------------------------------------------- the matrix
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(CASES))
def test_fault(case: str, path: str, fronts: Any, grant: Grant, device_user: Any, auth_code_user: Any,
               tls_files: Any, reliability_record: Any) -> None:
    plain, secure = fronts
    how, expected = CASES[case]
    front = secure if how == "tls" else plain
    kwargs = dict(grant=grant, device_user=device_user, auth_code_user=auth_code_user)
    if path == "refresh" and grant.creds is None:
        attempt("refresh", plain, HEALTHY_HTTP, **kwargs)  # the grant this path refreshes
    if how == "refused":
        front.server.pause()
    elif how != "tls":
        front.server.behaviour = how
    started = time.monotonic()
    try:
        with pytest.raises(FlyteAuthError) as info:
            attempt(path, front, FAULT_HTTP, **kwargs)
        elapsed = time.monotonic() - started
    finally:
        if how == "refused":
            front.server.resume()
        front.healthy()
    text = check_message(info.value, front.where, grant.seen)
    assert isinstance(info.value, expected), f"{type(info.value).__name__}: {text}"
    reliability_record(
        "fault-matrix",
        {"case": case, "path": path, "outcome": f"{type(info.value).__name__}, {elapsed:.1f} s"},
        matrix=("case", "path", "outcome"),
        order=10,
        title="Fault matrix: error class and time to error (then the next attempt succeeds)",
        note=(f"Timeouts under a fault: connect {FAULT_HTTP['http_timeout'][0]:g} s, read "
              f"{FAULT_HTTP['http_timeout'][1]:g} s, one deadline of {FAULT_HTTP['http_deadline']:g} s per call "
              "(metadata: per configuration fetch); PKCE times include the sign-in pages before the token request. Every message names host:port, says what to do and has "
              "nothing shaped like a token; generated by tests/faults/test_fault_matrix.py."),
    )
    # the fault is gone: the next attempt signs in (TLS: with the CA bundle the message asked for)
    verify = str(tls_files.ca_cert) if how == "tls" else None
    result = attempt(path, front, HEALTHY_HTTP, verify=verify, **kwargs)
    assert result is not None
    if path != "metadata":
        assert result.access_token
