"""The second test IdP's users and clients: the ones tests/idp (node-oidc-provider) has, by the same
ids and secrets, so the FlyteAdmin stand-in and the rig's users work against either server.

Users: ``IDP2_USERS`` ("alice:wonderland,bob:builder"). Clients (client secrets are hashed at rest):

=========================  ============  ===========================================================
client id                  type          grants (first: the Application's own; others: EXTRA_GRANTS)
=========================  ============  ===========================================================
jupyter-native             public        authorization code (PKCE, any loopback port), device code
jupyter-web-public         public        authorization code on http://127.0.0.1:8888
jupyter-confidential       confidential  client credentials, authorization code, device code
jupyter-confidential-post  confidential  client credentials
=========================  ============  ===========================================================

Every grant may be followed by refresh grants (django-oauth-toolkit allows ``refresh_token`` with any
of them).
"""

from __future__ import annotations

import os

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
AUTH_CODE = "authorization-code"
CLIENT_CREDENTIALS = "client-credentials"
SECRET = "confidential-secret"
# RFC 8252: a native client may use any port on these (ALLOW_LOCALHOST_LOOPBACK covers localhost).
# /flyteauth/callback is the Jupyter server extension's redirect relay.
LOOPBACK_REDIRECTS = (
    "http://127.0.0.1/callback http://localhost/callback http://[::1]/callback "
    "http://127.0.0.1/flyteauth/callback http://localhost/flyteauth/callback"
)

# client id -> (name, the Application's grant, redirect URIs, confidential?)
CLIENTS = {
    "jupyter-native": ("Jupyter (native)", AUTH_CODE, LOOPBACK_REDIRECTS, False),
    "jupyter-web-public": ("Jupyter (web)", AUTH_CODE,
                           "http://127.0.0.1:8888/callback http://127.0.0.1:8888/flyteauth/callback", False),
    "jupyter-confidential": ("Jupyter (confidential)", CLIENT_CREDENTIALS, "http://127.0.0.1/callback", True),
    "jupyter-confidential-post": ("Jupyter (confidential, post)", CLIENT_CREDENTIALS, "", True),
}
EXTRA_GRANTS: dict[str, frozenset[str]] = {
    "jupyter-native": frozenset({DEVICE}),
    "jupyter-confidential": frozenset({AUTH_CODE, DEVICE}),
}


def users(env: dict[str, str] | None = None) -> dict[str, str]:
    raw = (os.environ if env is None else env).get("IDP2_USERS") or "alice:wonderland,bob:builder"
    pairs = (item.split(":", 1) for item in raw.split(",") if item)
    return {name: password for name, password in pairs}


def seed() -> dict[str, str]:
    """Create the users and clients; returns {username: OIDC subject}."""
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_application_model

    user_model = get_user_model()
    subjects = {}
    for name, password in users().items():
        user = user_model.objects.create_user(
            username=name, password=password, email=f"{name}@example.test",
            first_name=name.capitalize(),
        )
        subjects[name] = str(user.pk)
    application = get_application_model()
    for client_id, (name, grant, redirects, confidential) in CLIENTS.items():
        application.objects.create(
            client_id=client_id,
            name=name,
            client_type=application.CLIENT_CONFIDENTIAL if confidential else application.CLIENT_PUBLIC,
            authorization_grant_type=grant,
            client_secret=SECRET if confidential else "",
            redirect_uris=redirects,
            algorithm=application.RS256_ALGORITHM,
            skip_authorization=False,
        )
    return subjects
