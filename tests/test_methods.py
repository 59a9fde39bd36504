"""Every training method on real data: above chance, exported to its IR kind, and the golden
integer model equal to the float eval model on 100% of test predictions."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from quantmodels.checkpoint import load_checkpoint
from quantmodels.datasets import Dataset, load_digits, load_mnist_npz
from quantmodels.errors import ConfigError
from quantmodels.golden import golden_forward, golden_predict
from quantmodels.ir import load_model, save_model
from quantmodels.thresholds import exact_thresholds
from quantmodels.train import TrainConfig, train


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


def check_exact(res, data) -> None:
    np.testing.assert_array_equal(golden_predict(res.model, data.x_test), res.net.predict(data.x_test))
    assert res.agreement == 1.0


# method, options/bits, expected IR kind, min golden accuracy on digits (chance 0.10)
CASES = [
    ("bnn", {}, "xnor_popcount", 0.6),
    ("bnn", {"options": {"shift_bn": True}, "optimizer": "shift_adamax"}, "xnor_popcount", 0.5),
    ("binaryconnect", {}, "accumulate", 0.75),
    # stochastic weights learn slowly (latent weights must saturate): larger lr, modest margin
    ("binaryconnect", {"options": {"stochastic": True}, "act_bits": 2, "lr": 3e-2}, "accumulate", 0.3),
    ("xnor", {}, "xnor_popcount", 0.6),
    ("xnor", {"options": {"variant": "bwn"}, "act_bits": 3}, "accumulate", 0.7),
    ("ternary", {}, "accumulate", 0.75),
    ("ternary", {"options": {"learned": True}}, "accumulate", 0.75),
    ("pow2", {"weight_bits": 4}, "shift_add", 0.75),
    ("pow2", {"weight_bits": 3, "options": {"qbackprop": True}}, "shift_add", 0.7),
]


@pytest.mark.parametrize("method, kw, kind, min_acc", CASES,
                         ids=[f"{m}-{'-'.join(f'{k}' for k in kw.get('options', {})) or 'default'}"
                              for m, kw, *_ in CASES])
def test_method_trains_and_exports_exactly(digits, method, kw, kind, min_acc):
    res = train(TrainConfig(method=method, hidden=(64, 64), epochs=12, progress=False, seed=2, **kw), digits)
    check_exact(res, digits)
    assert res.golden_test_accuracy > min_acc
    assert {L.kind for L in res.model.layers} == {kind}
    acts = golden_forward(res.model, digits.x_test).activations
    levels = res.model.layers[0].output_bits
    assert len(np.unique(acts[0])) >= min(1 << levels, 3) - (levels == 1)  # real, varied hidden levels
    meta = res.model.meta
    assert meta["seed"] == 2 and meta["epochs"] == 12 and meta["train_seconds"] > 0
    if method == "ternary":
        assert 0.05 < meta["sparsity"] < 0.95 and (res.model.layers[0].weights == 0).any()
    if method == "pow2":
        w = np.abs(res.model.layers[0].weights)
        assert w.max() == 1 << (kw["weight_bits"] - 2) and len(np.unique(w)) >= 3


@pytest.mark.parametrize("method, kw", [("bnn", {}), ("binaryconnect", {}), ("xnor", {})])
def test_cnn_exports_conv_layers_exactly(digits, method, kw, tmp_path):
    res = train(TrainConfig(method=method, arch="c8k3p1,p2,c16k3p1,p2,f32", epochs=15, lr=1e-2, dropout_in=0.0,
                            dropout_hidden=0.0, progress=False, seed=1, **kw), digits)
    check_exact(res, digits)
    assert res.golden_test_accuracy > 0.5  # 8x8 digits, 15 epochs: 64-89% measured
    ops = [L.op for L in res.model.layers]
    assert ops == ["conv2d", "conv2d", "dense", "dense"]
    assert res.model.layers[0].conv.pool == (2, 2) and res.model.layers[1].out_features == 2 * 2 * 16
    save_model(res.model, tmp_path / "m")  # round trip through the v3 files
    np.testing.assert_array_equal(golden_predict(load_model(tmp_path / "m"), digits.x_test),
                                  res.net.predict(digits.x_test))


def test_mnist_subset_binaryconnect_full_test_set(mnist_path):
    d = load_mnist_npz(mnist_path)
    sub = Dataset("mnist", d.x_train[:6000], d.y_train[:6000], d.x_test, d.y_test)
    res = train(TrainConfig(method="binaryconnect", hidden=(128, 128), epochs=2, progress=False), sub)
    check_exact(res, sub)  # all 10,000 test images
    assert res.golden_test_accuracy > 0.85


def test_seeded_runs_are_identical_with_stochastic_quantizers(digits):
    cfg = dict(method="binaryconnect", hidden=(32,), epochs=2, progress=False, seed=7,
               options={"stochastic": True}, dropout_in=0.1)
    a, b = train(TrainConfig(**cfg), digits), train(TrainConfig(**cfg), digits)
    for La, Lb in zip(a.model.layers, b.model.layers):
        np.testing.assert_array_equal(La.weights, Lb.weights)
    np.testing.assert_array_equal(a.model.layers[0].thresholds, b.model.layers[0].thresholds)
    c = train(TrainConfig(**{**cfg, "seed": 8}), digits)
    assert not np.array_equal(a.model.layers[0].weights, c.model.layers[0].weights)


def test_best_epoch_checkpoint_written_and_restored(digits, tmp_path):
    res = train(TrainConfig(method="ternary", hidden=(32,), epochs=4, progress=False, seed=4,
                            checkpoint_dir=str(tmp_path / "ck")), digits)
    params, state, info = load_checkpoint(tmp_path / "ck")
    assert info["epoch"] == res.model.meta["best_epoch"] and info["seed"] == 4
    assert info["val_accuracy"] == max(h["val_accuracy"] for h in res.history)
    for k, v in params.items():
        np.testing.assert_array_equal(v, res.net.params[k])
    np.testing.assert_array_equal(state["fc0.var"], res.net.state["fc0.var"])


@pytest.mark.parametrize("kw, msg", [
    (dict(method="pow2", weight_bits=0), r"^weight_bits: 0, expected an integer in 1\.\.16$"),
    (dict(method="ternary", act_bits=17), r"^act_bits: 17, expected an integer in 1\.\.16$"),
    (dict(method="pow2", weight_bits=1), r"^weight_bits: 1, expected 2\.\.8 for method 'pow2'$"),
    (dict(method="bnn", act_bits=2), r"^act_bits: 2, expected 1 for method 'bnn' with these options$"),
    (dict(method="binaryconnect", act_bits=1),
     r"^act_bits: 1, expected 2\.\.8 for method 'binaryconnect' with these options$"),
    (dict(method="xnor", act_bits=4), r"^act_bits: 4, expected 1 for method 'xnor' with these options$"),
    (dict(method="xnor", options={"variant": "xor"}),
     r"^option 'variant' of method 'xnor': 'xor', expected one of xnor, bwn$"),
    (dict(method="ternary", options={"delta": -1}),
     r"^option 'delta' of method 'ternary': -1\.0, expected in \[0\.0, 3\.0\]$"),
    (dict(method="ternary", options={"learned": "maybe"}),
     r"^option 'learned' of method 'ternary': 'maybe', expected a bool$"),
    (dict(method="bnn", options={"stochastic": 1}),
     r"^option 'stochastic': unknown for method 'bnn', expected one of shift_bn$"),
    (dict(arch="c8k3,z1"), r"^arch: token 'z1' in 'c8k3,z1', expected fN, cNkK\[sS\]\[pP\] or pK\[sS\]$"),
    (dict(arch="f16,c8k3"), r"^arch: 'c8k3' in 'f16,c8k3' follows a dense layer, expected convolutions first$"),
    (dict(arch="p2,f16"), r"^arch: 'p2' in 'p2,f16' does not follow a convolution, expected max-pool right after a conv layer$"),
    (dict(arch="c0k3"), r"^arch: 'c0k3' in 'c0k3', expected sizes in 1\.\.65536$"),
])
def test_config_errors_before_training(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        TrainConfig(**kw)


def test_int8_accepts_convolutions():
    # the int8 baseline trains CNNs too (float QuantNet conv + pool, exported as mac conv2d layers)
    cfg = TrainConfig(method="int8", arch="c8k3,f16")
    assert (cfg.weight_bits, cfg.act_bits) == (8, 8)


def test_arch_that_does_not_fit_fails_before_training(digits):
    with pytest.raises(ConfigError, match=r"^arch: 'c8k5,p2,c8k3' does not fit 8x8 images"):
        train(TrainConfig(method="bnn", arch="c8k5,p2,c8k3", progress=False), digits)


def test_exact_thresholds_increasing_decreasing_and_constant():
    rng = np.random.default_rng(0)
    out, K = 6, 7  # 3-bit levels
    lo, hi = rng.integers(-300, -10, out), rng.integers(10, 300, out)
    scale = np.array([0.05, -0.07, 0.0, 1e-4, -0.3, 0.02])
    shift = rng.uniform(-2, 2, out)

    def f(acc):
        return np.floor(np.clip(scale * acc + shift, 0, 1) * K + 0.5).astype(np.int64)

    T, flip = exact_thresholds(f, lo, hi, K + 1, 0)
    np.testing.assert_array_equal(flip, [False, True, False, False, True, False])
    for o in range(out):
        acc = np.arange(lo[o], hi[o] + 1)
        a = np.where(flip[o], -acc, acc)  # hardware accumulator after negating the weights
        want = f(np.repeat(acc[:, None], out, 1))[:, o]
        np.testing.assert_array_equal((a[:, None] >= T[o][None, :]).sum(1), want)
    assert (np.diff(T, axis=1) >= 0).all()


def test_exact_thresholds_warn_when_not_monotone():
    def f(acc):  # a bump: 1 only in the middle
        return ((acc > 3) & (acc < 7)).astype(np.int64)

    with pytest.warns(UserWarning, match=r"^fcX: output level not monotone .* channels \[0\]"):
        exact_thresholds(f, np.array([0]), np.array([10]), 2, 0, "fcX")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact_thresholds(lambda a: (a >= 4).astype(np.int64), np.array([0]), np.array([10]), 2, 0)
