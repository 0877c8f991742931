"""Secret scanner for saved notebooks: ``python -m flyteauth_jupyter.scan NOTEBOOK...``.

This module owns the last line of defence of DESIGN.md's promise that "a saved notebook contains
no secret" (pinned detail 13: access, refresh and id tokens, client secrets, authorization codes,
code verifiers, device codes; the user code is shown on purpose and is not a secret).  It reads
notebooks with nbformat and looks where a running kernel or a widget can leave data behind:

* every output: stream text, every mimetype of ``execute_result``/``display_data`` (text/html,
  application/json, widget views, ...), output metadata, error name/value/traceback;
* cell metadata and cell attachments (the raw base64 strings and, when they decode to text, the text);
* notebook metadata, and the saved widget state
  (``metadata.widgets["application/vnd.jupyter.widget-state+json"].state.<model id>.state``, every
  string recursively, plus base64 buffers), reported per widget model;
* the source of every cell (code, markdown, raw): a secret in a saved notebook is a leak whoever
  typed it, and the panel itself asks users to paste the redirect address into a
  ``flyte_auth.submit_redirect("...")`` cell.

It recognises JWTs (three base64url segments whose header is JSON with ``"alg"``), ``Bearer``
header values, the OAuth field names (``access_token``, ``refresh_token``, ``id_token``,
``client_secret``, ``code_verifier``, ``device_code``, also with a prefix such as
``FLYTE_CREDENTIALS_CLIENT_SECRET`` or ``my_client_secret``) with a non-trivial value in JSON, Python
reprs (``%env``), query strings, form bodies, ``env:``/``export`` lines and YAML or log lines
(``access_token: ...``), authorization codes in URLs (with or without a state) and in a redirect's query wherever it
stands (``?code=...&state=...``, ``127.0.0.1:53593/callback?...``), the same inside a string that is
base64-encoded text or inside a ``data:`` URI (base64 or %-encoded), JWTs and bearer tokens folded
across lines (a terminal's wrap, indentation, string concatenation, backslash continuations), and exact
values the caller knows (``--value``, ``--values-from-env``).  A report names the file, the place and the kind
of secret, and shows at most a fingerprint (a few leading characters and the length), never the
secret.

Exit status: 0 nothing found, 1 something found, 2 a file is not a notebook, cannot be read or
scanned (e.g. nested too deeply), or bad usage.
Pure standard library plus nbformat; nothing here imports the rest of the package except errors.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import codecs
import html
import json
import os
import re
import sys
import urllib.parse
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import FlyteAuthError

__all__ = ["Finding", "NotANotebookError", "fingerprint", "main", "scan_notebook"]

WIDGET_STATE_MIMETYPE = "application/vnd.jupyter.widget-state+json"

# Kinds of finding (the strings a report shows).
KIND_JWT = "JWT"
KIND_BEARER = "bearer token"
KIND_AUTH_CODE = "authorization code in redirect URL"


@dataclass(frozen=True)
class Finding:
    """One suspected secret. ``fingerprint`` is safe to print; the secret itself is never kept."""

    path: str
    where: str
    kind: str
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.path}: {self.where}: {self.kind} [{self.fingerprint}]"


class NotANotebookError(FlyteAuthError, ValueError):
    """The file cannot be read as a valid Jupyter notebook.

    ``notebook`` holds the parsed document when the file is a notebook that fails schema
    validation (so a caller can still scan it), else None.
    """

    def __init__(self, message: str, notebook: Any = None) -> None:
        super().__init__(message)
        self.notebook = notebook


def fingerprint(secret: str) -> str:
    """At most the first 4 characters (fewer for short values) and the length: ``eyJh...(812 chars)``."""
    shown = secret[: min(4, len(secret) // 4)]
    return f"{shown}...({len(secret)} chars)"


# --------------------------------------------------------------------------------------------
# Detectors: text -> (kind, secret) pairs
# --------------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")

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
# A whole string that is base64 (standard or URL-safe): its decoded text is scanned too (widget
# state and JSON values sometimes carry base64-encoded JSON).
_BASE64_WHOLE = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
MAX_BASE64_DECODE = 4 * 1024 * 1024

_URL = re.compile(r"""https?://[^\s"'<>\\`]+""", re.IGNORECASE)
# A redirect address or its query is one word (no spaces, quotes or brackets) holding code= and state=.
_CODE_PARAM = re.compile(r"code=", re.IGNORECASE)
_WORD_STOP = frozenset(" \t\r\n\"'<>\\`()")
MAX_QUERY_WORD = 2048
MAX_CODE_PARAMS = 1000

# data:[<mediatype>][;param=value]*[;base64],<data> (RFC 2397)
_DATA_URI = re.compile(
    r"""data:(?:[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)?(?:;[A-Za-z0-9.+_-]+=[A-Za-z0-9.+_%-]+)*(?P<b64>;base64)?,"""
    r"""(?P<data>[A-Za-z0-9+/=_%.~!$*:@-]{8,})""",
    re.IGNORECASE,
)
MAX_DATA_URIS = 256

# A line break inside a token: after at least 16 token characters, optionally a closing quote,
# spaces and a backslash continuation; before the next token character, optionally indentation
# and an opening quote. Removing these joins a token a terminal, an editor or a programmer folded.
_FOLD = re.compile(r"""(?<=[A-Za-z0-9_\-.+/=]{16})["']?[ \t]*\\?\r?\n[ \t]*["']?(?=[A-Za-z0-9_\-.+/])""")

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


def _data_uri_texts(text: str) -> Iterator[str]:
    """The decoded contents of the ``data:`` URIs in ``text`` that are text (images and other binary
    data are skipped)."""
    if "data:" not in text.lower():
        return
    for n, m in enumerate(_DATA_URI.finditer(text)):
        if n >= MAX_DATA_URIS:
            return
        data = m.group("data")
        if m.group("b64"):
            data = urllib.parse.unquote(data)
            if len(data) > MAX_BASE64_DECODE or (len(data) > 4096 and not _starts_as_text(data[:4096])):
                continue  # too big, or binary (an image): its first 3 KiB are not text
            decoded = _decode_base64_text(data)
            if decoded:
                yield decoded
        else:
            yield urllib.parse.unquote(data)


def _starts_as_text(prefix: str) -> bool:
    """True when the base64 ``prefix`` (a multiple of 4 characters) decodes to the start of UTF-8 text."""
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(prefix)
            codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)  # a character cut at the end is fine
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        return True
    return False


def _variants(text: str) -> list[str]:
    """The text as saved, and as a reader would see it (no ANSI colours, HTML and %-escapes undone)."""
    base = _ANSI.sub("", text) if "\x1b" in text else text
    out = [base]
    if "&" in base:
        unescaped = html.unescape(base)
        if unescaped != base:
            out.append(unescaped)
    for t in list(out):
        if "%" in t:
            unquoted = urllib.parse.unquote(t)
            if unquoted != t:
                out.append(unquoted)
    stripped = base.strip()
    if len(stripped) <= MAX_BASE64_DECODE and _BASE64_WHOLE.fullmatch(stripped):
        decoded = _decode_base64_text(stripped)
        if decoded:
            out.append(decoded)
    for t in list(out):
        out.extend(_data_uri_texts(t))
    return out


def _unfolded(text: str) -> str | None:
    """``text`` with the line breaks inside tokens removed (see ``_FOLD``), or None when it has none."""
    if "\n" not in text:
        return None
    joined = _FOLD.sub("", text)
    return joined if joined != text else None


def _decode_base64_text(text: str) -> str | None:
    """The UTF-8 text ``text`` encodes in base64 (standard or URL-safe), or None (binary, not base64)."""
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(padded)
            decoded = raw.decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        if decoded.isprintable() or all(c.isprintable() or c in "\n\r\t" for c in decoded):
            return decoded
    return None


# Earlier kinds win when one secret is found several ways at one place.
def _rank(kind: str) -> int:
    if kind.startswith("known secret"):
        return 0
    if kind.endswith(" value"):
        return 1
    if kind == KIND_AUTH_CODE:
        return 2
    if kind == KIND_BEARER:
        return 3
    return 4


def _detect(text: str, known: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    for variant in _variants(text):
        for label, value in known:
            if value in variant:
                yield f"known secret ({label})", value
        yield from _keyed(variant)
        yield from _auth_codes(variant)
        yield from _redirect_queries(variant)
        yield from _bearers(variant)
        yield from _jwts(variant)
        unfolded = _unfolded(variant)
        if unfolded is not None:  # a folded token: the shapes that survive joining lines without false hits
            for label, value in known:
                if value in unfolded and value not in variant:
                    yield f"known secret ({label})", value
            yield from _bearers(unfolded)
            yield from _jwts(unfolded)


# --------------------------------------------------------------------------------------------
# Walking a notebook: -> (where, text) sites
# --------------------------------------------------------------------------------------------


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return "".join(value)
    return None


def _leaves(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            if isinstance(k, str):
                yield k
            yield from _leaves(v)
    elif isinstance(obj, (list, tuple)):
        joined = _as_text(list(obj))
        if joined is not None and len(obj) > 1:
            yield joined
        for v in obj:
            yield from _leaves(v)


def _strings(obj: Any) -> Iterator[str]:
    """Every string in a JSON-like value, recursively (dict keys too), and the JSON text of the
    whole value, so that ``{"access_token": "..."}`` stored as a dict is seen as key and value."""
    yield from _leaves(obj)
    if isinstance(obj, (Mapping, list, tuple)) and obj:
        try:
            yield json.dumps(obj, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            pass


def _b64_texts(value: Any) -> Iterator[str]:
    """The raw base64 string and, when it decodes to UTF-8 text, the decoded text."""
    raw = _as_text(value)
    if raw is None:
        yield from _strings(value)
        return
    yield raw
    try:
        decoded = base64.b64decode("".join(raw.split()), validate=False).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return
    if decoded:
        yield decoded


class _Scanner:
    def __init__(self, path: str, known: list[tuple[str, str]]) -> None:
        self.path = path
        self.known = known
        self._best: dict[tuple[str, str], str] = {}  # (where, secret) -> kind
        self._order: list[tuple[str, str]] = []

    # -- naming places without leaking: a label that itself looks secret is replaced
    def label(self, name: Any) -> str:
        text = str(name)
        if any(True for _ in _detect(text, self.known)):
            return "<redacted name>"
        text = "".join(c if c.isprintable() else "?" for c in text)
        return text if len(text) <= 64 else text[:61] + "..."

    def check(self, where: str, text: str) -> None:
        for kind, secret in _detect(text, self.known):
            key = (where, secret)
            if key not in self._best:
                self._best[key] = kind
                self._order.append(key)
            elif _rank(kind) < _rank(self._best[key]):
                self._best[key] = kind

    def check_all(self, where: str, texts: Iterable[str]) -> None:
        for text in texts:
            self.check(where, text)

    def findings(self) -> list[Finding]:
        return [
            Finding(self.path, where, self._best[(where, secret)], fingerprint(secret))
            for where, secret in self._order
        ]

    # -- the notebook
    def notebook(self, nb: Mapping[str, Any]) -> None:
        meta = nb.get("metadata")
        if isinstance(meta, Mapping):
            self.metadata(meta)
        elif meta is not None:
            self.check_all("notebook metadata", _strings(meta))
        cells = nb.get("cells")
        if isinstance(cells, list):
            for i, cell in enumerate(cells):
                if isinstance(cell, Mapping):
                    self.cell(i, cell)

    def metadata(self, meta: Mapping[str, Any]) -> None:
        rest = dict(meta)
        widgets = rest.get("widgets")
        state = None
        if isinstance(widgets, Mapping) and isinstance(widgets.get(WIDGET_STATE_MIMETYPE), Mapping):
            wdoc = dict(widgets[WIDGET_STATE_MIMETYPE])
            if isinstance(wdoc.get("state"), Mapping):
                state = wdoc.pop("state")
                rest["widgets"] = {**widgets, WIDGET_STATE_MIMETYPE: wdoc}
        if rest:
            self.check_all("notebook metadata", _strings(rest))
        if state is not None:
            for model_id, model in state.items():
                where = f"widget state {self.label(model_id)}"
                if isinstance(model, Mapping):
                    other = {k: v for k, v in model.items() if k not in ("state", "buffers")}
                    self.check_all(where, _strings(model.get("state")))
                    self.check_all(where, _strings(other))
                    buffers = model.get("buffers")
                    if isinstance(buffers, list):
                        for n, buf in enumerate(buffers):
                            data = buf.get("data") if isinstance(buf, Mapping) else buf
                            self.check_all(f"{where}, buffers[{n}]", _b64_texts(data))
                            if isinstance(buf, Mapping):
                                rest_buf = {k: v for k, v in buf.items() if k != "data"}
                                self.check_all(f"{where}, buffers[{n}]", _strings(rest_buf))
                else:
                    self.check_all(where, _strings(model))

    def cell(self, i: int, cell: Mapping[str, Any]) -> None:
        name = f"cells[{i}]"
        cell_id = cell.get("id")
        if isinstance(cell_id, str) and cell_id:
            name += f" (id {self.label(cell_id)})"
        source = cell.get("source")
        if source:
            kind = cell.get("cell_type")
            label = f"{name}, {self.label(kind)} source" if isinstance(kind, str) and kind else f"{name}, source"
            text = _as_text(source)
            self.check_all(label, [text] if text is not None else _strings(source))
        if cell.get("metadata"):
            self.check_all(f"{name}, cell metadata", _strings(cell["metadata"]))
        attachments = cell.get("attachments")
        if isinstance(attachments, Mapping):
            for att_name, bundle in attachments.items():
                where = f"{name}, attachment {self.label(att_name)}"
                if isinstance(bundle, Mapping):
                    for mime, data in bundle.items():
                        self.check_all(f"{where}, {self.label(mime)}", _b64_texts(data))
                else:
                    self.check_all(where, _strings(bundle))
        outputs = cell.get("outputs")
        if isinstance(outputs, list):
            for n, output in enumerate(outputs):
                self.output(f"{name}, outputs[{n}]", output)

    def output(self, where: str, output: Any) -> None:
        if not isinstance(output, Mapping):
            self.check_all(where, _strings(output))
            return
        otype = output.get("output_type")
        known_keys = {"output_type", "metadata", "execution_count"}
        if otype == "stream":
            known_keys |= {"name", "text"}
            text = _as_text(output.get("text"))
            stream = output.get("name")
            label = f"{where}, stream {self.label(stream)}" if stream else f"{where}, stream"
            self.check_all(label, [text] if text is not None else _strings(output.get("text")))
        elif otype in ("execute_result", "display_data", "update_display_data"):
            known_keys |= {"data"}
            data = output.get("data")
            if isinstance(data, Mapping):
                for mime, value in data.items():
                    text = _as_text(value)
                    self.check_all(f"{where}, {self.label(mime)}",
                                   [text] if text is not None else _strings(value))
            elif data is not None:
                self.check_all(where, _strings(data))
        elif otype == "error":
            known_keys |= {"ename", "evalue", "traceback"}
            tb = output.get("traceback")
            parts = [str(output.get("ename", "")), str(output.get("evalue", ""))]
            if isinstance(tb, list):
                parts += [str(line) for line in tb]
            elif tb is not None:
                parts.append(str(tb))
            self.check(f"{where}, error traceback", "\n".join(parts))
        if output.get("metadata"):
            self.check_all(f"{where}, output metadata", _strings(output["metadata"]))
        extra = {k: v for k, v in output.items() if k not in known_keys}
        if extra:
            self.check_all(where, _strings(extra))


# --------------------------------------------------------------------------------------------
# Reading and the public API
# --------------------------------------------------------------------------------------------


def _read(path: str) -> Any:
    """Read and validate a notebook; NotANotebookError (never quoting file content) if it is not one."""
    import nbformat

    try:
        with open(path, encoding="utf-8") as fp:
            text = fp.read()
    except IsADirectoryError:
        raise NotANotebookError(f"{path}: is a directory, not a Jupyter notebook.") from None
    except FileNotFoundError:
        raise NotANotebookError(f"{path}: no such file.") from None
    except UnicodeDecodeError:
        raise NotANotebookError(f"{path}: not a Jupyter notebook (not UTF-8 text).") from None
    except OSError as exc:
        raise NotANotebookError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__}).") from None
    try:
        json.loads(text)
    except RecursionError:
        raise NotANotebookError(f"{path}: cannot be read (its JSON is nested too deeply).") from None
    except ValueError as exc:
        where = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise NotANotebookError(f"{path}: not a Jupyter notebook (not valid JSON{where}).") from None
    captured: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4, capture_validation_error=captured)
    except Exception:  # nbformat raises assorted types for JSON that is not a notebook
        raise NotANotebookError(
            f"{path}: not a Jupyter notebook (JSON without the nbformat structure nbformat expects)."
        ) from None
    error = captured.get("ValidationError")
    if error is not None:
        at = ""
        loc = list(getattr(error, "absolute_path", []) or [])
        if len(loc) >= 2 and loc[0] == "cells" and isinstance(loc[1], int):
            at = f" in cells[{loc[1]}]"
        raise NotANotebookError(
            f"{path}: not a valid Jupyter notebook (it fails nbformat schema validation{at}).", nb
        )
    return nb


def _known_values(values: Iterable[str] | Mapping[str, str]) -> list[tuple[str, str]]:
    if isinstance(values, Mapping):
        pairs = [(str(k), v) for k, v in values.items()]
    elif isinstance(values, str):
        pairs = [("value #1", values)]
    else:
        pairs = [(f"value #{i}", v) for i, v in enumerate(values, 1)]
    return [(label, v) for label, v in pairs if isinstance(v, str) and v]


def scan_notebook(
    nb_or_path: Any,
    values: Iterable[str] | Mapping[str, str] = (),
    *,
    strict: bool = True,
) -> list[Finding]:
    """Scan one notebook (a path, or an nbformat/JSON dict) and return the findings (empty: clean).

    ``values`` are exact secrets to look for (a mapping names them: label -> value).  A path that
    is not a notebook raises :class:`NotANotebookError`; with ``strict=False`` a notebook that
    only fails schema validation is scanned anyway.
    """
    known = _known_values(values)
    if isinstance(nb_or_path, Mapping):
        path, nb = "<notebook>", nb_or_path
    else:
        path = os.fspath(nb_or_path)
        try:
            nb = _read(path)
        except NotANotebookError as exc:
            if strict or exc.notebook is None:
                raise
            nb = exc.notebook
    scanner = _Scanner(path, known)
    try:
        scanner.notebook(nb)
    except RecursionError:
        raise NotANotebookError(f"{path}: cannot be scanned (it is nested too deeply).") from None
    return scanner.findings()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m flyteauth_jupyter.scan",
        description=(
            "Look for OAuth/OIDC secrets (tokens, client secrets, authorization codes, code verifiers, "
            "device codes) in notebook cell sources, outputs, metadata, widget state and attachments. "
            "Exit 0: clean, 1: secrets found, 2: not a notebook or bad usage."
        ),
    )
    p.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", help="notebook files (.ipynb)")
    p.add_argument("--value", action="append", default=[], metavar="VALUE",
                   help="an exact secret to look for (repeatable); prefer --values-from-env in CI")
    p.add_argument("--values-from-env", action="append", default=[], metavar="VAR",
                   help="an environment variable whose value is an exact secret to look for (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="print a one-line summary")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (0 clean, 1 found, 2 error)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    known: dict[str, str] = {}
    for i, value in enumerate(args.value, 1):
        if not value:
            print("flyteauth_jupyter.scan: --value must not be empty.", file=sys.stderr)
            return 2
        known[f"--value #{i}"] = value
    for var in args.values_from_env:
        value = os.environ.get(var)
        if not value:
            print(f"flyteauth_jupyter.scan: environment variable {var} is not set or empty; "
                  "set it to the secret to look for.", file=sys.stderr)
            return 2
        known[f"${var}"] = value

    status = 0
    total = dirty = read = 0
    for path in args.notebooks:
        try:
            findings = scan_notebook(path, known)
        except NotANotebookError as exc:
            print(str(exc), file=sys.stderr)
            status = 2
            if exc.notebook is None:
                continue
            findings = [Finding(path, f.where, f.kind, f.fingerprint)
                        for f in scan_notebook(exc.notebook, known)]
        read += 1
        for f in findings:
            print(f)
        if findings:
            total += len(findings)
            dirty += 1
            status = max(status, 1)
    if total:
        print(f"flyteauth_jupyter.scan: {total} possible secret(s) in {dirty} of {len(args.notebooks)} "
              "notebook(s); clear those outputs (or the widget state) and save again.")
    elif args.verbose:
        print(f"flyteauth_jupyter.scan: no secrets found in {read} notebook(s).")
    return status


if __name__ == "__main__":
    sys.exit(main())
