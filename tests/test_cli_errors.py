"""Bad input through the real CLI: one line naming the file/field, exit status 2, no traceback."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from quantmodels.ir import save_model

from conftest import random_xnor_model


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lowbit.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def assert_one_line_error(r, pattern):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    import re
    assert re.search(pattern, lines[0]), lines[0]


def test_missing_data_file(tmp_path):
    r = run_cli("train", "--data", tmp_path / "absent.npz", "--out", tmp_path / "m")
    assert_one_line_error(r, r"^lowbit: error: .*absent\.npz: no such file")
    assert not (tmp_path / "m").exists()


def test_truncated_data_file(tmp_path):
    p = tmp_path / "mnist.npz"
    x = np.zeros((10, 28, 28), np.uint8)
    np.savez(p, x_train=x, y_train=np.zeros(10, np.uint8), x_test=x, y_test=np.zeros(10, np.uint8))
    p.write_bytes(p.read_bytes()[:500])
    r = run_cli("train", "--data", p, "--out", tmp_path / "m")
    assert_one_line_error(r, r"mnist\.npz: not a readable \.npz archive")


def test_wrong_shape_data_file(tmp_path):
    p = tmp_path / "mnist.npz"
    x = np.zeros((10, 27, 28, 2, 2), np.uint8)
    np.savez(p, x_train=x, y_train=np.zeros(10, np.uint8), x_test=x, y_test=np.zeros(10, np.uint8))
    r = run_cli("train", "--data", p)
    assert_one_line_error(r, r"mnist\.npz: x_train has shape \(10, 27, 28, 2, 2\), expected \(N, H, W\), \(N, H, W, C\) "
                             r"channels-last or \(N, F\) flat")


@pytest.fixture
def model_dir(tmp_path):
    return save_model(random_xnor_model((16, 8, 4)), tmp_path / "m")


def test_unknown_layer_kind(model_dir):
    doc = json.loads((model_dir / "model.json").read_text())
    doc["layers"][0]["kind"] = "quantum_mac"
    (model_dir / "model.json").write_text(json.dumps(doc))
    r = run_cli("verilog", model_dir)
    assert_one_line_error(r, r"model\.json: layers\[0\]\.kind: 'quantum_mac', expected one of xnor_popcount, mac, accumulate, shift_add, bit_serial, lut_product$")


def test_inconsistent_shapes(model_dir):
    doc = json.loads((model_dir / "model.json").read_text())
    doc["layers"][1]["in_features"] = 7
    (model_dir / "model.json").write_text(json.dumps(doc))
    r = run_cli("sim", model_dir)
    assert_one_line_error(r, r"layers\[1\]\.in_features: 7, expected 8")


def test_impossible_folding(model_dir):
    r = run_cli("verilog", model_dir, "--fold", "pe=9,simd=4")  # a non-dividing pe pads; a too large one fails
    assert_one_line_error(r, r"^lowbit: error: fc0: pe=9 exceeds out_features=8, expected 1\.\.8$")


@pytest.mark.parametrize("clock", ["inf", "nan", "-1", "1e6"])
def test_bad_clock_mhz(model_dir, clock):
    r = run_cli("verilog", model_dir, "--clock-mhz", clock)
    assert_one_line_error(r, r"^lowbit: error: --clock-mhz: .{1,12}, expected a clock in MHz > 0 and <= 100000$")


def test_clock_mhz_word_not_a_number(model_dir):
    r = run_cli("verilog", model_dir, "--clock-mhz", "fast")
    assert_one_line_error(r, r"^lowbit: error: --clock-mhz: 'fast', expected a clock in MHz, 'auto' \(the family's "
                             r"default\) or 'none' \(no register stages\)$")


def test_bad_hidden_spec(tmp_path):
    r = run_cli("train", "--hidden", "256,abc", "--out", tmp_path / "m")
    assert_one_line_error(r, r"--hidden: '256,abc', expected comma-separated integers")


@pytest.mark.parametrize("args,pattern", [
    # activity-image count: negative, or beyond the traced harness depth
    (("--activity-images", "-1"), r"^lowbit: error: --activity-images: -1, expected >= 0 \(0 = no activity run\)$"),
    (("--activity-images", "100000"), r"^lowbit: error: --activity-images: 100000, expected at most 256$"),
    # a target Yosys has no recipe for
    (("--targets", "ice40,gowin"), r"^lowbit: error: --targets: 'ice40,gowin', expected a comma-separated subset of .*ecp5"),
])
def test_bad_report_options(model_dir, tmp_path, args, pattern):
    r = run_cli("report", model_dir, "--out", tmp_path / "rep", *args)
    assert_one_line_error(r, pattern)
    assert not (tmp_path / "rep").exists()  # refused before any work


@pytest.mark.parametrize("cmd", ["sim", "report"])
def test_bad_clock_refused_before_any_work(model_dir, tmp_path, cmd):
    """A bad --clock-mhz is refused before the command prints, builds or writes anything."""
    r = run_cli(cmd, model_dir, "--clock-mhz", "inf", "--out", tmp_path / "o")
    assert_one_line_error(r, r"^lowbit: error: --clock-mhz: inf, expected a clock in MHz > 0 and <= 100000$")
    assert r.stdout == "" and not (tmp_path / "o").exists() and not (model_dir / "hw").exists()


def test_choice_errors_name_the_values(model_dir):
    """argparse lists --mem-style / --popcount choices as the words a user types, not enum reprs."""
    r = run_cli("verilog", model_dir, "--mem-style", "huge")
    assert r.returncode == 2 and "(choose from 'auto', 'block', 'distributed', 'logic')" in r.stderr, r.stderr
    assert "MemStyle" not in r.stderr
    r = run_cli("verilog", model_dir, "--popcount", "fast")
    assert r.returncode == 2 and "(choose from 'tree', 'lut6', 'xilinx')" in r.stderr, r.stderr


def test_unwritable_output_directory(model_dir, tmp_path):
    """An --out the file system refuses (here: below a regular file) is one line naming the path."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli("verilog", model_dir, "--out", blocker / "hw")
    assert_one_line_error(r, r"^lowbit: error: .*file[/\\]hw'?: Not a directory$")


def test_data_path_that_is_not_a_file(tmp_path):
    r = run_cli("import", tmp_path, "--out", tmp_path / "m")
    assert_one_line_error(r, r"^lowbit: error: .*: not a regular file, expected an ONNX model$")


def test_report_refuses_another_familys_multipliers_on_ice40_dsps(tmp_path):
    """A mac net built for ecp5 (registered products) would be mis-mapped by synth_ice40 -dsp: refused."""
    from conftest import random_mac_model

    m = save_model(random_mac_model(), tmp_path / "mac")
    r = run_cli("report", m, "--targets", "ecp5,ice40", "--family", "ecp5", "--out", tmp_path / "rep")
    assert_one_line_error(r, r"^lowbit: error: --family ecp5 with target ice40: .* expected target ice40-nodsp, "
                             r"or no --family$")
    assert not (tmp_path / "rep").exists()
