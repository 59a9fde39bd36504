"""Where a result came from: the git commit of this checkout and the tool versions.

Every results file a benchmark writes carries :func:`provenance` under one key, so a figure in
the README can be traced to the code and the tools that produced it. Take it *before* the run:
what matters is the code the figures were measured with, not what was committed after.
"""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .tools import tool_versions

_REPO = Path(__file__).resolve().parents[1]


def git_commit(repo: Path = _REPO) -> str:
    """HEAD of ``repo``, suffixed ``-dirty`` when tracked files differ from it; ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30)
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def provenance(*extra_packages: str, seed: int | None = None) -> dict[str, Any]:
    """The git commit, Python, platform and tool/package versions (plus ``extra_packages``), and the seed."""
    versions = dict(tool_versions())
    for pkg in extra_packages:
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = "absent"
    out: dict[str, Any] = {"git_commit": git_commit(), "python": sys.version.split()[0],
                           "platform": platform.platform(), "tool_versions": versions}
    if seed is not None:
        out["seed"] = seed
    return out
