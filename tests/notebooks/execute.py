"""Execute notebooks with nbclient and save the executed copies (outputs and widget state included).

``python tests/notebooks/execute.py OUT_DIR NOTEBOOK...``: each notebook runs top to bottom in a fresh
kernel (the environment's own Python, started in the notebook's folder) with a per-cell timeout, and is
written to ``OUT_DIR/<name>`` as a user's saved notebook would be, so the secret scanner sees exactly
what a user would commit. The harness (test_notebooks.py) runs this in a subprocess with the rig's
environment; a failing cell exits non-zero naming the notebook.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--cell-timeout", type=int, default=120)
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            timeout=args.cell_timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent.resolve())}},
            store_widget_state=True,
        )
        try:
            client.execute()
        except CellExecutionError as exc:
            failed += 1
            # nbclient's message quotes the failing cell's source and the traceback, never a token
            print(f"{path.name}: a cell failed\n{str(exc)[-2000:]}", file=sys.stderr)
        nbformat.write(nb, args.out_dir / path.name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
