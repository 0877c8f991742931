"""Serving a bound socketserver in a daemon thread: the start/stop the rig's threaded stand-ins share.

A subclass sets ``_server`` (bound and listening, not yet served) and ``name`` (the thread is
``<name>-<port>``). ``start`` is idempotent; ``stop`` shuts the loop down, closes the socket (also of a
server never started) and joins the thread for at most 5 s. A subclass with more to release overrides
``stop`` and calls ``super().stop()`` first.
"""

from __future__ import annotations

import socketserver
import threading
from typing import TypeVar

_B = TypeVar("_B", bound="Background")


class Background:
    """Start/stop ``self._server`` in a daemon thread; a context manager; ``.port`` is its port."""

    _server: socketserver.TCPServer
    _thread: threading.Thread | None = None
    name = "server"

    def start(self: _B) -> _B:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                name=f"{self.name}-{self.port}", daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self: _B) -> _B:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]
