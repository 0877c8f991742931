"""Walking a notebook: every place a running kernel or a widget can leave data behind, each text
checked with :func:`.patterns.detect` and reported as a :class:`Finding` (:func:`scan_notebook`).

Where it looks:

* every output: stream text, every mimetype of ``execute_result``/``display_data`` (text/html,
  application/json, widget views, ...), output metadata, error name/value/traceback;
* cell metadata and cell attachments (the raw base64 strings and, when they decode to text, the text);
* notebook metadata, and the saved widget state
  (``metadata.widgets["application/vnd.jupyter.widget-state+json"].state.<model id>.state``, every
  string recursively, plus base64 buffers), reported per widget model;
* the source of every cell (code, markdown, raw): a secret in a saved notebook is a leak whoever
  typed it, and the panel itself asks users to paste the redirect address into a
  ``flyte_auth.submit_redirect("...")`` cell.

A finding names the file, the place and the kind of secret, and shows at most a fingerprint (a few
leading characters and the length), never the secret; a place whose own name looks secret (a cell
id, a widget model id) is named ``<redacted name>``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .patterns import detect, rank
from .reading import NotANotebookError, read_notebook

WIDGET_STATE_MIMETYPE = "application/vnd.jupyter.widget-state+json"


@dataclass(frozen=True)
class Finding:
    """One suspected secret. ``fingerprint`` is safe to print; the secret itself is never kept."""

    path: str
    where: str
    kind: str
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.path}: {self.where}: {self.kind} [{self.fingerprint}]"


def fingerprint(secret: str) -> str:
    """At most the first 4 characters (fewer for short values) and the length: ``eyJh...(812 chars)``."""
    shown = secret[: min(4, len(secret) // 4)]
    return f"{shown}...({len(secret)} chars)"


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
        if any(True for _ in detect(text, self.known)):
            return "<redacted name>"
        text = "".join(c if c.isprintable() else "?" for c in text)
        return text if len(text) <= 64 else text[:61] + "..."

    def check(self, where: str, text: str) -> None:
        for kind, secret in detect(text, self.known):
            key = (where, secret)
            if key not in self._best:
                self._best[key] = kind
                self._order.append(key)
            elif rank(kind) < rank(self._best[key]):
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
            nb = read_notebook(path)
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
