"""``CommandAuthenticator``: a token printed by an external command (argv list, no shell, stdin
closed, 60 s by default), as flytekit's ``command`` auth.

The header key (pinned 3): the argument, else the deployment's ``authorization_metadata_key``, else
``authorization``. flytekit's ``CommandAuthenticator(command, header_key)`` knows no endpoint, so it
sends ``authorization``; the one ``%flyte_login --flow command`` builds knows its endpoint and reads
the deployment's configuration once, when the command has run (in the sign-in's background thread,
never on the hot path), so every authenticator for one endpoint sends the token under the same key. A
deployment without FlyteAdmin's configuration (any API) gets ``authorization``, read once too.
``proxy_auth=`` is the identity-aware proxy's credential for the deployment (optional).
"""

from __future__ import annotations

from typing import Any

from ..config import ClientConfigStore
from ..control import Clock, Waiter
from ..credentials import Credentials
from ..errors import AuthenticationError
from ..flows import command as command_flow
from ..flows.events import Observer
from ..transport.http import DEFAULT_DEADLINE, DEFAULT_TIMEOUT
from .base import Authenticator

_UNREAD = object()


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
        verify: bool | str | None = None,
        http_proxy_url: str | None = None,
        cfg_store: ClientConfigStore | None = None,
        http_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        http_deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        if not command:
            raise AuthenticationError("Command cannot be empty for command authenticator.")
        self._command = command_flow.normalise_command(command)
        super().__init__(
            endpoint,  # type: ignore[arg-type]
            header_key,
            None,
            http_proxy_url,
            verify,
            observer=observer,
            timeout=timeout,
            clock=clock,
            insecure=insecure,
            proxy_auth=proxy_auth,
            cfg_store=cfg_store,
            http_timeout=http_timeout,
            http_deadline=http_deadline,
        )
        self._env = env
        #: the deployment's header key, once read (None: it names none, or it could not be read)
        self._server_key: Any = _UNREAD if endpoint else None

    @property
    def command(self) -> list[str]:
        return list(self._command)

    def _server_header_key(self) -> str | None:
        """The deployment's ``authorization_metadata_key`` (read once; None without an endpoint)."""
        if self._server_key is _UNREAD:
            cfg = self._logout_config()  # the endpoint's own configuration (logged and None when unreadable)
            with self._state_lock:
                self._server_key = cfg.header_key if cfg is not None else None
                self._cool()  # the key is known now: the hot path may cache the header
        key: str | None = self._server_key
        return key

    def _known_header_key(self) -> str | None:
        if self._header_key_arg:
            return self._header_key_arg
        return None if self._server_key is _UNREAD else self.header_key

    def _login(self, waiter: Waiter) -> Credentials:
        waiter.check()
        token = command_flow.run_token_command(
            self._command,
            timeout=self.timeout if self.timeout is not None else command_flow.DEFAULT_TIMEOUT,
            env=self._env,
        )
        if not self._header_key_arg:
            self._server_header_key()  # here, in the sign-in's thread: the first SDK call makes no request
        return Credentials(token, for_endpoint=self.service)

    def _repr_fields(self) -> list[str]:
        program = self._command[0].rsplit("/", 1)[-1]
        return [f"command=[{program!r}, ...]", f"header_key={self._header_key_arg!r}"]
