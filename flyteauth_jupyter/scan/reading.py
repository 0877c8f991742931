"""A file read as a Jupyter notebook (:func:`read_notebook`), or :class:`NotANotebookError` with one
sentence saying why not: no such file, not UTF-8, not JSON (with the line and column), nested too
deeply, not nbformat's structure, or failing its schema (then the parsed notebook comes with the
error, so that it can still be scanned). The sentence never quotes the file's content.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from ..errors import FlyteAuthError


class NotANotebookError(FlyteAuthError, ValueError):
    """The file cannot be read as a valid Jupyter notebook.

    ``notebook`` holds the parsed document when the file is a notebook that fails schema
    validation (so a caller can still scan it), else None.
    """

    def __init__(self, message: str, notebook: Any = None) -> None:
        super().__init__(message)
        self.notebook = notebook


def read_notebook(path: str) -> Any:
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
