"""Benchmark: measured area of the datapath units (Yosys synth_xilinx / synth_ice40, cell counts).

Prints, side by side in one run (popcount styles tree / lut6 / xilinx, hw.arith.POPCOUNT_STYLES):
* LUT6 per input bit of an N-input popcount, N = 64 / 256 / 1024 (CARRY4 and FF beside);
* LUT6 per lane of an N-lane XNOR-popcount with runtime weights (XNOR + its share of the tree);
* LUT6 per XNOR lane of a W1A1 matrix-vector unit (weights in ROM, thresholds, control);
* every arithmetic kind on the same layer shape and folding, with the int8 MAC baseline
  in LUTs and in DSPs;
* a conv layer (W1A1 and ternary accumulate; 16x16x8 input, 16 channels 3x3, padding 1,
  max-pool 2) as a ConvolutionUnit, next to the same weight matrix as a dense unit (the shared
  datapath alone) and to a random-access patch mux (image register + positions:1 mux per
  patch bit), the windowing scheme the shift registers replace.
Writes benchmarks/results/datapath_area.json. Reference points (DESIGN.md): FINN about
4.4 LUT6 per W1A1 lane; plain sum() about 2.2-2.4; LUT6 compressor trees about 1.4.

    python benchmarks/datapath_area.py [--quick] [--conv-only]
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


#: (input_bits, weight_bits) of each kind's probe layer
PROBE_BITS = {"xnor_popcount": (1, 1), "accumulate": (4, 2), "shift_add": (4, 4), "bit_serial": (4, 4),
              "lut_product": (4, 3), "mac": (8, 8)}


def layer(kind: str, n_in: int, n_out: int, rng) -> "object":
    from reports.estimator import probe_layer

    return probe_layer(kind, n_in, n_out, *PROBE_BITS[kind], rng, name=kind)


def mvu_verilog(L, pe: int, simd: int, style: str = "tree") -> str:
    from amaranth.back import verilog

    from hw.folding import Folding, planes_for
    from hw.mvu import MatrixVectorUnit

    f = Folding(L.name, L.out_features, L.in_features, pe, simd, planes_for(L))
    return verilog.convert(MatrixVectorUnit(L, f, style), name="mvu", emit_src=False)


def conv_layer(kind: str, rng, in_shape=(16, 16, 8), channels: int = 16, pool=(2, 2)):
    """A 3x3 padding-1 conv layer of ``kind`` with ascending random thresholds."""
    from quantmodels.ir import ConvSpec, Layer

    conv = ConvSpec(in_shape, (3, 3), 1, 1, pool)
    xnor = kind == "xnor_popcount"
    ib, wb, ob = (1, 1, 1) if xnor else (2, 2, 2)
    w = rng.integers(0, 2, (channels, conv.patch)) if xnor else rng.integers(-1, 2, (channels, conv.patch))
    ph, pw = conv.out_hw
    L = Layer(f"conv_{kind}", kind, int(np.prod(in_shape)), ph * pw * channels, ib, wb, "threshold", w,
              output_bits=ob, conv=conv)
    lo, hi = L.acc_range()
    L.thresholds = np.sort(rng.integers(lo // 4, hi // 4 + 1, (channels, (1 << ob) - 1)), axis=1)
    return L


def conv_verilog(L, pe: int, simd: int) -> str:
    from amaranth.back import verilog

    from hw.conv import ConvolutionUnit
    from hw.folding import Folding, planes_for

    f = Folding(L.name, L.rows, L.cols, pe, simd, planes_for(L), L.positions)
    return verilog.convert(ConvolutionUnit(L, f), name="conv", emit_src=False)


def as_dense(L):
    """The conv layer's weight matrix as a dense layer: the shared datapath without windowing."""
    from dataclasses import replace

    return replace(L, in_features=L.cols, out_features=L.rows, conv=None)


def patch_mux_verilog(L) -> str:
    """Alternative windowing, for comparison only: image register + a positions:1 mux per patch bit."""
    from amaranth.back import verilog
    from amaranth.hdl import Array, Cat, Const, Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    c = L.conv
    h, w, ch = c.in_shape
    kh, kw = c.kernel
    oh, ow = c.conv_hw
    ib, p, s = L.input_bits, c.padding, c.stride

    class PatchMux(wiring.Component):
        def __init__(self):
            super().__init__({"img": In(h * w * ch * ib), "load": In(1), "pos": In(range(oh * ow)),
                              "patch": Out(L.cols * ib)})

        def elaborate(self, platform):
            m = Module()
            reg = Signal(h * w * ch * ib)
            with m.If(self.load):
                m.d.sync += reg.eq(self.img)

            def px(y, x):
                if 0 <= y < h and 0 <= x < w:
                    i = (y * w + x) * ch * ib
                    return reg[i:i + ch * ib]
                return Const(0, ch * ib)

            patches = [Cat(*[px(oy * s - p + ky, ox * s - p + kx) for ky in range(kh) for kx in range(kw)])
                       for oy in range(oh) for ox in range(ow)]
            m.d.sync += self.patch.eq(Array(patches)[self.pos])
            return m

    return verilog.convert(PatchMux(), name="patchmux", emit_src=False)


def conv_rows(tmp: str) -> list[dict]:
    """Conv units vs the dense datapath alone vs a patch-mux window, synth_xilinx and synth_ice40."""
    from reports.synth import synthesize

    rng = np.random.default_rng(1)
    out = []
    print(f"{'conv 16x16x8 -> 16 ch 3x3 p1 pool2':>40} {'LUT6':>7} {'FF':>6} {'iCE40 LUT4':>10} {'FF':>6} {'cycles':>7}")
    for kind in ("xnor_popcount", "accumulate"):
        L = conv_layer(kind, rng)
        pe, simd = 4, 24
        cycles = L.positions * (L.rows // pe) * (L.cols // simd)
        for what, text, top in (("conv unit", conv_verilog(L, pe, simd), "conv"),
                                ("dense datapath alone", mvu_verilog(as_dense(L), pe, simd), "mvu"),
                                ("patch mux (alternative)", patch_mux_verilog(L), "patchmux")):
            path = Path(tmp) / f"{kind}_{top}.v"
            path.write_text(text)
            x, i40 = synthesize(path, top, "xilinx"), synthesize(path, top, "ice40")
            out.append({"kind": kind, "unit": what, "pe": pe, "simd": simd, "image_bits": L.in_features * L.input_bits,
                        "lut6": x.luts, "ff": x.ffs, "bram18": x.brams, "ice40_lut4": i40.luts, "ice40_ff": i40.ffs,
                        "cycles": cycles if top != "patchmux" else None})
            print(f"{kind + ' ' + what:>40} {x.luts:7d} {x.ffs:6d} {i40.luts:10d} {i40.ffs:6d} "
                  f"{cycles if top != 'patchmux' else '':>7}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 1024-input popcount")
    ap.add_argument("--conv-only", action="store_true",
                    help="only the conv section (merged into the existing results file)")
    args = ap.parse_args()
    from sim.provenance import provenance

    prov = provenance(seed=None)  # before the run: the code the figures were measured with
    out = REPO / "benchmarks/results/datapath_area.json"
    if args.conv_only:
        import json

        from quantmodels.atomic import atomic_write_json

        rows = json.loads(out.read_text()) if out.exists() else {}
        with tempfile.TemporaryDirectory() as tmp:
            rows["conv"] = conv_rows(tmp)
        rows["conv_provenance"] = prov
        atomic_write_json(out, rows)
        print(f"written {out}")
        return 0

    from quantmodels.atomic import atomic_write_json
    from reports.synth import synthesize

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
        rows["conv"] = conv_rows(tmp)
    rows["provenance"] = prov
    rows["generated"] = time.strftime("%Y-%m-%d %H:%M:%S")
    atomic_write_json(out, rows)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
