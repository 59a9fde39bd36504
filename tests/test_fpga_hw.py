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

from conftest import ALL_KINDS, random_kind_model, random_xnor_model
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
    rom = "logic" if style == "distributed" else style  # a distributed ROM is LUTs (hw.memstyle)
    n = len(re.findall(rf'\(\* .*rom_style = "{rom}"', text))
    assert n >= 3  # two weight ROMs and the threshold ROM of fc0
    assert d.mem_style == style and d.rom_styles[0] == [style, style]
    # the input banks (written): LUT-RAM for distributed and for block (a forced block is for the ROMs;
    # the small banks take auto's LUT-RAM), flip-flops for logic
    bank = "logic" if style == "logic" else "distributed"
    assert len(re.findall(rf'\(\* .*ram_style = "{bank}"', text)) >= 2


@pytest.mark.parametrize("style", ["auto", "block", "logic"])  # block: the synchronous threshold ROM
@pytest.mark.parametrize("spec", ["pe=1,simd=2", "fc0:pe=16,simd=32;fc1:pe=1,simd=16"])  # deep, one fold
def test_mem_style_bit_exact_amaranth_sim(style, spec):
    m = random_xnor_model((32, 16, 4), seed=2)
    x = np.random.default_rng(1).integers(0, 256, (8, 32)).astype(np.uint8)
    gold = golden_forward(m, x)
    classes, logits = simulate_amaranth(m, parse_folding(m, spec), x, mem_style=style)
    np.testing.assert_array_equal(logits, gold.logits)
    np.testing.assert_array_equal(classes, gold.classes)


# ----------------------------------------------------------------------------- padding
# every kind of the registry, with a PE and a SIMD that divide neither dimension of either layer


def _padded_kind_model(kind):
    m = random_kind_model(kind, sizes=(12, 6, 3), seed=4)
    for L in m.layers:  # lut_product pads only with a code whose product with level 0 is 0
        if L.products is not None and not (L.products[:, 0] == 0).any():
            L.products[1, 0] = 0
    return m.validate()


PAD_SPEC = "fc0:pe=4,simd=5;fc1:pe=2,simd=4"  # fc0 6x12 -> 8x15, fc1 3x6 -> 4x8


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_padding_bit_exact_amaranth_sim(kind):
    m = _padded_kind_model(kind)
    folds = parse_folding(m, PAD_SPEC)
    assert [f.cycles for f in folds] == [2 * 3 * folds[0].planes, 2 * 2 * folds[1].planes]  # ceil folds
    x = np.random.default_rng(9).integers(0, 256, (10, 12)).astype(np.uint8)
    classes, logits = simulate_amaranth(m, folds, x, max_cycles=40000)
    gold = golden_forward(m, x)
    np.testing.assert_array_equal(logits, gold.logits)
    np.testing.assert_array_equal(classes, gold.classes)


def test_padding_refused_where_no_neutral_weight_exists():
    m = random_kind_model("lut_product", sizes=(12, 6, 3), seed=4)
    L = m.layers[0]
    L.products[:, 0] = 5  # every code contributes 5 on a zero input: no neutral pad weight
    with pytest.raises(ConfigError, match=r"^fc0: pe=4, simd=5 pad the weights to 8x15, but kind 'lut_product' "
                                          r"has no weight whose term with input 0 is 0; expected pe dividing 6, "
                                          r"simd dividing 12$"):
        NetworkTop(m, parse_folding(m, PAD_SPEC))


def test_padded_conv_with_pool_bit_exact_and_unpooled_refused():
    from conftest import random_conv_model
    from hw.conv import ConvolutionUnit

    m = random_conv_model("xnor_popcount", in_shape=(6, 6, 2), channels=(3,), pool=(2, 2))
    spec = "conv0:pe=2,simd=5"  # 3 channels on pe 2, 18 patch elements on simd 5
    x = np.random.default_rng(3).integers(0, 256, (4, m.input.features)).astype(np.uint8)
    classes, logits = simulate_amaranth(m, parse_folding(m, spec), x, max_cycles=40000)
    gold = golden_forward(m, x)
    np.testing.assert_array_equal(logits, gold.logits)
    u = random_conv_model("xnor_popcount", in_shape=(6, 6, 2), channels=(3,), pool=(1, 1))
    with pytest.raises(ConfigError, match=r"^conv0: pe=2 does not divide out_channels=3; a conv layer without "
                                          r"pooling needs a dividing pe$"):
        ConvolutionUnit(u.layers[0], parse_folding(u, spec)[0])


@pytest.mark.verilator
@pytest.mark.parametrize("kind", ["xnor_popcount", "accumulate", "mac"])
def test_padding_bit_exact_verilator_under_back_pressure(kind, tmp_path):
    from lowbit.steps import make_hardware, simulate

    m = _padded_kind_model(kind)
    rng = np.random.default_rng(12)
    x = (rng.integers(0, 256, (300, 12)) * (rng.random((300, 12)) < 0.5)).astype(np.uint8)
    h = make_hardware(m, PAD_SPEC, tmp_path)
    r = simulate(m, h, x, None, stall_pct=20)
    assert r.n_images == 300 and r.mismatches == 0, f"first mismatch at {r.first_bad}"
    assert abs(r.steady_cycles_per_image - h.cycles_per_image) <= 1


@pytest.mark.slow
@pytest.mark.verilator
def test_sfc_simd64_on_784_inputs_bit_exact_verilator(mnist_path, committed_sfc, tmp_path):
    """FINN's example: SIMD 64 on MNIST's 784 inputs pads to 832 (13 column folds)."""
    from lowbit.steps import make_hardware, simulate
    from quantmodels.datasets import load_mnist_npz

    m = committed_sfc
    d = load_mnist_npz(mnist_path)
    h = make_hardware(m, "fc0:pe=16,simd=64", tmp_path)
    assert h.foldings[0].col_folds == 13 and h.foldings[0].cycles == 16 * 13
    r = simulate(m, h, d.x_test[:300], d.y_test[:300])
    assert r.n_images == 300 and r.mismatches == 0, f"first mismatch at {r.first_bad}"
    assert abs(r.steady_cycles_per_image - h.cycles_per_image) <= 1


# ----------------------------------------------------------------------------- estimator


@pytest.mark.yosys
@pytest.mark.parametrize("style", ["block", "logic"])
def test_estimator_knows_every_mem_style_bram_exact(style, tmp_path):
    """Forced styles reach the netlist: the BRAM count the estimator predicts is what Yosys maps."""
    from hw.mvu import MatrixVectorUnit
    from hw.verilog import verilog
    from reports.estimator import estimate, probe_layer
    from reports.synth import synthesize

    L = probe_layer("xnor_popcount", 64, 16, 1, 1, np.random.default_rng(3))
    f = parse_folding_layer(L, pe=1, simd=8)  # 128 words x 8 bits: auto leaves it to Yosys
    v = tmp_path / "mvu.v"
    v.write_text(verilog.convert(MatrixVectorUnit(L, f, mem_style=style), name="mvu", emit_src=False))
    real = synthesize(v, "mvu", "ice40")
    est = estimate(L, f, "ice40", mem_style=style)
    assert est.brams == real.brams
    assert (real.brams > 0) == (style == "block")
    assert estimate(L, f, "ice40", mem_style="logic").luts > estimate(L, f, "ice40", mem_style="block").luts


def parse_folding_layer(L, pe, simd):
    from hw.folding import Folding, planes_for

    return Folding(L.name, L.rows, L.cols, pe, simd, planes_for(L))


# ----------------------------------------------------------------------------- pipelining


@pytest.mark.filterwarnings("ignore:.*created but never used")  # tops built for their cycle formulas only
def test_pipeline_depth_from_the_clock():
    from hw.pipeline import levels_per_stage, tree_stages

    assert levels_per_stage(None) == 0  # no target: the combinational tree as before
    assert levels_per_stage(80, "ice40") == 4 and levels_per_stage(250, "ice40") == 1
    assert levels_per_stage(125, "ecp5") == 2  # 2.0 ns per level: measured on the SFC's path (hw.pipeline)
    assert [tree_stages(n, 1) for n in (1, 2, 3, 64, 65)] == [0, 0, 1, 5, 6]
    assert tree_stages(64, 4) == 1 and tree_stages(64, 0) == 0
    for bad in (-5.0, 0.0, float("nan"), float("inf"), 1e6):  # inf used to pass as "one level per stage"
        with pytest.raises(ConfigError, match=r"^--clock-mhz: .{1,12}, expected a clock in MHz > 0 and <= 100000$"):
            levels_per_stage(bad)
    m = random_xnor_model((64, 16, 4))
    folds = parse_folding(m, "fc0:pe=2,simd=64;fc1:pe=1,simd=16")
    top, base = NetworkTop(m, folds, clock_mhz=250), NetworkTop(m, folds)
    # tree stages 5 and 3, plus the ROM-data and output registers of every clocked core
    assert top.pipeline_stages == [5 + 2, 3 + 2] and base.pipeline_stages == [0, 0]
    # streaming: the stages delay each layer's results, they do not slow its vectors down
    assert top.cycles_per_image == base.cycles_per_image
    # ... and the argmax, split into compare and mux per level for a clock, adds one cycle per level
    assert top.latency_cycles == base.latency_cycles + 7 + 5 + top.argmax.levels


@pytest.mark.parametrize("kind", ALL_KINDS)  # every kind; bit_serial keeps its tree combinational
def test_pipelined_trees_bit_exact_amaranth_sim(kind):
    m = _padded_kind_model(kind)
    x = np.random.default_rng(2).integers(0, 256, (10, 12)).astype(np.uint8)
    classes, logits = simulate_amaranth(m, parse_folding(m, "fc0:pe=2,simd=12;fc1:pe=1,simd=5"), x,
                                        max_cycles=40000, clock_mhz=250)
    gold = golden_forward(m, x)
    np.testing.assert_array_equal(logits, gold.logits)
    np.testing.assert_array_equal(classes, gold.classes)


@pytest.mark.verilator
@pytest.mark.parametrize("kind, spec", [("xnor_popcount", "fc0:pe=2,simd=24;fc1:pe=1,simd=8"),
                                        ("mac", "fc0:pe=3,simd=7;fc1:pe=2,simd=8")])  # padded + pipelined
def test_pipelined_cycles_equal_estimate_under_back_pressure(kind, spec, tmp_path):
    from lowbit.steps import make_hardware, simulate

    m = random_kind_model(kind, sizes=(24, 8, 4), seed=11)
    rng = np.random.default_rng(12)
    x = (rng.integers(0, 256, (300, 24)) * (rng.random((300, 24)) < 0.5)).astype(np.uint8)
    h = make_hardware(m, spec, tmp_path, clock_mhz=250)
    assert h.design.pipeline_stages[0] >= 2  # the trees really are staged
    r = simulate(m, h, x, None)
    assert r.n_images == 300 and r.mismatches == 0, f"first mismatch at {r.first_bad}"
    assert abs(r.steady_cycles_per_image - h.cycles_per_image) <= 1
    assert abs(r.first_latency - h.latency_cycles) <= 2
    r = simulate(m, h, x, None, stall_pct=30)  # back-pressure: every result still arrives, bit-exact
    assert r.n_images == 300 and r.mismatches == 0
