"""The CLI end to end on the embedded digits: train -> verilog -> sim -> report, each step reading
the previous step's files."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.verilator, pytest.mark.yosys]
FOLD = "fc0:pe=4,simd=16;fc1:pe=4,simd=16"  # fc2 (10 outputs) keeps the automatic choice


def lowbit(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "lowbit.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_cli_flow_digits(tmp_path):
    out = lowbit("train", "--data", "digits", "--hidden", "32,32", "--epochs", "30", "--seed", "5",
                 "--out", "m", "--quiet", cwd=tmp_path)
    assert "agreement 100.00%" in out and "(seed 5)" in out
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["meta"]["seed"] == 5 and meta["meta"]["data_source"] == "digits"

    out = lowbit("verilog", "m", "--fold", FOLD, cwd=tmp_path)
    assert (tmp_path / "m" / "hw" / "lowbit_net.v").exists()
    # the folding it used, per layer, with the cycles: (32 / 4) x (64 / 16) = 32 for fc0
    assert f"folding: --fold '{FOLD}'" in out
    assert "  fc0 (xnor_popcount, 64->32): pe=4, simd=16, 32 cycles/image" in out, out
    hwj = json.loads((tmp_path / "m" / "hw" / "hw.json").read_text())
    assert hwj["foldings"][:2] == ["fc0:pe=4,simd=16", "fc1:pe=4,simd=16"]

    out = lowbit("sim", "m", "--fold", FOLD, "--images", "0", cwd=tmp_path)
    assert "BIT-EXACT: 359/359" in out
    # sim says that it generated the Verilog, with which folding, and how many images it runs
    assert "generating Verilog for m into m/hw" in out and "  fc1 (xnor_popcount, 32->32): pe=4, simd=16" in out
    assert "simulating 359 of the 359 test images of digits" in out
    sim = json.loads((tmp_path / "m" / "hw" / "sim.json").read_text())
    assert sim["mismatches"] == 0 and sim["n_images"] == 359 and sim["seed"] == 5

    out = lowbit("report", "m", "--fold", FOLD, "--targets", "generic", "--no-pnr", "--activity-images", "4",
                 "--out", "rep", cwd=tmp_path)
    for f in ("summary.csv", "layers.csv", "report.json", "comparison.png", "report.html"):
        assert (tmp_path / "rep" / f).exists(), f
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    summary = rep["designs"][0]["summary"]
    assert summary["measured_generic_luts"] > 0
    assert summary["measured_sim_mismatches"] == 0  # picked up the matching sim.json
    # activity run on 4 digits test images (the dataset recorded in model.json)
    assert summary["measured_activity_images"] == 4 and summary["measured_activity_bit_exact"]
    assert summary["model_energy_activity_pj"] > 0
