"""The command line: ``python -m flyteauth_jupyter.scan [--value V] [--values-from-env VAR] [-v] NOTEBOOK...``
(:func:`main`; docs/secret-scanner.md, and the pre-commit hook there).

Exit status: 0 nothing found, 1 something found, 2 a file is not a notebook, cannot be read or
scanned (e.g. nested too deeply), or bad usage (an unset ``--values-from-env`` variable too, so that a
misconfigured check never passes silently). A notebook that only fails schema validation is reported
(2) and still scanned.
"""

from __future__ import annotations

import argparse
import os
import sys

from .notebook import Finding, scan_notebook
from .reading import NotANotebookError


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
