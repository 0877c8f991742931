"""``CommandAuthenticator``: a token printed by an external command (argv list, no shell, stdin
closed, 60 s by default), as flytekit's ``command`` auth. ``endpoint=`` (its deployment: the origin
``BearerAuth`` sends the token to, and where sign-out reads the revocation endpoint) and
``proxy_auth=`` (the identity-aware proxy's credential for it) are optional extras."""

from __future__ import annotations

from typing import Any

from ..control import Clock, Waiter
from ..credentials import Credentials
from ..errors import AuthenticationError
from ..flows import command as command_flow
from ..flows.events import Observer
from .base import Authenticator


class CommandAuthenticator(Authenticator):
    """Token from an external command (argv list, no shell, stdin closed, timeout 60 s by default)."""

    flow_name = "command"
    needs_user = False

    def __init__(
        self,
        command: list[str],
        header_key: str = None,  # type: ignore[assignment]  # flytekit's signature
        *,
        timeout: float | None = None,
        observer: Observer | None = None,
        clock: Clock | None = None,
        env: dict[str, str] | None = None,
        endpoint: str | None = None,
        insecure: bool = False,
        proxy_auth: Any = None,
    ) -> None:
        if not command:
            raise AuthenticationError("Command cannot be empty for command authenticator.")
        self._command = command_flow.normalise_command(command)
        super().__init__(
            endpoint,  # type: ignore[arg-type]
            header_key,
            observer=observer,
            timeout=timeout,
            clock=clock,
            insecure=insecure,
            proxy_auth=proxy_auth,
        )
        self._env = env

    @property
    def command(self) -> list[str]:
        return list(self._command)

    def _server_header_key(self) -> str | None:
        return None

    def _login(self, waiter: Waiter) -> Credentials:
        waiter.check()
        token = command_flow.run_token_command(
            self._command,
            timeout=self.timeout if self.timeout is not None else command_flow.DEFAULT_TIMEOUT,
            env=self._env,
        )
        return Credentials(token, for_endpoint=self.service)

    def _repr_fields(self) -> list[str]:
        program = self._command[0].rsplit("/", 1)[-1]
        return [f"command=[{program!r}, ...]", f"header_key={self._header_key_arg!r}"]
