"""The ``lowbit`` command line: train, verilog, sim, report, demo.

Each step is one command that reads the previous step's files and prints where its
outputs went. User errors print one line ``lowbit: error: ...`` and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from quantmodels.errors import LowbitError
from sim.tools import ToolError

from . import flow

EXIT_USAGE = 2
EXIT_MISMATCH = 1


def _add_fold(p: argparse.ArgumentParser) -> None:
    p.add_argument("--popcount", default="tree", choices=("tree", "lut6"),
                   help="popcount circuit: 'tree' (balanced adders, portable, best on iCE40) or 'lut6' "
                        "(6:3 counter compressor tree for 6-input-LUT devices; default tree)")
    p.add_argument("--fold", default=None, metavar="SPEC",
                   help="folding: 'pe=16,simd=49' for every layer, 'fc0:pe=16,simd=49;fc1:pe=8,simd=64' "
                        "per layer, 'fps=1e6,clock_mhz=100' for the fewest lanes reaching a frame rate, "
                        "or omitted for an automatic, balanced choice")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lowbit", description="Low-precision networks from NumPy training to "
                                 "bit-exact, FPGA-ready Verilog, with area/energy/memory reports.")
    ap.add_argument("--version", action="version", version="lowbit 0.1.0")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a quantized network in NumPy and export it to the integer IR")
    p.add_argument("--data", default="digits",
                   help="'digits' (embedded 8x8 digits), an MNIST .npz (x_train, y_train, x_test, y_test) "
                        "or a directory with the four MNIST IDX files (default: digits)")
    p.add_argument("--model", default=None, choices=sorted(flow.PRESETS),
                   help="network preset (hidden sizes); default: demo for digits, sfc otherwise")
    p.add_argument("--hidden", default=None, help="hidden layer sizes, e.g. 256,256,256 (overrides --model)")
    p.add_argument("--method", default="bnn", choices=flow.METHODS, help="quantization method (default bnn)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: method's default)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--dropout", type=float, default=None, help="dropout on input and hidden activations (bnn)")
    p.add_argument("--seed", type=int, default=0, help="random seed, recorded in model.json (default 0)")
    p.add_argument("--out", type=Path, default=None, help="output model directory (default runs/<model>-<method>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("verilog", help="generate the network's Verilog from an IR model directory")
    p.add_argument("model", type=Path, help="IR model directory (model.json + weights.npz)")
    _add_fold(p)
    p.add_argument("--out", type=Path, default=None, help="output directory (default <model>/hw)")

    p = sub.add_parser("sim", help="bit-exact Verilator regression of the generated network against the golden model")
    p.add_argument("model", type=Path, help="IR model directory (model.json + weights.npz)")
    _add_fold(p)
    p.add_argument("--data", default=None, help="dataset (default: the one the model was trained on)")
    p.add_argument("--images", type=int, default=1000, help="test images to simulate (default 1000; 0 = all)")
    p.add_argument("--stall", type=int, default=0, metavar="PCT",
                   help="percent of cycles with output back-pressure (default 0)")
    p.add_argument("--gate-level", action="store_true",
                   help="simulate Yosys's generic gate-level netlist instead of the RTL")
    p.add_argument("--out", type=Path, default=None, help="where sim.json goes (default <model>/hw)")

    p = sub.add_parser("report", help="area / fmax / energy / memory report for one or more models")
    p.add_argument("models", type=Path, nargs="+", help="IR model directories; the last one is the baseline")
    _add_fold(p)
    p.add_argument("--targets", default="ice40,xilinx",
                   help="synthesis targets, e.g. ice40,ecp5,xilinx,generic (default ice40,xilinx); "
                        "nextpnr runs for the ice40/ecp5 ones")
    p.add_argument("--no-pnr", action="store_true", help="skip nextpnr place-and-route")
    p.add_argument("--data", default=None, help="dataset for the activity run (default: the one the model was trained on)")
    p.add_argument("--activity-images", type=int, default=flow.ACTIVITY_IMAGES, metavar="N",
                   help=f"test images in the traced simulation for activity energy (default {flow.ACTIVITY_IMAGES}; 0 = skip)")
    p.add_argument("--out", type=Path, default=Path("runs/report"), help="output directory (default runs/report)")

    p = sub.add_parser("demo", help="train on the embedded digits, generate, simulate and report, in minutes")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-pnr", action="store_true", help="skip nextpnr place-and-route")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        rc = getattr(flow, f"cmd_{args.cmd}")(args)
    except LowbitError as e:
        msg = str(e).splitlines()
        print(f"lowbit: error: {msg[0] if msg else type(e).__name__}", file=sys.stderr)
        if len(msg) > 1 and isinstance(e, ToolError):  # tool failures: log tail after the one line
            print("\n".join(msg[1:]).strip(), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lowbit: interrupted", file=sys.stderr)
        return 130
    print(f"[lowbit {args.cmd}: {time.perf_counter() - t0:.1f} s]")
    return rc or 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
