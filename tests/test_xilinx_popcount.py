"""Popcount style "xilinx" (explicit LUT6_2 + CARRY4 cells): bit-exact under Verilator with
lowbit's own cell models, refused/handled per target, measured on synth_xilinx."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog

from hw.probes import PopcountBank
from hw.xilinx_cells import PRIMITIVES
from sim.comb import run_vectors
from sim.primitives import available, instantiated

pytestmark = pytest.mark.verilator

# widths: 1 and 2 (degenerate), non-multiples of 3/6/7, a multiple of 7, 64 and 256
POPCOUNT_SIZES = [1, 2, 3, 5, 13, 14, 47, 64, 256]
XNOR_SIZES = [1, 2, 7, 20, 64, 256]


def random_fields(sizes: list[int], xnor: list[bool], n: int, rng) -> list[list[int]]:
    """Per vector, per unit: its input field. Densities vary per vector (0 and 1 included):
    the fraction of ones, or for xnor units the fraction of disagreeing (x, w) lanes."""
    dens = np.concatenate([[0.0, 1.0], rng.choice([0.05, 0.5, 0.95], n - 2)])
    rows = []
    for d in dens:
        row = []
        for size, xn in zip(sizes, xnor):
            bits = int("".join("1" if b else "0" for b in rng.random(size) < d) or "0", 2)
            if xn:
                x = int(rng.integers(0, 2, size).dot(1 << np.arange(size, dtype=object)))
                row.append(x | ((x ^ bits) << size))  # w = x ^ disagreement mask
            else:
                row.append(bits)
        rows.append(row)
    return rows


def pack(fields: list[int], widths: list[int]) -> int:
    word, pos = 0, 0
    for f, w in zip(fields, widths):
        word |= f << pos
        pos += w
    return word


def unpack(word: int, widths: list[int]) -> list[int]:
    out = []
    for w in widths:
        out.append(word & ((1 << w) - 1))
        word >>= w
    return out


def count(field: int, size: int, xnor: bool) -> int:
    """Reference: ones, or agreeing lanes of an (x, w) field."""
    if xnor:
        field = ~(field ^ (field >> size)) & ((1 << size) - 1)
    return bin(field).count("1")


def test_xilinx_popcount_bit_exact_verilator():
    """Plain and xnor popcounts of every size in one design (one Verilator build)."""
    sizes = POPCOUNT_SIZES + XNOR_SIZES
    xnor = [False] * len(POPCOUNT_SIZES) + [True] * len(XNOR_SIZES)
    bank = PopcountBank(sizes, "xilinx", xnor=xnor)
    text = verilog.convert(bank, name="pcbank", emit_src=False)
    assert set(instantiated(text)) == {"LUT6_2", "CARRY4"}
    rng = np.random.default_rng(17)
    fields = random_fields(sizes, xnor, 300, rng)
    words = [pack(f, bank.in_widths) for f in fields]
    got = np.array([unpack(y, bank.out_widths) for y in run_vectors(text, "pcbank", words)])
    exp = np.array([[count(f, n, xn) for f, n, xn in zip(row, sizes, xnor)] for row in fields])
    np.testing.assert_array_equal(got, exp)
    for k, n in enumerate(sizes):  # every unit saw its extremes and varied counts in between
        assert exp[:, k].min() == 0 and exp[:, k].max() == n, (n, xnor[k])
    assert len(np.unique(exp[:, len(POPCOUNT_SIZES) - 1])) > 10


def test_every_instantiated_cell_has_a_model():
    assert set(PRIMITIVES) <= set(available())
