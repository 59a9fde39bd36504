"""Benchmark: what the int8 MAC's product register (hw.pipeline.core_stages ``product``) does on iCE40
and ECP5 -- the cause of the demo int8 baseline's growth from 14,185 to 38,806 iCE40 LUT4 when
products became registered under a target clock.

One PE of 8 int8 lanes (hw.arith.mac_products: the lane builder every mac core uses), its inputs
from an internal shift register fed by one pin (so it places on any package), its sum XOR-reduced to
one pin. Four variants: products registered or not, adder tree registered every 2 levels or not.
Each is synthesized (reports.synth: synth_ice40 with DSPs, synth_ecp5) and placed with nextpnr on a
part that has the 8 multipliers (iCE40 UP5K: 8 SB_MAC16; ECP5-25k), seed 1; fmax from nextpnr.

Each iCE40 netlist is also simulated (Verilator, Yosys's iCE40 cell models) against the probe's RTL on
2,000 cycles of random input: ``netlist_matches_rtl``. The registered-product netlists do not match
(Yosys 0.70's ice40_dsp drops products: hw.lanes.UNREGISTERED_DSP_PRODUCT_FAMILIES), so their LUT and
fmax figures describe a wrong circuit; ECP5 has no multiplier model to simulate (None).

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


TB = """`timescale 1ns/1ps
module tb;
  logic clk = 0, rst = 1, x = 0;
  wire yr, yn;
  probe rtl(.clk(clk), .rst(rst), .x(x), .y(yr));
  gate  net(.clk(clk), .rst(rst), .x(x), .y(yn));
  integer i, bad = 0;
  initial begin
    repeat (3) begin #5 clk = 1; #5 clk = 0; end
    rst = 0;
    for (i = 0; i < 2000; i++) begin
      x = $urandom;
      #5 clk = 1; #5 clk = 0;
      if (i > 200 && yr !== yn) bad++;
    end
    $display("MISMATCHES %0d", bad);
    $finish;
  end
endmodule
"""


def netlist_matches_rtl(rtl: Path, top: str, target: str, work: Path) -> bool | None:
    """Whether ``target``'s netlist of ``rtl`` computes what the RTL does (None: no cell models)."""
    from reports.gatelevel import CELL_MODELS, vendor_netlist
    from reports.synth import family
    from sim.tools import tool_env, verilator_bin_dir

    if family(target) not in CELL_MODELS:
        return None
    net = vendor_netlist(rtl, top, target).read_text().replace(f"module {top}(", "module gate(", 1)
    work.mkdir(parents=True, exist_ok=True)
    (work / "gate.v").write_text(net)
    (work / "tb.sv").write_text(TB)
    b = subprocess.run([str(verilator_bin_dir() / "verilator"), "--binary", "--timing", "-Wno-fatal", "-Wno-lint",
                    "-Wno-style", "--top-module", "tb", "--Mdir", str(work / "obj"), "-o", "tb", str(work / "tb.sv"),
                    str(rtl), str(work / "gate.v")], capture_output=True, text=True, timeout=1800,
                       env={**tool_env(), "CXXFLAGS": "--std=c++20"})  # the testbench's delays are coroutines
    if not (work / "obj" / "tb").exists():
        raise RuntimeError(f"verilator failed on the {target} netlist of {rtl.name}: {(b.stderr or b.stdout)[-800:]}")
    out = subprocess.run([str(work / "obj" / "tb")], capture_output=True, text=True, timeout=600).stdout
    return int(re.search(r"MISMATCHES (\d+)", out).group(1)) == 0


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
                           "ffs": s.ffs, "dsps": s.dsps, "fmax_mhz": float(f[-1]) if f else None,
                           "netlist_matches_rtl": netlist_matches_rtl(v, "probe", fam, Path(tmp) / f"sim-{v.stem}-{fam}")}
                    print(f"  {fam:5} products registered {reg!s:5} tree every {every}: {s.luts:4} LUT4 "
                          f"{s.ffs:4} FF {s.dsps} DSP  {row['fmax_mhz']} MHz  netlist = RTL: {row['netlist_matches_rtl']}", flush=True)
                    rows.append(row)
    doc = {"what": f"one mac PE, {LANES} int8 lanes (hw.arith.mac_products), synthesized and placed (nextpnr seed {SEED}) "
                   f"on iCE40 UP5K and ECP5-25k", "parts": PARTS, "rows": rows,
           "seconds": round(time.perf_counter() - t0, 1), "provenance": provenance(seed=SEED)}
    atomic_write_json(OUT, doc)
    print(f"results written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
