"""Fakes for the clock and HTTP seams of the flows (unit tests only; the real thing is in tests/integration)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from flyteauth_jupyter.control import Clock
from flyteauth_jupyter.transport.http import JsonResponse

SECRETS = ("AT-secret-123", "RT-secret-456", "DC-secret-789", "CS-secret-000", "ID-secret-111")


class FakeClock(Clock):
    """Time moves only when someone waits; waits return at once (or when the event is set)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.mono = 0.0
        self.waits: list[float] = []
        self.on_wait: Callable[[float], None] | None = None

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        seconds = max(0.0, seconds)
        self.waits.append(seconds)
        self.advance(seconds)
        if self.on_wait is not None:
            self.on_wait(seconds)
        return event.is_set()


def ok(data: dict[str, Any], status: int = 200, where: str = "idp.test:443") -> JsonResponse:
    return JsonResponse(status=status, data=data, where=where)


def oauth(error: str, description: str = "", status: int = 400, where: str = "idp.test:443") -> JsonResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return JsonResponse(status=status, data=body, where=where)


class FakeTransport:
    """Answers POSTs from a script: JsonResponse objects, exceptions to raise, or callables(url, data)."""

    def __init__(self, script: Iterable[Any] = (), *, clock: FakeClock | None = None, gets: dict[str, Any] | None = None) -> None:
        self.script = list(script)
        self.posts: list[tuple[str, dict[str, Any], Any, float | None]] = []
        self.get_calls: list[str] = []
        self.gets = dict(gets or {})
        self.clock = clock
        self.lock = threading.Lock()

    def post_form(self, url: str, data: dict[str, Any], auth: Any = None, **kwargs: Any) -> JsonResponse:
        with self.lock:
            self.posts.append((url, dict(data), auth, self.clock.mono if self.clock else None))
            if not self.script:
                raise AssertionError("unexpected POST")
            item = self.script.pop(0)
        if callable(item) and not isinstance(item, JsonResponse):
            item = item(url, data)
        if isinstance(item, BaseException):
            raise item
        return item

    def get_json(self, url: str, **kwargs: Any) -> JsonResponse:
        with self.lock:
            self.get_calls.append(url)
        item = self.gets[url]
        if callable(item):
            item = item(url)
        if isinstance(item, BaseException):
            raise item
        return item
