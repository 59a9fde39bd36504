"""Hardware generators under the Amaranth simulator (quick), folding rules, Verilog export."""
from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.folding import Folding, auto_folding, parse_folding
from hw.network import NetworkTop
from hw.verilog import generate_verilog
from quantmodels.errors import ConfigError
from quantmodels.golden import golden_forward, quantize_input
from sim.vectors import pack_rows

from conftest import ALL_KINDS, random_mac_model, random_xnor_model


def simulate_amaranth(model, foldings, samples, ready_p=0.7, seed=0, max_cycles=20000, popcount="tree",
                      mem_style="auto", clock_mhz=None):
    """Stream samples through NetworkTop with random output back-pressure; return classes, logits."""
    top = NetworkTop(model, foldings, popcount, mem_style, clock_mhz)
    words = [int(h, 16) for h in pack_rows(quantize_input(model, samples), model.input.bits)]
    lw, n_cls = top.logit_width, model.n_classes
    rng = np.random.default_rng(seed)
    got: list[tuple[int, int]] = []

    async def bench(ctx):
        i = 0
        for _ in range(max_cycles):
            ctx.set(top.in_valid, i < len(words))
            ctx.set(top.in_data, words[i] if i < len(words) else 0)
            ctx.set(top.out_ready, bool(rng.random() < ready_p))
            fire_in = ctx.get(top.in_valid) and ctx.get(top.in_ready)
            if ctx.get(top.out_valid) and ctx.get(top.out_ready):
                got.append((ctx.get(top.out_class), ctx.get(top.out_logits)))
            await ctx.tick()
            i += bool(fire_in)
            if len(got) == len(words):
                return

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    classes = np.array([c for c, _ in got])
    logits = np.array([[((v >> (j * lw)) & ((1 << lw) - 1)) - ((((v >> (j * lw)) >> (lw - 1)) & 1) << lw)
                        for j in range(n_cls)] for _, v in got])
    return classes, logits


# folding spec: None = automatic; strings exercise narrow and per-layer folds
@pytest.mark.parametrize("make, spec", [
    (random_xnor_model, None),
    (random_xnor_model, "pe=2,simd=4"),
    (random_xnor_model, "fc0:pe=1,simd=16;fc1:pe=4,simd=1"),
    (random_mac_model, "fc0:pe=3,simd=4;fc1:pe=1,simd=6"),
    (random_mac_model, None),
])
def test_network_bit_exact_amaranth_sim(make, spec):
    model = make()
    rng = np.random.default_rng(5)
    shape = (12, model.input.features)
    x = (rng.integers(0, 256, shape) * (rng.random(shape) < 0.4)).astype(np.uint8)  # image-like sparsity
    classes, logits = simulate_amaranth(model, parse_folding(model, spec), x)
    gold = golden_forward(model, x)
    assert len(classes) == len(x)
    np.testing.assert_array_equal(logits, gold.logits)
    np.testing.assert_array_equal(classes, gold.classes)
    assert len(set(gold.classes.tolist())) > 1  # real variety, not a constant output


def test_argmax_first_index_on_ties():
    model = random_xnor_model((16, 8, 4))
    model.layers[-1].weights[:] = model.layers[-1].weights[0]  # every class row identical: all tie
    x = np.random.default_rng(0).integers(0, 256, (4, 16)).astype(np.uint8)
    classes, _ = simulate_amaranth(model, parse_folding(model, None), x)
    np.testing.assert_array_equal(classes, 0)


def test_folding_errors():
    with pytest.raises(ConfigError, match=r"^fc0: pe=9 exceeds out_features=8, expected 1\.\.8$"):
        Folding("fc0", 8, 16, 9, 4)
    with pytest.raises(ConfigError, match=r"^fc1: simd=17 exceeds in_features=16, expected 1\.\.16$"):
        Folding("fc1", 8, 16, 2, 17)
    padded = Folding("fc1", 8, 16, 3, 5)  # any PE/SIMD up to the size: padded to 9 x 20
    assert (padded.rows_padded, padded.cols_padded, padded.cycles) == (9, 20, 3 * 4)
    model = random_xnor_model()
    with pytest.raises(ConfigError, match=r"^--fold: 'pq=2' is not 'pe=N' or 'simd=N'$"):
        parse_folding(model, "pq=2")
    with pytest.raises(ConfigError, match=r"^--fold: layer 'fc9' not in the model \(layers: fc0, fc1\)$"):
        parse_folding(model, "fc9:pe=1")


def test_folding_cycles_and_auto_balance():
    f = Folding("fc0", 256, 784, 16, 49)
    assert f.cycles == (256 // 16) * (784 // 49)
    model = random_xnor_model((784, 256, 256, 10))
    folds = auto_folding(model, lanes=256)
    assert max(fd.lanes for fd in folds) <= 256
    slowest = max(fd.cycles for fd in folds)
    assert folds[0].cycles == slowest  # the largest layer sets the pace
    assert all(fd.cycles <= slowest for fd in folds)


def test_verilog_export_ports(tmp_path):
    model = random_xnor_model()
    d = generate_verilog(model, parse_folding(model, None), tmp_path)
    text = (tmp_path / "lowbit_net.v").read_text()
    assert re.search(r"^module lowbit_net\(", text, re.M)
    for port in ("clk", "rst", "in_valid", "in_ready", "in_data", "out_valid", "out_ready", "out_class", "out_logits"):
        assert re.search(rf"\b(input|output)\b.*\b{port}\b", text), port
    assert d.in_width == 16 and d.class_width == 2 and d.n_classes == 4
    assert (tmp_path / "hw.json").exists()


# every arithmetic kind of the IR, automatic and narrow foldings
@pytest.mark.parametrize("kind", ALL_KINDS)  # every kind of the registry
# the third: one column fold and several row folds, so each unit keeps its vector in registers
@pytest.mark.parametrize("spec", [None, "fc0:pe=2,simd=3;fc1:pe=1,simd=2", "fc0:pe=2,simd=12;fc1:pe=1,simd=6"])
def test_every_kind_bit_exact_amaranth_sim(kind, spec):
    from conftest import random_kind_model

    model = random_kind_model(kind)
    rng = np.random.default_rng(9)
    shape = (10, model.input.features)
    x = (rng.integers(0, 256, shape) * (rng.random(shape) < 0.5)).astype(np.uint8)
    gold = golden_forward(model, x)
    assert len(np.unique(gold.activations[0])) == 1 << model.layers[0].output_bits  # every hidden level occurs
    classes, logits = simulate_amaranth(model, parse_folding(model, spec), x, max_cycles=50000)
    np.testing.assert_array_equal(logits, gold.logits)
    np.testing.assert_array_equal(classes, gold.classes)


def test_bit_serial_cycles_count_planes():
    from conftest import random_kind_model

    model = random_kind_model("bit_serial")
    f = parse_folding(model, "fc0:pe=2,simd=3;fc1:pe=1,simd=2")
    assert f[0].planes == 8 * 3 and f[0].cycles == (6 // 2) * (12 // 3) * 8 * 3
    assert f[1].planes == 2 * 3


# popcount style "lut6": compressor tree of truth-table counters, for xnor and bit-serial kinds
@pytest.mark.parametrize("make", ["xnor", "bit_serial"])
def test_lut6_popcount_bit_exact(make):
    from conftest import random_kind_model

    model = random_xnor_model((40, 12, 4)) if make == "xnor" else random_kind_model("bit_serial")
    rng = np.random.default_rng(3)
    shape = (10, model.input.features)
    x = (rng.integers(0, 256, shape) * (rng.random(shape) < 0.5)).astype(np.uint8)
    folds = parse_folding(model, None)
    gold = golden_forward(model, x)
    classes, logits = simulate_amaranth(model, folds, x, max_cycles=50000, popcount="lut6")
    np.testing.assert_array_equal(logits, gold.logits)
    np.testing.assert_array_equal(classes, gold.classes)


def test_popcount_style_error():
    model = random_xnor_model()
    with pytest.raises(ConfigError, match=r"^popcount: 'wallace', expected one of tree, lut6, xilinx$"):
        NetworkTop(model, parse_folding(model, None), popcount="wallace")


def test_folding_for_target_frame_rate():
    from hw.folding import PIPELINE_CYCLES

    model = random_xnor_model((784, 256, 256, 10))
    folds = parse_folding(model, "fps=500000,clock_mhz=100")  # 200 cycles per frame
    budget = 200 - PIPELINE_CYCLES
    assert all(f.cycles <= budget for f in folds)
    # fewest lanes: the next smaller PE or SIMD divisor would miss the frame rate
    for f in folds:
        for pe, simd in ((f.pe - 1, f.simd), (f.pe, f.simd - 1)):
            if pe >= 1 and simd >= 1 and f.rows % pe == 0 and f.cols % simd == 0 and pe * simd < f.lanes:
                assert (f.rows // pe) * (f.cols // simd) > budget
    with pytest.raises(ConfigError, match=r"^fc0: needs at least 6 cycles/frame \(fully parallel\), "
                                          r"1e\+08 frames/s at 100 MHz allows 1$"):
        parse_folding(model, "fps=1e8")



def test_folding_for_cycle_budget():
    """'cycles=N': every layer within N steps, the fewest lanes, and among equal lanes the widest SIMD
    (fewer PEs: each PE brings its own accumulator, threshold compare and threshold-ROM read)."""
    model = random_xnor_model((784, 256, 256, 10))  # three layers
    folds = parse_folding(model, "cycles=256")
    assert [str(f) for f in folds] == ["fc0:pe=1,simd=784", "fc1:pe=1,simd=256", "fc2:pe=5,simd=2"]
    assert all(f.cycles <= 256 for f in folds)
    assert [str(f) for f in parse_folding(model, " cycles = 64 ")][0] == "fc0:pe=4,simd=784"
    with pytest.raises(ConfigError, match=r"^--fold: cycles=0: expected a whole number >= 1$"):
        parse_folding(model, "cycles=0")
    with pytest.raises(ConfigError, match=r"is not 'pe=N' or 'simd=N'"):
        parse_folding(model, "cycles=-3")


# ----------------------------------------------------------------------------- streaming (issue 18 item 3)


def formulas_only(top: NetworkTop) -> NetworkTop:
    """``top``, built for its formulas and converters only: no "never used" warning from its parts."""
    for e in [top, top.argmax, *top.converters, *top.units, *(u.core for u in top.units)]:
        e._MustUse__silence = True
    return top


def assert_streams_exactly(model, spec: str, x, y, tmp_path, converters: list[str] | None) -> None:
    """Generate ``model`` at ``spec`` (its converters must be ``converters``) and run ``x`` under
    Verilator: bit-exact, measured interval == cycles_per_image, latency within 2 cycles of the
    model, then bit-exact again with 35 % random out_ready stalls."""
    from lowbit.steps import make_hardware, simulate

    top = formulas_only(NetworkTop(model, parse_folding(model, spec)))
    if converters is not None:
        assert [c.kind for c in top.converters] == converters
    h = make_hardware(model, spec, tmp_path)
    r = simulate(model, h, x, y)
    assert r.n_images == len(x) and r.mismatches == 0, f"first mismatch at {r.first_bad}"
    assert r.steady_cycles_per_image == h.cycles_per_image
    assert abs(r.first_latency - h.latency_cycles) <= 2
    r = simulate(model, h, x, y, stall_pct=35)
    assert r.n_images == len(x) and r.mismatches == 0, f"with back-pressure: first mismatch at {r.first_bad}"


@pytest.mark.verilator
@pytest.mark.parametrize("spec, kinds", [
    # fc0 32x64 on pe 5 / simd 12 (35x72), fc1 24x32 on 7 / 9 (28x36), fc2 10x24 on 3 / 10 (12x30)
    ("fc0:pe=5,simd=12;fc1:pe=7,simd=9;fc2:pe=3,simd=10", ["split", "gear", "gear", "collect"]),
    # every PE divides the next SIMD: pe 4 -> simd 8, then pe 5 (24 rows padded to 25) -> simd 10
    # (24 columns padded to 30; the last output chunk is one slot of two)
    ("fc0:pe=4,simd=16;fc1:pe=5,simd=8;fc2:pe=3,simd=10", ["split", "up", "up", "collect"]),
    # one column fold a layer (SIMD = inputs) and several row folds: vector registers, no input memory
    ("fc0:pe=4,simd=64;fc1:pe=2,simd=32;fc2:pe=1,simd=24", None),
])
def test_streaming_mlp_gearboxes_bit_exact_on_digits_verilator(tmp_path, spec, kinds):
    """A trained W1A1 MLP on real digits images, every PE different from the next layer's SIMD and
    every folding padded: bit-exact, measured interval == cycles_per_image, then again with random
    out_ready stalls."""
    from quantmodels.datasets import load_digits
    from quantmodels.train import TrainConfig, train

    data = load_digits()
    model = train(TrainConfig(method="bnn", hidden=(32, 24), epochs=5, progress=False), data).model
    assert_streams_exactly(model, spec, data.x_test[:300], data.y_test[:300], tmp_path, kinds)


def test_streaming_units_hold_no_whole_vector_register():
    """A dense unit's registers scale with its chunks, not its vectors: input memory only with more
    than one row fold (two banks of col_folds words), output FIFO a few PE-wide entries."""
    model = random_xnor_model((256, 64, 10))
    one, many = parse_folding(model, "fc0:pe=64,simd=16;fc1:pe=2,simd=8")
    top = formulas_only(NetworkTop(model, [one, many]))
    u1, u2 = top.units
    assert u1.in_style is None and len(u1.in_data) == 16 and len(u1.out_data) == 64
    assert not u1.in_registers and not u2.in_registers and u2.in_style is not None
    # one column fold: the vector in two registers instead of a 2-word memory
    (whole,) = [f for f in parse_folding(model, "fc1:pe=2,simd=64") if f.name == "fc1"]
    u3 = formulas_only(NetworkTop(model, [one, whole])).units[1]
    assert u3.in_registers and u3.in_style is None and whole.col_folds == 1 and whole.row_folds == 5
    assert u2.fold.row_folds == 5 and len(u2.in_data) == 8 and u2.fifo_depth <= 9
    assert top.cycles_per_image == max(one.cycles, many.cycles, top.converters[0].interval)
