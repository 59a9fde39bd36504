"""Benchmark: train the SFC-size W1A1 MLP (784-256-256-256-10, BNN) on MNIST in NumPy.

Records test accuracy (float binarized model and golden integer model), their agreement,
epochs, wall time and seed in benchmarks/results/mnist_sfc_bnn.json and saves the IR to
benchmarks/results/mnist_sfc_bnn/ (used by the simulation tests and benchmarks).
Target: golden test accuracy >= 97.0% (Brevitas reports 97.81% for SFC W1A1).

    python benchmarks/train_mnist_sfc.py [MNIST.npz] [--epochs N] [--seed S]
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=str(REPO.parent / "shared/data/mnist.npz"))
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    args = ap.parse_args()
    from sim.provenance import provenance

    prov = provenance(seed=args.seed)  # before the run: the code the figures were measured with


    from quantmodels.atomic import atomic_write_json
    from quantmodels.datasets import load_mnist_npz
    from quantmodels.ir import save_model
    from quantmodels.train import TrainConfig, train

    data = load_mnist_npz(args.data)
    cfg = TrainConfig(method="bnn", hidden=(256, 256, 256), epochs=args.epochs, seed=args.seed)
    t0 = time.perf_counter()
    res = train(cfg, data, name="sfc-bnn")
    wall = time.perf_counter() - t0
    res.model.meta["data_source"] = str(Path(args.data).resolve())
    save_model(res.model, args.out / "mnist_sfc_bnn")
    doc = {"provenance": prov, 
        "benchmark": "MNIST SFC 784-256-256-256-10 W1A1 (BNN), NumPy training",
        "golden_test_accuracy": res.golden_test_accuracy,
        "float_test_accuracy": res.float_test_accuracy,
        "golden_float_agreement": res.agreement,
        "target_accuracy": 0.970, "reference_brevitas_sfc_w1a1": 0.9781,
        "epochs": cfg.epochs, "best_epoch": res.model.meta["best_epoch"], "seed": cfg.seed,
        "lr": cfg.lr, "batch_size": cfg.batch_size, "dropout_in": cfg.dropout_in,
        "dropout_hidden": cfg.dropout_hidden, "optimizer": cfg.optimizer,
        "train_seconds": round(res.seconds, 1), "wall_seconds": round(wall, 1),
        "machine": platform.machine(),  # numpy, python and tool versions: in provenance
        "cpus": __import__("os").cpu_count(),
    }
    atomic_write_json(args.out / "mnist_sfc_bnn.json", doc)
    for k, v in doc.items():
        print(f"{k:>28}: {v}")
    return 0 if res.golden_test_accuracy >= 0.970 else 1


if __name__ == "__main__":
    sys.exit(main())
