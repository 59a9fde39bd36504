"""Register stages for a target clock (hw.pipeline.core_stages): where they go, how many, and that the
hardware stays bit-exact and keeps its cycle model under back-pressure on real MNIST images."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hw.folding import parse_folding
from hw.lanes import LANES
from hw.mvu import MatrixVectorCore
from hw.pipeline import CoreStages, core_stages, levels_per_stage, tree_stages
from quantmodels.ir import Kind

from conftest import assert_bit_exact_under_stalls, random_kind_model


def test_core_stages_by_place():
    assert core_stages(64, 0, True) == CoreStages() and CoreStages().total == 0  # no target clock: none
    # xnor: ROM data + tree (64 terms: 6 levels, every 2 -> 2 stages) + output; no product stage
    assert core_stages(64, 2, False) == CoreStages(rom=1, product=0, tree=2, output=1)
    assert core_stages(64, 2, True).total == 1 + 1 + 2 + 1
    # a tree that is not staged (bit_serial, lut6/xilinx popcount) keeps the boundary registers
    assert core_stages(64, 2, False, tree_staged=False) == CoreStages(rom=1, tree=0, output=1)
    assert core_stages(8, 2, True).tree == tree_stages(8, 2) == 1
    # a multi-threshold output registers its compares, then their count
    assert core_stages(8, 2, True, thresholds=3).output == 2 and core_stages(8, 2, True, thresholds=1).output == 1
    assert core_stages(8, 0, True, thresholds=3).total == 0


def test_product_stage_per_kind():
    # an XNOR merges into the popcount's first LUT; every other kind's product is more than one LUT
    # level (negation, shift, table, multiplier, bit-plane select)
    staged = {str(k) for k in Kind if LANES[k].product_stage}
    assert staged == {"accumulate", "shift_add", "lut_product", "mac", "bit_serial"}


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_product_rom_counts_two_product_stages():
    """A block-RAM product ROM (lut_product, large table) is read, then registered: two product stages
    in the core's count, so the cycle formulas follow; a logic table keeps one."""
    m = random_kind_model("lut_product", sizes=(12, 6, 3), seed=1)
    f0, f1 = parse_folding(m, "fc0:pe=2,simd=6;fc1:pe=1,simd=6")
    every = levels_per_stage(125, "ecp5")
    big = MatrixVectorCore(m.layers[0], f0, tree_every=every)
    assert big.stages.product == 2 and big.extra_stages == big.stages.total
    assert MatrixVectorCore(m.layers[1], f1, tree_every=every).stages.product == 1  # 2-bit inputs: a small table
    assert MatrixVectorCore(m.layers[0], f0, mem_style="logic", tree_every=every).stages.product == 1
    assert MatrixVectorCore(m.layers[0], f0).stages.product == 0  # no target clock, no stages


@pytest.mark.filterwarnings("ignore:.*created but never used")
@pytest.mark.parametrize("kind", ["xnor_popcount", "accumulate", "mac", "bit_serial"])
def test_core_counts_its_stages(kind):
    m = random_kind_model(kind, sizes=(24, 8, 4), seed=4)
    f = parse_folding(m, "fc0:pe=2,simd=24;fc1:pe=1,simd=8")[0]
    every = levels_per_stage(125, "ecp5")
    core = MatrixVectorCore(m.layers[0], f, tree_every=every)
    spec = LANES[Kind(kind)]
    tree = 0 if spec.serial else tree_stages(24, every)
    out = 2 if m.layers[0].output == "threshold" and m.layers[0].n_thresholds > 1 else 1
    assert core.stages == CoreStages(1, int(spec.product_stage), tree, out)
    assert core.extra_stages == 1 + int(spec.product_stage) + tree + out
    assert MatrixVectorCore(m.layers[0], f).extra_stages == 0


def _trained(method: str, mnist_path=None):
    """``method`` trained one epoch on real images: MNIST (3,000 training images) or, without a path,
    the 8x8 digits (small enough for a default-run Verilator build)."""
    from quantmodels.datasets import Dataset, load_digits, load_mnist_npz
    from quantmodels.train import TrainConfig, train

    if mnist_path is None:
        d = load_digits()
        return train(TrainConfig(method=method, hidden=(16,), epochs=3, seed=0, progress=False), d).model, d
    d = load_mnist_npz(mnist_path)
    sub = Dataset("mnist-3k", d.x_train[:3000], d.y_train[:3000], d.x_test[:300], d.y_test[:300])
    return train(TrainConfig(method=method, hidden=(16,), epochs=1, seed=0, progress=False), sub).model, d


def _check_stalled(model, h, x, y):
    """Bit-exact with and without 30 % out_ready stalls; interval = cycles_per_image; latency = the model."""
    assert_bit_exact_under_stalls(model, h, x, y, stall_pct=30)


@pytest.mark.verilator
def test_staged_accumulate_bit_exact_on_digits_under_back_pressure(tmp_path):
    """BinaryConnect (accumulate: products + multi-threshold output stage) trained on the 8x8 digits,
    pipelined for 125 MHz on ECP5: every new register (ROM data, products, tree, output) on."""
    from lowbit.steps import make_hardware

    model, d = _trained("binaryconnect")
    assert model.layers[0].n_thresholds > 1  # several compares in the output stage
    h = make_hardware(model, "fc0:pe=2,simd=16;fc1:pe=2,simd=8", tmp_path, clock_mhz=125, family="ecp5")
    every = levels_per_stage(125, "ecp5")
    # ROM data + products + tree + (compares, count) | ROM data + products + tree + logit
    assert h.design.pipeline_stages == [1 + 1 + tree_stages(16, every) + 2, 1 + 1 + tree_stages(8, every) + 1]
    _check_stalled(model, h, d.x_test[:200], d.y_test[:200])


@pytest.mark.slow  # MNIST-size (784 inputs) Verilator build
@pytest.mark.verilator
def test_staged_accumulate_bit_exact_on_mnist_under_back_pressure(mnist_path, tmp_path):
    from lowbit.steps import make_hardware

    model, d = _trained("binaryconnect", mnist_path)
    h = make_hardware(model, "fc0:pe=4,simd=49;fc1:pe=2,simd=8", tmp_path, clock_mhz=125, family="ecp5")
    assert h.design.pipeline_stages[0] == 1 + 1 + tree_stages(49, levels_per_stage(125, "ecp5")) + 2
    _check_stalled(model, h, d.x_test[:200], d.y_test[:200])


@pytest.mark.slow  # an int8 MAC build with 196 multipliers; the random mac model stays in test_fpga_hw
@pytest.mark.verilator
def test_staged_mac_requantize_bit_exact_on_mnist_under_back_pressure(mnist_path, tmp_path):
    from lowbit.steps import make_hardware

    model, d = _trained("int8", mnist_path)
    assert model.layers[0].output == "requantize"
    h = make_hardware(model, "fc0:pe=4,simd=49;fc1:pe=2,simd=8", tmp_path, clock_mhz=125, family="ecp5")
    assert h.design.pipeline_stages[0] >= 4
    _check_stalled(model, h, d.x_test[:200], d.y_test[:200])


@pytest.mark.slow  # the committed SFC W1A1 (784 cycles/image) at ECP5's 125 MHz target
@pytest.mark.verilator
def test_staged_sfc_bit_exact_on_mnist_under_back_pressure(mnist_path, committed_sfc, tmp_path):
    from lowbit.steps import make_hardware
    from quantmodels.datasets import load_mnist_npz

    m = committed_sfc
    d = load_mnist_npz(mnist_path)
    h = make_hardware(m, None, tmp_path, clock_mhz=125, family="ecp5")
    assert min(h.design.pipeline_stages) >= 2
    _check_stalled(m, h, d.x_test[:300], d.y_test[:300])


def test_critical_path_summary_names_the_hw_signals():
    from reports.pnr import critical_path_summary, describe_critical_path

    # the shape of nextpnr's --report (the SFC's worst path, shortened): block RAM -> 2 LUTs -> register
    step = lambda t, d, cell, port, net=None: {"type": t, "delay": d, "to": {"cell": cell, "port": port},
                                               "from": {"cell": cell, "port": port}, **({"net": net} if net else {})}
    path = [step("clk-to-q", 5.61, "dut.fc0.core.wrom.0.11", "DOA2"),
            step("routing", 2.34, "dut.fc0.core.pe12_l0_LUT4_Z", "A", "dut.fc0.core._0_[200]"),
            step("logic", 0.24, "dut.fc0.core.pe12_l0_LUT4_Z", "F"),
            step("routing", 0.62, "x_CCU2C", "A", "n1"),
            step("logic", 0.07, "x_CCU2C", "FCO"),  # a carry hop, not a logic level
            step("logic", 0.24, "dut.fc0.core.pe12_l2_1_TRELLIS_FF_Q_3_DI_LUT4_Z", "F"),
            step("routing", 0.13, "dut.fc0.core.pe12_l2_1_TRELLIS_FF_Q_3", "DI", "n2"),
            step("setup", 0.0, "dut.fc0.core.pe12_l2_1_TRELLIS_FF_Q_3", "DI")]
    path[0]["from"] = {"cell": "dut.fc0.core.wrom.0.11", "port": "CLKA"}
    pin = [step("routing", 20.0, "dut.fc0.inmem", "D", "vin")]  # a pin's path: longer, but not clocked
    cp = critical_path_summary({"critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": path[:3]},
                                                   {"from": "<async>", "to": "posedge clk", "path": pin},
                                                   {"from": "posedge clk", "to": "posedge clk", "path": path}]})
    assert cp["ns"] == pytest.approx(9.25) and cp["logic_levels"] == 2 and cp["carry_hops"] == 1
    assert cp["to_signal"] == "dut.fc0.core.pe12_l2_1" and cp["from_signal"] == "dut.fc0.core.wrom.0.11.CLKA"
    assert cp["routing_pct"] == pytest.approx(100 * 3.09 / 9.25, abs=0.1) and cp["clk_to_q_ns"] == 5.61
    json.dumps(cp)  # goes into the cached PnrResult as JSON
    line = describe_critical_path(cp)
    assert line.startswith("dut.fc0.core.wrom.0.11.CLKA -> dut.fc0.core.pe12_l2_1: 9.25 ns, 2 logic levels")
    assert critical_path_summary({"fmax": {}}) is None and describe_critical_path(None).startswith("no critical")


@pytest.mark.verilator
@pytest.mark.parametrize("kind", ["bit_serial", "lut_product"])  # staged plane select / truth-table products
def test_staged_kinds_bit_exact_under_back_pressure(kind, tmp_path):
    from lowbit.steps import make_hardware

    m = random_kind_model(kind, sizes=(24, 8, 4), seed=11)
    rng = np.random.default_rng(12)
    x = (rng.integers(0, 256, (150, 24)) * (rng.random((150, 24)) < 0.5)).astype(np.uint8)
    h = make_hardware(m, "fc0:pe=2,simd=6;fc1:pe=2,simd=8", tmp_path, clock_mhz=125, family="ecp5")
    assert h.design.pipeline_stages[0] >= 4  # ROM data, products, (tree,) compares, count
    _check_stalled(m, h, x, None)


@pytest.mark.verilator
def test_staged_conv_bit_exact_and_cycles_under_back_pressure(tmp_path):
    """A conv unit shares the core: its cycle model must follow the new stages too (hw.conv reads
    core.extra_stages). Random CNN of multi-level kind (accumulate) pipelined for 125 MHz on ECP5."""
    from lowbit.steps import make_hardware
    from quantmodels.golden import golden_forward

    from conftest import random_conv_model

    model = random_conv_model("accumulate", in_shape=(10, 10, 2), channels=(4, 6), stride=[1, 1], padding=[1, 0],
                              pool=[(2, 2), (1, 1)], seed=3)
    rng = np.random.default_rng(5)
    x = (rng.integers(0, 256, (120, model.input.features)) * (rng.random((120, model.input.features)) < 0.5)
         ).astype(np.uint8)
    assert len(np.unique(golden_forward(model, x).logits, axis=0)) > 50  # varied results to compare
    h = make_hardware(model, "conv0:pe=2,simd=6;conv1:pe=3,simd=9", tmp_path, clock_mhz=125, family="ecp5")
    assert all(s >= 3 for s in h.design.pipeline_stages[:2])
    _check_stalled(model, h, x, None)


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_argmax_split_for_a_clock():
    from hw.network import Argmax, NetworkTop

    a, s = Argmax(10, 8), Argmax(10, 8, split=True)
    assert (a.levels, a.depth, a.interval) == (4, 4, 5)
    assert (s.levels, s.depth, s.interval) == (4, 8, 9)  # compare, then mux, per level
    assert Argmax(1, 8, split=True).depth == 0
    m = random_kind_model("xnor_popcount", sizes=(24, 8, 4), seed=4)
    folds = parse_folding(m, "fc0:pe=2,simd=24;fc1:pe=1,simd=8")
    assert NetworkTop(m, folds, clock_mhz=125, family="ecp5").argmax.split
    assert not NetworkTop(m, folds).argmax.split  # no target clock: the design as before


@pytest.mark.yosys
def test_place_and_route_records_the_critical_path(tmp_path):
    """Real Yosys + nextpnr-ice40 on a small pipelined net: the result names the path by its hw signals."""
    from lowbit.steps import make_hardware
    from reports.pnr import describe_critical_path, place_and_route

    m = random_kind_model("xnor_popcount", sizes=(16, 8, 4), seed=2)
    h = make_hardware(m, "fc0:pe=2,simd=16;fc1:pe=1,simd=8", tmp_path, clock_mhz=80, family="ice40")
    p = h.ports
    r = place_and_route("ice40", h.verilog, p.dut, p.in_width, p.class_width, p.logits_width, devices=("up5k",))
    assert r.fits and r.fmax_mhz and r.critical_path
    cp = r.critical_path
    assert cp["ns"] == pytest.approx(1000 / r.fmax_mhz, rel=0.05)  # the worst path sets fmax
    assert cp["logic_levels"] >= 1 and 0 < cp["routing_pct"] < 100
    # both ends are registers of the design (the shell's or the network's), named as in the Verilog
    assert "_SB_" not in cp["to_signal"] and cp["to_signal"], cp
    assert describe_critical_path(cp).startswith(cp["from_signal"][:70])


@pytest.mark.yosys
def test_registered_product_tables_go_to_shared_product_roms(tmp_path):
    """lut_product's registered table reads: a large table (fc0: 8-bit inputs, 2**(wb + 8) words) is a
    block-RAM product ROM shared by two lanes (hw.arith.PRODUCT_ROM_LANES; an Array read followed by a
    register once made one DP16KD a lane unasked: 121 for the digits net), a small one stays in LUTs."""
    from hw.arith import PRODUCT_ROM_LANES
    from lowbit.steps import make_hardware
    from reports.synth import synthesize

    m = random_kind_model("lut_product", sizes=(12, 6, 3), seed=1)
    fc0, fc1 = m.layers
    assert fc0.input_bits == 8 and (1 << (fc0.weight_bits + 8)) <= 1024 and fc1.input_bits == 2
    h = make_hardware(m, "fc0:pe=2,simd=6;fc1:pe=1,simd=6", tmp_path, clock_mhz=125, family="ecp5")
    assert h.design.pipeline_stages[0] >= 3  # ROM data, products, output at least
    s = synthesize(h.verilog, h.ports.dut, "ecp5")
    assert s.brams == 12 // PRODUCT_ROM_LANES, s.cells  # fc0's 12 lanes, a 1,024 x 18 DP16KD per 2; fc1: LUTs
