"""Benchmark: one training epoch of the same quantized MLP in lowbit (NumPy) vs PyTorch CPU.

The PyTorch side is a plain re-implementation of the same BNN block (sign STE weights and
activations, batch norm, Adam, batch 100) used only for timing; torch is an optional extra,
never a runtime dependency. Without ``import torch`` the torch column is reported as skipped.
Writes benchmarks/results/train_epoch_vs_torch.json.

    python benchmarks/train_epoch_vs_torch.py [MNIST.npz] [--arch sfc] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lowbit_epoch(data, arch: str, threads: int) -> float:
    from quantmodels.train import TrainConfig, train

    cfg = TrainConfig(method="bnn", arch=arch, epochs=1, progress=False, blas_threads=threads, val_fraction=0.01)
    t0 = time.perf_counter()
    train(cfg, data)
    return time.perf_counter() - t0


def torch_epoch(data, hidden: list[int], threads: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)

    class SignSTE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.where(x >= 0, 1.0, -1.0)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x.abs() <= 1)

    sizes = [784, *hidden, 10]
    lins = torch.nn.ModuleList(torch.nn.Linear(a, b, bias=False) for a, b in zip(sizes, sizes[1:]))
    bns = torch.nn.ModuleList(torch.nn.BatchNorm1d(h) for h in hidden)
    opt = torch.optim.Adam([*lins.parameters(), *bns.parameters()], 3e-3)
    x = torch.tensor((data.x_train.reshape(len(data.x_train), -1) >= 128) * 2.0 - 1.0, dtype=torch.float32)
    y = torch.tensor(data.y_train)
    t0 = time.perf_counter()
    for i in range(0, len(x), 100):
        h = x[i:i + 100]
        for j, lin in enumerate(lins):
            h = h @ SignSTE.apply(lin.weight).T
            if j < len(bns):
                h = SignSTE.apply(bns[j](h))
        loss = torch.nn.functional.cross_entropy(h, y[i:i + 100])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=str(REPO.parent / "shared/data/mnist.npz"))
    ap.add_argument("--arch", default="sfc")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/train_epoch_vs_torch.json")
    args = ap.parse_args()

    from quantmodels.arch import parse_arch
    from quantmodels.atomic import atomic_write_json
    from quantmodels.datasets import load_mnist_npz

    data = load_mnist_npz(args.data)
    hidden = [i.out for i in parse_arch(args.arch)]
    t_lb = lowbit_epoch(data, args.arch, args.threads)
    t_th = torch_epoch(data, hidden, args.threads)
    doc = {"benchmark": f"one BNN training epoch, MNIST {args.arch}, batch 100, {args.threads} thread(s)",
           "lowbit_seconds": round(t_lb, 2), "torch_seconds": None if t_th is None else round(t_th, 2),
           "ratio_lowbit_over_torch": None if t_th is None else round(t_lb / t_th, 2),
           "note": "lowbit time includes validation, export and golden evaluation" +
                   ("" if t_th is not None else "; torch not installed: skipped")}
    print(f"{'lowbit (NumPy)':>16}: {t_lb:7.1f} s")
    print(f"{'PyTorch CPU':>16}: " + ("skipped (import torch failed)" if t_th is None else f"{t_th:7.1f} s"))
    if t_th is not None:
        print(f"{'ratio':>16}: {t_lb / t_th:7.2f} x")
    atomic_write_json(args.out, doc)
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
