"""Benchmark: whole-network RTL regression of an IR model on MNIST test images under Verilator.

Prints build time, simulation wall time, cycles/image and mismatches, and writes
benchmarks/results/sim_<model>.json. Usage:
    python benchmarks/sim_regression.py [MODEL_DIR] [--images N] [--fold SPEC] [--data PATH]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", type=Path, default=REPO / "benchmarks/results/mnist_sfc_bnn")
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--fold", default=None)
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/mnist.npz"))
    ap.add_argument("--naive-images", type=int, default=500,
                    help="images for the one-await-per-cycle reference testbench (0 = skip)")
    args = ap.parse_args()
    from sim.provenance import provenance

    prov = provenance(seed=None)  # before the run: the code the figures were measured with

    from lowbit.flow import make_hardware, simulate
    from sim.regression import build_simulator, run_naive
    from quantmodels.atomic import atomic_write_json
    from quantmodels.datasets import load_dataset
    from quantmodels.ir import load_model

    model = load_model(args.model)
    data = load_dataset(args.data)
    n = min(args.images, len(data.x_test))
    t0 = time.perf_counter()
    hwd = make_hardware(model, args.fold, Path("/tmp") / f"lowbit-bench-{model.name}")
    gen_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    r = simulate(model, hwd, data.x_test[:n], data.y_test[:n])
    wall = time.perf_counter() - t1
    doc = {"provenance": prov, "model": str(args.model), "images": n, "mismatches": r.mismatches, "bit_exact": r.bit_exact,
           "verilog_generation_s": round(gen_s, 2), "build_s": round(r.build_seconds, 2),
           "build_cached": r.build_cached, "sim_s": round(r.sim_seconds, 2),
           "wall_s_including_build": round(wall, 2), "cycles_per_image": r.cycles_per_image,
           "rtl_accuracy": r.accuracy, "folding": [str(f) for f in hwd.design.foldings]
           if hasattr(hwd.design, "foldings") else None, "tool_versions": r.tool_versions}
    if args.naive_images:
        k = min(args.naive_images, n)
        nb = build_simulator(hwd.verilog, hwd.ports, naive=True)
        bad, naive_s, naive_cycles = run_naive(nb, model, data.x_test[:k])
        per_bulk = r.sim_seconds / n
        per_naive = naive_s / k
        doc.update({"naive_images": k, "naive_mismatches": bad, "naive_sim_s": round(naive_s, 2),
                    "naive_s_per_image": per_naive, "bulk_s_per_image": per_bulk,
                    "speedup_bulk_vs_naive_per_image": round(per_naive / per_bulk, 1),
                    "naive_estimated_s_for_all_images": round(per_naive * n, 1)})
    out = REPO / "benchmarks/results" / f"sim_{model.name}.json"
    atomic_write_json(out, doc)
    for k, v in doc.items():
        if k != "tool_versions":
            print(f"{k:>28}: {v}")
    print(f"written {out}")
    return 0 if r.bit_exact else 1


if __name__ == "__main__":
    sys.exit(main())
