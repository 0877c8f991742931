"""The RFC 8628 device authorization grant: ask for a code, show it, poll the token endpoint.

Polling follows section 3.5: the interval defaults to 5 s when the server sends none;
``authorization_pending`` keeps polling; ``slow_down`` adds 5 s to the interval for this and every
later request (or takes the server's new ``interval`` when it names a longer one, as GitHub does);
``access_denied``, ``expired_token`` and any other error stop at once. Errors are read by their code
whatever the HTTP status (400 by the RFC; Google answers 428 and 403, Auth0 403 and 429, Dex 401,
GitHub 200). Network failures (and 5xx pages) back off exponentially until the deadline, which is
min(``expires_in``, the caller's timeout). No wait goes past the deadline, and the first poll is
brought forward to land just before it (``FINAL_POLL_LEAD``) when the interval is as long as the code's
life (Keycloak up to 17 sends interval = lifespan: keycloak#12327); later polls never come sooner than
the interval after the previous one, so when the next one no longer fits, the flow waits out the
deadline. The flow waits only through its :class:`~flyteauth_jupyter.control.Waiter`, so a Cancel
from another thread ends it within one poll, and a fake clock drives it in unit tests.

Shown to the user (via events): the verification URI (the complete one when offered) and always the
user code; never the device code. ``verification_url`` (Google, Entra ID v1) is read as
``verification_uri``. A server's own ``message`` (Entra ID) is not shown: it repeats the URL and the
code in the server's words, and our sentence says the same in one voice across providers.

Entra ID v1 (a device authorization endpoint ending in ``/oauth2/devicecode``) speaks ADAL's dialect:
the poll sends ``grant_type=device_code`` and the device code as ``code``, and the API is named by
``resource`` (our ``audience``). A missing device authorization endpoint (Amazon Cognito has none)
is one sentence that points to the browser sign-in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..control import Waiter
from ..credentials import Credentials
from urllib.parse import urlsplit

from ..errors import AuthenticationError, ExpiredTokenError, LoginTimeoutError, ProtocolError, TransportError
from ..transport.http import Transport, host_port
from .client_auth import prepare
from .events import DeviceCodeIssued, NetworkRetry, Observer, Polling, SlowedDown, notify
from ..validate import MAX_INTERVAL, as_number, scope_list, server_seconds
from .tokens import credentials_from_response, parse_expires_in

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5.0
SLOW_DOWN_STEP = 5.0
MIN_INTERVAL = 1.0
MAX_BACKOFF = 60.0
#: the first poll, when the interval is as long as what is left, goes out this long before the deadline
FINAL_POLL_LEAD = 1.0
#: Entra ID v1's device authorization path (ADAL: AADConstants.DEVICE_ENDPOINT_PATH)
ENTRA_V1_DEVICE_PATH = "/oauth2/devicecode"
ENTRA_V1_GRANT_TYPE = "device_code"


def is_entra_v1(device_authorization_endpoint: str) -> bool:
    """True for Entra ID's v1 device endpoint (``.../oauth2/devicecode``, not ``.../oauth2/v2.0/devicecode``)."""
    try:
        return urlsplit(device_authorization_endpoint).path.rstrip("/").endswith(ENTRA_V1_DEVICE_PATH)
    except ValueError:
        return False


def no_device_endpoint(where: str) -> AuthenticationError:
    """The one sentence for a provider without device sign-in (``where``: its host:port)."""
    return AuthenticationError(
        f"{where} does not offer device sign-in (its metadata has no device_authorization_endpoint); use the "
        "browser (PKCE) sign-in instead, or give the device authorization endpoint explicitly if the provider has one."
    )


@dataclass(frozen=True)
class DeviceAuthorization:
    """The device authorization response (RFC 8628 section 3.2); ``device_code`` is a secret."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    expires_in: int
    interval: float = DEFAULT_INTERVAL
    verification_uri_complete: str | None = None

    @property
    def display_uri(self) -> str:
        """The URI to show or open: the complete one when offered (the user code is shown anyway)."""
        return self.verification_uri_complete or self.verification_uri


def parse_device_authorization(body: Mapping[str, Any], *, where: str = "the server") -> DeviceAuthorization:
    """Validate a device authorization response; a missing ``interval`` means 5 s."""

    def text(*names: str) -> str | None:
        for name in names:
            value = body.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return None

    device_code = text("device_code")
    user_code = text("user_code")
    # "verification_url" is what some early drafts (and Google) send.
    verification_uri = text("verification_uri", "verification_url")
    expires_in = parse_expires_in(body.get("expires_in"), where=where)
    missing = [
        name
        for name, value in (
            ("device_code", device_code),
            ("user_code", user_code),
            ("verification_uri", verification_uri),
            ("expires_in", expires_in),
        )
        if not value
    ]
    if missing:
        raise ProtocolError(
            f"{where} sent a device authorization without {', '.join(missing)}; it does not follow RFC 8628, so check the deployment's device authorization endpoint."
        )
    raw_interval = body.get("interval")
    interval = DEFAULT_INTERVAL
    if as_number(raw_interval) is not None:  # not a number at all: the RFC default
        interval = server_seconds(raw_interval, name="interval", where=where, maximum=MAX_INTERVAL) or 0.0
    interval = max(interval, MIN_INTERVAL)
    return DeviceAuthorization(
        device_code=device_code or "",
        user_code=user_code or "",
        verification_uri=verification_uri or "",
        expires_in=int(expires_in or 0),
        interval=interval,
        verification_uri_complete=text("verification_uri_complete", "verification_url_complete"),
    )


def request_device_code(
    transport: Transport,
    device_authorization_endpoint: str,
    *,
    client_id: str,
    scopes: Iterable[str] | None = None,
    audience: str | None = None,
    auth: Any = None,
) -> DeviceAuthorization:
    """POST the device authorization request (section 3.1) and parse the answer."""
    data: dict[str, Any] = {"client_id": client_id}
    scope = " ".join(scope_list(scopes))
    if scope:
        data["scope"] = scope
    if audience:
        data["resource" if is_entra_v1(device_authorization_endpoint) else "audience"] = audience
    body, request_auth = prepare(auth, data)
    response = transport.post_form(device_authorization_endpoint, body, auth=request_auth)
    response.raise_for_error("device authorization request")
    return parse_device_authorization(response.data, where=response.where)


def poll_for_token(
    transport: Transport,
    token_endpoint: str,
    authorization: DeviceAuthorization,
    *,
    client_id: str,
    waiter: Waiter,
    endpoint: str,
    observer: Observer | None = None,
    audience: str | None = None,
    scopes: Iterable[str] | None = None,
    auth: Any = None,
    code_expires_at: float | None = None,
    entra_v1: bool = False,
) -> Credentials:
    """Poll until the user approves (Credentials), or raise the error that ends the flow.

    ``code_expires_at`` (the waiter clock's monotonic time at which the device code expires) lets a
    deadline reached at the code's end say so (ExpiredTokenError) rather than "timed out".
    ``entra_v1``: poll in Entra ID v1's dialect (``grant_type=device_code``, ``code``, ``resource``).
    """
    interval = authorization.interval
    wait = interval
    failures = 0
    attempt = 0
    if entra_v1:
        data: dict[str, Any] = {"grant_type": ENTRA_V1_GRANT_TYPE, "code": authorization.device_code, "client_id": client_id}
        if audience:
            data["resource"] = audience
    else:
        data = {"grant_type": GRANT_TYPE, "device_code": authorization.device_code, "client_id": client_id}
        if audience:
            data["audience"] = audience
    data, request_auth = prepare(auth, data)
    while True:
        pause = wait
        left = waiter.remaining()
        if left is not None and pause > left - FINAL_POLL_LEAD:
            # The next poll would come at or after the deadline. The first one is brought forward to land
            # just before it (an interval as long as the code's life); a later one cannot keep the interval
            # after the previous poll, so the deadline is waited out (and ends the flow).
            pause = max(0.0, left - FINAL_POLL_LEAD) if attempt == 0 else left
        try:
            waiter.sleep(pause)  # LoginTimeoutError at min(expires_in, timeout), LoginCancelledError on cancel
        except LoginTimeoutError:
            if code_expires_at is not None and waiter.clock.monotonic() >= code_expires_at:
                raise ExpiredTokenError(
                    "The sign-in code expired before it was approved; run the login again.", error="expired_token"
                ) from None
            raise
        attempt += 1
        notify(observer, Polling(attempt=attempt, interval=interval))
        try:
            response = transport.post_form(token_endpoint, data, auth=request_auth)
        except (TransportError, ProtocolError) as exc:
            if isinstance(exc, ProtocolError) and not (exc.status or 0) >= 500:
                raise
            failures += 1
            wait = min(interval * (2**failures), MAX_BACKOFF)
            notify(observer, NetworkRetry(delay=wait, reason=str(exc)))
            continue
        failures = 0
        wait = interval
        error = response.oauth_error()  # also a 200 whose body is {"error": "authorization_pending"}
        if response.ok and error is None:
            return credentials_from_response(
                response.data, endpoint=endpoint, where=response.where, requested_scopes=scopes, clock=waiter.clock
            )
        if error is None:
            if response.status >= 500:
                failures += 1
                wait = min(interval * (2**failures), MAX_BACKOFF)
                notify(observer, NetworkRetry(delay=wait, reason=f"{response.where} answered HTTP {response.status}"))
                continue
            response.raise_for_error("device token request")
        assert error is not None
        if error.error == "authorization_pending":
            continue
        if error.error == "slow_down":
            interval = min(max(interval + SLOW_DOWN_STEP, _server_interval(response.data, interval)), MAX_INTERVAL)
            wait = interval
            notify(observer, SlowedDown(interval=interval))
            continue
        raise error


def _server_interval(body: Mapping[str, Any], current: float) -> float:
    """A new ``interval`` a slow_down answer names (GitHub), when it is a sane number; else ``current``."""
    value = as_number(body.get("interval"))
    if value is None or not 0 < value <= MAX_INTERVAL:
        return current
    return value


def run_device_flow(
    transport: Transport,
    *,
    device_authorization_endpoint: str | None,
    token_endpoint: str,
    client_id: str,
    waiter: Waiter,
    endpoint: str,
    scopes: Iterable[str] | None = None,
    audience: str | None = None,
    observer: Observer | None = None,
    auth: Any = None,
) -> Credentials:
    """The whole device flow: request a code, announce it (DeviceCodeIssued), poll until done.

    Without a device authorization endpoint: AuthenticationError, one sentence pointing to PKCE."""
    scopes = scope_list(scopes)
    if not device_authorization_endpoint:
        raise no_device_endpoint(host_port(token_endpoint))
    waiter.check()
    authorization = request_device_code(
        transport, device_authorization_endpoint, client_id=client_id, scopes=scopes, audience=audience, auth=auth
    )
    code_expires_at = waiter.clock.monotonic() + authorization.expires_in
    waiter.tighten(authorization.expires_in)
    notify(
        observer,
        DeviceCodeIssued(
            verification_uri=authorization.verification_uri,
            user_code=authorization.user_code,
            expires_at=waiter.clock.time() + authorization.expires_in,
            interval=authorization.interval,
            verification_uri_complete=authorization.verification_uri_complete,
        ),
    )
    return poll_for_token(
        transport,
        token_endpoint,
        authorization,
        client_id=client_id,
        waiter=waiter,
        endpoint=endpoint,
        observer=observer,
        audience=audience,
        scopes=scopes,
        auth=auth,
        code_expires_at=code_expires_at,
        entra_v1=is_entra_v1(device_authorization_endpoint),
    )


__all__ = [
    "DEFAULT_INTERVAL",
    "FINAL_POLL_LEAD",
    "is_entra_v1",
    "no_device_endpoint",
    "GRANT_TYPE",
    "SLOW_DOWN_STEP",
    "DeviceAuthorization",
    "parse_device_authorization",
    "poll_for_token",
    "request_device_code",
    "run_device_flow",
]
