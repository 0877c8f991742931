"""flyteauth_jupyter: sign a notebook user into a Flyte deployment (or any OAuth2/OIDC API).

The public names are pinned in DESIGN.md. They are imported on first use (PEP 562 ``__getattr__``),
so ``import flyteauth_jupyter`` and ``%load_ext flyteauth_jupyter`` import nothing that sends, renders
or stores (requests, urllib3, ipywidgets, segno, keyring, jupyter_server, flytekit, grpc);
tests/unit/test_lazy_imports.py checks ``sys.modules`` after both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._lazy import attach
from ._version import __version__

if TYPE_CHECKING:  # the names below, for type checkers and IDEs; at run time see __getattr__
    from .authenticators import (
        Authenticator,
        ClientCredentialsAuthenticator,
        CommandAuthenticator,
        DeviceCodeAuthenticator,
        PKCEAuthenticator,
    )
    from .config import (
        ClientConfig,
        ClientConfigStore,
        IssuerClientConfigStore,
        RemoteClientConfigStore,
        StaticClientConfigStore,
    )
    from .credentials import Credentials
    from .errors import AccessTokenNotFoundError, AuthenticationError, AuthenticationPending, FlyteAuthError
    from .stores import KeyringStore

#: public name -> the module (relative to this package) that defines it
_LAZY = {
    "Authenticator": ".authenticators",
    "ClientCredentialsAuthenticator": ".authenticators",
    "CommandAuthenticator": ".authenticators",
    "DeviceCodeAuthenticator": ".authenticators",
    "PKCEAuthenticator": ".authenticators",
    "ClientConfig": ".config",
    "ClientConfigStore": ".config",
    "IssuerClientConfigStore": ".config",
    "RemoteClientConfigStore": ".config",
    "StaticClientConfigStore": ".config",
    "Credentials": ".credentials",
    "AccessTokenNotFoundError": ".errors",
    "AuthenticationError": ".errors",
    "AuthenticationPending": ".errors",
    "FlyteAuthError": ".errors",
    "KeyringStore": ".stores",
}

__all__ = [
    "Authenticator",
    "ClientConfig",
    "ClientConfigStore",
    "StaticClientConfigStore",
    "RemoteClientConfigStore",
    "IssuerClientConfigStore",
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


__getattr__, __dir__ = attach(__name__, _LAZY, globals(), listed=__all__)


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
