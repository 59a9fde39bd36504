"""Benchmark: every training method on MNIST (SFC 784-256x3-10 by default, or --arch), NumPy.

For each method: float (eval-mode quantized) and golden integer test accuracy, their agreement
(must be 1.0 for QuantNet methods), IR kind, bits, epochs, seconds and seed, side by side;
results in benchmarks/results/mnist_methods.json (or --out).

    python benchmarks/train_methods_mnist.py [MNIST.npz] [--epochs 5] [--arch sfc] [--methods bnn,xnor]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: name -> TrainConfig overrides (method variants shown as separate rows)
RUNS = {
    "bnn": {"method": "bnn"},
    "binaryconnect": {"method": "binaryconnect"},
    "xnor": {"method": "xnor"},
    "bwn": {"method": "xnor", "options": {"variant": "bwn"}},
    "ternary": {"method": "ternary"},
    "pow2": {"method": "pow2"},
    "int8": {"method": "int8"},
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=str(REPO.parent / "shared/data/mnist.npz"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--arch", default="sfc")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/mnist_methods.json")
    args = ap.parse_args()
    from sim.provenance import provenance

    prov = provenance(seed=args.seed)  # before the run: the code the figures were measured with


    from quantmodels.atomic import atomic_write_json
    from quantmodels.datasets import load_mnist_npz
    from quantmodels.train import TrainConfig, train

    data = load_mnist_npz(args.data)
    rows = []
    print(f"{'run':>14} {'kind':>14} {'W/A':>5} {'float':>7} {'golden':>7} {'agree':>7} {'sec':>7}")
    for name in args.runs.split(","):
        cfg = TrainConfig(arch=args.arch, epochs=args.epochs, seed=args.seed, progress=False, **RUNS[name])
        res = train(cfg, data, name=f"{args.arch}-{name}")
        row = {"run": name, "kind": res.model.layers[0].kind, "weight_bits": cfg.weight_bits,
               "act_bits": cfg.act_bits, "float_test_accuracy": res.float_test_accuracy,
               "golden_test_accuracy": res.golden_test_accuracy, "agreement": res.agreement,
               "epochs": cfg.epochs, "best_epoch": res.model.meta["best_epoch"], "seconds": round(res.seconds, 1),
               "options": cfg.options, **{k: v for k, v in res.model.meta.items() if k == "sparsity"}}
        rows.append(row)
        print(f"{name:>14} {row['kind']:>14} {cfg.weight_bits}/{cfg.act_bits:<3} {100 * res.float_test_accuracy:6.2f}% "
              f"{100 * res.golden_test_accuracy:6.2f}% {100 * res.agreement:6.2f}% {res.seconds:7.1f}", flush=True)
    doc = {"provenance": prov, "benchmark": f"MNIST {args.arch}, every method, NumPy training", "arch": args.arch, "seed": args.seed,
           "epochs": args.epochs, "rows": rows}
    atomic_write_json(args.out, doc)
    print(f"results written to {args.out}")
    return 0 if all(r["agreement"] == 1.0 for r in rows if r["run"] != "int8") else 1


if __name__ == "__main__":
    sys.exit(main())
