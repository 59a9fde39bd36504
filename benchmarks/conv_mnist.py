"""Benchmark: the MNIST-size W1A1 CNN (random weights) as hardware, under Verilator on real MNIST.

28x28x1 -> conv 16 3x3 + max-pool 2 -> conv 32 3x3 + max-pool 2 -> dense 10 (tests/conftest.py
``mnist_cnn_model``), automatic folding. Prints side by side: the generator's cycles/image and
first-result latency vs what Verilator measures, Verilog generation, Verilator build and
simulation wall time, and bit-exactness of every class and logit vs the golden model.
Writes benchmarks/results/conv_mnist_cnn.json.

    python benchmarks/conv_mnist.py [--images N] [--fold SPEC] [--data PATH]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--fold", default=None)
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/mnist.npz"))
    args = ap.parse_args()
    from sim.provenance import provenance

    prov = provenance(seed=0)  # before the run: the code the figures were measured with

    sys.path.insert(0, str(REPO / "tests"))  # the model definition lives with the tests (one place)
    from conftest import mnist_cnn_model

    from lowbit.flow import make_hardware, simulate
    from quantmodels.atomic import atomic_write_json
    from quantmodels.datasets import load_dataset

    model = mnist_cnn_model()
    data = load_dataset(args.data)
    n = min(args.images, len(data.x_test))
    t0 = time.perf_counter()
    hwd = make_hardware(model, args.fold, Path("/tmp") / "lowbit-bench-mnist-cnn")
    gen_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    r = simulate(model, hwd, data.x_test[:n], data.y_test[:n])
    wall = time.perf_counter() - t1
    doc = {"provenance": prov, "model": "mnist_cnn_model() (random W1A1 weights, seed 0)", "images": n, "mismatches": r.mismatches,
           "bit_exact": r.bit_exact, "folding": hwd.design.foldings, "layer_cycles": hwd.design.layer_cycles,
           "estimated_cycles_per_image": hwd.cycles_per_image,
           "measured_steady_cycles_per_image": r.steady_cycles_per_image,
           "estimated_latency_cycles": hwd.latency_cycles, "measured_first_latency": r.first_latency,
           "verilog_generation_s": round(gen_s, 2), "verilog_bytes": hwd.verilog.stat().st_size,
           "build_s": round(r.build_seconds, 2), "build_cached": r.build_cached, "sim_s": round(r.sim_seconds, 2),
           "sim_cycles_per_s": round(r.cycles / r.sim_seconds), "wall_s_including_build": round(wall, 2)}
    out = REPO / "benchmarks/results/conv_mnist_cnn.json"
    atomic_write_json(out, doc)
    print(f"{'':>22} {'estimate':>10} {'measured':>10}")
    print(f"{'cycles/image':>22} {hwd.cycles_per_image:>10} {r.steady_cycles_per_image:>10.1f}")
    print(f"{'first latency':>22} {hwd.latency_cycles:>10} {r.first_latency:>10}")
    for k in ("images", "mismatches", "bit_exact", "folding", "verilog_generation_s", "build_s", "sim_s",
              "sim_cycles_per_s", "wall_s_including_build"):
        print(f"{k:>22}: {doc[k]}")
    print(f"written {out}")
    return 0 if r.bit_exact else 1


if __name__ == "__main__":
    sys.exit(main())
