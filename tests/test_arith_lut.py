"""lut_product lanes (hw.arith.lut_product_lanes) on random product tables under the Amaranth simulator:
the logic table and the block-RAM product ROM both give the exact sum of P[w_i, x_i] for any table the
IR allows (any integers within +-2**24, any weight/input widths), combinational and registered."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.arith import lut_product_lanes, product_rom_style
from hw.memstyle import MemStyle


class Lanes(wiring.Component):
    """lut_product_lanes over ``lanes`` lanes, its sum on ``out``."""

    def __init__(self, table: np.ndarray, lanes: int, reg: bool, mem_style: str, every: int):
        self.table, self.lanes, self.reg, self.mem_style, self.every = table, lanes, reg, mem_style, every
        self.wb, self.ib = (table.shape[0] - 1).bit_length(), (table.shape[1] - 1).bit_length()
        super().__init__({"x": In(lanes * self.ib), "w": In(lanes * self.wb), "out": Out(signed(48))})

    def elaborate(self, platform):
        m = Module()
        s = lut_product_lanes(m, self.x, self.w, self.lanes, self.ib, self.wb, self.table, "t", self.every,
                              self.reg, self.mem_style)
        m.d.comb += self.out.eq(s)
        return m


def run_lanes(table: np.ndarray, xs: np.ndarray, ws: np.ndarray, reg: bool, mem_style: str = "auto",
              every: int = 0, latency: int = 0) -> list[int]:
    """Drive one (x, w) vector a cycle; return the sum seen ``latency`` cycles after each."""
    dut = Lanes(table, xs.shape[1], reg, mem_style, every)
    got: list[int] = []

    async def bench(ctx):
        n = len(xs)
        for t in range(n + latency):
            if t < n:
                ctx.set(dut.x, sum(int(a) << (i * dut.ib) for i, a in enumerate(xs[t])))
                ctx.set(dut.w, sum(int(c) << (i * dut.wb) for i, c in enumerate(ws[t])))
            if t >= latency:
                got.append(ctx.get(dut.out))
            await (ctx.tick() if reg else ctx.delay(1e-8))

    sim = Simulator(dut)
    if reg:  # a combinational design has no sync domain: the bench's ticks are its own
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


def golden(table: np.ndarray, xs: np.ndarray, ws: np.ndarray) -> list[int]:
    return [int(table[ws[t], xs[t]].sum()) for t in range(len(xs))]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wb=st.integers(1, 3), ib=st.integers(1, 4), lanes=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
       span=st.sampled_from([1, 40, 2**15, 2**24 - 1]))
def test_random_tables_every_path_bit_exact(wb, ib, lanes, seed, span):
    """The same random table and inputs through the combinational logic table, the registered logic
    table and the block-RAM product ROM (forced: the test tables are below the auto rule's size)."""
    rng = np.random.default_rng(seed)
    table = rng.integers(-span, span + 1, (1 << wb, 1 << ib))
    xs = rng.integers(0, 1 << ib, (6, lanes))
    ws = rng.integers(0, 1 << wb, (6, lanes))
    want = golden(table, xs, ws)
    assert run_lanes(table, xs, ws, reg=False) == want
    assert run_lanes(table, xs, ws, reg=True, latency=1) == want
    assert run_lanes(table, xs, ws, reg=True, mem_style="block", latency=2) == want  # ROM read + register


def test_product_rom_in_block_ram_with_tree_stages():
    """A digits-lut-sized table (64 codes x 16 levels x 16 bits: auto puts it in block RAM when the
    lookup is registered), 5 lanes (an odd lane alone on its ROM) and a registered adder tree."""
    rng = np.random.default_rng(3)
    table = rng.integers(-24000, 24001, (64, 16))
    assert product_rom_style("auto", 6, 4, 16, registered=True) is MemStyle.BLOCK
    assert product_rom_style("auto", 6, 4, 16, registered=False) is None  # no register to read into
    assert product_rom_style("auto", 2, 2, 8, registered=True) is None  # tiny: logic
    xs, ws = rng.integers(0, 16, (20, 5)), rng.integers(0, 64, (20, 5))
    # 5 terms, every level registered: levels 3, stages after levels 1 and 2 -> 2 + 2 (the ROM read and
    # its register: hw.arith.lut_product_stages)
    assert run_lanes(table, xs, ws, reg=True, every=1, latency=4) == golden(table, xs, ws)


@pytest.mark.slow  # two ecp5 syntheses: about 2.5 min on the shared machine
@pytest.mark.yosys
def test_product_rom_maps_to_block_ram(tmp_path):
    """Synthesized (real Yosys, ecp5): 4 lanes of a 64 x 16 x 16-bit table take 2 DP16KD (2 lanes a
    dual-port block) and few LUTs, where the registered logic table is hundreds of LUT4 a lane."""
    from amaranth.back import verilog

    from reports.synth import synthesize

    table = np.random.default_rng(1).integers(-24000, 24001, (64, 16))

    def area(style: str):
        dut = Lanes(table, 4, True, style, 0)
        v = tmp_path / f"lanes_{style}.v"
        v.write_text(verilog.convert(dut, name="lanes"))
        return synthesize(v, "lanes", "ecp5")

    rom, logic = area("auto"), area("logic")
    assert rom.brams == 2 and rom.luts < 200, (rom.brams, rom.luts)
    assert logic.brams == 0 and logic.luts > 4 * 300, logic.luts


@pytest.mark.slow  # training + a Verilator build: 4.6 min on the loaded shared machine
@pytest.mark.verilator
def test_product_roms_bit_exact_on_digits_under_back_pressure(tmp_path):
    """The lut method trained on the 8x8 digits (64 weight codes: its tables are 1,024-2,048 words, so
    a target clock puts them in block-RAM product ROMs), pipelined for 125 MHz on ECP5: bit-exact on
    real test images under Verilator, with and without out_ready stalls, interval and latency = model."""
    from lowbit.steps import make_hardware
    from quantmodels.datasets import load_digits
    from quantmodels.train import TrainConfig, train

    from conftest import assert_bit_exact_under_stalls

    d = load_digits()
    model = train(TrainConfig(method="lut", hidden=(16,), epochs=3, seed=0, progress=False), d).model
    fc0 = model.layers[0]
    width = max(int(np.abs(fc0.products).max()).bit_length() + 1, 2)
    assert product_rom_style("auto", fc0.weight_bits, fc0.input_bits, width, registered=True) is MemStyle.BLOCK
    h = make_hardware(model, "fc0:pe=2,simd=8;fc1:pe=2,simd=8", tmp_path, clock_mhz=125, family="ecp5")
    assert "pe0_prom0" in h.verilog.read_text()  # the product ROMs are in the design
    assert_bit_exact_under_stalls(model, h, d.x_test[:200], d.y_test[:200], stall_pct=30)
