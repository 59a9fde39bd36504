"""FPGA-grade hardware (issue 18): weights in the fewest bits, memory styles, padding."""
from __future__ import annotations

import re

import numpy as np
import pytest

from hw.folding import parse_folding
from hw.memstyle import MemStyle, parse_mem_style, resolve
from hw.mvu import MatrixVectorCore, weight_code_bits
from hw.network import NetworkTop
from hw.verilog import generate_verilog
from quantmodels.errors import ConfigError
from quantmodels.golden import accumulate, golden_forward
from reports.memory import model_memory

from conftest import random_kind_model, random_xnor_model
from test_hw import simulate_amaranth


def binary_weight_model(sizes=(24, 8, 4), seed=3):
    """accumulate layers with weights +-1 only (BinaryConnect-style W1 x A2), thresholds re-drawn
    from the real accumulator so every output level occurs."""
    m = random_kind_model("accumulate", sizes=sizes, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (400, sizes[0])) * (rng.random((400, sizes[0])) < 0.5)
    for L in m.layers:
        L.weights = np.where(L.weights < 0, -1, 1).astype(np.int64)
        if L.output == "threshold":
            acc = accumulate(L, x)
            q = np.linspace(0, 1, (1 << L.output_bits) + 1)[1:-1]
            L.thresholds = np.ceil(np.quantile(acc, q, axis=0).T).astype(np.int64)
            x = (acc[:, :, None] >= L.thresholds[None]).sum(2)
    return m.validate()


def test_binary_weights_take_one_bit_in_rom_and_memory_report():
    m = binary_weight_model()
    ternary = random_kind_model("accumulate", sizes=(24, 8, 4), seed=3)
    assert (ternary.layers[0].weights == 0).any()  # the control keeps 2-bit codes
    for L, T in zip(m.layers, ternary.layers):
        assert weight_code_bits(L) == 1 and weight_code_bits(T) == 2
    mem, tmem = model_memory(m), model_memory(ternary)
    assert mem.layers[0].weight_bits == 24 * 8 * 1 and tmem.layers[0].weight_bits == 24 * 8 * 2
    f = parse_folding(m, "fc0:pe=4,simd=6;fc1:pe=2,simd=4")[0]
    core = MatrixVectorCore(m.layers[0], f)
    core._MustUse__silence = True  # only its ROM contents are read here
    rom = core.weight_rom()
    assert len(rom) == 2 * 4 and max(rom) < 1 << (4 * 6)  # 24 lanes x 1 bit per word
    # code 1 = -1: the first weight of the first word is weight (0, 0)
    assert rom[0] & 1 == int(m.layers[0].weights[0, 0] < 0)


@pytest.mark.parametrize("spec", [None, "fc0:pe=4,simd=6;fc1:pe=2,simd=4"])  # folded and automatic
def test_binary_weights_bit_exact_amaranth_sim(spec):
    m = binary_weight_model()
    x = np.random.default_rng(7).integers(0, 256, (10, 24)).astype(np.uint8)
    classes, logits = simulate_amaranth(m, parse_folding(m, spec), x)
    gold = golden_forward(m, x)
    np.testing.assert_array_equal(logits, gold.logits)
    np.testing.assert_array_equal(classes, gold.classes)


@pytest.mark.verilator
def test_binary_weights_bit_exact_verilator(tmp_path):
    from lowbit.steps import make_hardware, simulate

    m = binary_weight_model()
    rng = np.random.default_rng(12)
    x = (rng.integers(0, 256, (300, 24)) * (rng.random((300, 24)) < 0.5)).astype(np.uint8)
    h = make_hardware(m, "fc0:pe=4,simd=6;fc1:pe=2,simd=4", tmp_path)
    r = simulate(m, h, x, None, stall_pct=20)
    assert r.n_images == 300 and r.mismatches == 0, f"first mismatch at {r.first_bad}"
    assert len(set(golden_forward(m, x).classes.tolist())) > 1


# ----------------------------------------------------------------------------- memory styles


def test_mem_style_rules_and_errors():
    assert resolve("auto", 196, 256) is MemStyle.BLOCK  # TFC fc0 at the sweep folding
    assert resolve("auto", 4, 64) is None  # shallow: the tool's choice (LUTs)
    assert resolve("logic", 196, 256) is MemStyle.LOGIC
    with pytest.raises(ConfigError, match=r"^--mem-style: 'bram', expected one of auto, block, distributed, logic$"):
        parse_mem_style("bram")
    m = random_xnor_model()
    with pytest.raises(ConfigError, match=r"^--mem-style: 'fast', expected one of auto, block, distributed, logic$"):
        NetworkTop(m, parse_folding(m, None), mem_style="fast")


@pytest.mark.parametrize("style", ["block", "distributed", "logic"])
def test_mem_style_attributes_in_verilog(style, tmp_path):
    m = random_xnor_model((32, 16, 4))
    d = generate_verilog(m, parse_folding(m, "pe=1,simd=2"), tmp_path, mem_style=style)
    text = open(d.verilog_path).read()
    n = len(re.findall(rf'\(\* .*rom_style = "{style}"', text))
    assert n >= 3  # two weight ROMs and the threshold ROM of fc0
    assert d.mem_style == style and d.rom_styles[0] == [style, style]


@pytest.mark.parametrize("style", ["auto", "block", "logic"])  # block: the synchronous threshold ROM
@pytest.mark.parametrize("spec", ["pe=1,simd=2", "fc0:pe=16,simd=32;fc1:pe=1,simd=16"])  # deep, one fold
def test_mem_style_bit_exact_amaranth_sim(style, spec):
    m = random_xnor_model((32, 16, 4), seed=2)
    x = np.random.default_rng(1).integers(0, 256, (8, 32)).astype(np.uint8)
    gold = golden_forward(m, x)
    classes, logits = simulate_amaranth(m, parse_folding(m, spec), x, mem_style=style)
    np.testing.assert_array_equal(logits, gold.logits)
    np.testing.assert_array_equal(classes, gold.classes)
