"""What a secret looks like: text -> ``(kind, secret)`` pairs (:func:`detect`).

It recognises JWTs (three base64url segments whose header is JSON with ``"alg"``), ``Bearer``
header values, the OAuth field names (``access_token``, ``refresh_token``, ``id_token``,
``client_secret``, ``code_verifier``, ``device_code``, also with a prefix such as
``FLYTE_CREDENTIALS_CLIENT_SECRET`` or ``my_client_secret``) with a non-trivial value in JSON, Python
reprs (``%env``), query strings, form bodies, ``env:``/``export`` lines and YAML or log lines
(``access_token: ...``), authorization codes in URLs (with or without a state) and in a redirect's
query wherever it stands (``?code=...&state=...``, ``127.0.0.1:53593/callback?...``), and exact
values the caller knows. Each is looked for in every reading of the text :mod:`.decode` gives (as
saved, unescaped, decoded, tokens folded across lines joined again). Placeholders and redactions
(``<your-token>``, ``***``, ``ACCESS_TOKEN``) are not secrets. Every pattern runs in linear time.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

from .decode import unfolded, variants

# Kinds of finding (the strings a report shows).
KIND_JWT = "JWT"
KIND_BEARER = "bearer token"
KIND_AUTH_CODE = "authorization code in redirect URL"

# Three base64url segments; the lookbehind makes every match start at a run boundary (linear time
# on megabytes of base64 image data).  The signature may be empty (alg "none").
_JWT = re.compile(r"(?<![A-Za-z0-9_\-])([A-Za-z0-9_\-]{10,})\.([A-Za-z0-9_\-]{2,})\.([A-Za-z0-9_\-]*)")

# RFC 6750 b64token / RFC 7235 token68.
_BEARER = re.compile(r"(?<![A-Za-z0-9])bearer[ \t]+([A-Za-z0-9\-._~+/]{20,}=*)", re.IGNORECASE)

_SECRET_KEYS = {
    "access_token": "access_token",
    "refresh_token": "refresh_token",
    "id_token": "id_token",
    "client_secret": "client_secret",
    "code_verifier": "code_verifier",
    "device_code": "device_code",
    "accesstoken": "access_token",
    "refreshtoken": "refresh_token",
    "idtoken": "id_token",
    "clientsecret": "client_secret",
    "codeverifier": "code_verifier",
    "devicecode": "device_code",
}
_KEY_ALT = (
    r"access_token|refresh_token|id_token|client_secret|code_verifier|device_code"
    r"|accessToken|refreshToken|idToken|clientSecret|codeVerifier|deviceCode"
)
# "key": "value" (JSON, also JSON escaped inside JSON), 'key': 'value' (Python repr),
# key="value" / key='value' (kwargs, reprs, env files).
_KEY_QUOTED = re.compile(
    r"""(?:\\?["'](?:[A-Za-z0-9]+[_-])*(?P<k1>""" + _KEY_ALT + r""")\\?["']\s*[:=]"""
    r"""|(?<![A-Za-z0-9])(?P<k2>""" + _KEY_ALT + r""")\s*=)"""
    r"""\s*\\?["'](?P<v>[^"'\\\s]{1,8192})""",
    re.IGNORECASE,
)
# key=value in a query string, form body or env listing: only at the start of the text, a line, or
# after ? & # ; (so "access_token=creds.access_token" in a traceback's source line is not a hit).
_KEY_FORM = re.compile(
    r"""(?:^|(?<=[?&#;\n\r])|(?<=env: )|(?<=export ))(?:[A-Za-z0-9]+_)*(?P<k>""" + _KEY_ALT
    + r""")=(?P<v>[^\s&#"'<>\\,;]{1,8192})""",
    re.IGNORECASE,
)
# key: value, unquoted (YAML, log lines): at a line start or after a space/bracket, and the value
# must look like a token (12+ characters with letters and digits), so "access_token: str" is not a hit.
_KEY_COLON = re.compile(
    r"""(?:^|(?<=[\s{,(\[]))(?:[A-Za-z0-9]+[_-])*(?P<k>""" + _KEY_ALT
    + r""")[ \t]*:[ \t]+(?P<v>[^\s"',}\]]{12,8192})""",
    re.IGNORECASE | re.MULTILINE,
)

_URL = re.compile(r"""https?://[^\s"'<>\\`]+""", re.IGNORECASE)
# A redirect address or its query is one word (no spaces, quotes or brackets) holding code= and state=.
_CODE_PARAM = re.compile(r"code=", re.IGNORECASE)
_WORD_STOP = frozenset(" \t\r\n\"'<>\\`()")
MAX_QUERY_WORD = 2048
MAX_CODE_PARAMS = 1000

_PLACEHOLDER_PARTS = ("redact", "hidden", "masked", "xxxx", "****", "...", "\u2026", "<", ">", "${", "{{", "%s")
_PLACEHOLDER_WORDS = {"null", "none", "undefined", "true", "false", "string", "your-token", "changeme"}


def _nontrivial(value: str, min_len: int = 8) -> bool:
    """A value that could be a real secret, not a placeholder, redaction or a short word."""
    value = value.strip()
    if len(value) < min_len:
        return False
    low = value.lower()
    if low in _PLACEHOLDER_WORDS or low.startswith("$"):
        return False
    if any(part in low for part in _PLACEHOLDER_PARTS):
        return False
    return len(set(value)) >= 4


def _b64url_json(segment: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw.decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def _jwts(text: str) -> Iterator[tuple[str, str]]:
    if "." not in text:
        return
    for m in _JWT.finditer(text):
        header = _b64url_json(m.group(1))
        if isinstance(header, dict) and "alg" in header:
            yield KIND_JWT, m.group(0)


def _bearers(text: str) -> Iterator[tuple[str, str]]:
    for m in _BEARER.finditer(text):
        token = m.group(1)
        if _nontrivial(token, min_len=20):
            yield KIND_BEARER, token


def _keyed(text: str) -> Iterator[tuple[str, str]]:
    hits = [(m.group("k1") or m.group("k2"), m.group("v")) for m in _KEY_QUOTED.finditer(text)]
    hits += [(m.group("k"), m.group("v")) for m in _KEY_FORM.finditer(text)]
    hits += [(m.group("k"), m.group("v")) for m in _KEY_COLON.finditer(text)
             if re.search(r"[0-9]", m.group("v")) and re.search(r"[A-Za-z]", m.group("v"))]
    for key, value in hits:
        key = _SECRET_KEYS[key.lower()]
        # "ACCESS_TOKEN", "your-client-secret": a placeholder naming the field, not a value
        if _nontrivial(value) and key.replace("_", "") not in re.sub(r"[-_ ]", "", value.lower()):
            yield f"{key} value", value


def _auth_codes(text: str) -> Iterator[tuple[str, str]]:
    if "code=" not in text:
        return
    for m in _URL.finditer(text):
        url = m.group(0)
        if "code=" not in url:
            continue
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError:
            continue
        params: dict[str, list[str]] = {}
        for piece in (parts.query, parts.fragment):
            for k, v in urllib.parse.parse_qsl(piece, keep_blank_values=True):
                params.setdefault(k, []).append(v)
        if "code" not in params:
            continue  # with or without a state: a code in a URL is a code (short words are not)
        for code in params["code"]:
            if _nontrivial(code):
                yield KIND_AUTH_CODE, code


def _redirect_queries(text: str) -> Iterator[tuple[str, str]]:
    """A redirect's query outside a full URL (``?code=...&state=...``, ``host:port/callback?...``, the
    ``flyte_auth.submit_redirect("...")`` argument): a ``code`` together with a ``state``."""
    if "code=" not in text or "state=" not in text:
        return
    for n, m in enumerate(_CODE_PARAM.finditer(text)):
        if n >= MAX_CODE_PARAMS:
            return
        start, end = m.start(), m.end()  # widen to the word (bounded: linear in the text)
        low, high = max(0, start - MAX_QUERY_WORD), min(len(text), end + MAX_QUERY_WORD)
        while start > low and text[start - 1] not in _WORD_STOP:
            start -= 1
        while end < high and text[end] not in _WORD_STOP:
            end += 1
        word = text[start:end]
        if "state=" not in word or word.lower().startswith(("http://", "https://")):
            continue  # full URLs are _auth_codes' (with or without a state)
        query = word.rsplit("?", 1)[-1].split("#", 1)[0]
        params = urllib.parse.parse_qs(query, keep_blank_values=True, max_num_fields=64)
        if "state" in params:
            for code in params.get("code", []):
                if _nontrivial(code):
                    yield KIND_AUTH_CODE, code


def rank(kind: str) -> int:
    """Earlier kinds win when one secret is found several ways at one place (lower: earlier)."""
    if kind.startswith("known secret"):
        return 0
    if kind.endswith(" value"):
        return 1
    if kind == KIND_AUTH_CODE:
        return 2
    if kind == KIND_BEARER:
        return 3
    return 4


def detect(text: str, known: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """Every ``(kind, secret)`` in ``text``, in every reading of it; ``known`` are ``(label, value)``
    pairs of exact secrets the caller knows."""
    for variant in variants(text):
        for label, value in known:
            if value in variant:
                yield f"known secret ({label})", value
        yield from _keyed(variant)
        yield from _auth_codes(variant)
        yield from _redirect_queries(variant)
        yield from _bearers(variant)
        yield from _jwts(variant)
        joined = unfolded(variant)
        if joined is not None:  # a folded token: the shapes that survive joining lines without false hits
            for label, value in known:
                if value in joined and value not in variant:
                    yield f"known secret ({label})", value
            yield from _bearers(joined)
            yield from _jwts(joined)

