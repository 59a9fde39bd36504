"""NumPy training: golden integer model == float quantized model, folding rules, config errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from quantmodels.datasets import Dataset, load_digits, load_mnist_npz
from quantmodels.errors import ConfigError
from quantmodels.export import export_int8, fold_bn_thresholds, int8_fake_quant, int8_plan
from quantmodels.golden import golden_forward, golden_predict
from quantmodels.layers import bn_eval
from quantmodels.methods import get_method
from quantmodels.train import TrainConfig, train


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


def test_bnn_digits_golden_equals_float(digits):
    res = train(TrainConfig(method="bnn", hidden=(64, 64), epochs=15, progress=False, seed=3), digits)
    float_pred = res.net.predict(digits.x_test)
    gold_pred = golden_predict(res.model, digits.x_test)
    np.testing.assert_array_equal(gold_pred, float_pred)  # 100% of the test set
    assert res.agreement == 1.0
    assert res.golden_test_accuracy > 0.75  # chance is 0.10
    assert res.model.meta["seed"] == 3
    # hidden activations are real data: both bit values occur
    acts = golden_forward(res.model, digits.x_test).activations[0]
    assert 0.05 < acts.mean() < 0.95


def test_int8_digits(digits):
    res = train(TrainConfig(method="int8", hidden=(64, 64), epochs=10, progress=False), digits)
    assert res.golden_test_accuracy > 0.85
    assert abs(res.golden_test_accuracy - res.float_test_accuracy) < 0.03  # PTQ costs little
    L0 = res.model.layers[0]
    assert L0.kind == "mac" and L0.weights.min() >= -127 and L0.weights.max() <= 127
    assert golden_forward(res.model, digits.x_test).activations[0].max() > 0
    assert res.agreement == 1.0  # golden == the fake-quantized float simulation of the PTQ model


#: a digits CNN the int8 baseline learns in a second (conv2d + fused pool, then dense)
INT8_CNN = dict(arch="c8k3p1,p2,f32", epochs=10, lr=1e-2, batch_size=32, seed=1)


def test_int8_cnn_digits(digits):
    res = train(TrainConfig(method="int8", progress=False, **INT8_CNN), digits)
    assert res.float_test_accuracy > 0.9
    assert abs(res.golden_test_accuracy - res.float_test_accuracy) < 0.02  # PTQ costs little on a CNN too
    m = res.model
    assert [L.kind for L in m.layers] == ["mac"] * 3 and [L.op for L in m.layers] == ["conv2d", "dense", "dense"]
    L0 = m.layers[0]
    assert L0.conv.in_shape == (8, 8, 1) and L0.conv.padding == 1 and L0.conv.pool == (2, 2)
    assert L0.output == "requantize" and L0.out_features == 4 * 4 * 8 and L0.weights.shape == (8, 9)
    assert golden_forward(m, digits.x_test).activations[0].max() > 0
    assert res.agreement == 1.0  # golden == the grid-snapped fake-quant, ties included


# cfg: the dense MLP, and the CNN (conv2d + fused pool first layer)
@pytest.mark.parametrize("cfg", [dict(hidden=(64, 64), epochs=5), INT8_CNN], ids=["mlp", "cnn"])
def test_int8_fake_quant_matches_golden_levels(digits, cfg):
    """The float-domain PTQ simulation (real scales, float64) reproduces the IR's integer shift
    arithmetic on real data: with the accumulator-grid snap every hidden level of every layer
    and every class is equal; plain float evaluation (no snap) differs only, by one level, at
    exact rounding ties (float error below the tie; for a conv, a tie somewhere in the pool
    window), which is why the snap is the rule."""
    res = train(TrainConfig(method="int8", progress=False, **cfg), digits)
    calib = digits.x_train[:500]
    plan, model = int8_plan(res.net, calib), export_int8(res.net, "t", digits.image_shape, calib, {})
    assert [L.shift for L in plan[:-1]] == [L.shift for L in model.layers[:-1]]
    g = golden_forward(model, digits.x_test)
    n = len(digits.x_test)

    def levels(outs, i, L):
        return np.rint(outs[i] / (L.s_acc * (1 << L.shift))).astype(np.int64).reshape(n, -1)

    snapped, plain = int8_fake_quant(plan, digits.x_test), int8_fake_quant(plan, digits.x_test, grid_snap=False)
    assert len(np.unique(g.activations[0])) > 20  # real data, many levels used
    for i, L in enumerate(plan[:-1]):
        np.testing.assert_array_equal(levels(snapped, i, L), g.activations[i])
    np.testing.assert_array_equal(np.argmax(snapped[-1], 1), g.classes)
    np.testing.assert_array_equal(np.rint(snapped[-1] / plan[-1].s_acc).astype(np.int64), g.logits)
    L0 = plan[0]
    lv = levels(plain, 0, L0)
    off = lv != g.activations[0]
    assert off.mean() < 0.01
    x0 = digits.x_test.reshape(n, *L0.layer.in_shape).astype(np.int64)
    acc0 = L0.layer.patches(x0) @ L0.wq.T.astype(np.int64) + L0.bias
    tie = (acc0 % (1 << L0.shift) == 1 << (L0.shift - 1)).astype(np.int64)
    tie = L0.layer.outputs(tie, n).reshape(n, -1)  # conv: max-pooled, i.e. a tie anywhere in the window
    assert np.all(tie[off] == 1) and np.all(np.abs(lv - g.activations[0])[off] == 1)
    assert np.mean(np.argmax(plain[-1], 1) == g.classes) > 0.99
    # a wrong shift (off by one) breaks the match: the check can fail
    bad = [dataclasses.replace(L0, shift=L0.shift + 1)] + plan[1:]
    bad_outs = int8_fake_quant(bad, digits.x_test)
    assert np.mean(levels(bad_outs, 0, L0) != g.activations[0]) > 0.1
    if L0.layer.geom is None:  # (the CNN's classes barely move on the coarser grid: levels only)
        assert np.mean(np.argmax(bad_outs[-1], 1) == g.classes) < 0.99


def test_seeded_runs_are_identical(digits):
    cfg = dict(method="bnn", hidden=(32,), epochs=2, progress=False, seed=7)
    a, b = train(TrainConfig(**cfg), digits), train(TrainConfig(**cfg), digits)
    np.testing.assert_array_equal(a.model.layers[0].weights, b.model.layers[0].weights)
    np.testing.assert_array_equal(a.model.layers[0].thresholds, b.model.layers[0].thresholds)


def test_bnn_mnist_sfc_agreement_full_test_set(mnist_path):
    d = load_mnist_npz(mnist_path)
    sub = Dataset("mnist", d.x_train[:10000], d.y_train[:10000], d.x_test, d.y_test)
    res = train(TrainConfig(method="bnn", hidden=(256, 256, 256), epochs=1, progress=False), sub)
    gold = golden_predict(res.model, d.x_test)
    np.testing.assert_array_equal(gold, res.net.predict(d.x_test))  # all 10,000 test images
    assert res.golden_test_accuracy > 0.85


def test_threshold_folding_signs():
    rng = np.random.default_rng(0)
    n_in, n_out = 40, 6
    w = rng.integers(0, 2, (n_out, n_in)).astype(np.uint8)
    gamma = np.array([1.5, -0.7, 0.0, 0.0, 2.0, -3.0], np.float32)
    beta = np.array([0.3, 0.2, 0.5, -0.5, -100.0, 100.0], np.float32)
    mean = rng.normal(0, 5, n_out).astype(np.float32)
    var = rng.uniform(1, 30, n_out).astype(np.float32)
    wf, t = fold_bn_thresholds(w, gamma, beta, mean, var)
    x = rng.integers(0, 2, (500, n_in))
    a = np.where(x, 1, -1) @ np.where(w, 1, -1).T
    want = bn_eval(a, gamma, beta, mean, var) >= 0
    p = x @ wf.T.astype(np.int64) + (1 - x) @ (1 - wf.T.astype(np.int64))
    np.testing.assert_array_equal(p >= t[:, 0], want)
    np.testing.assert_array_equal(wf[1], 1 - w[1])  # negative gamma flips the row
    assert t[2, 0] == 0 and t[3, 0] == n_in + 1  # gamma == 0: constant 1 / constant 0
    assert t[4, 0] == n_in + 1 and t[5, 0] == 0  # unreachable thresholds saturate


@pytest.mark.parametrize("kw, msg", [
    (dict(method="xnor9"), r"^method: 'xnor9', expected one of bnn, binaryconnect, xnor, ternary, pow2, int8, dorefa, bitnet, lut$"),
    (dict(epochs=0), r"^epochs: 0, expected >= 1$"),
    (dict(hidden=()), r"^hidden: \(\), expected one or more positive layer sizes$"),
    (dict(lr=-1.0), r"^lr: -1.0, expected > 0$"),
    (dict(optimizer="sgdx"), r"^optimizer: 'sgdx', expected one of adam, adamax, sgd, shift_adamax$"),
    (dict(lr_schedule="step"), r"^lr_schedule: 'step', expected one of cosine, constant$"),
    (dict(batch_size=1), r"^batch_size: 1, expected >= 2"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        TrainConfig(**kw)


def test_sgd_momentum_steps_and_constant_schedule(digits):
    """SGD: v = 0.9 v + g, p -= lr v (two hand-computed steps); the constant schedule keeps lr."""
    from quantmodels.optim import SGD
    from quantmodels.train import LR_SCHEDULES

    p, opt = {"w": np.array([1.0, -2.0])}, SGD()
    opt.step(p, {"w": np.array([0.5, 1.0])}, 0.1)
    np.testing.assert_allclose(p["w"], [0.95, -2.1])
    opt.step(p, {"w": np.array([0.5, 1.0])}, 0.1)  # v = 0.9 * g + g = 1.9 g
    np.testing.assert_allclose(p["w"], [0.95 - 0.095, -2.1 - 0.19])
    assert LR_SCHEDULES["constant"](90, 100) == 1.0 and LR_SCHEDULES["cosine"](0, 100) == 1.0
    assert abs(LR_SCHEDULES["cosine"](100, 100) - 0.01) < 1e-12
    cfg = dict(method="bnn", hidden=(32,), epochs=8, batch_size=32, progress=False, seed=3, optimizer="sgd", lr=0.05)
    const = train(TrainConfig(lr_schedule="constant", **cfg), digits)
    cos = train(TrainConfig(**cfg), digits)
    assert const.agreement == 1.0 and const.golden_test_accuracy > 0.5  # SGD trains (chance is 0.1)
    assert const.model.meta["config"]["lr_schedule"] == "constant"
    assert not np.array_equal(const.model.layers[0].weights, cos.model.layers[0].weights)


# dense; conv + pool + conv (input gradient through col2im and the pool) + dense
@pytest.mark.parametrize("arch, image_shape", [("f4", (5,)), ("c2k3p1,p2,c3k2,f4", (6, 6))])
def test_float_net_gradient_matches_central_differences(arch, image_shape):
    """The int8 method's float ReLU network (identity weights, bias, ReLU blocks of QuantNet)."""
    rng = np.random.default_rng(0)
    net = get_method("int8").build(TrainConfig(method="int8", arch=arch), image_shape, 3, rng)
    assert sorted(net.params) == sorted(f"{b.name}.{p}" for b in net.blocks for p in "Wb")
    for k in net.params:
        net.params[k] = net.params[k].astype(np.float64)
        net.params[k] += rng.normal(0, 0.1, net.params[k].shape)
    x = rng.normal(0, 1, (7, *net.in_shape))
    y = rng.integers(0, 3, 7)

    def loss() -> float:
        z = net.forward(x)
        z = z - z.max(1, keepdims=True)
        return float(-(z[np.arange(7), y] - np.log(np.exp(z).sum(1))).mean())

    z = net.forward(x)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(7), y] -= 1
    grads = net.backward(p / 7)
    for k in net.params:
        num = np.zeros_like(net.params[k])
        it = np.nditer(num, flags=["multi_index"])
        for _ in it:
            i = it.multi_index
            old = net.params[k][i]
            net.params[k][i] = old + 1e-6
            lp = loss()
            net.params[k][i] = old - 1e-6
            lm = loss()
            net.params[k][i] = old
            num[i] = (lp - lm) / 2e-6
        np.testing.assert_allclose(grads[k], num, rtol=1e-4, atol=1e-7)
