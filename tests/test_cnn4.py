"""Issue 18's 4-conv MNIST CNN (benchmarks/results/cnn4_mnist/, trained by benchmarks/cnn4_ecp5.py):
its hardware is bit-exact under Verilator on real MNIST test images, at the benchmark's folding."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from quantmodels.ir import load_model

_SPEC = importlib.util.spec_from_file_location("cnn4_ecp5", Path(__file__).resolve().parents[1] / "benchmarks/cnn4_ecp5.py")
cnn4 = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(cnn4)

#: Test images simulated: a few hundred keep the run to minutes on a design this large.
IMAGES = 300


def test_golden_forward_in_chunks_is_the_same(monkeypatch):
    """golden_forward bounds its im2col memory by running samples in chunks (10,000 MNIST images
    through this CNN at once would need 18 GB); chunked and whole runs agree on every layer."""
    from conftest import random_conv_model
    from quantmodels.ir import golden

    model = random_conv_model("xnor_popcount", in_shape=(8, 8, 1), channels=(4, 6), kernel=3)
    x = np.random.default_rng(0).integers(0, 256, (37, 8, 8), dtype=np.uint8)
    whole = golden.golden_forward(model, x)
    # a budget of one sample's patch matrix (+1): 37 chunks of one sample
    monkeypatch.setattr(golden, "GOLDEN_BUDGET", max(L.positions * L.cols for L in model.layers) + 1)
    calls = []
    real = golden.layer_forward
    monkeypatch.setattr(golden, "layer_forward", lambda L, v: calls.append(len(v)) or real(L, v))
    parts = golden.golden_forward(model, x)
    assert calls == [1] * (37 * len(model.layers))  # really one sample per chunk
    for a, b in zip(whole.activations, parts.activations, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(whole.classes, parts.classes)


def test_committed_model_is_the_issue_target():
    """At least 4 conv layers of >= 32 channels on 28x28 inputs, W1A1, trained to a sensible accuracy."""
    model = load_model(cnn4.MODEL_DIR)
    convs = [L for L in model.layers if L.conv is not None]
    assert len(convs) >= 4 and min(L.rows for L in convs) >= 32
    assert tuple(model.input.source_shape)[:2] == (28, 28)
    assert {L.kind for L in model.layers} == {"xnor_popcount"}
    assert model.meta["config"]["arch"] == cnn4.ARCH and model.meta["seed"] == cnn4.SEED
    assert model.meta["golden_test_accuracy"] >= 0.85  # one epoch on 30,000 images: about 90 %


@pytest.mark.slow
@pytest.mark.verilator
def test_cnn4_rtl_bit_exact_on_mnist(mnist_path):
    from hw.pipeline import DEFAULT_CLOCK_MHZ
    from lowbit.steps import simulate
    from quantmodels.datasets import load_mnist_npz
    from quantmodels.golden import golden_predict

    model = load_model(cnn4.MODEL_DIR)
    data = load_mnist_npz(mnist_path)
    x, y = data.x_test[:IMAGES], data.y_test[:IMAGES]
    h, _ = cnn4.hardware(model, cnn4.MODEL_DIR, cnn4.FOLD, DEFAULT_CLOCK_MHZ[cnn4.FAMILY])
    r = simulate(model, h, x, y)
    assert r.n_images == IMAGES and r.mismatches == 0, f"first mismatch at image {r.first_bad}"
    gold = golden_predict(model, x)
    assert abs(r.accuracy - float(np.mean(gold == y))) < 1e-12
    assert r.accuracy >= 0.8  # a trained net, not a constant classifier
    assert abs(r.steady_cycles_per_image - h.cycles_per_image) <= 1
