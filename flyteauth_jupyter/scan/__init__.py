"""Secret scanner for saved notebooks: ``python -m flyteauth_jupyter.scan NOTEBOOK...``.

This package owns the last line of defence of DESIGN.md's promise that "a saved notebook contains
no secret" (pinned detail 13: access, refresh and id tokens, client secrets, authorization codes,
code verifiers, device codes; the user code is shown on purpose and is not a secret). Its rooms:

* :mod:`.patterns`: what a secret looks like (JWTs, bearer values, the OAuth field names with a
  value, authorization codes in URLs and redirect queries, exact values the caller knows);
* :mod:`.decode`: the readings of a text a person would see (ANSI, HTML and %-escapes undone, base64
  and ``data:`` URIs decoded, tokens folded across lines joined);
* :mod:`.notebook`: walking a notebook (sources, outputs, metadata, widget state, attachments) into
  :class:`Finding` s, :func:`scan_notebook`;
* :mod:`.reading`: a file read as a notebook, or :class:`NotANotebookError`;
* :mod:`.cli` (and ``__main__``): the command line, :func:`main`.

A report names the file, the place and the kind of secret, and shows at most a :func:`fingerprint`,
never the secret. Pure standard library plus nbformat; nothing here imports the rest of the package
except errors. Usage, options and the pre-commit hook: docs/secret-scanner.md.
"""

from __future__ import annotations

from .cli import main
from .notebook import Finding, fingerprint, scan_notebook
from .reading import NotANotebookError

__all__ = ["Finding", "NotANotebookError", "fingerprint", "main", "scan_notebook"]
