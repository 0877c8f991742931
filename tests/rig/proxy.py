"""An identity-aware proxy in front of the FlyteAdmin stand-ins (flyte#3965, GCP IAP), and its token helper.

``ProxyGate`` is the proxy's check, shared by ``FlyteAdminStandIn(proxy=gate)`` (HTTP) and the gRPC
stand-in behind it: every request must carry ``proxy-authorization: Bearer <token>`` with a token the
helper printed (``proxy-...``, or a JWT from ``--jwt`` whose ``exp`` has not passed) that the test has not
``refuse``d (and none while ``closed``). Otherwise HTTP answers 407 with ``Proxy-Authenticate`` (``status=407``) or, as IAP does,
401 with ``X-Goog-IAP-Generated-Response: true`` (``status=401``), before the request reaches
FlyteAdmin; gRPC answers UNAUTHENTICATED. ``.seen`` records ``(kind, where, token or None)`` for every
request, in order.

``proxy_command(tmp_path, *options)`` is the argv of tests/rig/proxy_token.py (see there) with its own
runs file; ``runs(argv)`` counts its runs from that file.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from flyteauth_jupyter.credentials import jwt_claims

TOKEN_HELPER = Path(__file__).resolve().parent / "proxy_token.py"


def proxy_command(directory: Path, *options: str, name: str = "proxy-runs") -> list[str]:
    """The helper's argv, counting its runs in ``directory/name``."""
    return [sys.executable, str(TOKEN_HELPER), str(directory / name), *options]


def runs(argv: list[str]) -> int:
    """How many times the helper with this argv ran."""
    path = Path(argv[2])
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


class ProxyGate:
    """Which ``proxy-authorization`` values pass, and a record of every one seen."""

    def __init__(self, *, status: int = 407) -> None:
        if status not in (401, 407):
            raise ValueError("an identity-aware proxy refuses with 407 or (IAP) a marked 401")
        self.status = status
        self.refused: set[str] = set()
        #: True: the proxy refuses everything (a credential it will not accept whatever the command prints)
        self.closed = False
        self.seen: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()

    @staticmethod
    def token_of(value: str | None) -> str | None:
        if not value or value[:7].lower() != "bearer " or not value[7:].strip():
            return None
        return value[7:].strip()

    def admits(self, kind: str, where: str, value: str | None) -> bool:
        """Record the request and say whether the proxy lets it through."""
        token = self.token_of(value)
        with self._lock:
            self.seen.append((kind, where, token))
            if token is None or token in self.refused or self.closed:
                return False
        if token.startswith("proxy-"):
            return True
        claims = jwt_claims(token)
        return isinstance(claims.get("exp"), (int, float)) and claims["exp"] > time.time()

    def refuse(self, *tokens: str | None) -> None:
        """From now on the proxy refuses these tokens (e.g. every one seen so far: ``refuse(*gate.tokens())``)."""
        with self._lock:
            self.refused.update(t for t in tokens if t)

    def tokens(self, kind: str | None = None) -> list[str | None]:
        with self._lock:
            return [token for k, _, token in self.seen if kind is None or k == kind]

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self.refused.clear()

    def refusal_headers(self) -> dict[str, str]:
        if self.status == 407:
            return {"Proxy-Authenticate": 'Bearer realm="identity-aware-proxy"'}
        return {"X-Goog-IAP-Generated-Response": "true"}

    def __repr__(self) -> str:
        return f"ProxyGate(status={self.status}, seen={len(self.seen)}, refused={len(self.refused)})"
