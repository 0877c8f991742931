"""A FlyteAdmin stand-in: real HTTP on 127.0.0.1, pointing at the test IdP.

Serves what a notebook client reads from FlyteAdmin (reference/flytekit-behaviour.md section 14):

- ``GET /config/v1/flyte_client``: client_id, redirect_uri, scopes, authorization_metadata_key,
  service_http_endpoint (always empty, as flyteadmin), audience.
- ``GET /.well-known/oauth-authorization-server``: the IdP's endpoints relayed (the 10 proto fields
  plus ``revocation_endpoint``), for either test IdP (tests/idp, or tests/idp2 through rig.idp2).
- ``GET /api/v1/projects`` and ``GET /me``: protected; a bearer token in ``flyte-authorization`` or
  ``authorization`` is checked by the IdP's introspection endpoint (opaque tokens, with the
  confidential client) or against the IdP's JWKS (JWT access tokens, which oidc-provider refuses to
  introspect). 401 otherwise.

Behind an identity-aware proxy (``proxy=ProxyGate(...)``, tests/rig/proxy.py): every request needs the
gate's ``proxy-authorization`` before it reaches any of the above; otherwise the proxy's refusal (407,
or IAP's marked 401) is the answer.

Field names are snake_case (flyteadmin with ``Accept: application/json``) or lowerCamelCase
(``camel_case=True``: grpc-gateway's default marshaler, older deployments). Empty fields are present
as "" or [] (flyteadmin emits unpopulated fields). Every request is counted per path in ``.requests``.
"""

from __future__ import annotations

import base64
import collections
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Iterable
from urllib.parse import urlsplit

import requests

from .background import Background
from .idp import CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET, DEVICE_GRANT, IdP

if TYPE_CHECKING:
    from .idp2 import DjangoIdP
    from .proxy import ProxyGate

DEFAULT_REDIRECT_URI = "http://127.0.0.1:53593/callback"
PROJECTS = [
    {"id": "flytesnacks", "name": "flytesnacks", "description": "examples"},
    {"id": "notebooks", "name": "notebooks", "description": "notebook workflows"},
]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class FlyteAdminStandIn(Background):
    """FlyteAdmin's HTTP metadata and one protected API, for ``idp``."""

    name = "flyteadmin"

    def __init__(
        self,
        idp: "IdP | DjangoIdP",
        camel_case: bool = False,
        client_id: str = "jupyter-native",
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        scopes: Iterable[str] = ("openid", "offline_access", "api:read"),
        authorization_metadata_key: str = "flyte-authorization",
        audience: str = "",
        device_endpoint: bool = True,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        proxy: ProxyGate | None = None,
    ) -> None:
        self.idp = idp
        self.proxy = proxy
        self.camel_case = camel_case
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scopes = list(scopes)
        self.authorization_metadata_key = authorization_metadata_key
        self.audience = audience
        self.device_endpoint = device_endpoint
        self.requests: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._overrides: dict[str, tuple[int, str, bytes, dict[str, str]]] = {}
        self._session = requests.Session()
        self._session.trust_env = False
        self._jwks: dict[str, Any] | None = None
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self.host = host
        self.endpoint = f"http://{host}:{self.port}"
        self.service = f"{host}:{self.port}"

    # ------------------------------------------------------------------ lifecycle (rig.background)
    def stop(self) -> None:
        super().stop()
        self._session.close()

    def __repr__(self) -> str:
        return f"FlyteAdminStandIn(endpoint={self.endpoint!r}, idp={self.idp.issuer!r}, camel_case={self.camel_case})"

    # ------------------------------------------------------------------ knobs for tests
    def url(self, path: str) -> str:
        return self.endpoint + "/" + path.lstrip("/")

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def set_response(self, path: str, status: int, body: str | bytes, content_type: str = "text/html",
                     headers: dict[str, str] | None = None) -> None:
        """Serve a fixed answer on ``path`` (e.g. an HTML error page instead of JSON, or a redirect
        with ``headers={"Location": ...}``)."""
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._overrides[path] = (status, content_type, data, dict(headers or {}))

    def clear_responses(self) -> None:
        with self._lock:
            self._overrides.clear()

    # ------------------------------------------------------------------ documents
    def _names(self, doc: dict[str, Any]) -> dict[str, Any]:
        return {_camel(k): v for k, v in doc.items()} if self.camel_case else doc

    def client_config(self) -> dict[str, Any]:
        return self._names({
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scopes": list(self.scopes),
            "authorization_metadata_key": self.authorization_metadata_key,
            "service_http_endpoint": "",
            "audience": self.audience,
        })

    def oauth_metadata(self) -> dict[str, Any]:
        # FlyteAdmin relays its own configuration of the IdP (pinned 12): the IdP's RFC 8414 document
        # where the rig has one apart from the OpenID one (rig.idp2), and the device endpoint the rig
        # knows when the IdP does not advertise it (django-oauth-toolkit does not).
        md = getattr(self.idp, "authorization_server_metadata", None) or self.idp.metadata
        device = md.get("device_authorization_endpoint") or self.idp.device_authorization_endpoint
        grants = list(md.get("grant_types_supported", []))
        if not self.device_endpoint:
            grants = [g for g in grants if g != DEVICE_GRANT]
        return self._names({
            "issuer": md["issuer"],
            "authorization_endpoint": md["authorization_endpoint"],
            "token_endpoint": md["token_endpoint"],
            "response_types_supported": list(md.get("response_types_supported", [])),
            "scopes_supported": list(md.get("scopes_supported", [])),
            "token_endpoint_auth_methods_supported": list(md.get("token_endpoint_auth_methods_supported", [])),
            "jwks_uri": md["jwks_uri"],
            "code_challenge_methods_supported": list(md.get("code_challenge_methods_supported", [])),
            "grant_types_supported": grants,
            "device_authorization_endpoint": device if self.device_endpoint else "",
            "revocation_endpoint": md.get("revocation_endpoint", ""),
        })

    # ------------------------------------------------------------------ token check
    def validate(self, token: str) -> dict[str, Any] | None:
        """Claims of a valid access token, else None."""
        if token.count(".") == 2:
            return self._validate_jwt(token)
        r = self._session.post(
            self.idp.introspection_endpoint, data={"token": token},
            auth=(CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET), timeout=10,
        )
        if r.status_code != 200:
            return None
        claims = r.json()
        if not claims.get("active") or claims.get("token_type", "Bearer") not in ("Bearer", "access_token"):
            return None
        return claims

    def _validate_jwt(self, token: str) -> dict[str, Any] | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        try:
            header_b64, payload_b64, sig_b64 = token.split(".")
            header = json.loads(_b64url(header_b64))
            claims = json.loads(_b64url(payload_b64))
            if header.get("alg") != "RS256":
                return None
            if self._jwks is None:
                self._jwks = self._session.get(self.idp.jwks_uri, timeout=10).json()
            jwk = next(k for k in self._jwks["keys"] if k.get("kid") == header.get("kid") and k.get("kty") == "RSA")
            key = rsa.RSAPublicNumbers(
                int.from_bytes(_b64url(jwk["e"]), "big"), int.from_bytes(_b64url(jwk["n"]), "big"),
            ).public_key()
            key.verify(_b64url(sig_b64), f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, KeyError, StopIteration, InvalidSignature, requests.RequestException):
            return None
        if claims.get("iss") != self.idp.issuer or claims.get("exp", 0) <= time.time():
            return None
        return claims

    # ------------------------------------------------------------------ HTTP
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        admin = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "flyteadmin-standin/1"
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet; never log headers (tokens)
                pass

            def _send(self, status: int, body: Any, content_type: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _bearer(self) -> str | None:
                for name in (admin.authorization_metadata_key, "flyte-authorization", "authorization"):
                    value = self.headers.get(name) if name else None
                    if value and value[:7].lower() == "bearer " and value[7:].strip():
                        return value[7:].strip()
                return None

            def do_GET(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                with admin._lock:
                    admin.requests[path] += 1
                    override = admin._overrides.get(path)
                gate = admin.proxy
                if gate is not None and not gate.admits("http", path, self.headers.get("Proxy-Authorization")):
                    self._send(gate.status, b"<html><body>Invalid proxy credentials</body></html>", "text/html",
                               headers=gate.refusal_headers())
                    return
                if override is not None:
                    status, ctype, data, extra = override
                    self._send(status, data, ctype, headers=extra)
                    return
                if path == "/config/v1/flyte_client":
                    self._send(200, admin.client_config())
                elif path == "/.well-known/oauth-authorization-server":
                    try:
                        self._send(200, admin.oauth_metadata())
                    except requests.RequestException:
                        self._send(503, {"error": "identity provider unreachable"})
                elif path in ("/api/v1/projects", "/me"):
                    token = self._bearer()
                    claims = admin.validate(token) if token else None
                    if claims is None:
                        self._send(401, {"error": "unauthenticated", "message": "missing or invalid bearer token"},
                                   headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
                    elif path == "/me":
                        self._send(200, {"subject": claims.get("sub", ""), "preferred_username": claims.get("sub", "")})
                    else:
                        self._send(200, {"projects": PROJECTS, "subject": claims.get("sub") or claims.get("client_id", "")})
                else:
                    self._send(404, {"error": "not found"})

            do_HEAD = do_GET

        return Handler
