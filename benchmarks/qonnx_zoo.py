"""Benchmark: the QONNX model zoo's Brevitas TFC networks imported into lowbit, on all MNIST test images.

Per network: import time, the IR it became (input quantizer, layer kinds), golden vs qonnx's
executor on every test image (agreement, accuracies), the export round trip (executor on the
exported graph vs golden) and, with --rtl N, a Verilator regression of N images (bit-exact vs
golden). Writes benchmarks/results/qonnx_zoo.json with the git commit and tool versions. Usage:
    python benchmarks/qonnx_zoo.py [--images N] [--rtl N] [--data PATH]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "tests" / "data" / "qonnx"
PUBLISHED = {"TFC_1W1A": 93.17, "TFC_1W2A": 94.79, "TFC_2W2A": 96.60}  #: Brevitas BNN-PYNQ top-1 (%)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10000, help="MNIST test images for golden vs executor")
    ap.add_argument("--rtl", type=int, default=0, help="images for a Verilator regression per network (0 = skip)")
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/mnist.npz"))
    args = ap.parse_args()

    from quantmodels.atomic import atomic_write_json
    from quantmodels.datasets import load_dataset
    from quantmodels.qonnx import agreement, export_qonnx, import_qonnx

    from sim.provenance import provenance

    prov = provenance("onnx", "qonnx", "onnxruntime")  # before the run: what the figures were measured with
    data = load_dataset(args.data)
    n = min(args.images, len(data.x_test))
    x, y = data.x_test[:n], data.y_test[:n]
    nets, ok = {}, True
    for name in sorted(PUBLISHED):
        t0 = time.perf_counter()
        model, summary = import_qonnx(ZOO / f"{name}.onnx")
        t_import = time.perf_counter() - t0
        t1 = time.perf_counter()
        a = agreement(model, ZOO / f"{name}.onnx", x, y)
        t_check = time.perf_counter() - t1
        with tempfile.TemporaryDirectory() as tmp:
            rt = agreement(model, export_qonnx(model, Path(tmp) / "rt.onnx"), x, y)
            rec = {"input_quantizer": summary.input, "kinds": [L.kind.value for L in model.layers],
                   "import_s": round(t_import, 2), "executor_and_golden_s": round(t_check, 2),
                   "golden_vs_executor": a.to_json(), "export_round_trip": rt.to_json(),
                   "published_top1": PUBLISHED[name], "notes": summary.notes}
            if args.rtl:
                from lowbit.flow import make_hardware, simulate

                k = min(args.rtl, n)
                h = make_hardware(model, None, Path(tmp) / "hw")
                r = simulate(model, h, x[:k], y[:k])
                rec["rtl"] = {"images": k, "mismatches": r.mismatches, "bit_exact": r.bit_exact,
                              "rtl_accuracy": r.accuracy, "cycles_per_image": r.cycles_per_image}
                ok &= r.bit_exact
        ok &= a.agree == a.n_images and rt.agree == rt.n_images
        nets[name] = rec
        print(f"{name}: {a.render()}; export round trip {rt.agree}/{rt.n_images}"
              + (f"; RTL {rec['rtl']['images'] - rec['rtl']['mismatches']}/{rec['rtl']['images']} bit-exact"
                 if "rtl" in rec else ""), flush=True)
    doc = {"images": n, "data": args.data, "provenance": prov,
           "networks": nets}
    out = REPO / "benchmarks/results/qonnx_zoo.json"
    atomic_write_json(out, doc)
    print(f"written {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
