"""A real-HTTP stand-in on 127.0.0.1 that speaks one identity provider's dialect, from recorded answers.

``DialectServer(dialect)`` serves, on an ephemeral port, what :class:`Dialect` lists: metadata
documents by path (GET), a device authorization answer (POST ``device_path``), a scripted sequence of
token answers (POST ``token_path``: one answer per request, in order), a revocation answer, and an
authorization endpoint (GET ``authorize_path``) that redirects at once to the ``redirect_uri`` it is
given with a code and the ``state`` (the person's part of a browser sign-in, which these tests do not
exercise: the real provider in tests/idp does). Every string ``{base}`` in an answer becomes the
server's ``http://127.0.0.1:<port>``. Every request is recorded (method, path, headers, form fields)
so a test can assert what our client sent.

Answers are JSON unless ``form=True`` (always form-encoded) or the dialect has
``form_unless_json_accept`` (GitHub: form-encoded unless the request's ``Accept`` names
``application/json``). The recorded answers per provider (with their sources) are the functions at
the end of this module; tests/unit/test_dialects.py runs our flows against them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .background import Background


@dataclass
class Answer:
    """One HTTP answer: status, body (a dict, or raw text with ``content_type``), encoding."""

    status: int = 200
    body: Any = None
    form: bool = False
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Dialect:
    """What one provider serves. ``token_script`` is consumed one answer per token request."""

    name: str
    source: str
    documents: dict[str, Answer] = field(default_factory=dict)
    device: Answer | None = None
    token_script: list[Answer] = field(default_factory=list)
    revocation: Answer | None = None
    device_path: str = "/device/code"
    token_path: str = "/token"
    authorize_path: str = "/authorize"
    revocation_path: str = "/revoke"
    form_unless_json_accept: bool = False
    authorization_code: str = "AC-dialect-code-0001"
    redirect_iss: bool = False


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


def _subst(value: Any, base: str) -> Any:
    if isinstance(value, str):
        return value.replace("{base}", base)
    if isinstance(value, dict):
        return {k: _subst(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_subst(v, base) for v in value]
    return value


class DialectServer(Background):
    """The stand-in for one :class:`Dialect`; ``.base`` is its origin, ``.requests`` what it received."""

    name = "dialect"

    def __init__(self, dialect: Dialect, *, host: str = "127.0.0.1") -> None:
        self.dialect = dialect
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._script = list(dialect.token_script)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                return

            def do_GET(self) -> None:  # noqa: N802
                owner._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                owner._handle(self, "POST")

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def posts(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == path]

    @property
    def token_requests(self) -> list[Recorded]:
        return self.posts(self.dialect.token_path)

    @property
    def script_left(self) -> int:
        with self._lock:
            return len(self._script)

    # -- serving ----------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(min(length, 64 * 1024)) if length else b""
        form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)) if method == "POST" else {}
        record = Recorded(
            method=method,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in handler.headers.items()},
            form=form,
        )
        with self._lock:
            self.requests.append(record)
        d = self.dialect
        answer: Answer | None
        if method == "GET" and parts.path == d.authorize_path:
            return self._redirect(handler, record)
        if method == "GET":
            answer = d.documents.get(parts.path)
        elif parts.path == d.device_path:
            answer = d.device
        elif parts.path == d.token_path:
            with self._lock:
                answer = self._script.pop(0) if self._script else Answer(
                    500, {"error": "server_error", "error_description": "the dialect's token script is exhausted"}
                )
        elif parts.path == d.revocation_path:
            answer = d.revocation
        else:
            answer = None
        if answer is None:
            answer = Answer(404, "<html><body>Not Found</body></html>", content_type="text/html")
        self._send(handler, answer, record)

    def _redirect(self, handler: BaseHTTPRequestHandler, record: Recorded) -> None:
        redirect = record.query.get("redirect_uri", "")
        params = {"code": self.dialect.authorization_code, "state": record.query.get("state", "")}
        if self.dialect.redirect_iss:
            params["iss"] = self.base
        handler.send_response(302)
        handler.send_header("Location", f"{redirect}?{urlencode(params)}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _send(self, handler: BaseHTTPRequestHandler, answer: Answer, record: Recorded) -> None:
        body = _subst(answer.body, self.base)
        wants_json = "application/json" in record.headers.get("accept", "")
        as_form = answer.form or (self.dialect.form_unless_json_accept and not wants_json)
        if isinstance(body, (dict, list)):
            if as_form and isinstance(body, dict):
                data = urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}).encode()
                ctype = "application/x-www-form-urlencoded; charset=utf-8"
            else:
                data = json.dumps(body).encode()
                ctype = "application/json; charset=utf-8"
        else:
            data = str(body or "").encode()
            ctype = answer.content_type or "text/plain"
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.content_type or ctype)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Cache-Control", "no-store")
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


# ----------------------------------------------------------------------------------------------
# Recorded answers, per provider. Tokens are made up; shapes are the providers'. Each function
# names its source; tests/unit/test_dialects.py and docs/identity-providers.md cite the same.
# ----------------------------------------------------------------------------------------------
def token(prefix: str, **extra: Any) -> dict[str, Any]:
    """A successful token answer with made-up tokens named after the provider."""
    body: dict[str, Any] = {
        "access_token": f"AT-{prefix}-access-0001",
        "token_type": "Bearer",
        "expires_in": 3599,
        "refresh_token": f"RT-{prefix}-refresh-0001",
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def oidc_metadata(issuer: str, **endpoints: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"issuer": issuer, "response_types_supported": ["code"]}
    doc.update(endpoints)
    return doc


def google(pending: Answer | None = None, token_script: list[Answer] | None = None) -> Dialect:
    """Google's OAuth 2.0 for TV and Limited-Input Devices: ``verification_url`` (no ``_uri``, no
    ``verification_uri_complete``), pending answered with statuses other than 400 (428), slow_down with 403.
    Sources: pipacs/o2#130, int128/kubelogin#846, openiddict/openiddict-core#1743."""
    pending = pending or Answer(428, {"error": "authorization_pending", "error_description": "Precondition Required"})
    return Dialect(
        name="google",
        source="pipacs/o2#130, int128/kubelogin#846, openiddict/openiddict-core#1743",
        authorize_path="/o/oauth2/v2/auth",
        documents={"/.well-known/openid-configuration": Answer(body=oidc_metadata(
            "{base}",
            authorization_endpoint="{base}/o/oauth2/v2/auth",
            device_authorization_endpoint="{base}/device/code",
            token_endpoint="{base}/token",
            revocation_endpoint="{base}/revoke",
            code_challenge_methods_supported=["plain", "S256"],
            token_endpoint_auth_methods_supported=["client_secret_post", "client_secret_basic"],
            scopes_supported=["openid", "email", "profile"],
        ))},
        device=Answer(body={
            "device_code": "DC-google-device-0001", "user_code": "GQVQ-JKEC",
            "verification_url": "https://www.google.com/device", "expires_in": 1800, "interval": 5,
        }),
        token_script=token_script if token_script is not None else [
            pending,
            Answer(403, {"error": "slow_down", "error_description": "Forbidden"}),
            Answer(body=token("google", scope="openid https://www.googleapis.com/auth/userinfo.email",
                              id_token="ID-google-idtoken-0001")),
        ],
    )


def entra_v1(token_script: list[Answer]) -> Dialect:
    """Azure AD (Entra ID) v1 endpoints: ``/oauth2/devicecode`` answers ``verification_url`` and a human
    ``message``, numbers as strings; polling sends ``grant_type=device_code`` and ``code`` (not
    ``device_code``). Sources: MicrosoftDocs/azure-docs#48307 (and #46110: AADSTS900144 without ``code``),
    ADAL for Python (adal/constants.py, token_request.py)."""
    return Dialect(
        name="entra-v1",
        source="MicrosoftDocs/azure-docs#48307, MicrosoftDocs/azure-docs#46110",
        device_path="/tenant/oauth2/devicecode",
        token_path="/tenant/oauth2/token",
        device=Answer(body={
            "user_code": "DA5RFHQ9T", "device_code": "DC-entra1-device-0001",
            "verification_url": "https://microsoft.com/devicelogin", "expires_in": "900", "interval": "5",
            "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and "
                       "enter the code DA5RFHQ9T to authenticate.",
        }),
        token_script=token_script,
    )


def entra_v2(token_script: list[Answer], expires_in: int = 900) -> Dialect:
    """Entra ID v2 (``/oauth2/v2.0/devicecode``): ``verification_uri`` and ``message``, no
    ``verification_uri_complete``; errors ``authorization_declined``, ``bad_verification_code``,
    ``expired_token`` (AADSTS70020, also before ``expires_in``). Sources: Azure/azure-cli#22251,
    MicrosoftDocs/azure-docs#33126, Microsoft identity platform device code flow docs."""
    return Dialect(
        name="entra-v2",
        source="Azure/azure-cli#22251, MicrosoftDocs/azure-docs#33126",
        device_path="/organizations/oauth2/v2.0/devicecode",
        token_path="/organizations/oauth2/v2.0/token",
        device=Answer(body={
            "user_code": "LLD35HQDH", "device_code": "DC-entra2-device-0001",
            "verification_uri": "https://microsoft.com/devicelogin", "expires_in": expires_in, "interval": 5,
            "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and "
                       "enter the code LLD35HQDH to authenticate.",
        }),
        token_script=token_script,
    )


def entra_pending() -> Answer:
    return Answer(400, {
        "error": "authorization_pending",
        "error_description": "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        "error_codes": [70016],
    })


def okta(custom: bool, token_script: list[Answer] | None = None) -> Dialect:
    """Okta: the org authorization server (issuer ``https://{org}``, metadata at the root, endpoints under
    ``/oauth2/v1``) and a custom one (issuer ``https://{org}/oauth2/default``, metadata under the issuer,
    both documents). Refresh tokens need ``offline_access``. Sources: okta/okta-aspnet#115,
    okta/okta-developer-docs#1557, okta/okta-management-openapi-spec#233."""
    prefix = "/oauth2/default" if custom else ""
    api = "/oauth2/default/v1" if custom else "/oauth2/v1"
    meta = oidc_metadata(
        "{base}" + prefix,
        authorization_endpoint="{base}" + api + "/authorize",
        token_endpoint="{base}" + api + "/token",
        device_authorization_endpoint="{base}" + api + "/device/authorize",
        revocation_endpoint="{base}" + api + "/revoke",
        code_challenge_methods_supported=["S256"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "client_secret_jwt",
                                               "private_key_jwt", "none"],
        scopes_supported=["openid", "profile", "email", "offline_access"],
    )
    return Dialect(
        name="okta-custom" if custom else "okta-org",
        source="okta/okta-aspnet#115, okta/okta-developer-docs#1557",
        documents={
            prefix + "/.well-known/openid-configuration": Answer(body=meta),
            prefix + "/.well-known/oauth-authorization-server": Answer(body=meta),
        },
        device_path=api + "/device/authorize",
        token_path=api + "/token",
        authorize_path=api + "/authorize",
        revocation_path=api + "/revoke",
        device=Answer(body={
            "device_code": "DC-okta-device-0001", "user_code": "MHXTZMKR",
            "verification_uri": "{base}/activate", "verification_uri_complete": "{base}/activate?user_code=MHXTZMKR",
            "expires_in": 600, "interval": 5,
        }),
        token_script=token_script if token_script is not None else [Answer(body=token("okta", scope="openid offline_access"))],
    )


def auth0(token_script: list[Answer] | None = None) -> Dialect:
    """Auth0: ``audience`` names the API (without it the access token is opaque, for /userinfo only; client
    credentials fail without it); pending is 403, slow_down 429. Sources: flyteorg/flyte#3661,
    auth0/nextjs-auth0#1809, flyteorg/flyte#2862, Auth0 Authentication API docs (device flow)."""
    return Dialect(
        name="auth0",
        source="flyteorg/flyte#3661, auth0/nextjs-auth0#1809",
        documents={"/.well-known/openid-configuration": Answer(body=oidc_metadata(
            "{base}/",
            authorization_endpoint="{base}/authorize",
            token_endpoint="{base}/oauth/token",
            device_authorization_endpoint="{base}/oauth/device/code",
            revocation_endpoint="{base}/oauth/revoke",
            code_challenge_methods_supported=["S256", "plain"],
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "private_key_jwt"],
            scopes_supported=["openid", "profile", "offline_access", "email"],
        ))},
        device_path="/oauth/device/code",
        token_path="/oauth/token",
        revocation_path="/oauth/revoke",
        device=Answer(body={
            "device_code": "DC-auth0-device-0001", "user_code": "KPXB-PLXZ",
            "verification_uri": "{base}/activate", "verification_uri_complete": "{base}/activate?user_code=KPXB-PLXZ",
            "expires_in": 900, "interval": 5,
        }),
        token_script=token_script if token_script is not None else [
            Answer(403, {"error": "authorization_pending", "error_description": "User has yet to authorize device code."}),
            Answer(429, {"error": "slow_down",
                         "error_description": "You are polling faster than the specified interval of 5 seconds."}),
            Answer(body=token("auth0", id_token="ID-auth0-idtoken-0001")),
        ],
    )


def keycloak17(token_script: list[Answer]) -> Dialect:
    """Keycloak 17 and older: the device authorization's ``interval`` defaults to the code's lifespan (600),
    so every poll within 600 s of the last one is ``slow_down``. Source: keycloak/keycloak#12327 (fix #11893)."""
    realm = "/realms/flyte/protocol/openid-connect"
    return Dialect(
        name="keycloak-17",
        source="keycloak/keycloak#12327",
        device_path=realm + "/auth/device",
        token_path=realm + "/token",
        device=Answer(body={
            "device_code": "DC-keycloak-device-0001", "user_code": "WDJB-MJHT",
            "verification_uri": "{base}/realms/flyte/device",
            "verification_uri_complete": "{base}/realms/flyte/device?user_code=WDJB-MJHT",
            "expires_in": 600, "interval": 600,
        }),
        token_script=token_script,
    )


def github(token_script: list[Answer] | None = None, *, honour_accept: bool = True) -> Dialect:
    """GitHub: every ``/login/*`` answer is form-encoded unless the request sends ``Accept:
    application/json``; pending and slow_down come back as HTTP 200 with an ``error``; no
    ``verification_uri_complete``; scopes are comma-separated. Sources: github/docs#3944,
    ramosbugs/oauth2-rs#310, ramosbugs/oauth2-rs#218."""
    pending = {"error": "authorization_pending", "error_description": "The authorization request is still pending.",
               "error_uri": "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow"}
    form = not honour_accept
    return Dialect(
        name="github" if honour_accept else "github-form",
        source="github/docs#3944, ramosbugs/oauth2-rs#310",
        device_path="/login/device/code",
        token_path="/login/oauth/access_token",
        form_unless_json_accept=True,
        device=Answer(form=form, body={
            "device_code": "DC-github-device-0001", "user_code": "WDJB-MJHT",
            "verification_uri": "https://github.com/login/device", "expires_in": 899, "interval": 5,
        }),
        token_script=token_script if token_script is not None else [
            Answer(200, pending, form=form),
            Answer(200, {"error": "slow_down", "error_description": "Too many requests have been made in the same timeframe.",
                         "interval": 10}, form=form),
            Answer(200, {"access_token": "gho_AT-github-access-0001", "token_type": "bearer", "scope": "repo,gist"},
                   form=form),
        ],
    )


def dex(token_script: list[Answer] | None = None) -> Dialect:
    """Dex (before dexidp/dex#4204): ``authorization_pending`` answered as 401 without a description.
    Source: dexidp/dex#4240."""
    return Dialect(
        name="dex",
        source="dexidp/dex#4240, dexidp/dex#4204",
        documents={"/dex/.well-known/openid-configuration": Answer(body=oidc_metadata(
            "{base}/dex",
            authorization_endpoint="{base}/dex/auth",
            token_endpoint="{base}/dex/token",
            device_authorization_endpoint="{base}/dex/device/code",
            code_challenge_methods_supported=["S256", "plain"],
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            scopes_supported=["openid", "email", "groups", "profile", "offline_access"],
        ))},
        device_path="/dex/device/code",
        token_path="/dex/token",
        device=Answer(body={
            "device_code": "DC-dex-device-0001", "user_code": "BXWN-ZNDJ",
            "verification_uri": "{base}/dex/device", "verification_uri_complete": "{base}/dex/device?user_code=BXWN-ZNDJ",
            "expires_in": 300, "interval": 5,
        }),
        token_script=token_script if token_script is not None else [
            Answer(401, {"error": "authorization_pending"}),
            Answer(401, {"error": "authorization_pending"}),
            Answer(body=token("dex", id_token="ID-dex-idtoken-0001")),
        ],
    )


def cognito(token_script: list[Answer] | None = None) -> Dialect:
    """Amazon Cognito: issuer ``https://cognito-idp.{region}.amazonaws.com/{pool}`` (with a path), only the
    OpenID document, no device authorization endpoint, PKCE supported but no
    ``code_challenge_methods_supported``. Source: akuity/kargo#4003."""
    pool = "/eu-west-1_AbCdEf123"
    return Dialect(
        name="cognito",
        source="akuity/kargo#4003",
        documents={pool + "/.well-known/openid-configuration": Answer(body=oidc_metadata(
            "{base}" + pool,
            authorization_endpoint="{base}/oauth2/authorize",
            token_endpoint="{base}/oauth2/token",
            revocation_endpoint="{base}/oauth2/revoke",
            userinfo_endpoint="{base}/oauth2/userInfo",
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            scopes_supported=["openid", "email", "phone", "profile"],
        ))},
        token_path="/oauth2/token",
        authorize_path="/oauth2/authorize",
        revocation_path="/oauth2/revoke",
        token_script=token_script if token_script is not None else [
            Answer(body=token("cognito", id_token="ID-cognito-idtoken-0001"))],
    )


COGNITO_POOL = "/eu-west-1_AbCdEf123"

__all__ = [
    "Answer", "COGNITO_POOL", "Dialect", "DialectServer", "Recorded", "auth0", "cognito", "dex", "entra_pending",
    "entra_v1", "entra_v2", "github", "google", "keycloak17", "oidc_metadata", "okta", "token",
]
