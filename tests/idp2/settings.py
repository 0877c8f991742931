"""The Django settings of the second test IdP, built from its knobs (environment variables).

``build(issuer, db_path)`` returns the settings for ``django.conf.settings.configure``; the issuer is
known only once the socket is bound (tests/idp2/serve.py), so there is no static settings module.

Knobs (environment, whole seconds; defaults in brackets):
  IDP2_AT_TTL [3600]       access token lifetime (ACCESS_TOKEN_EXPIRE_SECONDS)
  IDP2_RT_TTL [1209600]    refresh token lifetime after its access token expired (REFRESH_TOKEN_EXPIRE_SECONDS)
  IDP2_CODE_TTL [60]       authorization code lifetime
  IDP2_DEVICE_INTERVAL [5] the device flow's polling interval (DEVICE_FLOW_INTERVAL)
  IDP2_RT_ROTATION [1]     rotate the refresh token on every refresh (ROTATE_REFRESH_TOKEN)
  IDP2_RT_REUSE [1]        a replayed rotated refresh token revokes its whole family
                           (REFRESH_TOKEN_REUSE_PROTECTION)
  IDP2_RT_GRACE [0]        seconds a rotated refresh token still works (REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = os.path.dirname(os.path.abspath(__file__))

SCOPES = {
    "openid": "OpenID Connect",
    "offline_access": "Stay signed in",
    "profile": "Your name",
    "email": "Your e-mail address",
    "api:read": "Read the API",
    "api:write": "Write to the API",
}

_FALSE = {"0", "false", "no", "off"}


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    value = int(raw)
    if value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {raw}")
    return value


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "")
    return default if raw == "" else raw.lower() not in _FALSE


def rsa_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    ).decode()


def build(issuer: str, db_path: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ if env is None else env)
    return {
        "DEBUG": False,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": ["127.0.0.1", "localhost", "[::1]"],
        "ROOT_URLCONF": "tests.idp2.urls",
        "USE_TZ": True,
        "INSTALLED_APPS": [
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "oauth2_provider",
        ],
        "MIDDLEWARE": [
            "tests.idp2.rig.RigMiddleware",
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        "TEMPLATES": [{
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [os.path.join(HERE, "templates")],  # ours first: stable ids for tests/rig/user.py
            "APP_DIRS": True,
            "OPTIONS": {"context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ]},
        }],
        "DATABASES": {"default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": db_path,
            # one writer at a time, queued instead of failing ("database is locked") under threads
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
        }},
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "PASSWORD_HASHERS": ["tests.idp2.hashers.QuickPBKDF2PasswordHasher"],
        "LOGIN_URL": "/accounts/login/",
        "LOGIN_REDIRECT_URL": "/accounts/signed-in/",
        "SESSION_COOKIE_NAME": "idp2_session",
        "CSRF_COOKIE_NAME": "idp2_csrftoken",
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"stderr": {"class": "logging.StreamHandler"}},
            "loggers": {
                "django": {"handlers": ["stderr"], "level": "WARNING"},
                "django.server": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
                "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
                "oauth2_provider": {"handlers": ["stderr"], "level": "ERROR"},
            },
        },
        "OAUTH2_PROVIDER": {
            "OIDC_ENABLED": True,
            "OIDC_ISS_ENDPOINT": issuer,
            "OIDC_RSA_PRIVATE_KEY": rsa_private_key_pem(),
            "SCOPES": dict(SCOPES),
            "DEFAULT_SCOPES": ["api:read"],
            "PKCE_REQUIRED": True,
            "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
            "ALLOW_LOCALHOST_LOOPBACK": True,  # RFC 8252 8.3: any port on http://localhost too
            "REQUEST_APPROVAL_PROMPT": "force",  # the consent page every time, as tests/idp
            "ACCESS_TOKEN_EXPIRE_SECONDS": _int(env, "IDP2_AT_TTL", 3600),
            "REFRESH_TOKEN_EXPIRE_SECONDS": _int(env, "IDP2_RT_TTL", 14 * 24 * 3600),
            "AUTHORIZATION_CODE_EXPIRE_SECONDS": _int(env, "IDP2_CODE_TTL", 60),
            "ID_TOKEN_EXPIRE_SECONDS": 3600,
            "DEVICE_FLOW_INTERVAL": _int(env, "IDP2_DEVICE_INTERVAL", 5),
            "OAUTH_DEVICE_VERIFICATION_URI": f"{issuer}/device/",
            "OAUTH_DEVICE_VERIFICATION_URI_COMPLETE": f"{issuer}/device/?user_code={{user_code}}",
            "ROTATE_REFRESH_TOKEN": _bool(env, "IDP2_RT_ROTATION", True),
            "REFRESH_TOKEN_REUSE_PROTECTION": _bool(env, "IDP2_RT_REUSE", True),
            "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": _int(env, "IDP2_RT_GRACE", 0),
            "OAUTH2_VALIDATOR_CLASS": "tests.idp2.validator.RigValidator",
            "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post", "none"],
            "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post", "none"],
            "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
            "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
            "OAUTH2_GRANT_TYPES_SUPPORTED": [
                "authorization_code", "client_credentials", "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
            ],
            # RFC 9700 (the 4.0 defaults, adopted now): no implicit or password grant, S256 only,
            # bearer tokens never in a query string, `iss` on every authorization response (RFC 9207),
            # tokens hashed at rest.
            "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
            "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
            "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
            "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
            "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
            "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
            "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
            "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
            "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
            "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
        },
    }
