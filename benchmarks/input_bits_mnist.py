"""Benchmark: what K-bit input pixels buy a BNN SFC (784-256-256-256-10) on MNIST, K = 1 vs 8.

``--input-bits 1`` is BNN's own input (pixels thresholded at 128, XNOR-popcount first layer);
``--input-bits 8`` keeps the raw pixels and makes the first layer ``accumulate`` (binary weights:
add / subtract 8-bit pixels), as in the BNN paper's fixed-point first layer. Per K: golden (integer
IR) test accuracy, float/golden agreement, and the area of the same automatic folding on iCE40 from
the calibrated estimator (a MODEL, per layer; ``--synth`` adds a real Yosys ``synth_ice40`` of the
whole generated design). Writes ``benchmarks/results/input_bits_mnist.json`` (with git commit, seed
and versions) and the IR models under ``benchmarks/results/input_bits_mnist/k<K>/``.

    python benchmarks/input_bits_mnist.py [--data MNIST.npz] [--epochs N] [--seed S] [--bits 1,8] [--synth]

The default 20 epochs is a reduced run (BNN's default is 60): the recorded ``epochs`` says so.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # see benchmarks/reproduce.py
    os.environ.setdefault(_v, "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sim.provenance import provenance  # noqa: E402

from demo_figures import EXTRA_PACKAGES, blas  # noqa: E402  (benchmarks/ is the script's directory)

OUT = REPO / "benchmarks" / "results"


def _saved(mdir: Path, cfg):
    """The model saved in ``mdir`` if it was trained with exactly ``cfg`` (a rerun resumes), else None."""
    from quantmodels.ir import load_model

    if not (mdir / "model.json").exists():
        return None
    model = load_model(mdir)
    return model if model.meta.get("config") == cfg.to_json() else None


def run_one(data, k: int, epochs: int, seed: int, synth: bool) -> dict:
    """Train, save and measure the BNN SFC reading ``k``-bit pixels."""
    from hw.folding import parse_folding
    from quantmodels.ir import save_model
    from quantmodels.train import TrainConfig, train
    from reports.estimator import estimate_model

    cfg = TrainConfig(method="bnn", arch="sfc", epochs=epochs, seed=seed, input_bits=k, progress=False)
    t0 = time.perf_counter()
    mdir = OUT / "input_bits_mnist" / f"k{k}"
    model = _saved(mdir, cfg)
    if model is None:
        model = train(cfg, data, name=f"sfc-bnn-in{k}").model
        save_model(model, mdir)
    else:
        print(f"K={k}: reusing {mdir} (trained with the same config)", flush=True)
    m = model.meta
    folds = parse_folding(model, None)
    est = estimate_model(model.layers, folds, "ice40")
    row = {"input_bits": k, "first_layer_kind": str(model.layers[0].kind),
           "golden_test_accuracy": m["golden_test_accuracy"], "float_test_accuracy": m["float_test_accuracy"],
           "golden_float_agreement": m["golden_float_agreement"], "best_epoch": m["best_epoch"],
           "train_seconds": m["train_seconds"],
           "folding": [f"{L.name}:pe={f.pe},simd={f.simd}" for L, f in zip(model.layers, folds)],
           "estimated_ice40_luts_MODEL": round(est.luts),
           "estimated_ice40_luts_per_layer_MODEL": {L.name: round(e.luts) for L, e in zip(model.layers, est.layers)},
           "estimated_ice40_brams_MODEL": est.brams,
           "weight_bits_total": int(sum(L.weights.size * L.weight_bits for L in model.layers))}
    if synth:
        from hw.verilog import generate_verilog
        from reports.synth import synthesize

        with tempfile.TemporaryDirectory() as tmp:
            d = generate_verilog(model, folds, Path(tmp))
            s = synthesize(d.verilog_path, d.top_name, "ice40")
        row.update(measured_ice40_luts=s.luts, measured_ice40_brams=s.brams, measured_ice40_ffs=s.ffs)
    print(f"K={k}: golden {100 * m['golden_test_accuracy']:.2f}%, ~{row['estimated_ice40_luts_MODEL']} LUT4 "
          f"(estimate), {time.perf_counter() - t0:.0f} s", flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/mnist.npz"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bits", default="1,8", help="comma-separated K values")
    ap.add_argument("--synth", action="store_true", help="also synthesize each design with Yosys (ice40)")
    ap.add_argument("--result", default="input_bits_mnist.json", help="results file name under benchmarks/results/")
    a = ap.parse_args()

    from quantmodels.datasets import load_dataset

    data = load_dataset(a.data)
    prov = provenance(*EXTRA_PACKAGES, seed=a.seed) | {"blas": blas()}  # before the run: the code it measures
    rows = []
    for k in a.bits.split(","):  # the file is rewritten after each K, so a long run leaves its rows
        rows.append(run_one(data, int(k), a.epochs, a.seed, a.synth))
        write(a, data, rows, prov)
    print(f"written {OUT / a.result}")
    return 0


def write(a: argparse.Namespace, data, rows: list[dict], prov: dict) -> None:
    from quantmodels.atomic import atomic_write_json

    doc = {"benchmark": "MNIST BNN SFC 784-256-256-256-10, first layer reading K-bit pixels (--input-bits K)",
           "dataset": data.name, "epochs": a.epochs, "reduced_run": a.epochs < 60,
           "note": "LUT figures marked MODEL come from the calibrated area estimator (iCE40 LUT4, layers only, "
                   "no argmax); measured_* from Yosys synth_ice40",
           "rows": rows, "provenance": prov}
    atomic_write_json(OUT / a.result, doc)


if __name__ == "__main__":
    sys.exit(main())
