"""The ``lowbit`` command line: train, verilog, sim, report, sweep, demo.

Each step is one command that reads the previous step's files and prints where its
outputs went. User errors print one line ``lowbit: error: ...`` and exit with status 2.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from hw.arith import POPCOUNT_STYLES
from quantmodels.arch import PRESETS as ARCH_PRESETS
from quantmodels.errors import ConfigError, LowbitError, clip
from quantmodels.methods import REGISTRY
from quantmodels.optim import OPTIMIZERS
from quantmodels.train import LR_SCHEDULES
from sim.build import SIMULATORS
from hw.memstyle import MEM_STYLES
from hw.pipeline import DEFAULT_CLOCK_MHZ, NS_PER_LEVEL
from sim.tools import ToolError

from . import board_cmds, flow, qonnx_cmds
from .steps import METHODS, target_clock
from .sweep_config import MAX_EPOCHS, MAX_JOBS

EXIT_USAGE = 2
EXIT_MISMATCH = 1
#: An error line is cut to this many characters (it may echo a path or a value of any length).
MAX_ERROR_LINE = 300
#: Bounds of the numeric options, checked before any work: ``(lo, hi)`` per argparse dest, per command.
#: Upper bounds are resource limits (a million epochs is a typo, not a plan).
_INT_BOUNDS = {
    "epochs": (1, MAX_EPOCHS), "patience": (0, MAX_EPOCHS), "batch_size": (2, 1 << 16), "seed": (0, 2**32 - 1),
    "jobs": (0, MAX_JOBS),
}  # --images, --activity-images, --stall: checked by their commands (they depend on the data)
_FLOAT_BOUNDS = {"lr": (0.0, 100.0), "dropout": (0.0, 1.0)}  #: open at the bottom, closed at the top


def check_bounds(args: argparse.Namespace) -> None:
    """Refuse out-of-range numeric options (and inf/nan) with one line naming the option."""
    for dest, (lo, hi) in _INT_BOUNDS.items():
        v = getattr(args, dest, None)
        if v is not None and not lo <= v <= hi:
            raise ConfigError(f"--{dest.replace('_', '-')}: {clip(v, 30)}, expected an integer in {lo}..{hi}")
    for dest in ("hidden", "arch"):  # an empty spec would silently fall back to the default network
        v = getattr(args, dest, None)
        if v is not None and not v.strip():
            raise ConfigError(f"--{dest}: {v!r}, expected a network spec (see lowbit train --help)")
    if getattr(args, "clock_mhz", None) is not None:  # before the command prints or builds anything
        target_clock(args.clock_mhz, getattr(args, "family", None) or "ice40")
    for dest, (lo, hi) in _FLOAT_BOUNDS.items():
        v = getattr(args, dest, None)
        if v is not None and not (math.isfinite(v) and (lo < v <= hi or (dest == "dropout" and v == lo))):
            raise ConfigError(f"--{dest}: {clip(v, 30)}, expected a number in {'[' if dest == 'dropout' else '('}"
                              f"{lo:g}, {hi:g}]")


def _add_fold(p: argparse.ArgumentParser) -> None:
    p.add_argument("--popcount", default="tree", choices=[str(s) for s in POPCOUNT_STYLES],
                   help="popcount circuit: 'tree' (balanced adders, portable, best on iCE40), 'lut6' "
                        "(6:3 truth-table counters for 6-input-LUT devices) or 'xilinx' (carry-chain "
                        "counters from explicit LUT6_2/CARRY4 cells, smallest on Xilinx 7-series; other "
                        "targets synthesize the cells as plain logic); default tree")
    p.add_argument("--mem-style", default="auto", choices=[str(s) for s in MEM_STYLES],
                   help="where memories go: 'block' RAM, 'distributed' (ROMs in LUTs; the written input "
                        "banks in LUT-RAM on ecp5/xilinx, logic on ice40), 'logic', or 'auto' (block RAM from "
                        ">= 64 words and >= 4 kbit; below that ROMs are the synthesis tool's choice and input "
                        "banks distributed); default auto")
    p.add_argument("--clock-mhz", default="auto", metavar="MHZ",
                   help="target clock: register the adder trees so one stage fits it (the --family delay model); "
                        "'auto' (default) = the family's target (" + ", ".join(
                            f"{k} {v:g}" for k, v in DEFAULT_CLOCK_MHZ.items()) + " MHz), 'none' = no extra stages")
    p.add_argument("--family", default=None, choices=sorted(NS_PER_LEVEL),
                   help="FPGA family whose delay model and default clock pick the register stages (default "
                        "ice40; lowbit report: the family of the first --targets entry, ice40 if an ice40 target "
                        "with DSPs is among them)")
    p.add_argument("--fold", default=None, metavar="SPEC",
                   help="folding: 'pe=16,simd=49' for every layer, 'fc0:pe=16,simd=49;fc1:pe=8,simd=64' "
                        "per layer, 'fps=1e6,clock_mhz=100' for the fewest lanes reaching a frame rate, 'cycles=256' for "
                        "the fewest lanes within a cycle budget per image, "
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
    p.add_argument("--model", default=None, choices=sorted(ARCH_PRESETS),
                   help="network preset: " + "; ".join(f"{k} = {v}" for k, v in ARCH_PRESETS.items())
                   + " (default: tfc for digits, sfc otherwise)")
    p.add_argument("--hidden", default=None, help="hidden layer sizes, e.g. 256,256,256 (overrides --model)")
    p.add_argument("--arch", default=None,
                   help="architecture tokens (overrides --model/--hidden): fN dense, cNkK[sS][pP] conv, "
                        "pK[sS] max-pool after a conv, e.g. 'c16k3p1,p2,c32k3p1,p2,f64'")
    p.add_argument("--method", default="bnn", choices=METHODS,
                   help="quantization method (default bnn): "
                        + "; ".join(f"{m.name}: {m.doc}" for m in REGISTRY.values()))
    p.add_argument("--wbits", type=int, default=None, help="weight bits (default: the method's)")
    p.add_argument("--abits", type=int, default=None, help="hidden activation bits (default: the method's)")
    p.add_argument("--input-bits", type=int, default=None, metavar="K",
                   help="bits of each input pixel the first layer reads, 1..8: 8 = raw pixels, K < 8 = the top K "
                        "bits, 1 = the method's 1-bit input (default: the method's own: 1 for bnn/xnor, 8 otherwise); "
                        "binary-weight methods then make the first layer 'accumulate' (add/subtract)")
    p.add_argument("--name", default=None,
                   help="dataset name recorded in model.json (default: the data file's stem, or 'digits')")
    p.add_argument("--opt", action="append", metavar="NAME=VALUE",
                   help="method option, repeatable: " + "; ".join(
                       f"{m.name}: " + ", ".join(f"{o.name} ({o.doc}, default {o.default})" for o in m.options)
                       for m in REGISTRY.values() if m.options))
    p.add_argument("--optimizer", default="adam", choices=sorted(OPTIMIZERS),
                   help="optimizer (default adam; shift_adamax = BNN's shift-based AdaMax; sgd = momentum 0.9)")
    p.add_argument("--lr-schedule", default="cosine", choices=sorted(LR_SCHEDULES),
                   help="learning rate over the run: cosine (default, decays to lr/100) or constant")
    p.add_argument("--patience", type=int, default=0, help="early stopping after N epochs without improvement (0 = off)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="directory for the best-epoch checkpoint (checkpoint.npz + .json), updated as training improves")
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

    p = sub.add_parser("sim", help="bit-exact Verilator (or Icarus) regression of the generated network against the golden model")
    p.add_argument("model", type=Path, help="IR model directory (model.json + weights.npz)")
    _add_fold(p)
    p.add_argument("--data", default=None, help="dataset (default: the one the model was trained on)")
    p.add_argument("--images", type=int, default=None,
                   help=f"test images to simulate (default {flow.DEFAULT_SIM_IMAGES}, or the whole test set if "
                        "smaller; 0 = all; more than the test set is refused)")
    p.add_argument("--stall", type=int, default=0, metavar="PCT",
                   help="percent of cycles with output back-pressure (default 0)")
    p.add_argument("--simulator", default="verilator", choices=SIMULATORS,
                   help="RTL simulator: 'verilator' (default) or 'icarus' (needs iverilog on PATH; slower)")
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

    p = sub.add_parser("sweep", help="resumable, cached, parallel design-space sweep: Pareto plots, CSV, HTML")
    p.add_argument("config", type=Path, help="sweep configuration (TOML; see examples/sweep_digits.toml)")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default: [sweep] out, else runs/sweep/<config name>); "
                        "rerun with the same directory to resume")
    p.add_argument("--jobs", type=int, default=None, help="parallel local tasks (default: [parallel] jobs; 0 = every core)")
    p.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="run the tasks on a Dask distributed scheduler, e.g. tcp://host:8786 (workers must see the "
                        "output directory: shared filesystem), or 'local' for a local cluster of --jobs processes")
    p.add_argument("--no-pnr", action="store_true", help="skip nextpnr place-and-route")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("demo", help="train on the embedded digits, generate, simulate and report, in minutes")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-pnr", action="store_true", help="skip nextpnr place-and-route")
    qonnx_cmds.add_parsers(sub)  # import / export (QONNX)
    board_cmds.add_parsers(sub)  # bitstream / fit / run (boards)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        check_bounds(args)
        mod = qonnx_cmds if args.cmd in qonnx_cmds.COMMANDS else board_cmds if args.cmd in board_cmds.COMMANDS else flow
        rc = getattr(mod, f"cmd_{args.cmd}")(args)
    except LowbitError as e:
        msg = str(e).splitlines()
        line = f"lowbit: error: {msg[0] if msg else type(e).__name__}"
        if len(line) > MAX_ERROR_LINE:  # a last guard: messages clip what they echo, paths may still be long
            line = line[:MAX_ERROR_LINE - 3] + "..."
        print(line, file=sys.stderr)
        if len(msg) > 1 and isinstance(e, ToolError):  # tool failures: log tail after the one line
            print("\n".join(msg[1:]).strip(), file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # the user's file system said no (unwritable --out, a full disk, a directory named like a file)
        where = e.filename if e.filename is not None else args.cmd
        print(f"lowbit: error: {clip(str(where), 200)}: {e.strerror or type(e).__name__}"[:MAX_ERROR_LINE],
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lowbit: interrupted", file=sys.stderr)
        return 130
    print(f"[lowbit {args.cmd}: {time.perf_counter() - t0:.1f} s]")
    return rc or 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
