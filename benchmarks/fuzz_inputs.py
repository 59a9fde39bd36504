"""Benchmark: hostile input through the real ``lowbit`` CLI, classified case by case.

Every user-facing input family (data files, IDX directories, sweep TOML, ``--fold`` strings,
numeric options, model directories, QONNX files) gets a hypothesis strategy producing *invalid*
inputs; each case runs ``lowbit.cli.main`` in-process (fast) and is classified:

- ``clean``: exit status 2 and one ``lowbit: error: ...`` line of at most 300 characters
  (argparse's own usage errors, also status 2, count here too);
- ``traceback``: an exception escaped ``main`` (or the error was not one short line: ``unclean``
  is counted separately);
- ``hang``: the case ran longer than the timeout;
- ``accepted_invalid``: exit status 0 on an input built to be invalid.

Writes ``benchmarks/results/fuzz_inputs.json`` (cases per family, the counts, examples of every
non-clean outcome, git commit, seed and tool versions). Usage::

    python benchmarks/fuzz_inputs.py [--cases 5000] [--seed 0] [--timeout 30] [--out PATH]

The default test run uses the same strategies at a reduced profile (tests/test_fuzz_inputs.py).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import io
import json
import os
import signal
import struct
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import seed as hyp_seed
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
MAX_LINE = 300
OUTCOMES = ("clean", "unclean", "traceback", "hang", "accepted_invalid")
#: Share of the cases each family gets (the rest of the budget is split evenly).
FAMILIES = ("data_npz", "data_idx", "sweep_toml", "fold", "cli_options", "model_dir", "qonnx_import")


@dataclass
class Case:
    """One hostile input: files to write into a fresh directory, then a CLI command run there."""

    family: str
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    what: str = ""  #: the mutation, for the report


@dataclass
class Outcome:
    kind: str  #: one of OUTCOMES
    detail: str  #: the error line, the exception or the stdout tail
    seconds: float


class _Timeout(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` in lowbit can swallow it."""


def _alarm(_sig, _frame):
    raise _Timeout()


def run_case(case: Case, timeout: float = 30.0) -> Outcome:
    """Write the case's files into a temporary directory, run ``lowbit`` there in-process, classify."""
    from lowbit.cli import main

    with tempfile.TemporaryDirectory(prefix="lowbit-fuzz-") as d:
        for rel, data in case.files.items():
            p = Path(d) / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        argv = [a.replace("{dir}", d) for a in case.argv]
        out, err = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        t0 = time.perf_counter()
        try:
            os.chdir(d)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = main(argv)
        except _Timeout:
            return Outcome("hang", f"> {timeout:g} s", time.perf_counter() - t0)
        except SystemExit as e:  # argparse: usage line + error line, status 2
            rc = e.code if isinstance(e.code, int) else 2
            if rc == 2:
                return Outcome("clean", err.getvalue().strip().splitlines()[-1][:MAX_LINE], time.perf_counter() - t0)
        except BaseException as e:  # noqa: BLE001 - the point is to see every escape
            return Outcome("traceback", f"{type(e).__name__}: {str(e)[:200]}", time.perf_counter() - t0)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            os.chdir(cwd)
        secs = time.perf_counter() - t0
        lines = err.getvalue().strip().splitlines()
        if rc == 0:
            return Outcome("accepted_invalid", out.getvalue().strip()[-200:], secs)
        if rc == 2 and len(lines) == 1 and lines[0].startswith("lowbit: error: ") and len(lines[0]) <= MAX_LINE:
            return Outcome("clean", lines[0], secs)
        return Outcome("unclean", f"rc={rc}: " + " | ".join(lines)[:400], secs)


# ----------------------------------------------------------------------------- base inputs


def _npz(arrays: dict[str, np.ndarray], compressed: bool = True) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _data_offset(raw: bytes, info: zipfile.ZipInfo) -> int:
    """Where a member's (compressed) data starts: after its *local* header, whose extra field (numpy
    writes zip64 sizes there) may differ from the central directory's."""
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len


def _same_members(a: bytes, b: bytes) -> bool:
    """True if two zip archives decode to the same members (a flipped byte can be harmless, e.g. the
    deflate stream's final-block bit of its last block or padding bits: such a case is not invalid)."""
    try:
        with zipfile.ZipFile(io.BytesIO(a)) as za, zipfile.ZipFile(io.BytesIO(b)) as zb:
            return za.namelist() == zb.namelist() and all(za.read(n) == zb.read(n) for n in za.namelist())
    except Exception:  # noqa: BLE001 - any decoding failure means the bytes differ in effect
        return False


def _mnist_like(n_train: int = 20, n_test: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "y_train": (np.arange(n_train) % 10).astype(np.uint8),
            "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "y_test": (np.arange(n_test) % 10).astype(np.uint8)}


def _idx(arr: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


_IDX = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
TRAIN = ["train", "--hidden", "4", "--epochs", "1", "--quiet", "--out", "{dir}/out"]


@dataclass(frozen=True)
class BaseModel:
    """A real trained model directory (model.json + weights.npz) the model/fold families mutate."""

    files: dict[str, bytes]


def make_base_model(workdir: Path) -> BaseModel:
    """Train a tiny W1A1 model on the embedded digits (seconds) and keep its files."""
    from lowbit.cli import main

    out = workdir / "base-model"
    if not (out / "model.json").exists():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = main(["train", "--hidden", "8", "--epochs", "1", "--quiet", "--out", str(out)])
        assert rc == 0, "training the base model failed"
    return BaseModel({n: (out / n).read_bytes() for n in ("model.json", "weights.npz")})


# ----------------------------------------------------------------------------- strategies

_huge = st.sampled_from([2**31, 2**32 - 1, 2**63, 10**8, 10**30, -1, -(2**63)])
_bad_floats = st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e999, -1.5, 0.0, 1e300])
_any_floats = st.one_of(_bad_floats, st.floats(1.0, 1e3))


@st.composite
def data_npz(draw) -> Case:
    """MNIST-format .npz files that must be refused."""
    arrs = _mnist_like(draw(st.integers(10, 30)), draw(st.integers(1, 8)), draw(st.integers(0, 2**16)))
    key = draw(st.sampled_from(sorted(arrs)))
    kind = draw(st.sampled_from(["drop_key", "rename_key", "dtype", "shape", "empty", "tiny", "labels",
                                 "npy_renamed", "flip_byte", "truncate", "object", "header_lie", "extra_bytes",
                                 "one_class", "garbage"]))
    compressed = draw(st.booleans())
    what = f"{kind} {key}"
    if kind == "drop_key":
        del arrs[key]
    elif kind == "rename_key":
        arrs[key + draw(st.sampled_from(["_", "s", " ", "X"]))] = arrs.pop(key)
    elif kind == "dtype":
        dt = draw(st.sampled_from(["float32", "float64", "int16", "int64", "bool", "complex64", "<U1"]))
        if key.startswith("y") and dt in ("int16", "int64"):
            dt = "float32"  # integer labels are fine: make it wrong
        arrs[key] = arrs[key].astype(dt)
        what += f" -> {dt}"
    elif kind == "shape":
        a = arrs[key]
        arrs[key] = a.reshape(-1) if a.ndim > 1 else a.reshape(1, -1)[:, :].repeat(2, axis=0)
        if key.startswith("x") and draw(st.booleans()):
            arrs[key] = np.zeros((len(a), draw(st.integers(1, 27)), 28), np.uint8)
    elif kind == "empty":
        x, y = ("x_train", "y_train") if key.endswith("train") else ("x_test", "y_test")
        arrs[x], arrs[y] = arrs[x][:0], arrs[y][:0]
    elif kind == "tiny":  # 1-5 images: an empty validation split
        n = draw(st.integers(1, 5))
        arrs["x_train"], arrs["y_train"] = arrs["x_train"][:n], arrs["y_train"][:n]
    elif kind == "labels":
        y = "y_train" if key.endswith("train") else "y_test"
        arrs[y] = arrs[y].astype(np.int64)
        # any K <= MAX_CLASSES classes are legal: a training label is bad when negative or beyond that, a test
        # label when it is no class of the training set (those are 0..9 here)
        bad = [-1, 2**40, 1000, 5000] if y == "y_train" else [10, 11, 255, -1, 2**40]
        arrs[y][draw(st.integers(0, len(arrs[y]) - 1))] = draw(st.sampled_from(bad))
    elif kind == "one_class":
        arrs["y_train"] = np.zeros_like(arrs["y_train"])
    files: dict[str, bytes]
    if kind == "npy_renamed":
        buf = io.BytesIO()
        np.save(buf, arrs[key])
        files = {"d.npz": buf.getvalue()}
    elif kind == "object":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for k, v in arrs.items():
                b = io.BytesIO()
                np.save(b, np.array([1, "a", None], dtype=object) if k == key else v, allow_pickle=True)
                z.writestr(k + ".npy", b.getvalue())
        files = {"d.npz": buf.getvalue()}
    elif kind == "header_lie":  # a header claiming a gigantic array: refused before reading
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for k, v in arrs.items():
                b = io.BytesIO()
                np.save(b, v)
                raw = b.getvalue()
                if k == key:
                    hdr = {"descr": "|u1", "fortran_order": False, "shape": (draw(_huge.filter(lambda v: v > 0)), 28, 28)}
                    b2 = io.BytesIO()
                    np.lib.format.write_array_header_1_0(b2, hdr)
                    raw = b2.getvalue() + v.tobytes()
                z.writestr(k + ".npy", raw)
        files = {"d.npz": buf.getvalue()}
    elif kind == "garbage":
        files = {"d.npz": draw(st.binary(min_size=0, max_size=200))}
    else:
        raw = _npz(arrs, compressed)
        if kind == "flip_byte":  # inside the members' data, not the zip's slack fields
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                info = z.getinfo(key + ".npy")
            start = _data_offset(raw, info)
            pos = start + draw(st.integers(0, max(0, info.compress_size - 1)))
            flipped = raw[:pos] + bytes([raw[pos] ^ draw(st.integers(1, 255))]) + raw[pos + 1:]
            assume(not _same_members(raw, flipped))
            raw = flipped
            what += f" at {pos}"
        elif kind == "truncate":
            raw = raw[:draw(st.integers(0, len(raw) - 1))]
        elif kind == "extra_bytes":
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                members = {n: z.read(n) for n in z.namelist()}
            members[key + ".npy"] += b"\0" * draw(st.integers(1, 64))
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for n, b in members.items():
                    z.writestr(n, b)
            raw = buf.getvalue()
        files = {"d.npz": raw}
    return Case("data_npz", ["train", "--data", "{dir}/d.npz", *TRAIN[1:]], files, what)


@st.composite
def data_idx(draw) -> Case:
    """Directories of MNIST IDX files that must be refused."""
    arrs = _mnist_like(draw(st.integers(10, 30)), draw(st.integers(1, 8)), draw(st.integers(0, 2**16)))
    key = draw(st.sampled_from(sorted(arrs)))
    kind = draw(st.sampled_from(["overflow_dims", "magic", "truncate", "ndim", "mismatch", "tiny", "gzip_garbage",
                                 "missing", "labels", "shape", "gzip_bomb"]))
    files = {_IDX[k]: _idx(v) for k, v in arrs.items()}
    name = _IDX[key]
    what = f"{kind} {key}"
    if kind == "overflow_dims":  # dimensions whose product overflows 32/64 bits
        dims = draw(st.lists(st.sampled_from([2**32 - 1, 2**31, 65536, 0, 1]), min_size=1, max_size=6))
        files[name] = struct.pack(">HBB", 0, 8, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + b"\0" * 16
        what += f" {dims}"
    elif kind == "magic":
        raw = bytearray(files[name])
        raw[draw(st.integers(0, 2))] ^= draw(st.integers(1, 255))
        files[name] = bytes(raw)
    elif kind == "truncate":
        files[name] = files[name][:draw(st.integers(0, len(files[name]) - 1))]
    elif kind == "ndim":
        raw = bytearray(files[name])
        raw[3] = draw(st.integers(0, 255).filter(lambda v: v != raw[3]))
        files[name] = bytes(raw)
    elif kind == "mismatch":
        y = "y_train" if key.endswith("train") else "y_test"
        files[_IDX[y]] = _idx(arrs[y][:-1])
    elif kind == "tiny":
        n = draw(st.integers(0, 5))
        files[_IDX["x_train"]], files[_IDX["y_train"]] = _idx(arrs["x_train"][:n]), _idx(arrs["y_train"][:n])
    elif kind == "gzip_garbage":
        del files[name]
        files[name + ".gz"] = draw(st.binary(min_size=0, max_size=100))
    elif kind == "gzip_bomb":  # a small .gz inflating far beyond an MNIST file
        del files[name]
        files[name + ".gz"] = _gzip_bomb()
    elif kind == "missing":
        del files[name]
    elif kind == "labels":  # a test label that is no class of the training set (uint8 training labels are all legal)
        a = arrs["y_test"].copy()
        a[0] = draw(st.integers(10, 255))
        files[_IDX["y_test"]] = _idx(a)
    elif kind == "shape":
        x = "x_train" if key.endswith("train") else "x_test"
        files[_IDX[x]] = _idx(np.zeros((len(arrs[x]), draw(st.integers(1, 27)), 28), np.uint8))
    return Case("data_idx", ["train", "--data", "{dir}/mnist", *TRAIN[1:]],
                {f"mnist/{k}": v for k, v in files.items()}, what)


@functools.cache
def _gzip_bomb() -> bytes:
    """200 MB of zeros behind a valid IDX header, gzip-compressed to about 200 KB (made once)."""
    return gzip.compress(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", 1) + bytes(200_000_000), 1)

_VALID_SWEEP = {"sweep": {"dataset": "digits", "seeds": [0], "epochs": 1, "sim_images": 4, "pnr": False},
                "axes": {"method": ["bnn"], "network": ["8"], "fold": ["auto"], "target": ["ice40"]}}


def _toml(doc: dict) -> str:
    """A tiny TOML writer for the documents built here (tables of scalars and lists)."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return {float("inf"): "inf", -float("inf"): "-inf"}.get(v, "nan" if v != v else repr(v))
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {val(x)}" for k, x in v.items()) + "}"
        return str(v)
    out = []
    for sec, body in doc.items():
        if isinstance(body, list):
            for t in body:
                out.append(f"[[{sec}]]")
                out += [f"{json.dumps(k)} = {val(v)}" for k, v in t.items()]
        else:
            out.append(f"[{sec}]")
            out += [f"{json.dumps(k)} = {val(v)}" for k, v in body.items()]
    return "\n".join(out) + "\n"


_SWEEP_BAD = {  # key -> values that must be refused
    ("sweep", "epochs"): [0, -1, 10**8, 2**63 - 1, 1.0, 2.5, "3", True, [1]],
    ("sweep", "seeds"): [[-1], [2**40], list(range(2000)), ["a"], [1.0], []],
    ("sweep", "sim_images"): [0, 10**9, 1.5, "4"],
    ("sweep", "activity_images"): [-1, 10**9, 2.0],
    ("sweep", "pnr"): [1, "yes", 0.0],
    ("sweep", "popcount"): ["xilinx", "", 3],
    ("sweep", "synthesize"): ["some", 1],
    ("sweep", "prescreen_margin"): [1.5, -0.1, float("nan"), float("inf"), "0.2"],
    ("sweep", "dataset"): ["", "absent.npz", 3, "digits/../nope", "/dev/null"],
    ("sweep", "out"): ["../escape", "/tmp/abs-out", "a/../../b", "", 5],
    ("sweep", "bogus"): [1],
    ("axes", "method"): [["foo"], [1], [], [["bnn"]]],
    ("axes", "weight_bits"): [[0], [17], [1.0], ["1"], [2**70]],
    ("axes", "act_bits"): [[0], [99], [0.5]],
    ("axes", "network"): [["100000000"], [[10**8]], ["8,x"], ["0"], ["8.5"], [[8.0]], ["," * 50], ["8," * 200],
                          ["9" * 5000]],
    ("axes", "fold"): [["pe=100000"], ["fps=1e999"], ["fps=nan"], ["fc0:pe=2;fc0:pe=4"], ["pe=2,pe=4"], [""],
                       ["x" * 100_000], ["fps=1,clock_mhz=1e999"], ["fps=-1"], [3]],
    ("axes", "target"): [["vivado"], [3], [[]]],
    ("axes", "bogus"): [1],
    ("parallel", "jobs"): [-1, 10**6, 2.0, "4"],
    ("parallel", "dask"): ["tcp://10.0.0.1:8786", "tls://evil:1", "", 3, "LOCAL"],
}


@st.composite
def sweep_toml(draw) -> Case:
    """Sweep configurations that must be refused (one hostile field in an otherwise valid file, or
    a broken file as a whole)."""
    doc = json.loads(json.dumps(_VALID_SWEEP))
    kind = draw(st.sampled_from(["field", "field", "field", "utf16", "syntax", "deep", "bigint", "grid_size",
                                 "unknown_table", "grid_tables", "binary"]))
    what = kind
    if kind == "field":
        (sec, key), = [draw(st.sampled_from(sorted(_SWEEP_BAD)))]
        v = draw(st.sampled_from(_SWEEP_BAD[(sec, key)]))
        doc.setdefault(sec, {})[key] = v
        what = f"{sec}.{key} = {str(v)[:40]}"
        text = _toml(doc).encode()
    elif kind == "utf16":
        text = _toml(doc).encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32"])))
    elif kind == "syntax":
        t = _toml(doc)
        pos = draw(st.integers(0, len(t) - 1))
        text = (t[:pos] + draw(st.sampled_from(["[", "=", "\"", "]]", "\n[[", "\x00"])) + t[pos:]).encode()
    elif kind == "deep":
        depth = draw(st.integers(100, 5000))
        text = (_toml(doc) + "[extra]\nx = " + "[" * depth + "]" * depth + "\n").encode()
    elif kind == "bigint":
        text = _toml(doc).replace('"epochs" = 1', '"epochs" = ' + "9" * draw(st.integers(20, 6000))).encode()
        assert text != _toml(doc).encode()
    elif kind == "grid_size":  # far beyond MAX_POINTS: refused before the product is expanded
        doc["sweep"]["seeds"] = list(range(draw(st.integers(501, 1000))))  # x 20 > MAX_POINTS
        doc["axes"]["fold"] = ["auto", "pe=1", "pe=2", "simd=2", "simd=4"]
        doc["axes"]["target"] = ["ice40", "xilinx", "ecp5", "generic"]
        text = _toml(doc).encode()
    elif kind == "unknown_table":
        doc[draw(st.sampled_from(["Sweep", "run", "paralel"]))] = {"x": 1}
        text = _toml(doc).encode()
    elif kind == "grid_tables":
        doc["grid"] = [{"method": draw(st.sampled_from([["foo"], "bnn", 3])), "bogus": 1}]
        text = _toml(doc).encode()
    else:
        text = draw(st.binary(min_size=1, max_size=200)) + b"\xff\xfe"
    return Case("sweep_toml", ["sweep", "{dir}/s.toml", "--quiet"], {"s.toml": text}, what)


_FOLD_BAD = st.one_of(
    st.sampled_from(["fps=1e999", "fps=1,clock_mhz=1e999", "fps=nan", "fps=inf", "fps=0", "fps=-5", "fps=1e-400",
                     "clock_mhz=100", "fps=1,clock_mhz=0", "fps=1,clock_mhz=nan", "pe=-1", "pe=0", "simd=0",
                     "pe=2,pe=4", "fc0:pe=2;fc0:pe=4", "fc0:pe=1;fc0:simd=1", "nope:pe=1", "fc0:", "pe=",
                     "pe=1.5", "pe=1e3", "pe=" + "9" * 5000, "fc0:pe=100000", "pe=100000", "simd=100000", ":", ";;;x",
                     "pe=1,,",
                     "fps=1e308", "fps=1e300,clock_mhz=1e300"]),
    st.integers(1, 100_000).map(lambda n: "pe=1," * n + "bad"),
    st.integers(2, 20_000).map(lambda n: "fc0:pe=1;" * n),  # the same layer twice or more
    st.text(min_size=1, max_size=100_000).filter(lambda s: s.strip() not in ("", "auto") and "=" not in s),
    st.builds(lambda a, b, swap: f"fps={a},clock_mhz={b}" if not swap else f"fps={b},clock_mhz={a}",
              _bad_floats, _any_floats, st.booleans()).filter(lambda s: "1e+300,clock_mhz=1e+300" not in s),
)


@st.composite
def fold(draw, cmd: str = "verilog") -> Case:
    """``--fold`` strings that must be refused (``lowbit verilog``; ``sim`` checks before building)."""
    spec = draw(_FOLD_BAD)
    return Case("fold", [cmd, "{dir}/m", "--fold", spec, "--out", "{dir}/hw"], {}, f"--fold {spec[:60]!r}")


_OPTION_BAD = [
    (["train"], "--epochs", ["0", "-3", "100000000", str(2**70)]),
    (["train"], "--seed", ["-1", str(2**40), str(2**70)]),
    (["train"], "--batch-size", ["0", "1", "-5", str(10**9)]),
    (["train"], "--lr", ["nan", "inf", "-1", "0", "1e999", "1e5"]),
    (["train"], "--dropout", ["nan", "1", "-0.1", "inf"]),
    (["train"], "--patience", ["-1", str(10**9)]),
    (["train"], "--hidden", ["100000000", "0", "1e8", "8,,x", "-4", "9" * 5000, "8," * 100 + "0", ""]),
    (["train"], "--arch", ["f100000000", "c16k99", "x" * 100_000, "f8,c8k3", "p2", ""]),
    (["train"], "--wbits", ["0", "99", str(2**40)]),
    (["train"], "--opt", ["nonsense", "=1", "x=1"]),
    (["sweep", "{dir}/s.toml"], "--jobs", ["-1", str(10**7)]),
    (["sim", "{dir}/m"], "--images", ["-1", "-99999"]),
    (["sim", "{dir}/m"], "--stall", ["-1", "100", "1000"]),
    (["report", "{dir}/m"], "--activity-images", ["-1", str(10**9)]),
    (["report", "{dir}/m"], "--targets", ["vivado", "", "ice40,vivado" * 1000]),
    (["sim", "{dir}/m"], "--simulator", ["modelsim"]),
    (["verilog", "{dir}/m"], "--clock-mhz", ["nan", "inf", "-1", "0", "1e999", "1e6", "fast", "", "auto,none"]),
    (["report", "{dir}/m"], "--clock-mhz", ["nan", "-80", "x" * 10_000]),
    (["verilog", "{dir}/m"], "--mem-style", ["huge", "", "AUTO ", "MemStyle.AUTO"]),
    (["verilog", "{dir}/m"], "--popcount", ["fast", "", "PopcountStyle.TREE"]),
    (["verilog", "{dir}/m"], "--family", ["vivado", ""]),
    (["verilog", "{dir}/m"], "--out", ["/proc/lowbit-nope/hw", "{dir}/m/model.json/hw", "/dev/null/hw"]),
    (["train"], "--out", ["/proc/lowbit-nope", "/dev/null/m"]),
    (["bitstream", "{dir}/m"], "--board", ["nope", "", "icebreaker,ulx3s-85f"]),
    (["fit", "{dir}/m"], "--board", ["nope", "ICEBREAKER"]),
]


def _outside(lo: int, hi: int) -> st.SearchStrategy:
    """Integers outside ``lo..hi`` (as option strings), up to 2^70 in magnitude."""
    return st.one_of(st.integers(-2**70, lo - 1), st.integers(hi + 1, 2**70)).map(str)


def _floats_outside(lo: float, hi: float, lo_open: bool = True) -> st.SearchStrategy:
    return st.one_of(st.floats(max_value=lo, exclude_max=not lo_open), st.floats(min_value=hi, exclude_min=True),
                     st.sampled_from([float("nan"), float("inf"), -float("inf")])).map(repr)


#: (command prefix, option, strategy of refused values); drawn values are passed as --opt=value.
_OPTION_DRAWN = [
    (["train"], "--epochs", _outside(1, 10_000)),
    (["train"], "--seed", _outside(0, 2**32 - 1)),
    (["train"], "--batch-size", _outside(2, 1 << 16)),
    (["train"], "--patience", _outside(0, 10_000)),
    (["train"], "--lr", _floats_outside(0.0, 100.0)),
    (["train"], "--dropout", _floats_outside(0.0, 1.0, lo_open=False).filter(lambda v: v not in ("0.0", "-0.0"))),
    (["train"], "--hidden", st.one_of(st.integers(65537, 10**12).map(str), st.integers(-2**40, 0).map(str),
                                      st.lists(st.integers(65537, 2**40), min_size=1, max_size=5).map(
                                          lambda v: ",".join(map(str, v))))),
    (["train"], "--wbits", _outside(1, 16)),
    (["sweep", "{dir}/s.toml"], "--jobs", _outside(0, 1024)),
    (["sim", "{dir}/m"], "--images", st.integers(-2**70, -1).map(str)),
    (["sim", "{dir}/m"], "--stall", _outside(0, 99)),
    (["report", "{dir}/m"], "--activity-images", _outside(0, 256)),
]


@st.composite
def cli_options(draw) -> Case:
    """Numeric and structured options out of range (bounds, inf/nan, huge widths, long strings)."""
    if draw(st.booleans()):
        pre, opt, values = draw(st.sampled_from(_OPTION_BAD))
        v = draw(st.sampled_from(values))
    else:
        pre, opt, strat = draw(st.sampled_from(_OPTION_DRAWN))
        v = draw(strat)
    tail = []
    if pre == ["train"]:  # one epoch and a scratch --out unless the drawn option is one of those
        tail = ["--epochs", "1", "--quiet", "--out", "{dir}/out"]
        tail = tail[2:] if opt == "--epochs" else tail[:3] if opt == "--out" else tail
    files = {"s.toml": _toml(_VALID_SWEEP).encode()} if pre[0] == "sweep" else {}
    return Case("cli_options", [*pre, f"{opt}={v}", *tail], files, f"{pre[0]} {opt} {v[:40]}")


def _mutate_json(doc: dict, draw) -> str:
    """One hostile change to a model.json document (in place); returns what changed."""
    layer = draw(st.integers(0, len(doc["layers"]) - 1))
    L = doc["layers"][layer]
    # keys whose deletion must be refused (others are optional, with defaults that keep the model)
    required = {"layer": ("name", "kind", "in_features", "out_features", "input_bits", "weight_bits", "output"),
                "output": ("type", "bits"), "input": ("features", "bits", "quantizer"),
                "top": ("format", "schema_version", "layers", "input", "arrays"), "arrays": ()}
    target = draw(st.sampled_from(["layer", "output", "input", "top", "arrays"]))
    # refused for every field drawn below: no integer in 0..2^24 (a threshold of 0..256 or a shift of
    # 0..62 would be a different but valid model), no valid name or kind
    bad = draw(st.one_of(st.sampled_from([None, "", "1", [], {}, [1], 1.5, 8.5, True, -1, 2**63, -(2**63),
                                          2**200, "fc 0", "x" * 1000]),
                         st.integers(-2**70, -1), st.integers(2**25, 2**70),
                         st.text(max_size=20).map(lambda t: "~" + t)))
    if target == "layer":
        k = draw(st.sampled_from(["name", "kind", "op", "in_features", "out_features", "input_bits", "weight_bits",
                                  "output"]))
    elif target == "output":
        L = doc["layers"][0]["output"]  # a hidden layer's: every field of it is used
        k = draw(st.sampled_from(["type", "bits", "shift"]))
    elif target == "input":
        L = doc["input"]
        k = draw(st.sampled_from(["features", "bits", "quantizer", "threshold", "source_shape"]))
    elif target == "arrays":
        L = doc["arrays"]
        k = draw(st.sampled_from(sorted(L)))
        bad = draw(st.sampled_from(["0" * 64, "", None, 3]))
    else:
        L = doc
        k = draw(st.sampled_from(["format", "schema_version", "layers", "input", "meta", "arrays"]))
    if draw(st.integers(0, 9)) == 0 and k in required[target] and k in L:
        del L[k]
        return f"del {target}.{k}"
    if k in L and L[k] == bad:
        bad = [bad]
    if k == "source_shape" and bad == []:  # the optional field's default: a valid document
        bad = [0]
    L[k] = bad
    return f"{target}.{k} = {str(bad)[:40]}"


def model_dir() -> st.SearchStrategy:
    """A real model directory with one hostile change to model.json or weights.npz (``lowbit verilog``).

    Changes that keep the directory valid are possible in principle (a mutation to an equal value is
    avoided, but e.g. meta may take any object): such a case is reported as accepted_invalid and
    inspected by hand; the oracle test covers accepted mutations."""
    return st.builds(lambda: Case("model_dir", ["verilog", "{dir}/m", "--out", "{dir}/hw"], {}, ""))


def mutate_model(case: Case, base: BaseModel, draw) -> Case:
    """Fill a model_dir case with the base model's files, one of them mutated."""
    doc = json.loads(base.files["model.json"])
    wz = base.files["weights.npz"]
    kind = draw(st.sampled_from(["json", "json", "json", "weights_flip", "weights_truncate", "weights_swap",
                                 "npy_renamed", "json_syntax", "json_deep", "weights_dtype"]))
    what = kind
    files = dict(base.files)
    if kind == "json":
        what = _mutate_json(doc, draw)
        files["model.json"] = json.dumps(doc).encode()
        if doc.get("meta") is not None and what.startswith("top.meta") and isinstance(doc["meta"], dict):
            files["model.json"] = b"{"  # a dict meta is valid: make the case invalid anyway
    elif kind == "weights_flip":
        with zipfile.ZipFile(io.BytesIO(wz)) as z:
            info = draw(st.sampled_from(z.infolist()))
        start = _data_offset(wz, info)
        pos = start + draw(st.integers(0, max(0, info.compress_size - 1)))
        files["weights.npz"] = wz[:pos] + bytes([wz[pos] ^ draw(st.integers(1, 255))]) + wz[pos + 1:]
        assume(not _same_members(wz, files["weights.npz"]))
        what = f"weights flip {info.filename} @{pos - start}"
    elif kind == "weights_truncate":
        files["weights.npz"] = wz[:draw(st.integers(0, len(wz) - 1))]
    elif kind == "weights_swap":
        with np.load(io.BytesIO(wz)) as z:
            arrs = {k: z[k] for k in z.files}
        k = draw(st.sampled_from(sorted(arrs)))
        arrs[k] = arrs[k] + draw(st.sampled_from([1, -1, 2**40]))  # content changed: manifest mismatch
        files["weights.npz"] = _npz(arrs)
        what = f"weights {k} changed"
    elif kind == "weights_dtype":
        with np.load(io.BytesIO(wz)) as z:
            arrs = {k: z[k] for k in z.files}
        k = draw(st.sampled_from(sorted(arrs)))
        arrs[k] = arrs[k].astype(draw(st.sampled_from(["float32", "float64", "bool"])))
        files["weights.npz"] = _npz(arrs)
        what = f"weights {k} dtype"
    elif kind == "npy_renamed":
        buf = io.BytesIO()
        np.save(buf, np.zeros(3, np.int8))
        files["weights.npz"] = buf.getvalue()
    elif kind == "json_syntax":
        t = base.files["model.json"].rstrip()
        pos = draw(st.integers(0, len(t) - 1))  # truncated anywhere, or a byte that is never UTF-8
        files["model.json"] = t[:pos] if draw(st.booleans()) else t[:pos] + b"\xff" + t[pos:]
    else:
        d = draw(st.integers(1000, 200_000))
        files["model.json"] = b"[" * d + b"]" * d
    case.files = {f"m/{k}": v for k, v in files.items()}
    case.what = what
    return case


@st.composite
def qonnx_import(draw) -> Case:
    """QONNX files that must be refused: garbage, truncated or byte-flipped copies of a zoo model."""
    src = (REPO / "tests" / "data" / "qonnx" / "TFC_1W1A.onnx").read_bytes()
    kind = draw(st.sampled_from(["garbage", "truncate", "empty", "text"]))
    if kind == "garbage":
        data = draw(st.binary(min_size=1, max_size=300))
    elif kind == "truncate":
        data = src[:draw(st.integers(1, 2000))]
    elif kind == "empty":
        data = b""
    else:
        data = draw(st.text(max_size=200)).encode()
    return Case("qonnx_import", ["import", "{dir}/x.onnx", "--out", "{dir}/m", "--check", "0"],
                {"x.onnx": data}, kind)


STRATEGIES: dict[str, Callable[[], st.SearchStrategy]] = {
    "data_npz": data_npz, "data_idx": data_idx, "sweep_toml": sweep_toml, "fold": fold,
    "cli_options": cli_options, "model_dir": model_dir, "qonnx_import": qonnx_import,
}
#: Families whose command needs the base model directory at {dir}/m.
NEEDS_MODEL = {"fold", "cli_options"}


# ----------------------------------------------------------------------------- running


@dataclass
class Tally:
    """Counts per family and outcome, and a few examples of every non-clean outcome."""

    counts: dict[str, Counter] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, case: Case, o: Outcome) -> None:
        self.counts.setdefault(case.family, Counter())[o.kind] += 1
        self.seconds[case.family] = self.seconds.get(case.family, 0.0) + o.seconds
        if o.kind != "clean" and sum(e["family"] == case.family and e["outcome"] == o.kind
                                     for e in self.examples) < 10:
            self.examples.append({"family": case.family, "outcome": o.kind, "what": case.what[:200],
                                  "argv": [a[:80] for a in case.argv], "detail": o.detail[:400]})

    def totals(self) -> Counter:
        t: Counter = Counter()
        for c in self.counts.values():
            t.update(c)
        return t


def fuzz_family(family: str, n: int, base: BaseModel, tally: Tally, seed: int = 0, timeout: float = 30.0) -> None:
    """Run ``n`` hypothesis-generated cases of ``family`` through the CLI and tally the outcomes."""
    strat = STRATEGIES[family]()

    @hyp_seed(seed)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strat, data=st.data())
    def run(case: Case, data) -> None:
        if family == "model_dir":
            case = mutate_model(case, base, data.draw)
        elif family in NEEDS_MODEL:
            case.files = {**case.files, **{f"m/{k}": v for k, v in base.files.items()}}
        tally.add(case, run_case(case, timeout))

    run()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=5000, help="total generated cases, split over the families")
    ap.add_argument("--seed", type=int, default=0, help="hypothesis seed")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before a case counts as a hang")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "fuzz_inputs.json")
    args = ap.parse_args()

    from quantmodels.atomic import atomic_write_json
    from sim.provenance import provenance

    prov = provenance("hypothesis", seed=args.seed)  # before the run: what the figures were measured with
    t0 = time.perf_counter()
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="lowbit-fuzz-base-") as d:
        base = make_base_model(Path(d))
        per = -(-args.cases // len(FAMILIES))
        for fam in FAMILIES:
            t1 = time.perf_counter()
            fuzz_family(fam, per, base, tally, args.seed, args.timeout)
            print(f"{fam}: {dict(tally.counts.get(fam, {}))} in {time.perf_counter() - t1:.0f} s", flush=True)
    tot = tally.totals()
    doc = {"benchmark": "fuzz_inputs", **prov, "timeout_s": args.timeout,
           "cases": sum(tot.values()), "outcomes": {k: tot.get(k, 0) for k in OUTCOMES},
           "per_family": {f: {"cases": sum(c.values()), **{k: c.get(k, 0) for k in OUTCOMES},
                              "seconds": round(tally.seconds.get(f, 0.0), 1)} for f, c in tally.counts.items()},
           "examples": tally.examples, "seconds": round(time.perf_counter() - t0, 1),
           "definition": {"clean": "exit 2 with one 'lowbit: error:' line <= 300 chars (or argparse usage error)",
                          "unclean": "exit status other than 0/2, or a message of several/long lines",
                          "traceback": "an exception escaped lowbit.cli.main",
                          "hang": "the case ran past the timeout",
                          "accepted_invalid": "exit 0 on an input built to be invalid"}}
    atomic_write_json(args.out, doc)
    print(json.dumps(doc["outcomes"]), f"-> {args.out}")
    bad = sum(tot.get(k, 0) for k in OUTCOMES if k != "clean")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
