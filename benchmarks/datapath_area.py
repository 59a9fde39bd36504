"""Benchmark: measured area of the datapath units (Yosys synth_xilinx / synth_ice40, cell counts).

Prints, side by side in one run (popcount styles tree / lut6 / xilinx, hw.arith.POPCOUNT_STYLES):
* LUT6 per input bit of an N-input popcount, N = 64 / 256 / 1024 (CARRY4 and FF beside);
* LUT6 per lane of an N-lane XNOR-popcount with runtime weights (XNOR + its share of the tree);
* LUT6 per XNOR lane of a W1A1 matrix-vector unit (weights in ROM, thresholds, control);
* every arithmetic kind on the same layer shape and folding, with the int8 MAC baseline
  in LUTs and in DSPs.
Writes benchmarks/results/datapath_area.json. Reference points (DESIGN.md): FINN about
4.4 LUT6 per W1A1 lane; plain sum() about 2.2-2.4; LUT6 compressor trees about 1.4.

    python benchmarks/datapath_area.py [--quick]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


STYLES = ("tree", "lut6", "xilinx")  # hw.arith.POPCOUNT_STYLES, in the printed order


def popcount_verilog(n: int, style: str = "tree", xnor: bool = False) -> str:
    """Registered N-input popcount (or N-lane XNOR-popcount with runtime weights) probe."""
    from amaranth.back import verilog

    from hw.probes import PopcountBank

    return verilog.convert(PopcountBank([n], style, xnor=xnor, registered=True), name="popcount", emit_src=False)


def layer(kind: str, n_in: int, n_out: int, rng) -> "object":
    from quantmodels.ir import Layer

    spec = {"xnor_popcount": (1, 1), "accumulate": (4, 2), "shift_add": (4, 4), "bit_serial": (4, 4),
            "lut_product": (4, 3), "mac": (8, 8)}
    ib, wb = spec[kind]
    if kind == "xnor_popcount":
        w = rng.integers(0, 2, (n_out, n_in))
    elif kind == "accumulate":
        w = rng.integers(-1, 2, (n_out, n_in))
    elif kind == "shift_add":
        w = rng.choice([-1, 1], (n_out, n_in)) * (1 << rng.integers(0, wb - 1, (n_out, n_in)))
    elif kind == "lut_product":
        w = rng.integers(0, 1 << wb, (n_out, n_in))
    else:
        w = rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), (n_out, n_in))
    L = Layer(f"{kind}", kind, n_in, n_out, ib, wb, "threshold", w, output_bits=1,
              products=rng.integers(-40, 41, (1 << wb, 1 << ib)) if kind == "lut_product" else None)
    lo, hi = L.acc_range()
    L.thresholds = rng.integers(lo // 4, hi // 4 + 1, (n_out, 1))
    return L


def mvu_verilog(L, pe: int, simd: int, style: str = "tree") -> str:
    from amaranth.back import verilog

    from hw.folding import Folding, planes_for
    from hw.mvu import MatrixVectorUnit

    f = Folding(L.name, L.out_features, L.in_features, pe, simd, planes_for(L))
    return verilog.convert(MatrixVectorUnit(L, f, style), name="mvu", emit_src=False)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 1024-input popcount")
    args = ap.parse_args()

    from quantmodels.atomic import atomic_write_json
    from reports.synth import synthesize
    from sim.tools import tool_versions

    rng = np.random.default_rng(0)
    rows: dict = {"popcount": [], "xnor_popcount": [], "mvu_w1a1": [], "kinds": []}
    with tempfile.TemporaryDirectory() as tmp:
        sizes = (64, 256) if args.quick else (64, 256, 1024)
        for xnor in (False, True):
            what = "xnor-popcount (runtime weights), LUT6 per lane" if xnor else "popcount, LUT6 per input bit"
            print(f"{what} on synth_xilinx (target <= {'1.5' if xnor else '0.9'}); CARRY4 and FF beside")
            print(f"{'inputs':>7} " + " ".join(f"{st:>26}" for st in STYLES))
            for n in sizes:
                cells = []
                for style in STYLES:
                    p = Path(tmp) / f"pc{n}_{style}_{int(xnor)}.v"
                    p.write_text(popcount_verilog(n, style, xnor))
                    s = synthesize(p, "popcount", "xilinx")
                    row = {"style": style, "inputs": n, "xnor": xnor, "lut6": s.luts, "lut6_per_input": s.luts / n,
                           "carry4": s.carries, "ff": s.ffs, "cells": s.cells}
                    if not xnor:
                        i40 = synthesize(p, "popcount", "ice40")
                        row.update(ice40_lut4=i40.luts, ice40_lut4_per_input=i40.luts / n, ice40_carry=i40.carries)
                    rows["xnor_popcount" if xnor else "popcount"].append(row)
                    cells.append(f"{s.luts:5d} = {s.luts / n:4.2f}/in {s.carries:3d}C4 {s.ffs:4d}FF")
                print(f"{n:7d} " + " ".join(f"{c:>26}" for c in cells))
        for r in rows["popcount"]:
            print(f"  iCE40 popcount {r['style']:>6} {r['inputs']:5d}: {r['ice40_lut4_per_input']:.2f} LUT4/input "
                  f"({r['ice40_carry']} SB_CARRY)" + (" (xilinx cells synthesized from lowbit's models)"
                                                       if r["style"] == "xilinx" else ""))
        for style in STYLES:
            for pe, simd in ((4, 64), (16, 64)):
                L = layer("xnor_popcount", 256, 64, rng)
                p = Path(tmp) / f"mvu_{pe}_{simd}_{style}.v"
                p.write_text(mvu_verilog(L, pe, simd, style))
                s = synthesize(p, "mvu", "xilinx")
                lanes = pe * simd
                rows["mvu_w1a1"].append({"style": style, "pe": pe, "simd": simd, "lanes": lanes, "lut6": s.luts,
                                         "ff": s.ffs, "bram18": s.brams, "carry4": s.carries,
                                         "lut6_per_lane": s.luts / lanes})
                print(f"W1A1 MVU 256x64 {style:>6} pe={pe:2d} simd={simd}: {s.luts:6d} LUT6, {s.carries} CARRY4, "
                      f"{s.ffs} FF, {s.brams} BRAM18 = {s.luts / lanes:.2f} LUT6/lane  (FINN ~4.4)")
        print(f"{'kind':>14} {'bits WxA':>9} {'LUT6':>7} {'FF':>6} {'DSP':>4} {'LUT6 (no DSP)':>14} "
              f"{'cycles':>7} {'LUT6/lane':>9}")
        for kind in ("xnor_popcount", "accumulate", "shift_add", "bit_serial", "lut_product", "mac"):
            L = layer(kind, 64, 16, rng)
            p = Path(tmp) / f"{kind}.v"
            p.write_text(mvu_verilog(L, 4, 16))
            s = synthesize(p, "mvu", "xilinx")
            s_nodsp = synthesize(p, "mvu", "xilinx-nodsp") if kind == "mac" else s
            from hw.folding import planes_for

            cycles = (16 // 4) * (64 // 16) * planes_for(L)
            rows["kinds"].append({"kind": kind, "weight_bits": L.weight_bits, "input_bits": L.input_bits,
                                  "lut6": s.luts, "ff": s.ffs, "dsp": s.dsps, "lut6_nodsp": s_nodsp.luts,
                                  "cycles": cycles, "lut6_per_lane": s_nodsp.luts / 64})
            print(f"{kind:>14} {L.weight_bits:>4}x{L.input_bits:<4} {s.luts:7d} {s.ffs:6d} {s.dsps:4d} "
                  f"{s_nodsp.luts:14d} {cycles:7d} {s_nodsp.luts / 64:9.2f}")
    rows["tool_versions"] = tool_versions()
    rows["generated"] = time.strftime("%Y-%m-%d %H:%M:%S")
    out = REPO / "benchmarks/results/datapath_area.json"
    atomic_write_json(out, rows)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
