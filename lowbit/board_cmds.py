"""``lowbit bitstream``, ``lowbit fit`` and ``lowbit run``: from an IR model to a board and back.

``bitstream`` builds shell + network for a board (reports.bitstream), ``fit`` picks the fastest
folding that fits it (reports.board_fit), ``run`` streams test images through the board's UART
(lowbit.host) or, with ``--sim``, through the Verilator model of the whole system.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hw.arith import POPCOUNT_STYLES
from hw.protocol import DEFAULT_BAUD
from quantmodels.errors import ConfigError

#: Subcommands this module registers; ``lowbit.cli`` dispatches them here.
COMMANDS = ("bitstream", "fit", "run")


def _board_names() -> str:
    from hw.boards import BOARDS

    return ", ".join(BOARDS)


def add_parsers(sub) -> None:
    """Register ``bitstream``, ``fit`` and ``run`` on the CLI's subparsers."""
    def common(p, fold: bool = True) -> None:
        p.add_argument("model", type=Path, help="IR model directory (model.json + weights.npz)")
        if fold:
            p.add_argument("--fold", default=None, metavar="SPEC",
                           help="folding as for 'lowbit verilog', or 'fit' for the fastest one that fits the board "
                                "(default: the folding 'lowbit fit' recorded in <model>/fit-<board>.json, else automatic)")
        p.add_argument("--popcount", default="tree", choices=POPCOUNT_STYLES, help="popcount circuit (default tree)")
        p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help=f"UART baud rate (default {DEFAULT_BAUD})")

    p = sub.add_parser("bitstream", help="bitstream for an FPGA board: network + UART shell, synthesis, "
                                         "place and route at the board clock, packer")
    common(p)
    p.add_argument("--board", required=True, help=f"board: {_board_names()}")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default <model>/bitstream-<board>)")

    p = sub.add_parser("fit", help="fastest folding whose area fits a board (estimated, then confirmed by synthesis)")
    common(p, fold=False)
    p.add_argument("--board", required=True, help=f"board: {_board_names()}")

    p = sub.add_parser("run", help="stream test images through a board's UART (or --sim: the Verilator model of "
                                   "the whole system) and check every class and logit against the golden model")
    common(p)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", default=None, help="serial port or pyserial URL, e.g. /dev/ttyUSB1")
    where.add_argument("--sim", action="store_true", help="simulate shell + network under Verilator (UART at "
                                                          "bit level, fast baud divider) instead of a board")
    p.add_argument("--board", default=None, help="board the bitstream was built for: the folding recorded in "
                                                 "<model>/bitstream-<board>/bitstream.json is used (else fit-<board>.json)")
    p.add_argument("--data", default=None, help="dataset (default: the one the model was trained on)")
    p.add_argument("--images", type=int, default=100, help="test images to stream (default 100; 0 = all)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for a reply on a board (default 2)")
    p.add_argument("--out", type=Path, default=None, help="where run.json goes (default <model>)")


def _foldings(model, model_dir: Path, fold: str | None, board_name: str | None):
    """Parse --fold; 'fit' or nothing with a recorded fit uses <model>/fit-<board>.json."""
    from hw.folding import parse_folding

    fit_file = model_dir / f"fit-{board_name}.json" if board_name else None
    if fold == "fit" or (fold is None and fit_file is not None and fit_file.exists()):
        if fit_file is None or not fit_file.exists():
            raise ConfigError(f"--fold fit: {fit_file or 'fit-<board>.json'} not found; run 'lowbit fit {model_dir} "
                              f"--board {board_name or 'NAME'}' first")
        fold = json.loads(fit_file.read_text())["fold_spec"]
    return parse_folding(model, fold)


def cmd_bitstream(args: argparse.Namespace) -> int:
    from hw.boards import board
    from quantmodels.ir import load_model
    from reports.bitstream import build_bitstream

    b = board(args.board)
    model = load_model(args.model)
    foldings = _foldings(model, args.model, args.fold, b.name)
    out = args.out or args.model / f"bitstream-{b.name}"
    print(f"building for {b.title}: {'; '.join(str(f) for f in foldings)} ...", flush=True)
    r = build_bitstream(model, foldings, b, out, baud=args.baud, popcount=args.popcount, seed=args.seed)
    util = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in r.utilisation.items())
    print(f"timing met: fmax {r.fmax_mhz:.2f} MHz at the {r.clock_mhz:g} MHz board clock (slack {r.slack_ns:.2f} ns)")
    print(f"utilisation: {util}")
    print(f"bitstream written to {r.bitstream}; summary {out / 'bitstream.json'}; commands {out / 'commands.sh'}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from hw.boards import board
    from quantmodels.atomic import atomic_write_json
    from quantmodels.ir import load_model
    from reports.board_fit import fit_board
    from sim.provenance import provenance

    b = board(args.board)
    model = load_model(args.model)
    r = fit_board(model, b, args.model / f"fit-{b.name}.work", args.popcount, args.baud)
    for why in r.rejected:
        print(f"  passed over {why}")
    s = r.synthesized
    print(f"fits {b.title}: --fold '{r.fold_spec}' ({r.cycles_per_image} cycles/image); synthesis: {s['luts']} LUT, "
          f"{s['ffs']} FF, {s['brams']:g} BRAM, {s['dsps']} DSP of {b.budget.luts} LUT, {b.budget.brams} BRAM, "
          f"{b.budget.dsps} DSP")
    path = args.model / f"fit-{b.name}.json"
    atomic_write_json(path, {**r.to_json(), "provenance": provenance(seed=model.meta.get("seed"))})
    print(f"written to {path} ('lowbit bitstream {args.model} --board {b.name}' uses it)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from hw.network import NetworkTop
    from lowbit.flow import dataset_for
    from quantmodels.atomic import atomic_write_json
    from quantmodels.ir import load_model
    from sim.provenance import provenance

    from .host import BoardLink, open_port, stream_images
    from .sim_board import run_simulated, system_ports

    if args.images < 0:
        raise ConfigError(f"--images: {args.images}, expected >= 0 (0 = the whole test set)")
    model = load_model(args.model)
    if args.board:
        from hw.boards import board

        board(args.board)  # an unknown name fails here, in one line
    built = args.model / f"bitstream-{args.board}" / "bitstream.json" if args.board else None
    if args.fold is None and built is not None and built.exists():  # the folding the bitstream was built with
        foldings = _foldings(model, args.model, ";".join(json.loads(built.read_text())["foldings"]), None)
    else:
        foldings = _foldings(model, args.model, args.fold, args.board)
    data = dataset_for(model, args.data)
    n = len(data.x_test) if args.images == 0 else min(args.images, len(data.x_test))
    x, y = data.x_test[:n], data.y_test[:n]
    doc: dict = {"model": str(args.model), "seed": model.meta.get("seed"), "foldings": [str(f) for f in foldings]}
    if args.sim:
        print(f"simulating shell + network under Verilator, UART at bit level; streaming {n} images ...", flush=True)
        r = run_simulated(model, foldings, x, y, popcount=args.popcount)
        res = r.host
        doc.update(sim=True, divider=r.run.divider, self_test=r.self_test, sim_cycles=r.stream_cycles)
        extra = (f"; protocol self-test {', '.join(f'{k}: {v}' for k, v in r.self_test.items())}; "
                 f"{r.stream_cycles / n:.0f} SIMULATED cycles/image at UART divider {r.run.divider}")
    else:
        net = NetworkTop(model, foldings, args.popcount)
        port = open_port(args.port, args.baud, args.timeout)
        try:
            res = stream_images(BoardLink(port, system_ports(net)), model, x, y, system_ports(net))
        finally:
            port.close()
        doc.update(sim=False, port=args.port, baud=args.baud)
        extra = ""
    status = "BIT-EXACT" if res.bit_exact else f"MISMATCH ({res.mismatches} images, first at index {res.first_bad})"
    acc = f", accuracy {100 * res.accuracy:.2f}% (golden {100 * res.golden_accuracy:.2f}%)" if res.accuracy is not None else ""
    print(f"{status}: {n - res.mismatches}/{n} images match golden classes and logits{acc}; "
          f"{res.images_per_s:.1f} images/s wall, {res.retries} resent{extra}")
    out = args.out or args.model
    atomic_write_json(out / "run.json", {**doc, **res.to_json(), "provenance": provenance("pyserial")})
    print(f"results written to {out / 'run.json'}")
    return 0 if res.bit_exact else 1
