"""What every results file records about how it was made: the git commit and the tool versions."""
from __future__ import annotations

import subprocess
from pathlib import Path

from sim.tools import tool_versions

REPO = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """HEAD of the lowbit checkout, with "-dirty" when tracked files differ ("unknown" outside git)."""
    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return (r.stdout.strip() or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> dict:
    """{"git_commit": ..., "tool_versions": {...}} for a results file."""
    return {"git_commit": git_commit(), "tool_versions": tool_versions()}
