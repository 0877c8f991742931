"""Fake tokens for the token-store tests (unit tests only): values a secret scan can find in a file."""

from __future__ import annotations

from typing import Any

from flyteauth_jupyter.credentials import Credentials

AT = "at-0123456789abcdef-secret"
RT = "rt-0123456789abcdef-secret"
IDT = "idt-0123456789abcdef-secret"
SECRETS = (AT, RT, IDT)
SVC = "flyte.example.com:8443"


def creds(**kw: Any) -> Credentials:
    """Credentials with all three tokens and an hour to live; ``kw`` overrides."""
    values: dict[str, Any] = dict(access_token=AT, refresh_token=RT, id_token=IDT, expires_in=3600)
    values.update(kw)
    return Credentials(**values)
