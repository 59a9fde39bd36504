"""The oracle for accepted mutations (issue 20.2): a mutated model that validation accepts must run
bit-exactly in hardware, so "accepted" never means "silently wrong". Mutations push the integers
to the edges validation allows (biases of growing magnitude, extreme weight codes, shifts,
thresholds beyond the accumulator range); whatever ``save_model`` + ``load_model`` accept is
compared, golden model against the generated hardware: Amaranth's simulator in the default run
(cheap), real Verilator on a handful of cases under ``-m slow``."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.folding import parse_folding
from quantmodels.errors import IRError
from quantmodels.golden import golden_forward
from quantmodels.ir import IRModel, load_model, save_model

from conftest import random_kind_model, random_mac_model, random_xnor_model

BASES = {"mac": lambda: random_mac_model((12, 6, 3)), "xnor": lambda: random_xnor_model((16, 8, 4)),
         "accumulate": lambda: random_kind_model("accumulate")}


def mutate(model: IRModel, kind: str, layer: int, magnitude: int, seed: int) -> IRModel:
    """One edge-of-range change to a copy of ``model`` (not validated here: the loader decides)."""
    m = copy.deepcopy(model)
    L = m.layers[layer % len(m.layers)]
    rng = np.random.default_rng(seed)
    sign = 1 if seed % 2 else -1
    if kind == "bias" and L.bias is not None:
        L.bias = L.bias.copy()
        L.bias[rng.integers(0, L.bias.size)] = sign * (1 << magnitude)
    elif kind == "weights":  # every weight at one end of its code range
        lo, hi = int(L.weights.min()), int(L.weights.max())
        L.weights = np.full_like(L.weights, hi if sign > 0 else lo)
    elif kind == "shift" and L.output == "requantize":
        L.shift = magnitude % 63
    elif kind == "thresholds" and L.thresholds is not None:  # beyond what the accumulator can reach
        L.thresholds = L.thresholds.copy()
        L.thresholds[rng.integers(0, L.thresholds.shape[0])] = sign * (1 << magnitude)
    return m


def accepted(model: IRModel, tmp_path) -> IRModel | None:
    """The model as reloaded from disk if validation accepts it, else None (refused in one line)."""
    d = tmp_path / "mut"
    try:
        save_model(model, d)
        return load_model(d)
    except IRError as e:
        assert "\n" not in str(e) and len(str(e)) <= 300, str(e)
        return None


def _images(model: IRModel, n: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, model.input.features)
    return (rng.integers(0, 256, shape) * (rng.random(shape) < 0.5)).astype(np.uint8)


MUTATION = dict(base=st.sampled_from(sorted(BASES)), kind=st.sampled_from(["bias", "weights", "shift", "thresholds"]),
                layer=st.integers(0, 1), magnitude=st.integers(0, 62), seed=st.integers(0, 2**16))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**MUTATION)
def test_accepted_mutations_agree_with_amaranth_sim(tmp_path, base, kind, layer, magnitude, seed):
    from test_hw import simulate_amaranth

    m = accepted(mutate(BASES[base](), kind, layer, magnitude, seed), tmp_path)
    if m is None:
        return
    x = _images(m, 6)
    classes, logits = simulate_amaranth(m, parse_folding(m, None), x)
    gold = golden_forward(m, x)
    np.testing.assert_array_equal(logits, gold.logits)
    np.testing.assert_array_equal(classes, gold.classes)


def test_mutation_edges_are_refused_or_exact(tmp_path):
    """The edges themselves: a bias of 2^62 cannot fit the accumulator the hardware derives and is
    refused; small ones are accepted (so the oracle above does compare something)."""
    base = BASES["mac"]()
    assert accepted(mutate(base, "bias", 0, 62, 1), tmp_path) is None
    assert accepted(mutate(base, "bias", 0, 3, 1), tmp_path) is not None
    assert accepted(mutate(base, "weights", 0, 0, 1), tmp_path) is not None


@pytest.mark.slow
@pytest.mark.verilator
@pytest.mark.parametrize("base, kind, layer, magnitude, seed", [
    ("mac", "bias", 0, 20, 1),        # a large accepted bias: wide accumulators
    ("mac", "weights", 0, 0, 2),      # every weight at the most negative code
    ("mac", "shift", 0, 30, 1),       # a large requantize shift
    ("xnor", "thresholds", 0, 9, 1),  # a threshold beyond the popcount's reach
])
def test_accepted_mutations_agree_with_verilator(tmp_path, base, kind, layer, magnitude, seed):
    from lowbit.steps import make_hardware, simulate

    m = accepted(mutate(BASES[base](), kind, layer, magnitude, seed), tmp_path)
    assert m is not None, "this edge case is meant to be accepted"
    x = _images(m, 24)
    h = make_hardware(m, None, tmp_path / "hw")
    r = simulate(m, h, x, None)
    assert r.bit_exact and r.n_images == len(x), r
