"""The readings of a saved text that a person would see, each of which is searched for secrets
(:func:`variants`, :func:`unfolded`).

ANSI colours stripped, HTML entities and %-escapes undone, a string that is entirely base64
(standard or URL-safe) decoded when it is text, the contents of every ``data:`` URI (RFC 2397,
base64 or %-encoded; images and other binary data are skipped), and tokens folded across lines
(a terminal's wrap, indentation, string concatenation, backslash continuations) joined again.
Decoding is bounded: at most :data:`MAX_BASE64_DECODE` characters, :data:`MAX_DATA_URIS` URIs.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import urllib.parse
from collections.abc import Iterator

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")

# A whole string that is base64 (standard or URL-safe): its decoded text is scanned too (widget
# state and JSON values sometimes carry base64-encoded JSON).
_BASE64_WHOLE = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
MAX_BASE64_DECODE = 4 * 1024 * 1024

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


def variants(text: str) -> list[str]:
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


def unfolded(text: str) -> str | None:
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
