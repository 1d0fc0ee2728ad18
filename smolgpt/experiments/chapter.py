"""Small conveniences the chapters share: quick mode and where outputs go.

Every chapter has a quick mode for the tests (`SMOLGPT_QUICK=1`, or `--quick` on its command
line) and writes its figures and logs under `out/<chapter>/` (`SMOLGPT_OUT` moves the root).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def quick_mode() -> bool:
    """True when the chapter should run its small, under-a-minute version."""
    flag = os.environ.get("SMOLGPT_QUICK", "").strip().lower()
    return flag not in ("", "0", "false", "no") or "--quick" in sys.argv[1:]


def out_dir(name: str) -> Path:
    """`out/<name>/` (or `$SMOLGPT_OUT/<name>/`), created if needed."""
    root = Path(os.environ.get("SMOLGPT_OUT", "out"))
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path
