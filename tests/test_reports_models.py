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
