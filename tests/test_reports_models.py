"""Memory and modelled-energy figures: expected values written as formulas."""
from __future__ import annotations

import pytest

from reports.energy import add_pj, model_energy, mult_pj, sram_bit_pj
from reports.energy_constants import HOROWITZ_PJ
from quantmodels.bitwidth import range_bits
from reports.memory import model_memory

from conftest import ALL_KINDS, random_mac_model, random_xnor_model


def test_range_bits():
    assert range_bits(0, 1) == 1 and range_bits(0, 256) == 9 and range_bits(-128, 127) == 8
    assert range_bits(-129, 0) == 9


def test_memory_formulas():
    m = random_xnor_model((16, 8, 4))
    mem = model_memory(m)
    L0, L1 = mem.layers
    assert L0.weight_bits == 1 * 16 * 8 and L1.weight_bits == 1 * 8 * 4
    assert L0.threshold_bits == 8 * 1 * range_bits(0, 16)  # one threshold per neuron over popcount 0..16
    assert L1.threshold_bits == 0  # argmax layer
    assert mem.float32_bits == 32 * (16 * 8 + 8 + 8 * 4 + 4)
    assert mem.int8_bits == 8 * (16 * 8 + 8 * 4) + 32 * (8 + 4)


def test_energy_uses_cited_table():
    assert add_pj(8) == HOROWITZ_PJ["int_add_8"] and add_pj(32) == HOROWITZ_PJ["int_add_32"]
    assert mult_pj(8, 8) == HOROWITZ_PJ["int_mult_8"]
    assert sram_bit_pj(1000) == HOROWITZ_PJ["sram_read_64b_8KB"] / 64


def test_binary_cheaper_than_int8_same_shape():
    sizes = (64, 32, 10)
    eb, em = model_energy(random_xnor_model(sizes)), model_energy(random_mac_model(sizes))
    # compute: xnor+popcount per MAC = 2 * 0.03/8 pJ vs int8 mult + wide add >= 0.2 + 0.03 pJ
    assert sum(e.compute_pj for e in eb) * 20 < sum(e.compute_pj for e in em)
    # memory reads dominate both; 1-bit weights read 8x fewer bits than int8 weights
    assert sum(e.total_pj for e in eb) * 5 < sum(e.total_pj for e in em)
    xnor_ops = model_energy(random_xnor_model(sizes))[0].ops
    assert xnor_ops["xnor_1b"] == 64 * 32
    assert pytest.approx(model_energy(random_xnor_model(sizes))[0].compute_pj, rel=1e-9) == \
        64 * 32 * 2 * HOROWITZ_PJ["int_add_8"] / 8 + 32 * add_pj(range_bits(0, 64))


@pytest.mark.parametrize("kind", ALL_KINDS)  # every kind of the registry
def test_every_kind_has_energy_and_memory(kind):
    from conftest import random_kind_model

    m = random_kind_model(kind)
    e = model_energy(m)
    assert all(x.compute_pj > 0 and x.memory_pj > 0 for x in e)
    mem = model_memory(m)
    assert mem.layers[0].weight_bits == m.layers[0].weights.size * m.layers[0].weight_bits
    if kind == "lut_product":
        assert mem.layers[0].table_bits == m.layers[0].products.size * range_bits(
            int(m.layers[0].products.min()), int(m.layers[0].products.max()))
    if kind == "accumulate":  # skipped zero weights cost nothing
        nz = int((m.layers[0].weights != 0).sum())
        assert e[0].ops["skipped"] == m.layers[0].weights.size - nz > 0


def _fake_result():
    """A DesignResult built from hand-made records (no tool runs): the flattening under test."""
    from pathlib import Path

    from reports.activity import ActivityResult
    from reports.estimator import AreaEstimate, ModelEstimate
    from reports.pnr import PnrFamily, PnrResult
    from reports.report import DesignInput, DesignResult, Timing
    from reports.synth import SynthResult, Target
    from sim.harness import HarnessPorts
    from sim.regression import RegressionResult

    m = random_xnor_model((16, 8, 4))
    m.meta.update(golden_test_accuracy=0.5, seed=7)
    sim = RegressionResult(n_images=10, mismatches=0, class_mismatches=0, first_bad=None, cycles=200,
                           first_latency=20, cycles_per_image=20.0, steady_cycles_per_image=20.0,
                           build_seconds=0.0, build_cached=True, sim_seconds=0.0, accuracy=0.6)
    d = DesignInput("d", m, Path("x.v"), HarnessPorts("top", 16, 2, 4 * 5), 16, 40, sim, layer_cycles=[16, 8])
    synth = {Target.XILINX: SynthResult(Target.XILINX, luts=100, ffs=50, brams=0, dsps=0, carries=3)}
    est = {Target.XILINX: ModelEstimate(Target.XILINX, (AreaEstimate(Target.XILINX, "xnor_popcount", 60.0, 30.0, 0, 0),
                                                        AreaEstimate(Target.XILINX, "xnor_popcount", 30.0, 10.0, 0, 0)),
                                        90.0, 40.0, 0, 0)}
    timing = {PnrFamily.ICE40: Timing(PnrFamily.ICE40, PnrResult("up5k", 50.0, True), 50e6 / 16, 40 / 50.0)}
    act = ActivityResult(4, True, 100, {"fc0": 10.0, "fc1": 5.0, "argmax": 1.0}, {"fc0": 3, "fc1": 2, "argmax": 1})
    return DesignResult(d, True, model_memory(m), tuple(model_energy(m)), 123.0, synth, {}, est, timing, act)


def test_summary_row_names_figures_by_target_or_not():
    from reports.tables import layer_rows, summary_row

    r = _fake_result()
    row = summary_row(r)
    assert row["measured_xilinx_luts"] == 100 and row["model_est_xilinx_luts"] == 90.0
    assert row["measured_ice40_fmax_mhz"] == 50.0 and row["measured_ice40_frames_per_s"] == 50e6 / 16
    assert row["status_xilinx"] == "synthesized; not placed: no open place-and-route for xilinx"
    assert "pnr_note" not in row and row["measured_sim_images"] == 10 and row["model_energy_float32_pj"] == 123.0
    assert row["model_energy_pj"] == sum(e.total_pj for e in model_energy(r.design.model))
    assert row["measured_toggles_per_image"] == 16.0 and row["memory_bits"] == model_memory(r.design.model).total_bits
    flat = summary_row(r, by_target=False)  # a sweep row: one target, one column per figure
    assert flat["measured_luts"] == 100 and flat["model_est_dsps"] == 0 and flat["measured_fmax_mhz"] == 50.0
    assert not any(k.startswith(("measured_xilinx_", "measured_ice40_", "model_est_xilinx_")) for k in flat)
    assert list(row.values()) == list(flat.values())  # same figures, in the same order
    layers = layer_rows(r)
    assert [lr["layer"] for lr in layers] == ["fc0", "fc1", "argmax"]
    assert layers[0]["model_est_xilinx_luts"] == 60.0 and layers[1]["measured_toggles_per_image"] == 5.0
    assert layers[0]["model_energy_ops_pj"] == layers[0]["model_total_pj"] > 0
