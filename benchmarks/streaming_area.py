"""Benchmark: Yosys LUT/FF of streaming layers (issue 18 item 3) against the whole-vector hand-over.

Generates the same designs from this checkout and from a baseline revision (``git archive`` into
a temporary directory, so no work tree is touched) and synthesizes both with reports.synth:

- the demo digits W1A1 net (8x8 digits, hidden 64-64-64, trained 20 epochs, seed 0), automatic folding;
- a small random W1A1 CNN (16x16x2 -> conv 4 3x3 + pool 2 -> conv 6 3x3 -> dense 3; tests/conftest.py);
- with ``--big``: the issue's CNN shape c32k3p1,c32k3p1,p2,c64k3p1,c64k3p1,p2 on 28x28x1 with random
  weights (then dense 10; the f128 hidden layer is left out), this checkout only, synth_ecp5.

Writes benchmarks/results/streaming_area.json (provenance from sim/provenance.py).

    python benchmarks/streaming_area.py [--baseline REV] [--targets ice40,xilinx] [--big]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Generates one design's Verilog from a model directory, in whichever source tree it runs in.
GENERATE = ("import sys\n"
            "from amaranth.back import verilog\n"
            "from hw.folding import parse_folding\n"
            "from hw.network import NetworkTop\n"
            "from quantmodels.ir import load_model\n"
            "m = load_model(sys.argv[1])\n"
            "top = NetworkTop(m, parse_folding(m, sys.argv[3] if len(sys.argv) > 3 else None))\n"
            "open(sys.argv[2], 'w').write(verilog.convert(top, name='lowbit_net', emit_src=False))\n")
#: ECP5-85k LUT4 count the big CNN must stay below.
ECP5_85K_LUTS = 84_000


def models(work: Path, big: bool) -> dict[str, Path]:
    """Save every design's IR under ``work``; returns name -> model directory."""
    sys.path.insert(0, str(REPO / "tests"))  # the CNN builders live with the tests (one place)
    from conftest import random_conv_model
    from quantmodels.datasets import load_digits
    from quantmodels.ir import save_model
    from quantmodels.train import TrainConfig, train

    out = {}
    demo = train(TrainConfig(method="bnn", hidden=(64, 64, 64), epochs=20, progress=False, seed=0),
                 load_digits()).model
    out["demo_digits_w1a1"] = save_model(demo, work / "demo")
    small = random_conv_model("xnor_popcount", in_shape=(16, 16, 2), channels=(4, 6), stride=1, padding=[1, 0],
                              pool=[(2, 2), (1, 1)], seed=3)
    out["small_cnn_w1a1"] = save_model(small, work / "small_cnn")
    if big:
        cnn = random_conv_model("xnor_popcount", in_shape=(28, 28, 1), channels=(32, 32, 64, 64), kernel=3,
                                stride=1, padding=1, pool=[(1, 1), (2, 2), (1, 1), (2, 2)], n_classes=10, seed=0)
        out["cnn_c32c32p2c64c64p2"] = save_model(cnn, work / "big_cnn")
    return out


def baseline_tree(rev: str, work: Path) -> Path:
    """The source tree of ``rev``, unpacked under ``work`` (git archive: no worktree touched)."""
    tar = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True).stdout
    dest = work / "baseline"
    dest.mkdir()
    with tarfile.open(fileobj=BytesIO(tar)) as t:
        t.extractall(dest, filter="data")
    return dest


def generate(tree: Path, model_dir: Path, out: Path) -> Path:
    """Verilog of ``model_dir`` as the generator in ``tree`` builds it."""
    subprocess.run([sys.executable, "-c", GENERATE, str(model_dir), str(out)], cwd=tree, check=True,
                   env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, timeout=1800)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", default="main", help="revision with the whole-vector hand-over")
    ap.add_argument("--targets", default="ice40,xilinx")
    ap.add_argument("--big", action="store_true", help="also synthesize the 4-conv CNN for ecp5")
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/streaming_area.json"))
    args = ap.parse_args()
    from quantmodels.atomic import atomic_write_json
    from reports.synth import synthesize
    from sim.provenance import provenance

    prov = provenance(seed=0)
    base_commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.baseline], capture_output=True,
                                 text=True, check=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lowbit-stream-area-") as tmp:
        work = Path(tmp)
        designs = models(work, args.big)
        trees = {"streaming": REPO, "baseline": baseline_tree(args.baseline, work)}
        for name, mdir in designs.items():
            big = name.startswith("cnn_")
            for version, tree in trees.items():
                if big and version == "baseline":
                    continue  # the whole-image registers of the baseline are far beyond any part
                v = generate(tree, mdir, work / f"{name}_{version}.v")
                for target in (["ecp5"] if big else args.targets.split(",")):
                    t0 = time.perf_counter()
                    r = synthesize(v, "lowbit_net", target)
                    row = {"design": name, "hardware": version, "target": target, "luts": r.luts, "ffs": r.ffs,
                           "brams": r.brams, "lutrams": r.lutrams, "carries": r.carries,
                           "synth_seconds": round(time.perf_counter() - t0, 1)}
                    if big:
                        row["fits_ecp5_85k_luts"] = r.luts < ECP5_85K_LUTS
                    rows.append(row)
                    # written after every synthesis (atomically): a long --big run keeps what it measured
                    atomic_write_json(Path(args.out), {"benchmark": "streaming_area", "baseline_revision": base_commit,
                                                       "complete": False, "provenance": prov, "results": rows})
                    print(f"{name:>22} {version:>9} {target:>6}: {r.luts:>7} LUT {r.ffs:>7} FF "
                          f"{r.brams:>5} BRAM {r.lutrams:>5} LUTRAM", flush=True)
    atomic_write_json(Path(args.out), {"benchmark": "streaming_area", "baseline_revision": base_commit,
                                       "complete": True, "provenance": prov, "results": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
