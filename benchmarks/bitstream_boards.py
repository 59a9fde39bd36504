"""Benchmark: a trained digits net to a bitstream for an iCE40 and an ECP5 board, plus its simulated
end-to-end throughput over the UART.

Per board: ``lowbit bitstream``'s build (amaranth-boards platform, Yosys, nextpnr at the board
clock, packer) -> utilisation, MEASURED fmax and slack; then the whole system (shell + network)
under Verilator at that board's real UART divider (115200 baud), driven by the host code over
bit-level UART -> bit-exactness on N images and SIMULATED images/s at the board clock. Writes
benchmarks/results/bitstream_boards.json (git commit, seeds, tool versions). Usage:
    python benchmarks/bitstream_boards.py [--images N] [--boards icebreaker,ulx3s-85f] [--fold SPEC]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "bitstream_boards.json"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=100, help="test images through the simulated system per board")
    ap.add_argument("--boards", default="icebreaker,ulx3s-85f")
    ap.add_argument("--fold", default="pe=1,simd=32", help="folding of every board's build (default fits the UP5K)")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    from hw.boards import board
    from hw.folding import parse_folding
    from hw.protocol import DEFAULT_BAUD, baud_divider
    from lowbit.sim_board import run_simulated
    from lowbit.steps import train_and_save
    from quantmodels.atomic import atomic_write_json
    from quantmodels.datasets import load_dataset
    from reports.bitstream import build_bitstream
    from sim.provenance import provenance

    prov = provenance("amaranth-boards", "pyserial", seed=args.seed)  # before the run: what the figures were measured with
    data = load_dataset("digits")
    work = Path(tempfile.mkdtemp(prefix="lowbit-boards-"))
    model = train_and_save("bnn", "tfc", data, "digits", work / "tfc-bnn", seed=args.seed, progress=False)
    foldings = parse_folding(model, args.fold)
    x, y = data.x_test[:args.images], data.y_test[:args.images]
    rows = []
    for name in args.boards.split(","):
        b = board(name)
        t0 = time.perf_counter()
        bit = build_bitstream(model, foldings, b, work / f"bitstream-{name}", baud=DEFAULT_BAUD)
        print(f"{name}: fmax {bit.fmax_mhz} MHz at {bit.clock_mhz} MHz (slack {bit.slack_ns} ns), "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        div = baud_divider(b.clock_hz, DEFAULT_BAUD)
        sim = run_simulated(model, foldings, x, y, divider=div)
        ips = sim.images_per_s_at(b.clock_hz)
        print(f"{name}: {sim.host.n_images - sim.host.mismatches}/{sim.host.n_images} bit-exact over UART, "
              f"self-test {sim.self_test}, SIMULATED {ips:.1f} images/s at {DEFAULT_BAUD} baud", flush=True)
        rows.append({"board": name, "title": b.title, **{k: v for k, v in bit.to_json().items()
                                                          if k not in ("bitstream",)},
                     "sim_images": sim.host.n_images, "sim_mismatches": sim.host.mismatches,
                     "sim_bit_exact": sim.host.bit_exact, "sim_accuracy": sim.host.accuracy,
                     "sim_self_test": sim.self_test, "sim_divider": div,
                     "sim_cycles_per_image": sim.stream_cycles / sim.host.n_images,
                     "sim_images_per_s": round(ips, 2),
                     "sim_images_per_s_note": "SIMULATED: whole system under Verilator at the board's UART divider, "
                                              "host stop-and-wait (one image in flight), cycles / board clock"})
    doc = {"benchmark": "bitstream_boards", "model": "digits tfc (64-64-64-10) bnn W1A1", "seed": args.seed,
           "golden_test_accuracy": model.meta.get("golden_test_accuracy"), "fold": args.fold,
           "baud": DEFAULT_BAUD, "boards": rows, "provenance": prov}
    atomic_write_json(args.out, doc)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
