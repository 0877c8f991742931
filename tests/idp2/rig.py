"""Test-rig only parts of the second IdP, under ``/rig/`` (never part of a real deployment).

* ``GET /rig/grants``: the token endpoint's counters, in tests/idp's shape: ``success`` and ``error``
  by grant type / error code, ``revoked`` (token families revoked because a rotated refresh token
  was replayed; tests/idp2/validator.py).
* ``GET /rig/device-codes``: the user codes issued (what a user sees on the screen, never the
  device code), for tests/rig/user.py's DeviceApprover.
* ``POST /rig/introspect`` (``token``): ``{"active": bool, "token_type": ...}`` for an access OR a
  refresh token. django-oauth-toolkit's RFC 7662 endpoint answers for access tokens only, and tests
  ask whether a refresh token still works without spending it.
* ``GET /rig/users``: ``{username: OIDC subject}``.
* With ``IDP2_SECRETS_FILE`` set, every secret the server hands out (tokens, device codes,
  authorization codes) is appended to that file, one ``kind<TAB>value`` a line, for the suite's
  DEBUG-log scan (tests/rig/secret_log.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from django.db.models import F
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

SECRET_KEYS = ("access_token", "refresh_token", "id_token", "device_code")


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.success: dict[str, int] = {}
        self.error: dict[str, int] = {}
        self.revoked = 0
        self.issued: list[dict[str, Any]] = []
        self.subjects: dict[str, str] = {}

    def count(self, grant_type: str, status: int, body: dict[str, Any]) -> None:
        with self._lock:
            if status == 200:
                self.success[grant_type] = self.success.get(grant_type, 0) + 1
            else:
                code = str(body.get("error") or "unknown")
                self.error[code] = self.error.get(code, 0) + 1

    def count_revoked(self) -> None:
        with self._lock:
            self.revoked += 1

    def device_code_issued(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.issued.append({key: body.get(key) for key in ("user_code", "verification_uri",
                                                               "verification_uri_complete")}
                               | {"issued_at": time.time()})
            del self.issued[:-200]

    def grants(self) -> dict[str, Any]:
        with self._lock:
            return {"success": dict(self.success), "error": dict(self.error), "revoked": self.revoked}


STATS = Stats()


def _record_secret(kind: str, value: Any) -> None:
    path = os.environ.get("IDP2_SECRETS_FILE", "")
    if path and isinstance(value, str) and len(value) >= 8:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(f"{kind}\t{value}\n")


def _json(response: HttpResponse) -> dict[str, Any]:
    if not response.get("Content-Type", "").startswith("application/json"):
        return {}
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class RigMiddleware:
    """Counts the token endpoint's answers, keeps the issued user codes, records issued secrets."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        grant_type = request.POST.get("grant_type", "") if request.method == "POST" else ""
        response = self.get_response(request)
        if request.method != "POST":
            return response
        body = _json(response)
        if request.path == "/token/":
            STATS.count(grant_type or "unknown", response.status_code, body)
        elif request.path == "/device-authorization/" and response.status_code == 200:
            STATS.device_code_issued(body)
        for key in SECRET_KEYS:
            _record_secret(key, body.get(key))
        location = response.get("Location", "")
        if "code=" in location:
            for code in parse_qs(urlsplit(location).query).get("code", []):
                _record_secret("code", code)
        return response


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def grants(request: HttpRequest) -> HttpResponse:
    return _no_store(JsonResponse(STATS.grants()))


@require_GET
def device_codes(request: HttpRequest) -> HttpResponse:
    with STATS._lock:
        issued = list(STATS.issued)
    return _no_store(JsonResponse({"issued": issued}))


@require_GET
def users(request: HttpRequest) -> HttpResponse:
    return _no_store(JsonResponse(STATS.subjects))


@csrf_exempt
@require_POST
def introspect(request: HttpRequest) -> HttpResponse:
    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model, get_refresh_token_model, refresh_token_expire_timedelta

    token = request.POST.get("token", "")
    checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
    access = get_access_token_model().objects.filter(token_checksum=checksum).first()
    if access is not None:
        return _no_store(JsonResponse({"active": access.is_valid(), "token_type": "access_token"}))
    refresh = (get_refresh_token_model().objects.filter(token_checksum=checksum)
               .select_related("access_token").order_by(F("revoked").desc(nulls_first=True)).first())
    if refresh is None:
        return _no_store(JsonResponse({"active": False}))
    active = refresh.revoked is None and refresh.access_token is not None
    delta = refresh_token_expire_timedelta()
    if active and delta and refresh.access_token.expires + delta <= timezone.now():
        active = False
    return _no_store(JsonResponse({"active": active, "token_type": "refresh_token"}))
