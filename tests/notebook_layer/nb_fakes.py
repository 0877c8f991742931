"""A scripted authenticator for unit tests of the notebook layer (the real flows are tested against the IdP).

It emits the same ``flows.events`` a device flow emits and waits, through ``control.Waiter`` (deadline
and cancel), for the test to decide: ``approve()``, ``deny()``, ``expire()`` or ``fail(exc)``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flyteauth_jupyter.control import Waiter
from flyteauth_jupyter.credentials import Credentials
from flyteauth_jupyter.errors import (
    AccessDeniedError,
    AccessTokenNotFoundError,
    ExpiredTokenError,
    LoginCancelledError,
)
from flyteauth_jupyter.flows.events import (
    Cancelled,
    DeviceCodeIssued,
    Failed,
    FlowStarted,
    Polling,
    Succeeded,
    notify,
)
from flyteauth_jupyter.notebook.session import Prepared

SECRET_ACCESS = "fake-access-token-SECRET-0123456789"
SECRET_REFRESH = "fake-refresh-token-SECRET-9876543210"


class FakeAuthenticator:
    def __init__(
        self,
        observer: Any = None,
        *,
        endpoint: str = "127.0.0.1:9",
        cached: Credentials | None = None,
        user_code: str = "WDJB-MJHT",
        lifetime: float = 120.0,
        flow: str = "device",
        token: str = SECRET_ACCESS,
    ) -> None:
        self.observer = observer
        self.endpoint = endpoint
        self._creds = cached
        self.user_code = user_code
        self.lifetime = lifetime
        self.flow = flow
        self.token = token
        self.decision = threading.Event()
        self.outcome: str | BaseException | None = None
        self.started = threading.Event()
        self.waiter: Waiter | None = None
        self.interactive_calls = 0
        self.refresh_calls = 0
        self.logged_out = False
        self.refresh_token_ok = True

    # -- test controls --------------------------------------------------------------------
    def _decide(self, outcome: str | BaseException) -> None:
        self.outcome = outcome
        self.decision.set()

    def approve(self) -> None:
        self._decide("approve")

    def deny(self) -> None:
        self._decide("deny")

    def expire(self) -> None:
        self._decide("expire")

    # -- the Authenticator surface ------------------------------------------------------------
    def get_credentials(self) -> Credentials | None:
        return self._creds

    def refresh_credentials(self, *, interactive: bool = True) -> Credentials:
        if not interactive:
            self.refresh_calls += 1
            if self._creds is None or not self._creds.refresh_token or not self.refresh_token_ok:
                raise AccessTokenNotFoundError("No refresh token; sign in again.")
            notify(self.observer, FlowStarted("refresh", self.endpoint))
            self.token = self.token + "-r"
            self._creds = Credentials(self.token, SECRET_REFRESH, self.endpoint, expires_in=int(self.lifetime))
            notify(self.observer, Succeeded("refresh", self.endpoint, self._creds.expires_at, None))
            return self._creds
        self.interactive_calls += 1
        self.decision.clear()
        self.waiter = Waiter(60, what="the device login")
        notify(self.observer, FlowStarted(self.flow, self.endpoint))
        notify(
            self.observer,
            DeviceCodeIssued(
                verification_uri="http://127.0.0.1:9/device",
                user_code=self.user_code,
                expires_at=time.time() + 300,
                interval=0.05,
                verification_uri_complete=f"http://127.0.0.1:9/device?user_code={self.user_code}",
            ),
        )
        self.started.set()
        try:
            for attempt in range(1, 2000):  # bounded: 2000 polls of 10 ms
                notify(self.observer, Polling(attempt, 0.01))
                if self.waiter.wait_for(self.decision, 0.01):
                    break
            outcome = self.outcome
            if outcome == "approve":
                self._creds = Credentials(
                    self.token, SECRET_REFRESH, self.endpoint, expires_in=int(self.lifetime),
                    id_token=None, scopes=("openid", "api:read"),
                )
                notify(self.observer, Succeeded(self.flow, self.endpoint, self._creds.expires_at, "alice", ("openid",)))
                return self._creds
            if outcome == "deny":
                raise AccessDeniedError("The sign-in to 127.0.0.1:9 was denied.", error="access_denied")
            if outcome == "expire":
                raise ExpiredTokenError("The code expired before it was approved; run the login again.", error="expired_token")
            if isinstance(outcome, BaseException):
                raise outcome
            raise ExpiredTokenError("No decision was made in time.")
        except LoginCancelledError:
            notify(self.observer, Cancelled(self.flow))
            raise
        except Exception as exc:
            notify(self.observer, Failed(self.flow, str(exc), exc))
            raise

    def fetch_grpc_call_auth_metadata(self) -> tuple[str, str] | None:
        creds = self.get_credentials()
        return ("authorization", f"Bearer {creds.access_token}") if creds else None

    def cancel(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            waiter.cancel()

    def logout(self) -> None:
        self._creds = None
        self.logged_out = True


class FakeFactory:
    """``prepare(spec, observer)`` replacement: builds one FakeAuthenticator per attempt."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.built: list[FakeAuthenticator] = []
        self.specs: list[Any] = []
        self.ready = threading.Condition()

    def __call__(self, spec: Any, observer: Any) -> Prepared:
        self.specs.append(spec)
        fake = FakeAuthenticator(observer, endpoint=spec.service, **self.kwargs)
        with self.ready:
            self.built.append(fake)
            self.ready.notify_all()
        return Prepared(fake, "device", "test fake")

    def latest(self, count: int = 1, timeout: float = 5.0) -> FakeAuthenticator:
        """The newest authenticator once ``count`` have been built, and started its flow."""
        with self.ready:
            if not self.ready.wait_for(lambda: len(self.built) >= count, timeout):
                raise TimeoutError(f"only {len(self.built)} authenticators were built")
        fake = self.built[-1]
        return fake


def wait_until(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    """Wait for ``predicate()`` with a bound, re-checking on a short Event wait (no guessed sleeps)."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        pause.wait(0.01)


def magics_of(ip):
    """The FlyteAuthMagics instance registered in ``ip``."""
    return ip.magics_manager.registry["FlyteAuthMagics"]
