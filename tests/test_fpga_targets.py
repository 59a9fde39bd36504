"""benchmarks/fpga_targets.py: its command line (sections listed, bad input refused in one line)
and the final table. The measurements themselves are the benchmark's job (minutes to hours)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fpga_targets.py"
SECTIONS = ("tfc_xilinx", "memory", "padding", "fmax", "lanes_xilinx", "ratio_int8", "sfc_fmax", "kinds_fmax",
            "sfc_regression", "elsewhere")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_section():
    r = _run("--help")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    for s in SECTIONS:
        assert s in text, s
    assert "--seeds" in text and "--kinds" in text


@pytest.mark.parametrize("args, pattern", [
    (("--only", "memory,nope"), "fpga_targets: --only: 'nope', expected a subset of tfc_xilinx, memory"),
    (("--only", "memory", "--seeds", "4"), "fpga_targets: --seeds: 4, expected 1..3"),
    (("--only", "kinds_fmax", "--kinds", "xnor"), "fpga_targets: --kinds: 'xnor', expected a subset of accumulate"),
])
def test_bad_arguments_one_line_exit_2(args, pattern):
    r = _run(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) <= 300 and lines[0].startswith(pattern), r.stderr


def test_table_shows_target_before_measured_met_and_limit(capsys):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import fpga_targets
    finally:
        sys.path.remove(str(SCRIPT.parent))
    doc = {"sections": {"ratio_int8": {"git_commit": "abcdef0123456789", "rows": [
        {"name": "whole", "target": ">= 30x fewer", "before": "12-14x", "measured": {"headline": "17.2x"},
         "met": False, "limit": "whole-vector registers"},
        {"name": "lanes", "target": ">= 100x fewer", "before": "36x", "measured": 123.4, "met": True}]}}}
    fpga_targets.table(doc)
    out = capsys.readouterr().out.splitlines()
    row = next(x for x in out if x.startswith("ratio_int8") and "whole" in x)
    assert ">= 30x fewer" in row and "12-14x" in row and "17.2x" in row and "NOT MET" in row and "abcdef0123" in row
    assert any("limit: whole-vector registers" in x for x in out)
    assert any(x.startswith("ratio_int8") and "123.4" in x and x.split()[-2] == "MET" for x in out)


def test_elsewhere_reads_the_other_benchmarks_results_with_their_commits(capsys):
    """The CNN and estimator targets come from their own results files, with those files' commits
    (read, not re-measured), and the estimator row names every miss in its limit."""
    import json

    sys.path.insert(0, str(SCRIPT.parent))
    import fpga_targets

    rows = fpga_targets.elsewhere()
    res = SCRIPT.parent / "results"
    cal = json.loads((res / "estimator_calibration.json").read_text())
    cnn, est = rows
    assert cnn["git_commit"] == json.loads((res / "cnn4_ecp5.json").read_text())["sections"]["pnr"]["git_commit"]
    assert est["git_commit"] == cal["provenance"]["git_commit"]
    misses = [c for c in cal["summary"] if c["lut_max_abs_pct"] > 10]
    assert est["met"] is (not misses and all(c["brams_exact"] == c["points"] for c in cal["summary"]))
    assert all(f"{c['family']} {c['unit_kind']}" in est.get("limit", "") for c in misses)
