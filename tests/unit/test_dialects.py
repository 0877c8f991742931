"""The dialect suite (issue 18, item 2): our real flow code against recorded answers of the big providers.

Each row names its source (a provider's docs or an issue thread, quoted in tests/rig/dialects.py and
docs/identity-providers.md), runs one of our flows (device, authorization code + PKCE, client
credentials, refresh, discovery) over real HTTP against ``rig.dialects.DialectServer`` on 127.0.0.1,
with a fake clock wherever waiting matters (no real waiting for intervals), and checks the outcome:
credentials, or the exact typed error and its sentence, plus what our client sent (grant type,
``device_code`` or Entra v1's ``code``, ``audience``, ``Accept``, PKCE parameters, scopes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from flyteauth_jupyter.control import Waiter
from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.errors import (
    AccessDeniedError,
    AuthenticationError,
    ExpiredTokenError,
    InvalidGrantError,
    ProtocolError,
)
from flyteauth_jupyter.flows import authcode, client_credentials, device, refresh
from flyteauth_jupyter.flows.events import AuthorizationRequested, DeviceCodeIssued, Polling, SlowedDown
from flyteauth_jupyter.transport.http import Transport, build_session
from flow_fakes import FakeClock
from rig.dialects import (
    COGNITO_POOL,
    Answer,
    Dialect,
    DialectServer,
    auth0,
    cognito,
    dex,
    entra_pending,
    entra_v1,
    entra_v2,
    github,
    google,
    keycloak17,
    okta,
    token,
)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def transport() -> Transport:
    session = build_session()
    session.trust_env = False  # loopback only, whatever proxy the environment names
    return Transport(session, timeout=(5, 10), deadline=15)


@dataclass
class Run:
    """What a row's flow produced: the credentials (or None), the events, the fake clock."""

    creds: Credentials | None = None
    events: list[Any] = field(default_factory=list)
    clock: FakeClock = field(default_factory=FakeClock)
    extra: dict[str, Any] = field(default_factory=dict)

    def first(self, kind: type) -> Any:
        return next(e for e in self.events if isinstance(e, kind))


def device_login(server: DialectServer, run: Run, *, timeout: float | None = None, **kw: Any) -> Run:
    d = server.dialect
    kw.setdefault("client_id", "notebook-client")
    waiter = Waiter(timeout, what="the device login", clock=run.clock)
    run.creds = device.run_device_flow(
        transport(), device_authorization_endpoint=server.url(d.device_path), token_endpoint=server.url(d.token_path),
        waiter=waiter, endpoint="dialect.test", observer=run.events.append, **kw,
    )
    return run


def follow(url: str) -> bool:
    """The person's browser: follow the stand-in's redirect into our loopback receiver (in a thread)."""

    def go() -> None:
        with requests.Session() as s:
            s.trust_env = False
            s.get(url, timeout=10)

    threading.Thread(target=go, daemon=True).start()
    return True


def pkce_login(server: DialectServer, run: Run, cfg: Any = None, **kw: Any) -> Run:
    d = server.dialect
    waiter = Waiter(30, what="the browser sign-in")  # the real clock: this wait is on the loopback receiver
    endpoints = {
        "authorization_endpoint": cfg.authorization_endpoint if cfg else server.url(d.authorize_path),
        "token_endpoint": cfg.token_endpoint if cfg else server.url(d.token_path),
    }
    kw.setdefault("client_id", "notebook-client")
    run.creds = authcode.run_authcode_flow(
        transport(), redirect_uri="http://127.0.0.1/callback", waiter=waiter, endpoint="dialect.test",
        observer=run.events.append, open_browser=follow, **endpoints, **kw,
    )
    return run


def discover(issuer: str, **kw: Any) -> Any:
    from flyteauth_jupyter.config import IssuerClientConfigStore  # the row fails, not the module, without it

    session = build_session()
    session.trust_env = False
    return IssuerClientConfigStore(issuer, "notebook-client", session=session, **kw).get_client_config()


def form_of(server: DialectServer, path: str, index: int = 0) -> dict[str, str]:
    return server.posts(path)[index].form


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# ------------------------------------------------------------------------------------------------ rows
@dataclass
class Row:
    id: str
    source: str
    dialect: Callable[[], Dialect]
    run: Callable[[DialectServer, Run], Any]
    check: Callable[[Run, DialectServer], None] = lambda run, server: None
    error: tuple[type[BaseException], str] | None = None


def check_google_device(run: Run, server: DialectServer) -> None:
    assert run.creds is not None and run.creds.access_token == "AT-google-access-0001"
    issued = run.first(DeviceCodeIssued)
    assert issued.verification_uri == "https://www.google.com/device" and issued.verification_uri_complete is None
    assert run.first(SlowedDown).interval == 10
    assert run.clock.waits == [5, 5, 10]
    for request in server.token_requests:
        assert request.form["grant_type"] == DEVICE_GRANT and request.form["device_code"] == "DC-google-device-0001"
        assert "application/json" in request.headers["accept"]


def check_entra_v1(run: Run, server: DialectServer) -> None:
    assert run.creds is not None and run.creds.access_token == "AT-entra1-access-0001"
    issued = run.first(DeviceCodeIssued)
    assert issued.verification_uri == "https://microsoft.com/devicelogin" and issued.user_code == "DA5RFHQ9T"
    assert run.clock.waits == [5, 5]  # "interval": "5" (a string) is read as 5 s
    device_request = form_of(server, server.dialect.device_path)
    assert device_request["resource"] == "https://management.core.windows.net/"  # v1 names the API with resource
    for request in server.token_requests:
        assert request.form["grant_type"] == "device_code"  # ADAL's v1 grant type, not the RFC 8628 URN
        assert request.form["code"] == "DC-entra1-device-0001" and "device_code" not in request.form


def check_entra_v2(run: Run, server: DialectServer) -> None:
    assert run.creds is not None
    issued = run.first(DeviceCodeIssued)
    assert issued.verification_uri == "https://microsoft.com/devicelogin" and issued.verification_uri_complete is None
    for request in server.token_requests:
        assert request.form["grant_type"] == DEVICE_GRANT and request.form["device_code"] == "DC-entra2-device-0001"


def check_early_expiry(run: Run, server: DialectServer) -> None:
    assert len(server.token_requests) == 2 and run.clock.mono < 900  # the server's word, before expires_in


def check_okta(custom: bool) -> Callable[[Run, DialectServer], None]:
    def check(run: Run, server: DialectServer) -> None:
        cfg = run.extra["cfg"]
        api = server.base + ("/oauth2/default/v1" if custom else "/oauth2/v1")
        assert cfg.issuer == server.base + ("/oauth2/default" if custom else "")
        assert cfg.token_endpoint == api + "/token" and cfg.authorization_endpoint == api + "/authorize"
        assert cfg.device_authorization_endpoint == api + "/device/authorize"
        assert cfg.revocation_endpoint == api + "/revoke"
        assert "offline_access" in cfg.scopes  # advertised, so asked for: Okta issues refresh tokens only then
        gets = [r.path for r in server.requests if r.method == "GET"]
        assert gets == [("/oauth2/default" if custom else "") + "/.well-known/openid-configuration"]
        assert run.creds is not None and run.creds.refresh_token == "RT-okta-refresh-0001"
        scope = form_of(server, server.dialect.device_path)["scope"].split()
        assert "offline_access" in scope and "openid" in scope
    return check


def run_okta(custom: bool) -> Callable[[DialectServer, Run], Any]:
    def go(server: DialectServer, run: Run) -> Any:
        cfg = discover(server.base + ("/oauth2/default" if custom else ""))
        run.extra["cfg"] = cfg
        run.creds = device.run_device_flow(
            transport(), device_authorization_endpoint=cfg.device_authorization_endpoint,
            token_endpoint=cfg.token_endpoint, client_id="notebook-client", scopes=cfg.scopes,
            waiter=Waiter(None, clock=run.clock), endpoint="dialect.test", observer=run.events.append,
        )
    return go


def okta_wrong_issuer() -> Dialect:
    """An Okta custom server's path serving the org server's document (a misconfigured proxy, or a mix-up)."""
    dialect = okta(custom=True)
    org = okta(custom=False).documents["/.well-known/openid-configuration"]
    dialect.documents["/oauth2/default/.well-known/openid-configuration"] = org
    return dialect


def rfc8414_only_with_path() -> Dialect:
    """An RFC 8414 server whose issuer has a path and which serves only the inserted well-known URL."""
    doc = {"issuer": "{base}/tenant-a", "token_endpoint": "{base}/tenant-a/token",
           "authorization_endpoint": "{base}/tenant-a/authorize", "code_challenge_methods_supported": ["S256"]}
    return Dialect(name="rfc8414", source="RFC 8414 section 3.1",
                   documents={"/.well-known/oauth-authorization-server/tenant-a": Answer(body=doc)})


def check_auth0_device(run: Run, server: DialectServer) -> None:
    assert run.creds is not None and run.creds.id_token == "ID-auth0-idtoken-0001"
    assert form_of(server, "/oauth/device/code")["audience"] == "https://flyte.example.com/api"
    assert [r.form.get("audience") for r in server.token_requests] == ["https://flyte.example.com/api"] * 3
    assert run.clock.waits == [5, 5, 10]


def run_auth0_pkce(server: DialectServer, run: Run) -> Any:
    return pkce_login(server, run, audience="https://flyte.example.com/api", scopes=["openid", "offline_access"])


def check_auth0_pkce(run: Run, server: DialectServer) -> None:
    assert run.creds is not None and run.creds.access_token == "AT-auth0-access-0001"
    url = run.first(AuthorizationRequested).url
    q = query_of(url)
    assert q["audience"] == "https://flyte.example.com/api" and q["code_challenge_method"] == "S256"
    assert len(q["code_challenge"]) == 43
    exchange = server.token_requests[0].form
    assert exchange["grant_type"] == "authorization_code" and exchange["code"] == "AC-dialect-code-0001"
    assert 43 <= len(exchange["code_verifier"]) <= 128


def run_auth0_cc(server: DialectServer, run: Run) -> Any:
    run.creds = client_credentials.fetch_client_credentials_token(
        transport(), server.url("/oauth/token"), client_id="machine", client_secret="CS-auth0-secret-0001",
        endpoint="dialect.test", audience="https://flyte.example.com/api", clock=run.clock,
    )


def check_auth0_cc(run: Run, server: DialectServer) -> None:
    request = server.token_requests[0]
    assert request.form == {"grant_type": "client_credentials", "audience": "https://flyte.example.com/api"}
    assert request.headers["authorization"].startswith("Basic ")
    assert run.creds is not None


def run_auth0_refresh(server: DialectServer, run: Run) -> Any:
    old = Credentials("AT-old", refresh_token="RT-auth0-old-0001", for_endpoint="dialect.test")
    run.creds = refresh.refresh_access_token(
        transport(), server.url("/oauth/token"), old, client_id="notebook-client", endpoint="dialect.test",
        audience="https://flyte.example.com/api", clock=run.clock,
    )


def check_auth0_refresh(run: Run, server: DialectServer) -> None:
    form = server.token_requests[0].form
    assert form["grant_type"] == "refresh_token" and form["audience"] == "https://flyte.example.com/api"
    assert run.creds is not None and run.creds.refresh_token == "RT-auth0-refresh-0001"


def check_keycloak_one_late_poll(run: Run, server: DialectServer) -> None:
    assert run.creds is not None
    assert len(server.token_requests) == 1
    assert sum(run.clock.waits) < 600  # the one poll comes before the code's end, not at or after it
    assert run.first(Polling).attempt == 1


def check_keycloak_never_past_deadline(run: Run, server: DialectServer) -> None:
    assert len(server.token_requests) == 1
    assert run.clock.mono <= 600  # no sleep past the deadline


def check_github(run: Run, server: DialectServer) -> None:
    assert run.creds is not None and run.creds.access_token == "gho_AT-github-access-0001"
    assert run.creds.scopes == ("repo", "gist")  # GitHub's scopes are comma-separated
    assert run.first(DeviceCodeIssued).verification_uri_complete is None
    assert run.first(SlowedDown).interval == 10
    for request in server.posts("/login/device/code") + server.token_requests:
        assert request.headers["accept"].startswith("application/json")


def check_dex(run: Run, server: DialectServer) -> None:
    assert run.creds is not None and len(server.token_requests) == 3 and run.clock.waits == [5, 5, 5]


def run_cognito_pkce(server: DialectServer, run: Run) -> Any:
    cfg = discover(server.base + COGNITO_POOL)
    run.extra["cfg"] = cfg
    return pkce_login(server, run, cfg, scopes=cfg.scopes, code_challenge_methods_supported=cfg.code_challenge_methods_supported)


def check_cognito_pkce(run: Run, server: DialectServer) -> None:
    cfg = run.extra["cfg"]
    assert cfg.device_authorization_endpoint is None and cfg.code_challenge_methods_supported is None
    assert cfg.scopes == ["openid"]  # offline_access is not offered there; Cognito refreshes without it
    q = query_of(run.first(AuthorizationRequested).url)
    assert q["code_challenge_method"] == "S256" and q["scope"] == "openid" and "prompt" not in q
    assert "code_verifier" in server.token_requests[0].form
    assert run.creds is not None and run.creds.refresh_token == "RT-cognito-refresh-0001"


def run_cognito_device(server: DialectServer, run: Run) -> Any:
    cfg = discover(server.base + COGNITO_POOL)
    device.run_device_flow(
        transport(), device_authorization_endpoint=cfg.device_authorization_endpoint, token_endpoint=cfg.token_endpoint,
        client_id="notebook-client", waiter=Waiter(60, clock=run.clock), endpoint="dialect.test",
    )


def run_google_pkce_secret(server: DialectServer, run: Run) -> Any:
    from flyteauth_jupyter.flows.client_auth import choose_client_auth

    cfg = discover(server.base)
    run.extra["cfg"] = cfg
    auth = choose_client_auth("notebook-client", "CS-google-secret-0001", cfg.token_endpoint_auth_methods_supported)
    return pkce_login(server, run, cfg, scopes=["openid", "email"], auth=auth,
                      code_challenge_methods_supported=cfg.code_challenge_methods_supported)


def check_google_pkce_secret(run: Run, server: DialectServer) -> None:
    exchange = server.token_requests[0]
    assert exchange.headers["authorization"].startswith("Basic ")  # basic: Google lists both methods
    assert "client_secret" not in exchange.form and exchange.form["code_verifier"]
    assert run.creds is not None and run.creds.refresh_token == "RT-google-refresh-0001"


def plain_only() -> Dialect:
    return Dialect(name="plain-only", source="RFC 7636 section 4.2, RFC 8414 section 2", documents={
        "/.well-known/openid-configuration": Answer(body={
            "issuer": "{base}", "authorization_endpoint": "{base}/authorize", "token_endpoint": "{base}/token",
            "code_challenge_methods_supported": ["plain"]})})


def run_plain_only(server: DialectServer, run: Run) -> Any:
    cfg = discover(server.base)
    return pkce_login(server, run, cfg, code_challenge_methods_supported=cfg.code_challenge_methods_supported)


ROWS = [
    Row("google-device", "pipacs/o2#130, int128/kubelogin#846, openiddict/openiddict-core#1743",
        google, lambda s, r: device_login(s, r), check_google_device),
    Row("google-pkce-client-secret", "Google OAuth 2.0 for desktop apps (a client secret that is not secret)",
        lambda: google(token_script=[Answer(body=token("google"))]), run_google_pkce_secret, check_google_pkce_secret),
    Row("entra-v1-device", "MicrosoftDocs/azure-docs#48307, MicrosoftDocs/azure-docs#46110",
        lambda: entra_v1([entra_pending(), Answer(body=token("entra1", resource="https://management.core.windows.net/"))]),
        lambda s, r: device_login(s, r, audience="https://management.core.windows.net/"), check_entra_v1),
    Row("entra-v1-code-expired", "Azure/azure-cli#3808, AzureAD/azure-activedirectory-library-for-python#110",
        lambda: entra_v1([Answer(400, {"error": "code_expired", "error_description": "AADSTS70020: ..."})]),
        lambda s, r: device_login(s, r), error=(ExpiredTokenError, "expired before it was approved")),
    Row("entra-v2-device", "MicrosoftDocs/azure-docs#33126",
        lambda: entra_v2([entra_pending(), Answer(body=token("entra2"))]), lambda s, r: device_login(s, r), check_entra_v2),
    Row("entra-v2-declined", "Azure/azure-cli#22251 (Microsoft identity platform device code errors)",
        lambda: entra_v2([Answer(400, {"error": "authorization_declined",
                                       "error_description": "AADSTS70000: The user declined the authorization."})]),
        lambda s, r: device_login(s, r), error=(AccessDeniedError, "The sign-in was denied")),
    Row("entra-v2-bad-verification-code", "Microsoft identity platform device code errors",
        lambda: entra_v2([Answer(400, {"error": "bad_verification_code",
                                       "error_description": "AADSTS70019: Verification code expired."})]),
        lambda s, r: device_login(s, r), error=(InvalidGrantError, "rejected the grant")),
    Row("entra-v2-expires-early", "Azure/azure-cli#22251",
        lambda: entra_v2([entra_pending(), Answer(400, {
            "error": "expired_token", "error_codes": [70020],
            "error_description": "AADSTS70020: The provided value for the input parameter 'device_code' is not valid. "
                                 "This device code has expired."})]),
        lambda s, r: device_login(s, r), check_early_expiry, error=(ExpiredTokenError, "AADSTS70020")),
    Row("okta-org-server", "okta/okta-aspnet#115, okta/okta-developer-docs#1557",
        lambda: okta(custom=False), run_okta(False), check_okta(False)),
    Row("okta-custom-server", "okta/okta-aspnet#115, okta/okta-developer-docs#1557",
        lambda: okta(custom=True), run_okta(True), check_okta(True)),
    Row("okta-issuer-mismatch", "RFC 8414 section 3.3, okta/okta-aspnet#115",
        okta_wrong_issuer, lambda s, r: discover(s.base + "/oauth2/default"), error=(ProtocolError, "RFC 8414")),
    Row("rfc8414-path-insertion", "RFC 8414 section 3.1",
        rfc8414_only_with_path, lambda s, r: r.extra.update(cfg=discover(s.base + "/tenant-a")),
        lambda r, s: (r.extra["cfg"].token_endpoint == s.base + "/tenant-a/token") or pytest.fail("no token endpoint")),
    Row("auth0-device-audience", "flyteorg/flyte#2862, Auth0 Authentication API (device flow)",
        auth0, lambda s, r: device_login(s, r, audience="https://flyte.example.com/api"), check_auth0_device),
    Row("auth0-pkce-audience", "auth0/nextjs-auth0#1809",
        lambda: auth0([Answer(body=token("auth0"))]), run_auth0_pkce, check_auth0_pkce),
    Row("auth0-client-credentials-audience", "flyteorg/flyte#3661, flyteorg/flyte#2959",
        lambda: auth0([Answer(body={"access_token": "AT-auth0-cc-0001", "token_type": "Bearer", "expires_in": 86400})]),
        run_auth0_cc, check_auth0_cc),
    Row("auth0-refresh-audience", "auth0/nextjs-auth0#1809",
        lambda: auth0([Answer(body=token("auth0"))]), run_auth0_refresh, check_auth0_refresh),
    Row("keycloak-17-interval-is-lifespan", "keycloak/keycloak#12327",
        lambda: keycloak17([Answer(body=token("keycloak"))]), lambda s, r: device_login(s, r),
        check_keycloak_one_late_poll),
    Row("keycloak-17-never-sleeps-past-deadline", "keycloak/keycloak#12327",
        lambda: keycloak17([Answer(400, {"error": "authorization_pending"})]), lambda s, r: device_login(s, r),
        check_keycloak_never_past_deadline, error=(ExpiredTokenError, "expired before it was approved")),
    Row("github-device-json", "github/docs#3944, ramosbugs/oauth2-rs#310",
        github, lambda s, r: device_login(s, r, scopes=["repo", "gist"]), check_github),
    Row("github-device-form-encoded", "github/docs#3944",
        lambda: github(honour_accept=False), lambda s, r: device_login(s, r, scopes=["repo", "gist"]), check_github),
    Row("dex-pending-401", "dexidp/dex#4240", dex, lambda s, r: device_login(s, r), check_dex),
    Row("cognito-pkce-not-advertised", "akuity/kargo#4003", cognito, run_cognito_pkce, check_cognito_pkce),
    Row("cognito-no-device-flow", "akuity/kargo#4003", cognito, run_cognito_device,
        error=(AuthenticationError, "does not offer device sign-in")),
    Row("pkce-refused-without-s256", "RFC 7636 section 4.2", plain_only, run_plain_only,
        error=(ProtocolError, "S256")),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_dialect(row: Row) -> None:
    run = Run()
    with DialectServer(row.dialect()) as server:
        if row.error is not None:
            kind, sentence = row.error
            with pytest.raises(kind) as info:
                row.run(server, run)
            message = str(info.value)
            assert sentence in message, message
            assert len(message) <= 500 and "DC-" not in message and "AT-" not in message
        else:
            row.run(server, run)
        row.check(run, server)


def test_every_row_names_its_source() -> None:
    assert all(row.source.strip() for row in ROWS)
    assert len({row.id for row in ROWS}) == len(ROWS)


def test_a_form_encoded_answer_is_bounded() -> None:
    """A form body with more fields than any OAuth answer is refused in one sentence (hostile server)."""
    huge = {f"field{i}": "x" for i in range(200)}
    dialect = github([Answer(200, huge, form=True)], honour_accept=False)
    with DialectServer(dialect) as server:
        with pytest.raises(ProtocolError) as info:
            device_login(server, Run())
    assert "more than 64 fields" in str(info.value) and f"127.0.0.1:{server.port}" in str(info.value)
