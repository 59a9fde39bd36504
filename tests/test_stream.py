"""hw.stream: the chunk-stream gearbox alone, under random valid gaps and back-pressure (Amaranth's
simulator; the networks built from it run under Verilator in test_hw/test_conv/test_fpga_hw)."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.stream import ChunkShape, WidthConverter
from quantmodels.errors import ConfigError


def clocked(dut) -> Module:
    """``dut`` with a sync domain even when it is only wires (a pass-through converter)."""
    m = Module()
    m.submodules.dut = dut
    tick = Signal()
    m.d.sync += tick.eq(~tick)
    return m


def chunks_of(vec: list[int], k: int, bits: int, rng, garbage: bool) -> list[int]:
    """``vec`` in chunks of ``k`` elements packed LSB first; the padded places of the last chunk
    random (a PE-padded producer) or zero (what a consumer expects)."""
    out = []
    for s in range(0, len(vec), k):
        part = vec[s:s + k]
        pad = [int(rng.integers(0, 1 << bits)) if garbage else 0 for _ in range(k - len(part))]
        out.append(sum(v << (i * bits) for i, v in enumerate(part + pad)))
    return out


def run_converter(n: int, a: int, b: int, bits: int, vectors: int, seed: int) -> tuple[list[int], list[int], int]:
    """Stream ``vectors`` random vectors through WidthConverter(n, a, b, bits) with the producer
    idle 30 % and the consumer not ready 40 % of the cycles; returns (received, expected, cycles)."""
    dut = WidthConverter(n, a, b, bits)
    rng = np.random.default_rng(seed)
    vecs = [[int(v) for v in rng.integers(0, 1 << bits, n)] for _ in range(vectors)]
    send = [c for v in vecs for c in chunks_of(v, a, bits, rng, garbage=True)]
    want = [c for v in vecs for c in chunks_of(v, b, bits, rng, garbage=False)]
    got: list[int] = []
    cycles = [0]

    async def bench(ctx):
        i = 0
        while len(got) < len(want) and cycles[0] < 20000:
            offer = i < len(send) and rng.random() < 0.7
            ctx.set(dut.in_valid, offer)
            ctx.set(dut.in_data, send[i] if i < len(send) else 0)
            ctx.set(dut.out_ready, bool(rng.random() < 0.6))
            took = offer and ctx.get(dut.in_ready)
            if ctx.get(dut.out_valid) and ctx.get(dut.out_ready):
                got.append(ctx.get(dut.out_data))
            await ctx.tick()
            cycles[0] += 1
            i += bool(took)

    sim = Simulator(clocked(dut))
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, want, cycles[0]


# n: real elements per vector; a: producer chunk (PE); b: consumer chunk (SIMD); kind it selects
@pytest.mark.parametrize("n, a, b, kind", [
    (12, 4, 4, "pass"),      # same chunking, nothing padded: wires
    (10, 4, 4, "pass"),      # same chunking, last chunk masked (2 garbage places dropped, 2 zeros added)
    (10, 10, 3, "split"),    # a whole vector into 4 chunks, the last zero-padded
    (47, 47, 3, "split"),    # 16 chunks: groups of 4 behind a register, the last chunk padded
    (97, 97, 2, "split"),    # 49 chunks (the SFC's 784 pixels at simd=16): 7 groups of 8, the last group 1 chunk
    (10, 4, 10, "collect"),  # 3 PE chunks (2 places padded) into one vector
    (10, 4, 6, "gear"),      # PE 4 -> SIMD 6, both padded
    (11, 6, 4, "gear"),      # wider to narrower, both padded
    (12, 3, 5, "gear"),      # coprime chunks
    (16, 6, 4, "gear"),      # not dividing, producer padded
    (12, 3, 6, "up"),        # dividing, no padding
    (10, 4, 8, "up"),        # PE 4 -> SIMD 8: producer padded (2 places), consumer padded, last output 1 of 2 slots
    (13, 2, 6, "up"),        # both padded, last output chunk 1 slot of 3
    (17, 1, 4, "up"),        # PE 1 -> SIMD 4 (the SFC's fc2 -> fc3 shape), consumer padded
    (16, 8, 2, "down"),      # dividing, no padding
    (14, 6, 3, "down"),      # dividing, producer padded (2 places), consumer not
    (13, 6, 2, "down"),      # dividing, both padded
])
def test_converter_bit_exact_under_back_pressure(n, a, b, kind):
    c = WidthConverter(n, a, b, 3)
    assert c.kind == kind
    c._MustUse__silence = True
    got, want, _ = run_converter(n, a, b, 3, vectors=12, seed=n * 100 + a * 10 + b)
    assert len(got) == len(want)
    assert got == want


@pytest.mark.parametrize("n, a, b", [(10, 4, 6), (10, 10, 3), (97, 97, 2), (12, 4, 4), (13, 6, 2), (10, 4, 8), (13, 2, 6)])
def test_converter_full_rate_when_both_sides_ready(n, a, b):
    """Always valid, always ready: the measured cycles per vector are the converter's ``interval``."""
    dut = WidthConverter(n, a, b, 2)
    rng = np.random.default_rng(1)
    vecs = 20
    send = [c for _ in range(vecs) for c in chunks_of([int(v) for v in rng.integers(0, 4, n)], a, 2, rng, True)]
    times: list[int] = []

    async def bench(ctx):
        i, t = 0, 0
        while len(times) < vecs * dut.dst.chunks and t < 5000:
            ctx.set(dut.in_valid, i < len(send))
            ctx.set(dut.in_data, send[i] if i < len(send) else 0)
            ctx.set(dut.out_ready, 1)
            took = i < len(send) and ctx.get(dut.in_ready)
            if ctx.get(dut.out_valid):
                times.append(t)
            await ctx.tick()
            t += 1
            i += bool(took)

    sim = Simulator(clocked(dut))
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    k = dut.dst.chunks
    last = times[k - 1::k]  # the cycle each vector's last chunk leaves
    assert (last[-1] - last[4]) / (vecs - 5) == dut.interval


def test_chunk_shape_and_bad_sizes():
    s = ChunkShape(784, 64)
    assert (s.chunks, s.last) == (13, 16)
    with pytest.raises(ConfigError, match=r"^chunk stream: n=0, chunk=4, expected both >= 1$"):
        WidthConverter(0, 4, 4, 1)
