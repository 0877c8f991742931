"""``python -m tests.faults.report``: render the recorded reliability tables into README.md.

The recording and rendering live in tests/rig/reliability.py (docs/test-rig.md, "Reliability figures").
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # import the rig as `rig`, as the tests do

from rig.reliability import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
