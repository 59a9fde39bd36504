"""Convolution hardware (hw.conv.ConvolutionUnit): Amaranth-simulator unit tests, Verilator
bit-exact regressions of random CNNs with back-pressure, the MNIST-size CNN on real MNIST
images, and the CLI on a CNN model directory."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hw.conv import ConvolutionUnit, pool_tables
from hw.folding import Folding, PIPELINE_CYCLES, auto_folding, folding_for_throughput, parse_folding
from hw.mvu import MatrixVectorUnit
from lowbit.flow import make_hardware, simulate
from quantmodels.datasets import load_mnist_npz
from quantmodels.errors import ConfigError
from quantmodels.golden import golden_forward
from quantmodels.ir import save_model

from conftest import ALL_KINDS, assert_bit_exact_under_stalls, mnist_cnn_model, random_conv_model
from test_hw import assert_streams_exactly, simulate_amaranth


def sparse_images(model, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, model.input.features)
    return (rng.integers(0, 256, shape) * (rng.random(shape) < 0.5)).astype(np.uint8)


# ------------------------------------------------------------------ Amaranth simulator (quick)

# kind x geometry (stride, padding, pool) x folding: narrow (pe=1 included), automatic;
# input sizes chosen so every conv output (after pooling) still takes several levels
@pytest.mark.parametrize("kind, in_shape, geom, spec", [
    ("xnor_popcount", (9, 8, 2), (1, 1, (2, 2)), "conv0:pe=2,simd=3;conv1:pe=3,simd=4"),
    ("xnor_popcount", (9, 8, 2), (2, 0, (1, 1)), None),
    ("accumulate", (11, 10, 2), (1, 1, (3, 2)), "conv0:pe=1,simd=6;conv1:pe=2,simd=9"),
    ("accumulate", (12, 12, 2), (2, 1, (2, 2)), None),
])
def test_conv_network_bit_exact_amaranth_sim(kind, in_shape, geom, spec):
    stride, padding, pool = geom
    model = random_conv_model(kind, in_shape=in_shape, channels=(4, 6), stride=stride, padding=padding, pool=pool)
    x = sparse_images(model, 6, seed=5)
    gold = golden_forward(model, x)
    assert all(len(np.unique(a)) > 1 for a in gold.activations[:-1])  # real variety in every conv output
    classes, logits = simulate_amaranth(model, parse_folding(model, spec), x, max_cycles=100000)
    np.testing.assert_array_equal(logits, gold.logits)
    np.testing.assert_array_equal(classes, gold.classes)


def test_conv_unit_refuses_mismatches():
    model = random_conv_model(channels=(4,))
    conv, fc = model.layers
    with pytest.raises(ConfigError, match=r"^conv0: op 'conv2d' needs hw\.conv\.ConvolutionUnit, not a dense unit$"):
        MatrixVectorUnit(conv, parse_folding(model, None)[0])
    with pytest.raises(ConfigError, match=r"^fc: op 'dense' has no windows; use hw\.mvu\.MatrixVectorUnit$"):
        ConvolutionUnit(fc, parse_folding(model, None)[1])
    with pytest.raises(ConfigError, match=r"^conv0: folding is for 1 positions, layer has 64$"):
        ConvolutionUnit(conv, Folding("conv0", conv.rows, conv.cols, 1, 1))


def test_pool_tables_overlapping_windows():
    """Pool 3/2 on a 7-row conv output: 3 pool rows in 2 rotating buffers; rows 2 and 4 feed two."""
    model = random_conv_model(in_shape=(7, 7, 1), channels=(2,), padding=1, pool=(3, 2))
    nb, upd, done = pool_tables(model.layers[0].conv)
    assert nb == 2
    assert upd == [0b01, 0b01, 0b11, 0b10, 0b11, 0b01, 0b01]
    assert done == [0, 0, 0b01, 0, 0b10, 0, 0b01]


def test_conv_folding_cycles_and_balance():
    model = mnist_cnn_model()
    conv0, conv1, fc = model.layers
    folds = auto_folding(model)
    assert [f.positions for f in folds] == [26 * 26, 11 * 11, 1]
    assert folds[1].cycles == 11 * 11 * (32 // folds[1].pe) * (144 // folds[1].simd)
    slowest = max(f.cycles for f in folds)
    assert all(f.cycles <= slowest for f in folds) and folds[1].lanes <= 256
    # throughput target: every layer within budget, with the fewest lanes
    folds = folding_for_throughput(model, 100e6 / 1000)
    assert all(f.cycles <= 1000 - PIPELINE_CYCLES for f in folds)
    # a conv layer is never faster than one cycle per position
    with pytest.raises(ConfigError, match=r"^conv0: needs at least 681 cycles/frame \(fully parallel\)"):
        folding_for_throughput(model, 100e6 / 600)


def test_auto_folding_respects_position_floor():
    """A small conv layer with many positions can be the bottleneck even fully parallel: the other
    layers are then not given lanes that cannot raise the frame rate."""
    model = random_conv_model(in_shape=(16, 16, 1), channels=(2,), kernel=1, padding=0, pool=(1, 1), n_classes=4)
    folds = auto_folding(model, lanes=256)
    floor = model.layers[0].positions  # 256 positions x 1 cycle at best
    assert folds[0].cycles == floor
    assert folds[1].cycles <= floor and folds[1].lanes < 256  # fc (4 x 512) slowed to the conv's pace


# ------------------------------------------------------------------ Verilator

# Each network mixes two conv geometries (stride, padding, pool) and a narrow folding with a fully
# parallel one, so three builds cover stride 1/2, padding 0/1, pool 2/2, none and overlapping 3/2,
# narrow and wide foldings; every IR kind of the registry gets one geometry (in turn), so a new
# kind is simulated as a CNN without editing this list.
GEOMETRIES = [
    # strides, paddings, pools, per-layer folding ("full" = pe=rows, simd=cols)
    ([1, 2], [1, 0], [(3, 2), (1, 1)], ["pe=2,simd=3", "full", "pe=1,simd=6"]),
    ([2, 1], [0, 1], [(1, 1), (2, 2)], ["full", "pe=2,simd=3", "pe=3,simd=9"]),
    ([1, 1], [1, 0], [(2, 2), (1, 1)], ["pe=2,simd=6", "full", "full"]),
    ([1, 2], [0, 1], [(3, 2), (1, 1)], ["full", "pe=3,simd=12", "full"]),
    ([2, 1], [1, 1], [(1, 1), (2, 2)], ["full", "pe=3,simd=4", "full"]),
    ([1, 2], [0, 0], [(2, 2), (1, 1)], ["pe=4,simd=9", "full", "full"]),
]
VERILATOR_CASES = [(kind, *GEOMETRIES[i % len(GEOMETRIES)]) for i, kind in enumerate(ALL_KINDS)]


@pytest.mark.verilator
@pytest.mark.parametrize("kind, strides, paddings, pools, folds", VERILATOR_CASES)
def test_conv_verilator_random_cnn(kind, strides, paddings, pools, folds, tmp_path):
    model = random_conv_model(kind, in_shape=(16, 16, 2), channels=(4, 6), stride=strides, padding=paddings,
                              pool=pools, seed=3)
    spec = ";".join(f"{L.name}:pe={L.rows},simd={L.cols}" if f == "full" else f"{L.name}:{f}"
                    for L, f in zip(model.layers, folds))
    x = sparse_images(model, 300, seed=5)
    gold = golden_forward(model, x)
    assert len(np.unique(gold.logits, axis=0)) > 100  # varied results to compare
    h = make_hardware(model, spec, tmp_path)
    # positions stream back to back: the generator's estimate is what Verilator measures
    assert_bit_exact_under_stalls(model, h, x, None, stall_pct=30, stalled=150)


@pytest.mark.verilator
def test_streaming_cnn_gearboxes_bit_exact_on_digits_verilator(tmp_path):
    """A W1A1 CNN on real 8x8 digits images with a padded PE (3 on 4 channels) feeding a layer of
    another SIMD, and a padded dense layer: bit-exact, measured interval == cycles_per_image, then
    with random out_ready stalls."""
    from quantmodels.datasets import load_digits

    model = random_conv_model("xnor_popcount", in_shape=(8, 8, 1), channels=(4, 6), stride=1, padding=[1, 0],
                              pool=[(2, 2), (1, 1)], n_classes=10, seed=4)
    spec = "conv0:pe=3,simd=4;conv1:pe=2,simd=12;fc:pe=4,simd=7"  # conv0 4 ch on pe 3; fc 10x24 on 4 / 7
    x = load_digits().x_test[:300]
    gold = golden_forward(model, x)
    assert len(np.unique(gold.classes)) >= 3
    # image -> rows, rows, rows -> simd
    assert_streams_exactly(model, spec, x, None, tmp_path, ["split", "pass", "gear", "collect"])


@pytest.mark.slow  # MNIST-size CNN on real images; random CNNs of every kind stay in the default run
@pytest.mark.verilator
def test_mnist_cnn_w1a1_bit_exact(mnist_path, tmp_path):
    """28x28x1 -> conv16 3x3 + pool 2 -> conv32 3x3 + pool 2 -> dense 10, on 300 real MNIST test images."""
    model = mnist_cnn_model()
    d = load_mnist_npz(mnist_path)
    n = 300
    gold = golden_forward(model, d.x_test[:n])
    assert len(np.unique(gold.classes)) >= 5  # random weights, but varied decisions
    h = make_hardware(model, None, tmp_path)
    r = simulate(model, h, d.x_test[:n], d.y_test[:n])
    assert r.n_images == n and r.mismatches == 0, f"first mismatch at image {r.first_bad}"
    assert abs(r.steady_cycles_per_image - h.cycles_per_image) <= 1
    assert abs(r.first_latency - h.latency_cycles) <= 2


# ------------------------------------------------------------------ line buffer in memory

def line_buffer_conv(style: str, width: int = 64):
    """A conv unit on 8-bit pixels of 2 channels whose line buffer is ``width`` columns x 6 slots x
    16 bits: at 64 columns (6,144 bits) large enough for block RAM by hw.memstyle's rule. Fully
    parallel, so its weight and threshold ROMs are one word (constants, never block RAM)."""
    model = random_conv_model("accumulate", in_shape=(3, width, 2), channels=(1,), padding=0, pool=(1, 1))
    L = model.layers[0]
    assert L.input_bits == 8
    return ConvolutionUnit(L, parse_folding(model, f"conv0:pe={L.rows},simd={L.cols}")[0], mem_style=style)


@pytest.mark.yosys
@pytest.mark.parametrize("target", ["ice40", pytest.param("ecp5", marks=pytest.mark.slow)])
def test_line_buffer_in_block_ram_by_size_and_logic_forced(target, tmp_path):
    """Real Yosys: under ``auto`` a large line buffer becomes block RAM (SB_RAM40_4K / DP16KD) and the
    unit keeps fewer flip-flops than the buffer's bits; ``--mem-style logic`` keeps one in registers
    (a narrower unit, so the default run stays quick: about 10 s of Yosys each)."""
    from hw.memstyle import MemStyle
    from hw.verilog import verilog
    from reports.synth import synthesize

    res = {}
    for style, width in (("auto", 64), ("logic", 8)):
        unit = line_buffer_conv(style, width)
        assert unit.slots == 6 and unit.line_style is (MemStyle.BLOCK if style == "auto" else MemStyle.LOGIC)
        v = tmp_path / f"conv_{style}.v"
        v.write_text(verilog.convert(unit, name="conv", emit_src=False))
        res[style] = synthesize(v, "conv", target)
    assert res["auto"].brams > 0 and res["auto"].ffs < 64 * 6 * 16
    assert res["logic"].brams == 0 and res["logic"].ffs >= 8 * 6 * 16


def test_line_buffer_style_rules():
    """The line buffer follows --mem-style; auto: block when large, registers when tiny."""
    from hw.memstyle import MemStyle

    assert line_buffer_conv("distributed").line_style is MemStyle.DISTRIBUTED
    tiny = random_conv_model("xnor_popcount", in_shape=(6, 6, 1), channels=(2,))
    u = ConvolutionUnit(tiny.layers[0], parse_folding(tiny, None)[0])
    assert u.slots == 6 and u.line_style is MemStyle.LOGIC  # 6 words x 6 bits
    mid = random_conv_model("xnor_popcount", in_shape=(6, 28, 8), channels=(2,))
    u = ConvolutionUnit(mid.layers[0], parse_folding(mid, None)[0])
    assert u.line_style is None  # 28 x 48 bits: the synthesis tool's choice (LUT-RAM or block RAM)


@pytest.mark.verilator
def test_cnn_line_buffer_bit_exact_on_mnist_under_stalls_verilator(mnist_path, tmp_path):
    """A padded, pooled CNN on 28x28 real MNIST test images (stride 2 in the second layer, narrow and
    wide foldings, the line buffers in block-RAM style): bit-exact against the golden model with and
    without random out_ready stalls, measured cycles/image = the cycle model's."""
    model = random_conv_model("xnor_popcount", in_shape=(28, 28, 1), channels=(4, 6), stride=[1, 2],
                              padding=[1, 1], pool=[(2, 2), (1, 1)], n_classes=10, seed=6)
    d = load_mnist_npz(mnist_path)
    x = d.x_test[:200]
    gold = golden_forward(model, x)
    assert len(np.unique(gold.classes)) >= 3
    h = make_hardware(model, "conv0:pe=4,simd=9;conv1:pe=2,simd=12", tmp_path, mem_style="block")
    assert_bit_exact_under_stalls(model, h, x, None, stall_pct=40, stalled=120)


def lowbit(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "lowbit.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.verilator
def test_cli_verilog_and_sim_on_cnn_model(mnist_path, tmp_path):
    """`lowbit verilog` and `lowbit sim --data mnist.npz` on a saved 28x28x1 CNN model directory
    (the MNIST-size CNN at the automatic folding: the Verilator build is shared with the test above)."""
    model = mnist_cnn_model()
    save_model(model, tmp_path / "cnn")
    out = lowbit("verilog", "cnn", cwd=tmp_path)
    assert (tmp_path / "cnn" / "hw" / "lowbit_net.v").exists() and "cycles/image" in out
    hwj = json.loads((tmp_path / "cnn" / "hw" / "hw.json").read_text())
    assert hwj["layer_cycles"][0] % model.layers[0].positions == 0
    out = lowbit("sim", "cnn", "--data", mnist_path, "--images", "200", "--stall", "20", cwd=tmp_path)
    assert "BIT-EXACT: 200/200" in out
    sim = json.loads((tmp_path / "cnn" / "hw" / "sim.json").read_text())
    assert sim["mismatches"] == 0 and sim["n_images"] == 200
