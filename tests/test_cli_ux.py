"""What the CLI says and records: the dataset's own name, the config actually trained, a line per
epoch when stdout is not a terminal, the folding it chose, refusals instead of silent clamps, and
byte-identical models from one seed."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from quantmodels.atomic import atomic_write_npz


def lowbit(*args, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lowbit.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env=env)


@pytest.fixture
def texture(tmp_path, mnist_path):
    """An MNIST-shaped file that is not called mnist (a small slice of it)."""
    with np.load(mnist_path) as z:
        p = tmp_path / "texture.npz"
        np.savez(p, x_train=z["x_train"][:600], y_train=z["y_train"][:600], x_test=z["x_test"][:100],
                 y_test=z["y_test"][:100])
    return p


def test_train_records_what_it_did(texture, tmp_path):
    r = lowbit("train", "--data", texture, "--model", "tfc", "--epochs", "2", "--input-bits", "8", "--out", "m",
               cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # stdout is a pipe here, not a terminal: one plain line per epoch (loss, accuracy, time)
    epochs = [ln for ln in r.stdout.splitlines() if ln.startswith("epoch ")]
    assert len(epochs) == 2, r.stdout
    assert re.fullmatch(r"epoch 1/2: loss \d+\.\d{4}, val_accuracy [01]\.\d{4}, \d+\.\d s", epochs[0]), epochs[0]
    assert " on texture: " in r.stdout and "(8-bit input pixels)" in r.stdout
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    meta = doc["meta"]
    assert meta["dataset"] == "texture"  # named from its file, not "mnist"
    assert meta["config"]["hidden"] == [64, 64, 64] and meta["config"]["arch"] == "tfc"
    assert [L["out_features"] for L in doc["layers"]] == [64, 64, 64, 10]  # what was trained
    assert meta["config"]["input_bits"] == 8 and doc["input"]["quantizer"] == "identity"
    assert [L["kind"] for L in doc["layers"]] == ["accumulate"] + ["xnor_popcount"] * 3

    # lowbit verilog says which folding it chose, per layer, with the cycles
    r = lowbit("verilog", "m", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "folding: automatic, balanced (no --fold)" in r.stdout
    lines = [ln for ln in r.stdout.splitlines() if re.match(r"^  fc\d \(", ln)]
    assert len(lines) == 4, r.stdout
    assert re.fullmatch(r"  fc0 \(accumulate, 784->64\): pe=\d+, simd=\d+, \d+ cycles/image", lines[0]), lines[0]
    # ... and the register stages the family's default target clock chose (issue 18: 80 MHz on iCE40)
    stages = re.search(r"^register stages for 80 MHz on ice40 \(delay model, hw.pipeline\): (.*)$", r.stdout, re.M)
    assert stages, r.stdout
    hw = json.loads((tmp_path / "m" / "hw" / "hw.json").read_text())
    assert hw["clock_mhz"] == 80.0 and hw["family"] == "ice40"
    assert stages.group(1) == ", ".join(f"fc{i} {k}" for i, k in enumerate(hw["pipeline_stages"]))
    assert max(hw["pipeline_stages"]) >= 1  # a 784-input tree at 80 MHz needs at least one stage
    # another family's default clock, and 'none' for the unstaged design (fewer cycles per image)
    r = lowbit("verilog", "m", "--family", "ecp5", cwd=tmp_path)
    assert r.returncode == 0 and "register stages for 125 MHz on ecp5" in r.stdout, r.stderr
    r = lowbit("verilog", "m", "--clock-mhz", "none", cwd=tmp_path)
    assert r.returncode == 0 and "register stages: none in the adder trees" in r.stdout, r.stderr
    none = json.loads((tmp_path / "m" / "hw" / "hw.json").read_text())
    assert none["clock_mhz"] is None and set(none["pipeline_stages"]) == {0}
    # each stage is one cycle of latency; a target clock also registers the argmax's compares (hw.network),
    # so the staged design is later by at least the stages' sum
    assert none["latency_cycles"] + sum(hw["pipeline_stages"]) <= hw["latency_cycles"] <= 2 * none["latency_cycles"]

    # a request beyond the test set is refused in one line, before any build
    r = lowbit("sim", "m", "--images", "100000", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("lowbit: error: --images: 100000, expected at most 100 (the test set of texture; "
                                "0 = all of it)")


def test_name_overrides_the_file_name(texture, tmp_path, capsys):
    from lowbit.cli import main

    assert main(["train", "--data", str(texture), "--hidden", "16", "--epochs", "1", "--name", "grey texture",
                 "--quiet", "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert " on grey texture: " in out and not [ln for ln in out.splitlines() if ln.startswith("epoch ")]
    meta = json.loads((tmp_path / "m" / "model.json").read_text())["meta"]
    assert meta["dataset"] == "grey texture" and meta["config"]["hidden"] == [16]


def test_same_seed_gives_byte_identical_model(tmp_path):
    """Two trainings, separate processes with different hash seeds (set/dict order), one seed."""
    for i in (0, 1):
        env = {**os.environ, "PYTHONHASHSEED": str(i + 1)}
        r = lowbit("train", "--data", "digits", "--hidden", "32", "--epochs", "3", "--seed", "7", "--quiet",
                   "--out", f"run{i}/m", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
    a, b = (tmp_path / "run0/m/weights.npz").read_bytes(), (tmp_path / "run1/m/weights.npz").read_bytes()
    assert a == b
    docs = [json.loads((tmp_path / f"run{i}/m/model.json").read_text()) for i in (0, 1)]
    for d in docs:  # wall-clock times are the only fields allowed to differ
        d["meta"].pop("train_seconds"), d["meta"].pop("wall_seconds")
        for h in d["meta"]["history"]:
            h.pop("train_seconds")
    assert docs[0] == docs[1]
    assert docs[0]["meta"]["golden_test_accuracy"] > 0.2  # learned something (chance: 0.1)


def test_npz_bytes_do_not_depend_on_the_clock(tmp_path, monkeypatch):
    arrays = {"fc0.weights": np.arange(12, dtype=np.int64).reshape(3, 4), "fc0.thresholds": np.ones((3, 1), np.int32)}
    atomic_write_npz(tmp_path / "a.npz", arrays)
    later = time.time() + 3 * 3600  # zip members carry a timestamp: np.savez stamps "now"
    monkeypatch.setattr(time, "time", lambda: later)
    atomic_write_npz(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "b.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["fc0.weights"], arrays["fc0.weights"])
