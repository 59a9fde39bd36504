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


# networks through the harness/regression path; folds give odd lane counts (3, 5, 20)
@pytest.mark.parametrize("kind, fold", [("xnor", "fc0:pe=2,simd=20;fc1:pe=4,simd=3"),
                                        ("bit_serial", "fc0:pe=2,simd=3;fc1:pe=1,simd=6")])
def test_network_xilinx_popcount_verilator(kind, fold, tmp_path):
    from conftest import random_kind_model, random_xnor_model
    from lowbit.flow import make_hardware, simulate
    from quantmodels.golden import golden_forward

    model = random_xnor_model((40, 12, 4), seed=7) if kind == "xnor" else random_kind_model("bit_serial")
    rng = np.random.default_rng(8)
    shape = (300, model.input.features)
    x = (rng.integers(0, 256, shape) * (rng.random(shape) < 0.5)).astype(np.uint8)
    assert len(np.unique(golden_forward(model, x).classes)) > 1
    h = make_hardware(model, fold, tmp_path, popcount="xilinx")
    assert "LUT6_2" in instantiated(h.verilog.read_text())
    r = simulate(model, h, x, None, stall_pct=20)
    assert r.n_images == 300 and r.mismatches == 0, f"first mismatch at {r.first_bad}"


def test_cell_models_lint_clean(tmp_path):
    """verilator --lint-only -Wall: lowbit's LUT6_2/CARRY4 models and the harness, no warning."""
    from conftest import random_xnor_model
    from lowbit.flow import make_hardware
    from sim.lint import lint_harness

    h = make_hardware(random_xnor_model((20, 6, 4)), None, tmp_path, popcount="xilinx")
    assert lint_harness(h.verilog, h.ports) == []


@pytest.mark.yosys
def test_synthesis_keeps_cells_on_xilinx_and_maps_models_elsewhere(tmp_path):
    """synth_xilinx keeps every instantiated LUT6_2/CARRY4 (ABC cannot re-map them); iCE40 and
    generic synthesis build the same cells from lowbit's models as plain logic."""
    import re

    from reports.synth import synthesize

    text = verilog.convert(PopcountBank([100], "xilinx", registered=True), name="pc", emit_src=False)
    n_lut = len(re.findall(r"^\s*LUT6_2\s", text, re.M))
    n_carry = len(re.findall(r"^\s*CARRY4\s", text, re.M))
    p = tmp_path / "pc.v"
    p.write_text(text)
    x = synthesize(p, "pc", "xilinx", use_cache=False)
    assert x.cells.get("LUT6_2") == n_lut and x.carries == n_carry > 0
    assert x.luts == n_lut  # nothing else in the tree: the cells are the whole popcount
    assert x.luts < 0.9 * 100
    for target in ("ice40", "generic"):
        s = synthesize(p, "pc", target, use_cache=False)
        assert s.luts > 0 and not any(c in s.cells for c in PRIMITIVES), s.cells


def test_models_added_only_for_instantiated_cells():
    from sim.build import with_models

    plain = "module a(input x, output y);\n  assign y = x;\nendmodule\n"
    cells = "module b(input x, output y);\n  LUT6_2 #(\n    .INIT(64'h1)\n  ) u (.I0(x), .O6(y));\nendmodule\n"
    assert instantiated(plain) == [] and with_models({"dut.v": plain}) == {"dut.v": plain}
    assert instantiated(cells) == ["LUT6_2"]
    srcs = with_models({"dut.v": cells})
    assert list(srcs) == ["dut.v", "LUT6_2.v"] and "module LUT6_2" in srcs["LUT6_2.v"]
