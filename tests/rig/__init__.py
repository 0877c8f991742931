"""Test rig: a real OpenID provider on 127.0.0.1, a FlyteAdmin stand-in and a "user" who signs in.

The contract is docs/test-rig.md. Inside pytest these modules are imported as ``rig.*`` (tests/ is on
sys.path through tests/conftest.py); ``python -m tests.rig.demo`` imports them as ``tests.rig.*``.
Modules here use relative imports so both work.
"""

from .idp import IdP, ensure_node_modules
from .flyteadmin import FlyteAdminStandIn
from .user import AuthCodeUser, DeviceUser, LoginPageError

__all__ = [
    "AuthCodeUser",
    "DeviceUser",
    "FlyteAdminStandIn",
    "IdP",
    "LoginPageError",
    "ensure_node_modules",
]
