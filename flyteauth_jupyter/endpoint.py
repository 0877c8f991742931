"""Parsing a Flyte endpoint into its base URL and its keyring service name (DESIGN.md, pinned 1 and 2).

Accepted: a URL (``https://flyte.example.com``, ``http://127.0.0.1:30080``) or flytekit's bare
``host[:port]`` (``dns:///`` prefix allowed), which means HTTPS unless ``insecure=True`` (plain HTTP,
as flytekit's ``PlatformConfig.insecure``). Plain HTTP is refused for hosts that are not loopback
unless ``insecure`` is set. The service name is the endpoint without scheme (``host[:port]``), so
``http://h:p`` and ``PlatformConfig(endpoint="h:p", insecure=True)`` meet at the same keyring entries.
A user name or password in the address (``https://user:password@host``) is refused without repeating
it; messages show the endpoint only through :func:`shown`. :func:`check_server_url` applies the same
rule to URLs a server advertises (token, device, authorization, revocation endpoints, issuer).

:func:`origin` is the one normal form for origins (DESIGN.md pinned 22): ``(scheme, host, port)`` with
the host in IDNA (A-labels, as requests and urllib3 send it: ``bücher.example`` is
``xn--bcher-kva.example``), lower case, and the default port made explicit. Every "may this request
carry the token" decision compares origins in this form (``clients.BearerAuth``, the gRPC plug-in), so
a Unicode endpoint and the punycode host a request actually goes to are the same origin.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ConfigurationError, FlyteAuthError, ProtocolError, scrub

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
DEFAULT_PORTS = {"http": 80, "https": 443}

#: ``(scheme, host, port)``: lower case, IDNA host, explicit port (see :func:`origin`)
Origin = tuple[str, str, int]


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback IP literals (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shown(text: object, limit: int = 100) -> str:
    """``text`` fit to quote in a message: no user:password@, nothing token-like, clipped."""
    value = str(text)
    value = value.split("@", 1)[1] if "@" in value and "//" not in value.split("@", 1)[0] else value
    return repr(scrub(value, limit=limit))


def _has_userinfo(raw: str) -> bool:
    authority = raw.split("://", 1)[1] if "://" in raw else raw
    authority = authority.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return "@" in authority


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
    if _has_userinfo(raw):
        raise ConfigurationError(
            "The endpoint must not contain a user name or password (user:password@); give only "
            "scheme://host[:port] and sign in through a login flow."
        )
    if "://" in raw:
        try:
            parts = urlsplit(raw)
        except ValueError as exc:
            raise ConfigurationError(f"The endpoint {shown(endpoint)} is not a valid URL or host:port.") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ConfigurationError(f"The endpoint {shown(endpoint)} must use http or https, not {shown(scheme, 20)}.")
    else:
        scheme = "http" if insecure else "https"
        try:
            parts = urlsplit(f"{scheme}://{raw}")
        except ValueError as exc:
            raise ConfigurationError(f"The endpoint {shown(endpoint)} is not a valid URL or host:port.") from exc
    try:
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"The endpoint {shown(endpoint)} has an invalid port.") from exc
    if not host or " " in raw or not raw.isprintable():
        raise ConfigurationError(f"The endpoint {shown(endpoint)} is not a valid URL or host:port.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"The endpoint {shown(endpoint)} should be just scheme://host[:port], without a path or query."
        )
    if scheme == "http" and not insecure and not is_loopback_host(host):
        raise ConfigurationError(
            f"Refusing plain HTTP to {host}{':' + str(port) if port else ''}; use https, or pass insecure=True "
            "(--insecure) if this deployment really has no TLS."
        )
    # The service name keeps the host as typed (flytekit keys its keyring by the endpoint string verbatim).
    service = parts.netloc
    return Endpoint(url=f"{scheme}://{service}", service=service, host=host, port=port, scheme=scheme)


def issuer_service(issuer: str, client_id: str) -> str:
    """The token store's name for an issuer's sign-in that has no API endpoint (``%flyte_login --issuer``
    without ``--endpoint``): ``host[:port][/path] (client ID)``. Not a ``host:port``, so neither SDK
    takes it for a Flyte endpoint, and two clients of one issuer keep their tokens apart."""
    parts = urlsplit(issuer)
    return f"{parts.netloc}{parts.path.rstrip('/')} (client {client_id})"


def same_service(raw: str | None, service: str) -> bool:
    """Whether the endpoint ``raw`` (a setting, or a name, not yet parsed) is the one of ``service``
    (``host:port``, any case); False when ``raw`` is no endpoint at all."""
    try:
        return parse_endpoint(raw or "", insecure=True).service.lower() == service.lower()
    except FlyteAuthError:
        return False


def is_issuer_service(service: str, issuer: str) -> bool:
    """Whether ``service`` is :func:`issuer_service`'s name of a sign-in at ``issuer`` (any client;
    the issuer with or without its scheme, a trailing slash or upper case)."""
    prefix = issuer_service(issuer if "://" in issuer else f"https://{issuer}", "")[: -len(")")]
    return service.lower().startswith(prefix.lower())


def normal_host(host: str) -> str | None:
    """``host`` in the one normal form: IDNA A-labels (UTS 46 mapping, as requests applies it), lower
    case, no brackets around an IPv6 literal; None when it cannot be a host name."""
    host = host.strip().strip("[]")
    if not host:
        return None
    if host.isascii():
        return host.lower()
    try:
        import idna  # requests' own dependency; imported only for a non-ASCII host

        return idna.encode(host, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def origin(url: str) -> Origin | None:
    """The origin of an absolute http(s) URL in the one normal form (pinned 22), else None.

    ``https://Bücher.Example/x``, ``https://xn--bcher-kva.example:443`` and ``HTTPS://XN--BCHER-KVA.EXAMPLE``
    are all ``("https", "xn--bcher-kva.example", 443)``."""
    try:
        parts = urlsplit(url.strip() if isinstance(url, str) else "")
        scheme, raw_host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not raw_host:
        return None
    host = normal_host(raw_host)
    if host is None:
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


def check_user_url(url: object, what: str, *, insecure: bool, issuer: bool = False,
                   insecure_option: str = "insecure=True") -> str:
    """A URL a person gave (an argument, a ``%flyte_login`` option): :func:`check_server_url`'s rule,
    and for an ``issuer`` no query or fragment (RFC 8414 section 2). Returns it stripped; else one
    ConfigurationError sentence naming ``what`` and how plain http is allowed (``insecure_option``)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"The {what} is empty; give a URL such as https://login.example.com/...")
    try:
        value = check_server_url(url.strip(), what=what, where="The given setting", insecure=insecure)
    except ProtocolError as exc:
        raise ConfigurationError(
            f"The {what} {shown(url)} is not a usable https URL (plain http only for loopback or with {insecure_option})."
        ) from exc
    parts = urlsplit(value)
    if issuer and (parts.query or parts.fragment):
        raise ConfigurationError(f"The {what} {shown(url)} must not have a query or fragment (RFC 8414 section 2).")
    return value


def check_server_url(url: str, *, what: str, where: str, insecure: bool = False) -> str:
    """A URL a server advertised (``what``: "token endpoint", ...), checked by the endpoint's rule:
    http(s) only, no user:password@, HTTPS unless the host is loopback or ``insecure``; else a
    ProtocolError naming ``where`` (the host:port that advertised it) in one sentence."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        host, parts = None, None
    if parts is None or not host or parts.scheme.lower() not in ("http", "https") or _has_userinfo(url):
        raise ProtocolError(
            f"{where} advertises a {what} that is not a usable http(s) URL; check the deployment's OAuth configuration."
        )
    if parts.scheme.lower() == "http" and not insecure and not is_loopback_host(host):
        raise ProtocolError(
            f"{where} advertises a plain-HTTP {what} on {host}; tokens must not travel unencrypted, so fix the "
            "deployment's OAuth configuration to use https (or pass insecure=True / --insecure if it really has no TLS)."
        )
    return url
