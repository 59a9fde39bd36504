"""Icarus Verilog as the optional second simulator: the same bulk harness, bit-exact vs golden.

Icarus is not a pip dependency: the simulation test skips (with the reason) where `iverilog`
is absent; the missing-tool error is tested everywhere.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from quantmodels.golden import golden_forward
from quantmodels.ir import InputSpec, save_model

from conftest import random_xnor_model

FOLD = "fc0:pe=4,simd=16;fc1:pe=5,simd=5"  # 16 and 5 lanes: non-multiples of 3 and 7


def digits_model():
    """Random W1A1 64-20-10 net reading the embedded 8x8 digits (so the CLI finds its data)."""
    model = random_xnor_model((64, 20, 10), seed=4, name="rand-digits")
    model.input = InputSpec(64, 1, "threshold", 64, (8, 8))
    model.meta["data_source"] = "digits"
    return model


def run_cli(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "lowbit.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=1200)


@pytest.mark.icarus
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog (Icarus Verilog) not on PATH")
def test_cli_sim_icarus_bit_exact(tmp_path):
    """`lowbit sim --simulator icarus` with the xilinx popcount cells and back-pressure."""
    from quantmodels.datasets import load_digits

    model = digits_model()
    x = load_digits().x_test[:60]
    assert len(np.unique(golden_forward(model, x).classes)) > 2  # varied outputs to compare
    save_model(model, tmp_path / "m")
    r = run_cli("sim", "m", "--simulator", "icarus", "--popcount", "xilinx", "--fold", FOLD, "--images", "60",
                "--stall", "20", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "BIT-EXACT: 60/60" in r.stdout and "icarus: built" in r.stdout
    sim = json.loads((tmp_path / "m" / "hw" / "sim.json").read_text())
    assert sim["simulator"] == "icarus" and sim["popcount"] == "xilinx"
    assert sim["n_images"] == 60 and sim["mismatches"] == 0
    assert sim["tool_versions"]["iverilog"].startswith("Icarus Verilog")


def test_cli_sim_icarus_missing_is_one_line_error(tmp_path):
    """Without iverilog on PATH: one line naming the simulator and how to install it, exit 2."""
    save_model(digits_model(), tmp_path / "m")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no /usr/bin: no iverilog
    r = run_cli("sim", "m", "--simulator", "icarus", "--images", "5", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == ["lowbit: error: icarus: iverilog not found on PATH; install Icarus Verilog "
                     "(e.g. apt-get install iverilog)"]
    assert not (tmp_path / "m" / "hw" / "sim.json").exists()
