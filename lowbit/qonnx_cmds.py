"""``lowbit import`` and ``lowbit export``: QONNX in and out (quantmodels.qonnx does the work)."""
from __future__ import annotations

import argparse
from pathlib import Path

from quantmodels.errors import ConfigError

#: Subcommands this module registers; ``lowbit.cli`` dispatches them here.
COMMANDS = ("import", "export")


def add_parsers(sub) -> None:
    """Register ``import`` and ``export`` on the CLI's subparsers."""
    p = sub.add_parser("import", help="QONNX model (.onnx) -> lowbit IR model directory, streamlined exactly")
    p.add_argument("onnx", type=Path, help="QONNX file (Brevitas/FINN style: Quant, BipolarQuant, MultiThreshold, "
                                           "MatMul/Gemm, BatchNormalization, ...)")
    p.add_argument("--out", type=Path, required=True, help="IR model directory to write")
    p.add_argument("--name", default=None, help="model name (default: the file's stem)")
    p.add_argument("--data", default=None,
                   help="dataset to measure golden vs the qonnx executor on ('digits', an MNIST .npz or IDX "
                        "directory); recorded as the model's data source")
    p.add_argument("--check", type=int, default=1000, metavar="N",
                   help="test images for that measurement (default 1000; 0 = all; needs --data)")

    p = sub.add_parser("export", help="lowbit IR model directory -> QONNX (.onnx): MultiThreshold + MatMul")
    p.add_argument("model", type=Path, help="IR model directory (model.json + weights.npz)")
    p.add_argument("onnx", type=Path, help="QONNX file to write")
    p.add_argument("--data", default=None,
                   help="dataset to check the written graph with qonnx's executor (default: the model's own)")
    p.add_argument("--check", type=int, default=1000, metavar="N",
                   help="test images to check (default 1000; 0 = all; skipped without a dataset)")


def _images(data, n: int):
    if n < 0:
        raise ConfigError(f"--check: {n}, expected >= 0 (0 = the whole test set)")
    k = len(data.x_test) if n == 0 else min(n, len(data.x_test))
    return data.x_test[:k], data.y_test[:k]


def cmd_import(args: argparse.Namespace) -> int:
    from quantmodels.datasets import load_dataset
    from quantmodels.ir import save_model
    from quantmodels.qonnx import agreement, import_qonnx

    model, summary = import_qonnx(args.onnx, args.name)
    print(summary.render())
    if args.data:
        data = load_dataset(args.data)
        x, y = _images(data, args.check)
        a = agreement(model, args.onnx, x, y)
        print(f"  {a.render()}")
        model.meta["data_source"] = str(args.data)
        model.meta["qonnx_agreement"] = a.to_json()
    save_model(model, args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from quantmodels.datasets import load_dataset
    from quantmodels.ir import load_model
    from quantmodels.qonnx import agreement, export_qonnx

    model = load_model(args.model)
    path = export_qonnx(model, args.onnx)
    print(f"wrote {path} ({len(model.layers)} layers: {', '.join(L.kind.value for L in model.layers)})")
    spec = args.data or model.meta.get("data_source")
    if spec:
        x, y = _images(load_dataset(spec), args.check)
        a = agreement(model, path, x, y)
        print(f"  {a.render()}")
        if a.agree != a.n_images:
            return 1
    return 0
