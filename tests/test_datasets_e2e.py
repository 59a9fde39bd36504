"""A dataset that is not MNIST-shaped goes the whole way: colour 12x12x3 images with 4 classes,
trained (a convolution reading 3 input channels, and a dense net on 432 inputs), simulated bit-exact
under Verilator through the real CLI, exported to QONNX and imported back to the same golden model."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lowbit.cli import main
from quantmodels.ir import load_model
from quantmodels.ir import golden_forward

K = 4


@pytest.fixture(scope="module")
def colour_npz(tmp_path_factory):
    """Learnable colour data: a random prototype image per class plus pixel noise."""
    rng = np.random.default_rng(0)
    proto = rng.integers(0, 256, (K, 12, 12, 3))

    def split(n):
        y = rng.integers(0, K, n)
        return np.clip(proto[y] + rng.normal(0, 40, (n, 12, 12, 3)), 0, 255).astype(np.uint8), y

    p = tmp_path_factory.mktemp("data") / "colour.npz"
    (xtr, ytr), (xte, yte) = split(300), split(60)
    np.savez(p, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return p


@pytest.mark.parametrize("args", [["--arch", "c8k3p1,p2,f16"], ["--method", "dorefa", "--hidden", "16"]],
                         ids=["bnn-conv", "dorefa-dense"])
def test_colour_dataset_trains_simulates_and_round_trips(colour_npz, tmp_path, args, capsys):
    m = tmp_path / "m"
    assert main(["train", "--data", str(colour_npz), *args, "--epochs", "3", "--quiet", "--out", str(m)]) == 0
    model = load_model(m)
    assert model.n_classes == K and model.input.source_shape == (12, 12, 3)
    assert model.layers[0].in_features == 432 and model.layers[0].cols == (27 if args[0] == "--arch" else 432)  # 3x3x3 window
    assert main(["sim", str(m), "--images", "40"]) == 0
    sim = json.loads((m / "hw" / "sim.json").read_text())
    assert sim["bit_exact"] and sim["n_images"] == 40 and sim["mismatches"] == 0
    assert main(["export", str(m), str(tmp_path / "m.onnx")]) == 0
    assert main(["import", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "back")]) == 0
    x = np.load(colour_npz)["x_test"][:20]
    a, b = golden_forward(model, x), golden_forward(load_model(tmp_path / "back"), x)
    np.testing.assert_array_equal(a.logits, b.logits)
    assert len(np.unique(a.classes)) > 1  # a trained net, not a constant: the logits compared carry information
