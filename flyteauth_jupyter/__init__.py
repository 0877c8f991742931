"""flyteauth_jupyter: sign a notebook user into a Flyte deployment (or any OAuth2/OIDC API).

The public names are pinned in DESIGN.md. ``%load_ext flyteauth_jupyter`` calls
:func:`load_ipython_extension`, which imports the notebook layer lazily; importing this package
never imports ipywidgets, jupyter_server, flytekit or grpc.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .authenticators import (
    Authenticator,
    ClientCredentialsAuthenticator,
    CommandAuthenticator,
    DeviceCodeAuthenticator,
    PKCEAuthenticator,
)
from .config import ClientConfig, ClientConfigStore, RemoteClientConfigStore, StaticClientConfigStore
from .credentials import Credentials
from .errors import AccessTokenNotFoundError, AuthenticationError, AuthenticationPending, FlyteAuthError
from .stores import KeyringStore

__all__ = [
    "Authenticator",
    "ClientConfig",
    "ClientConfigStore",
    "StaticClientConfigStore",
    "RemoteClientConfigStore",
    "ClientCredentialsAuthenticator",
    "CommandAuthenticator",
    "DeviceCodeAuthenticator",
    "PKCEAuthenticator",
    "Credentials",
    "KeyringStore",
    "FlyteAuthError",
    "AuthenticationError",
    "AccessTokenNotFoundError",
    "AuthenticationPending",
    "load_ipython_extension",
    "unload_ipython_extension",
    "__version__",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext flyteauth_jupyter``: register the magics (notebook layer imported only now)."""
    from .notebook import magics

    magics.load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext flyteauth_jupyter``."""
    from .notebook import magics

    unload = getattr(magics, "unload_ipython_extension", None)
    if unload is not None:
        unload(ipython)
