"""Hostile input through the real CLI, every family (issue 20): a reduced hypothesis profile of
benchmarks/fuzz_inputs.py in the default run (every case must end in a clean one-line exit 2), the
full profile under ``-m slow``, a few subprocess runs, and one named regression per class found."""
from __future__ import annotations

import importlib.util
import io
import json
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hw.folding import parse_folding
from quantmodels.datasets import load_dataset
from quantmodels.errors import ConfigError, DataError

from conftest import random_xnor_model

REPO = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("fuzz_inputs", REPO / "benchmarks" / "fuzz_inputs.py")
F = importlib.util.module_from_spec(_SPEC)
sys.modules["fuzz_inputs"] = F
_SPEC.loader.exec_module(F)

MAX_LINE = 300


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> "F.BaseModel":
    return F.make_base_model(tmp_path_factory.mktemp("fuzz-base"))


def _assert_all_clean(tally: "F.Tally") -> None:
    bad = [e for e in tally.examples if e["outcome"] != "clean"]
    assert not bad, json.dumps(bad[:5], indent=1)
    assert set(tally.totals()) == {"clean"}, tally.totals()


# reduced profile: cases per family in the default run (the whole module stays well under a minute)
@pytest.mark.parametrize("family, n", [("data_npz", 25), ("data_idx", 25), ("sweep_toml", 25), ("fold", 25),
                                       ("cli_options", 25), ("model_dir", 15), ("qonnx_import", 10)])
def test_fuzz_family_reduced(family, n, base):
    tally = F.Tally()
    F.fuzz_family(family, n, base, tally, seed=1, timeout=30)
    _assert_all_clean(tally)
    assert sum(tally.totals().values()) >= n // 2  # hypothesis ran the cases (duplicates are skipped)


@pytest.mark.slow
@pytest.mark.parametrize("family", F.FAMILIES)
def test_fuzz_family_full(family, base):
    tally = F.Tally()
    F.fuzz_family(family, 750, base, tally, seed=2, timeout=60)
    _assert_all_clean(tally)


def test_run_case_classifies_each_outcome(base, monkeypatch):
    """The classifier itself: a clean refusal, an accepted input, an escaped exception and a hang."""
    ok = F.Case("fold", ["verilog", "{dir}/m", "--fold", "pe=1", "--out", "{dir}/hw"],
                {f"m/{k}": v for k, v in base.files.items()})
    assert F.run_case(ok).kind == "accepted_invalid"  # valid input: exit 0 (what a wrong generator would give)
    bad = F.Case("fold", ["verilog", "{dir}/m", "--fold", "pe=2,pe=4"], dict(ok.files))
    o = F.run_case(bad)
    assert o.kind == "clean" and "pe given twice" in o.detail, o
    import lowbit.flow as flow

    monkeypatch.setattr(flow, "cmd_verilog", lambda args: 1 / 0)
    assert F.run_case(bad).kind == "traceback"
    monkeypatch.setattr(flow, "cmd_verilog", lambda args: time.sleep(5))
    assert F.run_case(bad, timeout=0.5).kind == "hang"


# ----------------------------------------------------------------------------- subprocess runs


def _cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lowbit.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def _one_line(r: subprocess.CompletedProcess, pattern: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(lines[0]) <= MAX_LINE, len(lines[0])
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def test_subprocess_utf16_sweep_toml(tmp_path):
    p = tmp_path / "s.toml"
    p.write_bytes('[sweep]\ndataset = "digits"\n[axes]\nmethod = ["bnn"]\n'.encode("utf-16"))
    _one_line(_cli("sweep", p), r"s\.toml: not UTF-8 text .*expected a UTF-8 TOML file$")


def test_subprocess_100k_fold_is_truncated(tmp_path):
    m = tmp_path / "m"
    from quantmodels.ir import save_model

    save_model(random_xnor_model((16, 8, 4)), m)
    line = _one_line(_cli("verilog", m, "--fold", "x" * 100_000), r"^lowbit: error: --fold: ")
    assert line == f"lowbit: error: --fold: '{'x' * 56}... is not 'pe=N' or 'simd=N'", line


def test_subprocess_npy_named_npz(tmp_path):
    p = tmp_path / "d.npz"
    np.save(p.with_suffix(".npy"), np.zeros((10, 28, 28), np.uint8))
    p.with_suffix(".npy").rename(p)
    _one_line(_cli("train", "--data", p, "--out", tmp_path / "o"), r"d\.npz: not a readable \.npz archive")


# ----------------------------------------------------------------------------- named regressions


def _npz(path: Path, **arrays) -> Path:
    np.savez_compressed(path, **arrays)
    return path


def _mnist(n_train=20, n_test=5):
    a = F._mnist_like(n_train, n_test)
    return a


def test_idx_dimensions_that_overflow_are_refused(tmp_path):
    a = _mnist()
    for k, stem in F._IDX.items():
        (tmp_path / stem).write_bytes(F._idx(a[k]))
    dims = (2**32 - 1, 2**32 - 1, 2**32 - 1)  # the product wraps an int64
    (tmp_path / F._IDX["x_train"]).write_bytes(struct.pack(">HBB", 0, 8, 3) + struct.pack(">3I", *dims) + b"\0" * 8)
    with pytest.raises(DataError, match=r"IDX payload has 8 bytes, expected 79228162458924105385300197375 for shape"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_datasets_of_1_to_5_images_are_refused(tmp_path, n):
    a = _mnist(n)
    p = _npz(tmp_path / "d.npz", **a)
    with pytest.raises(DataError, match=rf"d\.npz: x_train holds {n} images, expected at least 10$"):
        load_dataset(p)


def test_empty_test_split_is_refused(tmp_path):
    a = _mnist()
    a["x_test"], a["y_test"] = a["x_test"][:0], a["y_test"][:0]
    with pytest.raises(DataError, match=r"x_test holds 0 images, expected at least 1$"):
        load_dataset(_npz(tmp_path / "d.npz", **a))


def test_flipped_byte_in_compressed_npz_is_refused(tmp_path):
    raw = F._npz(_mnist())
    with __import__("zipfile").ZipFile(io.BytesIO(raw)) as z:
        info = z.getinfo("x_train.npy")
    pos = F._data_offset(raw, info) + info.compress_size // 2
    (tmp_path / "d.npz").write_bytes(raw[:pos] + bytes([raw[pos] ^ 0x55]) + raw[pos + 1:])
    with pytest.raises(DataError, match=r"d\.npz: x_train: unreadable \((BadZipFile|error): "):
        load_dataset(tmp_path / "d.npz")


def test_flipped_byte_in_stored_npz_is_refused(tmp_path):
    """Uncompressed members: only the CRC-32 notices, and zipfile checks it at the member's end."""
    a = _mnist()
    raw = F._npz(a, compressed=False)
    with __import__("zipfile").ZipFile(io.BytesIO(raw)) as z:
        info = z.getinfo("x_train.npy")
    pos = F._data_offset(raw, info) + info.compress_size - 5  # a pixel, not the header
    (tmp_path / "d.npz").write_bytes(raw[:pos] + bytes([raw[pos] ^ 1]) + raw[pos + 1:])
    with pytest.raises(DataError, match=r"x_train: unreadable \(BadZipFile: .Bad CRC-32 for file"):
        load_dataset(tmp_path / "d.npz")


def test_data_array_header_claiming_a_huge_shape_is_refused_before_reading(tmp_path):
    a = _mnist()
    p = tmp_path / "d.npz"
    import zipfile

    with zipfile.ZipFile(p, "w") as z:
        for k, v in a.items():
            b = io.BytesIO()
            if k == "x_train":
                np.lib.format.write_array_header_1_0(b, {"descr": "|u1", "fortran_order": False,
                                                         "shape": (10**9, 28, 28)})
                b.write(v.tobytes())
            else:
                np.save(b, v)
            z.writestr(k + ".npy", b.getvalue())
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"x_train: shape \(1000000000, 28, 28\) holds 784000000000 values"):
        load_dataset(p)
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("spec, pattern", [
    ("fps=1,clock_mhz=1e999", r"^--fold: 'fps=1,clock_mhz=1e999': clock_mhz=1e999, expected a number in \(0, 100000\]$"),
    ("fps=1e999", r"fps=1e999, expected a number in \(0, 1e\+08\]$"),
    ("fps=nan", r"'fps=nan' is not 'pe=N' or 'simd=N'$"),
    ("fps=0", r"fps=0, expected a number in"),
    ("pe=-1", r"'pe=-1' is not 'pe=N' or 'simd=N'$"),
    ("fc0:pe=2;fc0:pe=4", r"^--fold: layer 'fc0' given twice, expected one entry per layer$"),
    ("pe=2,pe=4", r"^--fold: pe given twice, expected each of pe, simd at most once$"),
    ("cycles=0", r"^--fold: cycles=0: expected a whole number >= 1$"),
    ("cycles=1e999", r"'cycles=1e999' is not 'pe=N' or 'simd=N'$"),  # whole numbers of <= 9 digits only
    ("cycles=" + "9" * 40, r"is not 'pe=N' or 'simd=N'$"),
])
def test_fold_hostile_strings(spec, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse_folding(random_xnor_model((16, 8, 4)), spec)


def test_fold_echo_is_truncated():
    with pytest.raises(ConfigError) as e:
        parse_folding(random_xnor_model((16, 8, 4)), "x" * 100_000)
    assert len(str(e.value)) < 200 and "..." in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse_folding(random_xnor_model((16, 8, 4)), "y" * 100_000 + ":pe=1")
    assert len(str(e.value)) < 200


@pytest.mark.parametrize("argv, pattern", [
    (["train", "--epochs", "100000000"], r"--epochs: 100000000, expected an integer in 1\.\.10000$"),
    (["train", "--seed", "-1"], r"--seed: -1, expected an integer in 0\.\.4294967295$"),
    (["train", "--lr", "nan"], r"--lr: nan, expected a number in \(0, 100\]$"),
    (["train", "--hidden", ""], r"--hidden: '', expected a network spec"),
    (["sweep", "x.toml", "--jobs", "100000"], r"--jobs: 100000, expected an integer in 0\.\.1024$"),
    (["train", "--hidden", "100000000", "--epochs", "1"], r"expected sizes in 1\.\.65536$"),
])
def test_cli_option_bounds(argv, pattern, capsys):
    from lowbit.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(pattern, err[0]), err


def test_cli_error_line_is_capped(tmp_path, capsys):
    from lowbit.cli import main

    long_dir = tmp_path / ("d" * 200) / ("e" * 200)
    assert main(["verilog", str(long_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and len(err[0]) == MAX_LINE and err[0].endswith("..."), err
