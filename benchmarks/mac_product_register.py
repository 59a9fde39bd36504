"""Benchmark: what the int8 MAC's product register (hw.pipeline.core_stages ``product``) does on iCE40
and ECP5 -- the cause of the demo int8 baseline's growth from 14,185 to 38,806 iCE40 LUT4 when
products became registered under a target clock.

One PE of 8 int8 lanes (hw.arith.mac_products: the lane builder every mac core uses), its inputs
from an internal shift register fed by one pin (so it places on any package), its sum XOR-reduced to
one pin. Four variants: products registered or not, adder tree registered every 2 levels or not.
Each is synthesized (reports.synth: synth_ice40 with DSPs, synth_ecp5) and placed with nextpnr on a
part that has the 8 multipliers (iCE40 UP5K: 8 SB_MAC16; ECP5-25k), seed 1; fmax from nextpnr.

Results: benchmarks/results/mac_product_register.json (provenance: commit, tool versions), written
atomically.

    python benchmarks/mac_product_register.py
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "results" / "mac_product_register.json"
LANES, IN_BITS, W_BITS = 8, 8, 8
#: (family, nextpnr device arguments): parts with at least LANES multipliers
PARTS = {"ice40": ["--up5k", "--package", "sg48"], "ecp5": ["--25k"]}
SEED = 1


def probe(reg_products: bool, tree_every: int):
    """The one-PE probe as a wiring.Component (amaranth imported here, not at module import)."""
    from amaranth.hdl import Cat, Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hw.arith import mac_products

    class Probe(wiring.Component):
        def __init__(self):
            super().__init__({"x": In(1), "y": Out(1)})

        def elaborate(self, platform):
            m = Module()
            xr, wr = Signal(LANES * IN_BITS), Signal(LANES * W_BITS)
            m.d.sync += [xr.eq(Cat(self.x, xr[:-1])), wr.eq(Cat(xr[-1], wr[:-1]))]
            acc = mac_products(m, xr, wr, LANES, IN_BITS, W_BITS, "pe", tree_every, reg_products)
            r = Signal(len(acc))
            m.d.sync += [r.eq(acc), self.y.eq(r.xor())]
            return m

    return Probe()


def main() -> int:
    from amaranth.back import verilog

    from quantmodels.atomic import atomic_write_json
    from reports.synth import synthesize
    from sim.provenance import provenance
    from sim.tools import nextpnr_cmd

    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="macreg-") as tmp:
        for reg in (False, True):
            for every in (0, 2):
                v = Path(tmp) / f"mac_reg{int(reg)}_e{every}.v"
                v.write_text(verilog.convert(probe(reg, every), name="probe", emit_src=False))
                for fam, part in PARTS.items():
                    s = synthesize(v, "probe", fam)
                    p = subprocess.run(nextpnr_cmd(fam) + part + ["--json", str(s.netlist_json), "--freq", "12",
                                                                  "--seed", str(SEED)],
                                       capture_output=True, text=True, timeout=1800)
                    f = re.findall(r"Max frequency for clock[^:]*: ([0-9.]+) MHz", p.stderr)
                    row = {"family": fam, "products_registered": reg, "tree_every": every, "luts": s.luts,
                           "ffs": s.ffs, "dsps": s.dsps, "fmax_mhz": float(f[-1]) if f else None}
                    print(f"  {fam:5} products registered {reg!s:5} tree every {every}: {s.luts:4} LUT4 "
                          f"{s.ffs:4} FF {s.dsps} DSP  {row['fmax_mhz']} MHz", flush=True)
                    rows.append(row)
    doc = {"what": f"one mac PE, {LANES} int8 lanes (hw.arith.mac_products), synthesized and placed (nextpnr seed {SEED}) "
                   f"on iCE40 UP5K and ECP5-25k", "parts": PARTS, "rows": rows,
           "seconds": round(time.perf_counter() - t0, 1), "provenance": provenance(seed=SEED)}
    atomic_write_json(OUT, doc)
    print(f"results written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
