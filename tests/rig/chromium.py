"""Debian's chromium through Playwright, shared by the browser suite and the Hub rig.

Playwright's sync API allows one running instance per process (a second ``sync_playwright()`` while
the first is open fails with "using Playwright Sync API inside the asyncio loop"), so the session has
exactly one, the ``playwright`` fixture in tests/conftest.py, and every suite launches its contexts
from it with :func:`launch`. Each context gets a fresh user-data dir and aborts (and records) every
request that is not to a loopback address. Never ``playwright install``: the browser is
``/usr/bin/chromium`` (``make chromium``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def require_chromium() -> None:
    """Fail on CI (where ``make test`` installs it), skip elsewhere, when the browser is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: `make chromium` (or apt-get install chromium) installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def launch(pw: Any, profile: Path, blocked: list[str], **options: Any) -> Any:
    """A persistent chromium context on the fresh ``profile`` dir; non-loopback requests are aborted
    and their URLs appended to ``blocked``."""
    context = pw.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        timeout=60_000, **options,
    )

    def guard(route: Any) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOOPBACK_HOSTS:
            blocked.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    return context
