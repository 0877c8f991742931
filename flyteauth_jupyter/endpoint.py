"""Parsing a Flyte endpoint into its base URL and its keyring service name (DESIGN.md, pinned 1 and 2).

Accepted: a URL (``https://flyte.example.com``, ``http://127.0.0.1:30080``) or flytekit's bare
``host[:port]`` (``dns:///`` prefix allowed), which means HTTPS unless ``insecure=True`` (plain HTTP,
as flytekit's ``PlatformConfig.insecure``). Plain HTTP is refused for hosts that are not loopback
unless ``insecure`` is set. The service name is the endpoint without scheme (``host[:port]``), so
``http://h:p`` and ``PlatformConfig(endpoint="h:p", insecure=True)`` meet at the same keyring entries.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ConfigurationError

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback IP literals (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoint:
    """A parsed endpoint: ``url`` (scheme://host[:port], no trailing slash) and ``service`` (host[:port])."""

    url: str
    service: str
    host: str
    port: int | None
    scheme: str

    def __str__(self) -> str:
        return self.service


def parse_endpoint(endpoint: str, *, insecure: bool = False) -> Endpoint:
    """Parse ``endpoint``; raise ConfigurationError with one clear sentence when it is not usable."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ConfigurationError("No Flyte endpoint was given; pass a URL such as https://flyte.example.com.")
    raw = endpoint.strip()
    if raw.startswith("dns:///"):
        raw = raw[len("dns:///") :]
    if "://" in raw:
        parts = urlsplit(raw)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ConfigurationError(f"The endpoint {endpoint!r} must use http or https, not {scheme!r}.")
    else:
        scheme = "http" if insecure else "https"
        parts = urlsplit(f"{scheme}://{raw}")
    try:
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"The endpoint {endpoint!r} has an invalid port.") from exc
    if not host or parts.username or parts.password or " " in raw:
        raise ConfigurationError(f"The endpoint {endpoint!r} is not a valid URL or host:port.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"The endpoint {endpoint!r} should be just scheme://host[:port], without a path or query."
        )
    if scheme == "http" and not insecure and not is_loopback_host(host):
        raise ConfigurationError(
            f"Refusing plain HTTP to {host}{':' + str(port) if port else ''}; use https, or pass insecure=True "
            "(--insecure) if this deployment really has no TLS."
        )
    # The service name keeps the host as typed (flytekit keys its keyring by the endpoint string verbatim).
    service = parts.netloc
    return Endpoint(url=f"{scheme}://{service}", service=service, host=host, port=port, scheme=scheme)
