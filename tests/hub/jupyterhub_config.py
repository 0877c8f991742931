# JupyterHub configuration for flyteauth-jupyter's sign-in from the Hub's own login (%flyte_login
# --flow hub) and for PKCE through one redirect URI for every user (<hub>/hub/user-redirect/
# flyteauth/callback). The test rig (tests/rig/hub.py) and `make demo-hub` run it; it is also the
# example for administrators: the lines marked "flyteauth" are the ones a real Hub needs (see
# docs/jupyterhub.md for the zero-to-jupyterhub Helm values that correspond).
#
# Settings (environment):
#   FLYTEAUTH_HUB_IP (127.0.0.1)  FLYTEAUTH_HUB_PORT (8000)  FLYTEAUTH_HUB_API_PORT (8081)
#   FLYTEAUTH_HUB_PUBLIC_URL (http://<ip>:<port>/, the address users open)
#   FLYTEAUTH_HUB_PROXY_API_PORT (8001)  FLYTEAUTH_HUB_STATE_DIR (db, cookie secret, user homes)
#   FLYTEAUTH_HUB_ISSUER (the identity provider, also the Flyte endpoint's)  FLYTEAUTH_HUB_SCOPES
#   OAUTH_CLIENT_ID / OAUTH_CLIENT_SECRET (the Hub's confidential client at the identity provider)
#   JUPYTERHUB_CRYPT_KEY (32 random bytes, hex: encrypts auth_state; the rig makes one per run)
#   FLYTEAUTH_HUB_CHP (the configurable-http-proxy program)  FLYTEAUTH_HUB_REFRESH_AGE (60)
#   FLYTEAUTH_HUB_USER_ENV (JSON object of extra variables for single-user servers; "{username}" is
#   replaced)  FLYTEAUTH_HUB_RIG_TOKEN (test rig only: an API token for a service that drives the Hub)
import json
import os
import shutil
import sys
import time

from oauthenticator.generic import GenericOAuthenticator

c = get_config()  # noqa: F821 - provided by JupyterHub

env = os.environ.get
ip = env("FLYTEAUTH_HUB_IP", "127.0.0.1")
issuer = env("FLYTEAUTH_HUB_ISSUER", "http://127.0.0.1:30091").rstrip("/")
state_dir = os.path.abspath(env("FLYTEAUTH_HUB_STATE_DIR", ".hub-state"))
os.makedirs(state_dir, mode=0o700, exist_ok=True)

# -- the Hub, its proxy and its database: loopback only ------------------------------------------
c.JupyterHub.ip = ip
c.JupyterHub.port = int(env("FLYTEAUTH_HUB_PORT", "8000"))
# flyteauth (optional): the address users open. Single-user servers get it as
# $JUPYTERHUB_PUBLIC_HUB_URL, and the panel names the Hub by it ("your JupyterHub login
# (hub.example.org) is reused"); without it the panel says just "JupyterHub", never the internal API
# address ($JUPYTERHUB_API_URL, e.g. hub:8081) that users never see.
c.JupyterHub.public_url = env("FLYTEAUTH_HUB_PUBLIC_URL") or f"http://{ip}:{c.JupyterHub.port}/"
c.JupyterHub.hub_ip = ip
c.JupyterHub.hub_port = int(env("FLYTEAUTH_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://{ip}:{env('FLYTEAUTH_HUB_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.command = [env("FLYTEAUTH_HUB_CHP") or shutil.which("configurable-http-proxy") or "configurable-http-proxy"]
c.JupyterHub.db_url = f"sqlite:///{state_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state_dir}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{state_dir}/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True

# -- users sign in at the identity provider (OpenID Connect) ------------------------------------
c.JupyterHub.authenticator_class = GenericOAuthenticator
c.GenericOAuthenticator.authorize_url = f"{issuer}/auth"
c.GenericOAuthenticator.token_url = f"{issuer}/token"
c.GenericOAuthenticator.userdata_from_id_token = True
c.GenericOAuthenticator.username_claim = "preferred_username"
c.GenericOAuthenticator.login_service = "the identity provider"
c.GenericOAuthenticator.allowed_users = {"alice", "bob"}
c.GenericOAuthenticator.admin_users = set()
c.GenericOAuthenticator.oauth_callback_url = f"http://{ip}:{c.JupyterHub.port}/hub/oauth_callback"
# flyteauth: ask for the Flyte API's scope too, so the Hub's access token is accepted by FlyteAdmin
# (its audience), and offline_access for a refresh token (node-oidc-provider wants prompt=consent).
c.GenericOAuthenticator.scope = (env("FLYTEAUTH_HUB_SCOPES") or "openid profile offline_access api:read").split()
c.GenericOAuthenticator.extra_authorize_params = {"prompt": "consent"}

# flyteauth: keep the tokens (auth_state, encrypted with $JUPYTERHUB_CRYPT_KEY) ...
c.GenericOAuthenticator.enable_auth_state = True
# ... and refresh them before they expire. refresh_user runs at most every auth_refresh_age seconds
# when the user (or their server's token) calls the Hub; this hook renews the access token with the
# Hub's refresh token once less than min(5 min, half its lifetime) is left (stock refresh_user only
# notices an access token the identity provider already refuses). The kernel asks the Hub again
# when less than min(60 s, half the lifetime) is left, so auth_refresh_age must be shorter than the
# gap between the two (the rig: 2 s; a real Hub: 60 s for one-hour tokens).
c.GenericOAuthenticator.auth_refresh_age = int(env("FLYTEAUTH_HUB_REFRESH_AGE", "60"))


# --8<-- [start:refresh-hooks] (docs/jupyterhub.md includes the lines down to [end:refresh-hooks])

def add_expiry(authenticator, auth_state):
    """Record when the access token expires (the token response only says 'in N seconds')."""
    expires_in = (auth_state.get("token_response") or {}).get("expires_in")
    if isinstance(expires_in, (int, float)) and 0 < expires_in < 10 * 365 * 86400:
        auth_state["expires_at"] = int(time.time() + expires_in)
        auth_state["expires_in"] = int(expires_in)
    return auth_state


async def refresh_before_expiry(authenticator, user, auth_state):
    """refresh_user_hook: True while the token is fresh, a new auth model once it is nearly spent."""
    if not auth_state or not auth_state.get("refresh_token") or not auth_state.get("expires_at"):
        return None  # the stock behaviour
    lifetime = auth_state.get("expires_in") or 3600
    if auth_state["expires_at"] - time.time() > min(300, lifetime / 2):
        return True
    params = authenticator.build_refresh_token_request_params(auth_state["refresh_token"])
    try:
        token_info = await authenticator.get_token_info(None, params)
    except Exception as exc:  # noqa: BLE001 - a dead refresh token means: sign in again
        authenticator.log.info("refresh for %s failed (%s); a new login is needed", user.name, type(exc).__name__)
        return False
    token_info.setdefault("refresh_token", auth_state["refresh_token"])
    new_state = authenticator.build_auth_state_dict(token_info, auth_state.get(authenticator.user_auth_state_key))
    if hasattr(new_state, "__await__"):
        new_state = await new_state
    return {"name": user.name, "auth_state": add_expiry(authenticator, new_state)}


c.GenericOAuthenticator.modify_auth_state_hook = add_expiry
c.GenericOAuthenticator.refresh_user_hook = refresh_before_expiry
# --8<-- [end:refresh-hooks]

# flyteauth: let the user's own server read the user's auth_state (GET /hub/api/users/<name>) with
# the least scope that allows it. A server's token gets the `server` role's scopes intersected with
# its owner's, so the scope goes on BOTH roles (on `server` alone it is silently missing).
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "admin:auth_state!user"]},
    {"name": "server", "scopes": ["users:activity!user", "access:servers!server", "admin:auth_state!user"]},
]

# -- single-user servers: local processes (SimpleLocalProcessSpawner is for tests and demos only:
# it gives users no isolation from each other; a real Hub uses KubeSpawner, DockerSpawner, ...) --
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(state_dir, "users", "{username}", "home")
c.Spawner.ip = ip
c.Spawner.cmd = [os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.args = ["--ServerApp.terminals_enabled=False", "--LabApp.news_url=None",
                  "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
if hasattr(os, "geteuid") and os.geteuid() == 0:
    c.Spawner.args.append("--allow-root")  # single-user servers refuse to run as root otherwise

_user_env = json.loads(env("FLYTEAUTH_HUB_USER_ENV") or "{}")


def _per_user(value):
    return lambda spawner: value.replace("{username}", spawner.user.name)


c.Spawner.environment = {name: _per_user(str(value)) for name, value in _user_env.items()}

# -- test rig only: a service whose token drives the Hub's API (spawn, tokens) ------------------
if env("FLYTEAUTH_HUB_RIG_TOKEN"):
    c.JupyterHub.services = [{"name": "flyteauth-rig", "api_token": env("FLYTEAUTH_HUB_RIG_TOKEN")}]
    c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 1}  # POST /users/x/server answers at once
    c.JupyterHub.load_roles.append({
        "name": "flyteauth-rig",
        "scopes": ["admin:users", "admin:servers", "admin:auth_state", "tokens", "access:servers", "read:users"],
        "services": ["flyteauth-rig"],
    })
