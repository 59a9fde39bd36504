"""DoReFa, BitNet and LUT (plug-ins of the one QuantNet, MLP and CNN; the lut autoencoder through the
one training loop): golden integer model == eval-mode float model, exported IR."""
from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from quantmodels.datasets import load_digits
from quantmodels.errors import ConfigError
from quantmodels.ir import load_model, save_model
from quantmodels.golden import golden_forward, golden_predict, quantize_input
from quantmodels.optim import Adam


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def fit(net, data, epochs: int, lr: float = 3e-3, seed: int = 0, batch: int = 64, hook=None):
    """Plain seeded minibatch Adam on cross-entropy (test helper only)."""
    rng = np.random.default_rng(seed)
    x, y = net.prepare(data.x_train), data.y_train
    opt = Adam()
    for ep in range(epochs):
        perm = rng.permutation(len(x))
        for s in range(0, len(x) - 1, batch):
            idx = perm[s:s + batch]
            z = net.forward(x[idx])
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1
            opt.step(net.params, net.backward((p / len(idx)).astype(np.float32)), lr)
            net.post_step()
        if hook:
            hook(ep)
    return net


def quant_net(method_name: str, data, arch: str, wb: int, ab: int, seed: int, n_out: int | None = None, **options):
    """A QuantNet built by the registered method (as ``train`` does) and its config."""
    from quantmodels.methods import get_method
    from quantmodels.train import TrainConfig

    cfg = TrainConfig(method=method_name, arch=arch, weight_bits=wb, act_bits=ab, options=options, progress=False)
    method = get_method(method_name)
    return method, cfg, method.build(cfg, data.image_shape, n_out or data.n_classes, np.random.default_rng(seed))


def dorefa_net(data, arch: str, wb: int, ab: int, seed: int, **options):
    return quant_net("dorefa", data, arch, wb, ab, seed, **options)


@pytest.mark.parametrize("wb, ab", [(1, 1), (2, 2), (3, 1), (1, 3), (4, 4)])  # weight bits, act bits
def test_dorefa_golden_equals_float(digits, wb, ab):
    method, cfg, net = dorefa_net(digits, "f48,f32", wb, ab, seed=wb * 10 + ab)
    fit(net, digits, 6)
    model = method.export(net, cfg, "t", digits.image_shape, {"seed": 0}, None)
    kinds = {L.kind for L in model.layers}
    assert kinds == ({"xnor_popcount"} if wb == ab == 1 else {"bit_serial"})
    if kinds == {"bit_serial"}:
        assert model.layers[1].weight_bits == (wb + 1 if wb > 1 else 2)
        assert model.input.quantizer == "identity" and model.layers[0].input_bits == 8
        m = (1 << wb) - 1 if wb > 1 else 1  # odd codes in [-m, m]
        for L in model.layers:
            assert np.abs(L.weights).max() <= m and np.all(L.weights % 2 == 1)
    else:
        assert model.input.quantizer == "threshold" and model.layers[-1].bias is not None
    np.testing.assert_array_equal(golden_predict(model, digits.x_test), net.predict(digits.x_test))
    acts = golden_forward(model, digits.x_test).activations[0]
    assert len(np.unique(acts)) == 1 << ab  # every level is used
    assert np.mean(net.predict(digits.x_test) == digits.y_test) > 0.6


def test_dorefa_weight_quantizer_is_the_paper_rule(digits):
    """The plug-in's codes/scales and STE are those of :mod:`quantmodels.dorefa`."""
    from quantmodels import dorefa

    for wb in (1, 2, 4):
        _, _, net = dorefa_net(digits, "f16", wb, 2, seed=wb)
        b = net.blocks[0]
        W = net.params[f"{b.name}.W"]
        codes, alpha = b.wq.codes(W, net.params)
        want, scale = dorefa.weight_codes(W.astype(np.float64), wb)
        np.testing.assert_array_equal(codes, want)
        np.testing.assert_allclose(alpha, scale, rtol=0, atol=0)
        g = np.random.default_rng(0).normal(size=W.shape).astype(np.float32)
        np.testing.assert_array_equal(b.wq.grad(W, g, net.params)[f"{b.name}.W"],
                                      dorefa.quantize_weights_grad(W, wb, g))


def test_dorefa_w2a2_beats_w1a1_and_grad_bits(digits):
    acc = {}
    for wb in (1, 2):
        _, _, net = dorefa_net(digits, "f64", wb, wb, seed=0)
        fit(net, digits, 8)
        acc[wb] = np.mean(net.predict(digits.x_test) == digits.y_test)
    assert acc[2] > acc[1] - 0.02
    _, _, g = dorefa_net(digits, "f64", 2, 2, seed=0, grad_bits=6)
    assert all(b.grad_quant is not None for b in g.blocks)
    fit(g, digits, 8)
    assert np.mean(g.predict(digits.x_test) == digits.y_test) > 0.8


def test_dorefa_cnn_exports_bit_serial_conv_exactly(digits, tmp_path):
    from quantmodels.train import TrainConfig, train

    res = train(TrainConfig(method="dorefa", arch="c4k3p1,p2,f16", weight_bits=2, act_bits=2, epochs=8, seed=1,
                            progress=False), digits)
    model = res.model
    assert [(L.op, L.kind) for L in model.layers] == [("conv2d", "bit_serial"), ("dense", "bit_serial"),
                                                      ("dense", "bit_serial")]
    assert model.layers[0].weight_bits == 3 and model.layers[0].input_bits == 8
    assert model.layers[0].conv.pool == (2, 2) and model.layers[0].conv.padding == 1
    np.testing.assert_array_equal(golden_predict(model, digits.x_test), res.net.predict(digits.x_test))
    assert res.agreement == 1.0 and res.golden_test_accuracy > 0.4  # 8x8 digits, 4 channels, 8 epochs
    save_model(model, tmp_path / "m")
    np.testing.assert_array_equal(golden_predict(load_model(tmp_path / "m"), digits.x_test),
                                  res.net.predict(digits.x_test))


def test_dorefa_w1a1_cnn_is_xnor_popcount_and_exact(digits):
    """Unsigned {0, 1} activations and thresholded pixels: conv padding reads value 0 in the float
    model and bit 0 in the IR; thresholds and the last layer's bias carry the -1-weight counts."""
    from quantmodels.train import TrainConfig, train

    res = train(TrainConfig(method="dorefa", arch="c4k3p1,p2,f16", weight_bits=1, act_bits=1, epochs=6, seed=2,
                            progress=False), digits)
    assert {L.kind for L in res.model.layers} == {"xnor_popcount"} and res.model.layers[0].op == "conv2d"
    np.testing.assert_array_equal(golden_predict(res.model, digits.x_test), res.net.predict(digits.x_test))
    assert res.agreement == 1.0 and len(np.unique(golden_predict(res.model, digits.x_test))) >= 5


@pytest.mark.parametrize("kw, msg", [
    (dict(weight_bits=9), r"^weight_bits: 9, expected 1\.\.8 for method 'dorefa'$"),
    (dict(weight_bits=0), r"^weight_bits: 0, expected an integer in 1\.\.16$"),
    (dict(act_bits=9), r"^act_bits: 9, expected 1\.\.8 for method 'dorefa' with these options$"),
    (dict(options={"grad_bits": 9}), r"^option 'grad_bits' of method 'dorefa': 9, expected in \[0, 8\]$"),
    (dict(options={"grad_bits": "x"}), r"^option 'grad_bits' of method 'dorefa': 'x', expected a int$"),
])
def test_dorefa_config_errors(kw, msg):
    from quantmodels.train import TrainConfig

    with pytest.raises(ConfigError, match=msg):
        TrainConfig(method="dorefa", **kw)


def test_bitnet_golden_equals_float_and_bits_shrink(digits):
    method, cfg, net = quant_net("bitnet", digits, "f48,f32", 8, 3, seed=1, lam_b=0.05, bits_every=20)
    fit(net, digits, 8)
    meta = method.extra_meta(net)
    bits = [b.wq.b for b in net.blocks]
    assert meta["bits_per_layer"] == bits and max(bits) < 8  # the regulariser removed bits
    assert meta["bits_per_weight"] < 8
    model = method.export(net, cfg, "t", digits.image_shape, meta, None)
    assert model.meta["bits_per_layer"] == bits
    for L, b in zip(model.layers, bits):
        assert L.kind == "bit_serial" and b <= L.weight_bits <= b + 1
        assert np.abs(L.weights).max() < 1 << b  # |c| < 2**b: the codes of a b-bit window
        # the window still straddles zero: the translation did not drift off the weights
        assert L.weights.min() < 0 < L.weights.max()
    np.testing.assert_array_equal(golden_predict(model, digits.x_test), net.predict(digits.x_test))
    assert np.mean(net.predict(digits.x_test) == digits.y_test) > 0.8


def test_bitnet_quantizer_is_the_paper_rule(digits):
    """The plug-in's codes, scale, STE and regulariser gradient are those of :mod:`quantmodels.bitnet`."""
    from quantmodels import bitnet

    _, _, net = quant_net("bitnet", digits, "c4k3,f16", 5, 2, seed=3, lam_q=0.5)
    for b in net.blocks:  # conv (im2col weight matrix) and dense alike
        W, p = net.params[f"{b.name}.W"], net.params
        s, t = float(np.exp(np.float64(p[f"{b.name}.log_s"][0]))), float(p[f"{b.name}.t"][0])
        want = bitnet.quantize(W.astype(np.float64), s, t, 5)
        codes, alpha = b.wq.codes(W, p)
        np.testing.assert_array_equal(codes, want.codes)
        np.testing.assert_array_equal(alpha, np.full(len(W), s))
        b.wq.forward(W, p, True)
        g = np.random.default_rng(0).normal(size=W.shape).astype(np.float32)
        got = b.wq.grad(W, g, p)
        dw, ds, dt = bitnet.ste_grads(W.astype(np.float64), s, want, g.astype(np.float64))
        rw, rs, rt = bitnet.relerr_grads(W.astype(np.float64), s, want)
        np.testing.assert_allclose(got[f"{b.name}.W"], dw + 0.5 * rw, rtol=1e-6, atol=1e-7)
        assert got[f"{b.name}.log_s"][0] == pytest.approx((ds + 0.5 * rs) * s, rel=1e-6)
        assert got[f"{b.name}.t"][0] == pytest.approx(dt + 0.5 * rt, rel=1e-6)


def test_bitnet_cnn_exports_bit_serial_conv_exactly(digits):
    from quantmodels.train import TrainConfig, train

    res = train(TrainConfig(method="bitnet", arch="c8k3p1,p2,f32", weight_bits=6, act_bits=3, epochs=8, seed=1,
                            options={"lam_b": 0.05, "bits_every": 20}, progress=False), digits)
    model, bits = res.model, res.model.meta["bits_per_layer"]
    assert [(L.op, L.kind) for L in model.layers] == [("conv2d", "bit_serial"), ("dense", "bit_serial"),
                                                      ("dense", "bit_serial")]
    assert len(bits) == 3 and bits != [6, 6, 6]  # the MDL step moved the widths
    assert model.meta["bits_per_weight"] == pytest.approx(
        np.dot(bits, [L.weights.size for L in model.layers]) / sum(L.weights.size for L in model.layers))
    for L, b in zip(model.layers, bits):
        assert b <= L.weight_bits <= b + 1
    assert model.layers[0].input_bits == 8 and model.layers[0].conv.pool == (2, 2)
    assert res.agreement == 1.0 and res.golden_test_accuracy > 0.8  # chance is 0.1
    # the widths are network state: checkpointed and restored with the best epoch's scales
    assert [int(res.net.state[f"{b.name}.bits"][0]) for b in res.net.blocks] == bits


def test_bitnet_twin_trains_without_export(digits):
    from quantmodels.train import TrainConfig, train

    cfg = TrainConfig(method="bitnet", arch="c8k3p1,p2,f32", epochs=8, seed=0, options={"quantize": False},
                      progress=False)
    res = train(cfg, digits, export=False)
    assert res.model is None and res.float_test_accuracy > 0.8
    assert not any(k.endswith((".log_s", ".t")) for k in res.net.params)  # no quantizer parameters
    # float weights, not rounded to integers, in the eval pass
    W = res.net.params["conv0.W"]
    np.testing.assert_array_equal(res.net.blocks[0].wq.codes(W, res.net.params)[0], W.astype(np.float64))
    msg = r"^bitnet: the unregularised float twin \(quantize=False\) has no integer export$"
    with pytest.raises(ConfigError, match=msg):
        res.net.method.export(res.net, cfg, "t", digits.image_shape, {}, None)


@pytest.mark.parametrize("kw, msg", [
    (dict(weight_bits=9), r"^weight_bits: 9, expected 1\.\.8 for method 'bitnet'$"),
    (dict(act_bits=0), r"^act_bits: 0, expected an integer in 1\.\.16$"),
    (dict(options={"lam_q": -1}), r"^option 'lam_q' of method 'bitnet': -1\.0, expected in \[0\.0, 1000000\.0\]$"),
    (dict(options={"bits_every": 0}), r"^option 'bits_every' of method 'bitnet': 0, expected in \[1, 1000000000\]$"),
    (dict(options={"quantize": "maybe"}), r"^option 'quantize' of method 'bitnet': 'maybe', expected a bool$"),
    (dict(options={"lam": 1}), r"^option 'lam': unknown for method 'bitnet', expected one of lam_q, lam_b, "
                               r"bits_every, quantize$"),
])
def test_bitnet_config_errors(kw, msg):
    from quantmodels.train import TrainConfig

    with pytest.raises(ConfigError, match=msg):
        TrainConfig(method="bitnet", **kw)


# ------------------------------------------------------------------------------ LUT (Baluja)
def test_lut_golden_equals_float_tables_only(digits):
    method, cfg, net = quant_net("lut", digits, "f48,f32", 4, 3, seed=2, table_bits=12, cluster_every=20,
                                 input_bits=8)
    fit(net, digits, 8)
    model = method.export(net, cfg, "t", digits.image_shape, {"seed": 2}, None)
    assert [L.kind for L in model.layers] == ["lut_product"] * 3
    assert model.layers[0].products.shape == (16, 256) and model.layers[1].products.shape == (16, 8)
    assert np.abs(model.layers[1].products).max() <= 2047
    np.testing.assert_array_equal(golden_predict(model, digits.x_test), net.predict(digits.x_test))
    gold = golden_forward(model, digits.x_test)
    np.testing.assert_array_equal(gold.logits, net.logits(digits.x_test))  # same integer logits
    assert len(np.unique(gold.activations[0])) >= 6  # levels are varied
    assert len(np.unique(model.layers[0].weights)) >= 12  # most codebook entries used
    assert np.mean(net.predict(digits.x_test) == digits.y_test) > 0.85


def test_lut_truncated_input_shrinks_first_table_and_stays_exact(digits, tmp_path):
    method, cfg, net = quant_net("lut", digits, "f32", 4, 3, seed=3, cluster_every=20, input_bits=3)
    fit(net, digits, 8)
    model = method.export(net, cfg, "t", digits.image_shape, {"seed": 3}, None)
    assert (model.input.quantizer, model.input.bits) == ("truncate", 3)
    assert model.layers[0].input_bits == 3 and model.layers[0].products.shape == (16, 8)
    x = quantize_input(model, digits.x_test)
    assert x.max() == 7 and np.array_equal(x, digits.x_test.reshape(len(x), -1).astype(np.int64) // 32)
    np.testing.assert_array_equal(golden_forward(model, digits.x_test).logits, net.logits(digits.x_test))
    assert np.mean(net.predict(digits.x_test) == digits.y_test) > 0.8
    save_model(model, tmp_path)
    back = load_model(tmp_path)
    assert (back.input.quantizer, back.input.bits) == ("truncate", 3)


def test_lut_autoencoder_close_to_float_twin(digits):
    """The one training loop with the mean-squared-error task: the 64-32-64 lut autoencoder
    reconstructs with its integer tables nearly as well as its float twin."""
    from quantmodels.train import TrainConfig, train

    err = {}
    for q in (True, False):
        cfg = TrainConfig(method="lut", task="autoencode", arch="f32", epochs=15, lr=3e-3, batch_size=32, seed=0,
                          options={"quantize": q, "cluster_every": 20, "input_bits": 8}, progress=False)
        res = train(cfg, digits, export=False)
        losses = [h["loss"] for h in res.history]
        assert res.model is None and losses[-1] < 0.5 * losses[0]
        assert res.net.blocks[-1].out == 64 and np.isnan(res.float_test_accuracy)
        with threadpool_limits(cfg.blas_threads, user_api="blas"):  # train's BLAS threads: the same float32 sums
            rec = res.net.reconstruct(digits.x_test)
        assert rec.shape == (len(digits.x_test), 64) and 0 <= rec.min() and rec.max() <= 1
        if q:  # integer-table levels: multiples of 1 / 31
            np.testing.assert_allclose(rec * 31, np.round(rec * 31), atol=1e-9)
        err[q] = float(np.mean((rec - digits.x_test.reshape(len(rec), -1) / 255.0) ** 2))
        assert err[q] == res.test_mse
        assert res.history[-1]["val_mse"] < res.history[0]["val_mse"]  # validation on the reconstruction error
    baseline = float(np.var(digits.x_test / 255.0))  # predicting the mean pixel
    assert err[False] < 0.5 * baseline and err[True] < 0.6 * baseline
    assert err[True] < 1.5 * err[False]
    with pytest.raises(ConfigError, match=r"^task: 'autoencode' has no IR export \(the IR ends in argmax\), "
                                          r"expected export=False$"):
        train(cfg, digits)


@pytest.mark.parametrize("method, wb, ab", [("dorefa", 2, 2), ("bitnet", 6, 3), ("lut", 4, 3)])
def test_registered_methods_train_and_export_exactly(digits, method, wb, ab):
    from quantmodels.train import TrainConfig, train

    res = train(TrainConfig(method=method, hidden=(32,), weight_bits=wb, act_bits=ab, epochs=3, seed=5,
                            progress=False), digits)
    assert res.agreement == 1.0 and res.golden_test_accuracy > 0.4  # 3 epochs; chance is 0.1
    assert res.model.method == method and res.model.meta["seed"] == 5


def test_lut_cnn_trains_and_exports_exactly(digits, tmp_path):
    """conv + max-pool + dense lut net: every layer lut_product, golden == float model everywhere."""
    from quantmodels.train import TrainConfig, train

    res = train(TrainConfig(method="lut", arch="c4k3p1,p2,f16", weight_bits=4, act_bits=2, epochs=10, lr=1e-2,
                            batch_size=32, seed=1, progress=False), digits)
    m = res.model
    assert [(L.op, L.kind) for L in m.layers] == [("conv2d", "lut_product"), ("dense", "lut_product"),
                                                  ("dense", "lut_product")]
    c = m.layers[0].conv
    assert (c.in_shape, c.kernel, c.padding, c.pool) == ((8, 8, 1), (3, 3), 1, (2, 2))
    assert m.layers[0].products.shape == (16, 16) and m.layers[0].out_features == 4 * 4 * 4
    assert res.agreement == 1.0 and res.golden_test_accuracy > 0.8  # chance is 0.1
    gold = golden_forward(m, digits.x_test)
    np.testing.assert_array_equal(gold.logits, res.net.logits(digits.x_test))  # same integer logits
    save_model(m, tmp_path)
    np.testing.assert_array_equal(golden_predict(load_model(tmp_path), digits.x_test), gold.classes)


def test_lut_pooling_levels_equals_pooling_activations():
    """level_index is non-decreasing, so max-pool commutes with it: the IR pools levels."""
    from quantmodels.discretize import level_index
    from quantmodels.layers import MaxPool2d

    z = np.random.default_rng(0).normal(0.5, 0.6, (3, 6, 6, 4))
    z[0, 0, 0, 0] = z[0, 0, 1, 0]  # a tie
    for k, s in ((2, 2), (3, 2)):
        pool = MaxPool2d(k, s)
        np.testing.assert_array_equal(pool.forward(level_index(z, 8)), level_index(pool.forward(z), 8))


def test_lut_cnn_float_twin_gradient(digits):
    """conv + pool + dense backward (im2col / col2im / MaxPool2d) against finite differences."""
    _, _, net = quant_net("lut", digits, "c3k3s2p1,p2,f5", 6, 5, seed=0, n_out=4, quantize=False)
    for k in net.params:
        net.params[k] = net.params[k].astype(np.float64) * 0.3 + 0.1  # activations off the clip kinks
    x = net.prepare(digits.x_train[:5]).astype(np.float64)
    g = np.random.default_rng(1).normal(size=(5, 4))
    net.forward(x)
    grads = net.backward(g)
    assert all(np.abs(grads[k]).max() > 1e-3 for k in ("conv0.W", "fc1.W", "fc2.W"))  # the check below is not vacuous
    for k in ("conv0.W", "conv0.b", "fc1.W", "fc2.W"):
        flat = net.params[k].reshape(-1)
        for j in (0, flat.size // 2, flat.size - 1):
            old = flat[j]
            flat[j] = old + 1e-6
            up = float(np.sum(g * net.forward(x)))
            flat[j] = old - 1e-6
            down = float(np.sum(g * net.forward(x)))
            flat[j] = old
            assert abs((up - down) / 2e-6 - grads[k].reshape(-1)[j]) < 1e-5 * max(1.0, abs(grads[k].reshape(-1)[j])), (k, j)


@pytest.mark.parametrize("kw, msg", [
    (dict(method="lut", arch="c4k3,f16", task="autoencode"),
     r"^task: 'autoencode' takes dense layers only \(fN,...\), got arch 'c4k3,f16'$"),
    (dict(method="bnn", task="autoencode"), r"^task: 'autoencode', expected classify for method 'bnn'$"),
    (dict(method="lut", task="regress"), r"^task: 'regress', expected one of classify, autoencode$"),
    (dict(method="lut", arch="cnn", options={"input_bits": 9}),
     r"^option 'input_bits' of method 'lut': 9, expected in \[1, 8\]$"),
])
def test_lut_config_errors(kw, msg):
    from quantmodels.train import TrainConfig

    with pytest.raises(ConfigError, match=msg):
        TrainConfig(**kw)


def test_lut_float_twin_has_no_export(digits):
    method, cfg, net = quant_net("lut", digits, "f16", 4, 3, seed=0, quantize=False)
    assert not net.exact  # clip(z, 0, 1) activations: the float forward pass predicts
    with pytest.raises(ConfigError, match=r"^lut: the float twin \(quantize=False\) has no integer export$"):
        method.export(net, cfg, "t", digits.image_shape, {}, None)
