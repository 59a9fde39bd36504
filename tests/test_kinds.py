"""The kind registry: every table of every stack layer covers every Kind, each kind's golden
arithmetic matches its per-element definition, ranges bound what the arithmetic produces, and an
unknown kind fails at the one lookup."""
from __future__ import annotations

import numpy as np
import pytest

from hw.folding import parse_folding
from hw.lanes import LANES, lane_spec
from quantmodels.errors import ConfigError, IRError
from quantmodels.ir import KINDS, IRModel, Kind, Layer, OpCost, kind_spec
from quantmodels.ir.golden import accumulate
from reports.energy import acc_bits, layer_energy, model_energy
from reports.estimator import features, probe_layer
from reports.kind_costs import COSTS, cost_spec

from conftest import ALL_KINDS, random_kind_model


def test_every_table_covers_every_kind():
    for table in (KINDS, LANES, COSTS):
        assert list(table) == list(Kind)


@pytest.mark.parametrize("lookup", [kind_spec, lane_spec, cost_spec])
def test_unknown_kind_fails_at_the_lookup(lookup):
    with pytest.raises(IRError, match=r"^kind: 'quantum', expected one of xnor_popcount, mac, accumulate, "
                                      r"shift_add, bit_serial, lut_product$"):
        lookup("quantum")


def test_layer_refuses_an_unknown_kind():
    with pytest.raises(IRError, match=r"^fc0\.kind: 'ternery', expected one of "):
        Layer("fc0", "ternery", 4, 2, 8, 2, "argmax", np.zeros((2, 4), np.int64))


def reference_acc(L: Layer, x: np.ndarray) -> np.ndarray:
    """Per-element definition of each kind's accumulator, written independently of the registry."""
    w = L.weights
    out = np.zeros((len(x), L.rows), np.int64)
    for n in range(len(x)):
        for r in range(L.rows):
            if L.kind == "xnor_popcount":
                out[n, r] = sum(int(a == b) for a, b in zip(x[n], w[r]))
            elif L.kind == "lut_product":
                out[n, r] = sum(int(L.products[c, a]) for a, c in zip(x[n], w[r]))
            else:  # every other kind computes the plain dot product in its own hardware
                out[n, r] = sum(int(a) * int(c) for a, c in zip(x[n], w[r]))
    return out


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_golden_arithmetic_matches_definition_and_ranges(kind):
    spec = kind_spec(kind)
    rng = np.random.default_rng(7)
    wb, ib = spec.example_bits
    L = probe_layer(kind, 11, 5, ib, wb, rng)
    lo, hi = L.weight_range()
    assert L.weights.min() >= lo and L.weights.max() <= hi
    xs = [rng.integers(0, 1 << ib, (20, 11)), np.zeros((1, 11), np.int64), np.full((1, 11), (1 << ib) - 1)]
    for x in xs:
        acc = accumulate(L, x)
        np.testing.assert_array_equal(acc, reference_acc(L, x))
        alo, ahi = L.acc_range()
        assert acc.min() >= alo and acc.max() <= ahi
    # the range is tight enough to matter: an extreme weight row reaches an end of it
    assert spec.acc_range(L)[1] > 0


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_validates_estimates_and_prices(kind):
    m = random_kind_model(kind)
    assert isinstance(m, IRModel) and all(L.kind is Kind(kind) for L in m.layers)
    folds = parse_folding(m, None)
    for L, f in zip(m.layers, folds):
        feats = features(L, f, "ice40")
        assert feats["lane"] >= 0 and feats["cpa"] > 0  # every kind's tree ends in an adder
        assert f.planes == lane_spec(kind).planes(L) >= 1
    for e, L in zip(model_energy(m), m.layers):
        assert e.compute_pj > 0
        ops = kind_spec(kind).ops(L, acc_bits(L))
        labels = [op.label for op in ops]
        assert len(labels) == len(set(labels)) and set(labels) <= set(e.ops)
        assert all(op.count >= 0 and op.cost in tuple(OpCost) for op in ops)


def test_zero_weights_are_free_only_where_the_hardware_skips_them():
    rng = np.random.default_rng(0)
    L = probe_layer("accumulate", 16, 4, 8, 2, rng)
    L.weights[:] = 0
    e = layer_energy(L, 0.0)
    assert e.ops["skipped"] == L.macs and e.ops[f"add_sub_{acc_bits(L)}b"] == 0
    L.weights[:] = 1
    assert layer_energy(L, 0.0).ops["skipped"] == 0


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_is_calibrated_for_the_estimator(kind):
    from reports.estimator import calibrated_targets, estimate

    m = random_kind_model(kind)
    L, f = m.layers[0], parse_folding(m, None)[0]
    for target in calibrated_targets():
        est = estimate(L, f, target)
        assert est.luts > 0 and est.ffs > 0


def test_an_uncalibrated_kind_is_refused_not_estimated_from_shared_terms(monkeypatch):
    import reports.estimator as est

    consts = est._constants()
    stripped = {**consts, "coefficients": {fam: {metric: {n: v for n, v in c.items() if not n.startswith("xnor_popcount:")}
                                                 for metric, c in per.items()} for fam, per in consts["coefficients"].items()}}
    monkeypatch.setattr(est, "_constants", lambda: stripped)
    m = random_kind_model("xnor_popcount")
    with pytest.raises(ConfigError, match=r"^fc0: kind 'xnor_popcount' has no ice40 calibration \(add its points"):
        est.estimate(m.layers[0], parse_folding(m, None)[0], "ice40")
