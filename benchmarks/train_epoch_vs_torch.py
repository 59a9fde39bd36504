"""Benchmark: one training epoch of the same quantized MLP in lowbit (NumPy) vs PyTorch CPU.

The PyTorch side is a plain re-implementation of the same BNN block (sign STE weights and
activations, batch norm, dropout, Adam, batch 100, same number of training images) used only
for timing; torch is an optional extra, never a runtime dependency (``pip install torch``; on
this project's machines ``pip install torch==2.13.0`` takes the CPU build). Without
``import torch`` the torch column is reported as skipped. Both sides time the training steps of
one epoch only (lowbit's own per-epoch ``train_seconds``), not validation or export; the best of
``--repeats`` epochs is kept on each side so a noisy machine hurts both alike.
Writes benchmarks/results/train_epoch_vs_torch.json.

    python benchmarks/train_epoch_vs_torch.py [MNIST.npz] [--arch sfc] [--threads 1] [--repeats 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lowbit_epoch(data, arch: str, threads: int, repeats: int) -> tuple[float, int]:
    """Best training-steps time of ``repeats`` BNN epochs, and the images per epoch."""
    from quantmodels.train import TrainConfig, train

    cfg = TrainConfig(method="bnn", arch=arch, epochs=repeats, progress=False, blas_threads=threads,
                      val_fraction=0.01)
    hist = train(cfg, data, export=False).history
    return min(h["train_seconds"] for h in hist), hist[0]["train_images"]


def torch_epoch(data, hidden: list[int], threads: int, n_images: int, repeats: int) -> float | None:
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

    torch.manual_seed(0)
    sizes = [784, *hidden, 10]
    lins = torch.nn.ModuleList(torch.nn.Linear(a, b, bias=False) for a, b in zip(sizes, sizes[1:]))
    bns = torch.nn.ModuleList(torch.nn.BatchNorm1d(h) for h in hidden)
    opt = torch.optim.Adam([*lins.parameters(), *bns.parameters()], 3e-3)
    drop = torch.nn.Dropout(0.1)  # lowbit's BNN default, input and hidden
    x = torch.tensor((data.x_train[:n_images].reshape(n_images, -1) >= 128) * 2.0 - 1.0, dtype=torch.float32)
    y = torch.tensor(data.y_train[:n_images].astype("int64"))
    best = float("inf")
    for _ in range(repeats):
        perm = torch.randperm(n_images)
        t0 = time.perf_counter()
        for i in range(0, n_images, 100):
            idx = perm[i:i + 100]
            h = drop(x[idx])
            for j, lin in enumerate(lins):
                h = h @ SignSTE.apply(lin.weight).T
                if j < len(bns):
                    h = drop(SignSTE.apply(bns[j](h)))
            loss = torch.nn.functional.cross_entropy(h, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():  # latent weights clipped to [-1, 1], as lowbit's BNN does
                for lin in lins:
                    lin.weight.clamp_(-1, 1)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=str(REPO.parent / "shared/data/mnist.npz"))
    ap.add_argument("--arch", default="sfc")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="epochs per side; the fastest is kept")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/train_epoch_vs_torch.json")
    args = ap.parse_args()
    from sim.provenance import provenance

    prov = provenance(seed=None)  # before the run: the code the figures were measured with

    from quantmodels.arch import parse_arch
    from quantmodels.atomic import atomic_write_json
    from quantmodels.datasets import load_mnist_npz

    data = load_mnist_npz(args.data)
    hidden = [i.out for i in parse_arch(args.arch)]
    t_lb, n_images = lowbit_epoch(data, args.arch, args.threads, args.repeats)
    t_th = torch_epoch(data, hidden, args.threads, n_images, args.repeats)
    doc = {"provenance": prov, "benchmark": f"one BNN training epoch ({n_images} images), MNIST {args.arch}, batch 100, "
                        f"{args.threads} thread(s), best of {args.repeats}",
           "lowbit_seconds": round(t_lb, 2), "torch_seconds": None if t_th is None else round(t_th, 2),
           "ratio_lowbit_over_torch": None if t_th is None else round(t_lb / t_th, 2),
           "torch_version": None if t_th is None else __import__("torch").__version__,
           "note": "training steps only (forward, backward, optimizer, clipping), no validation or export" +
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
