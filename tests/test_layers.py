"""Conv / pool / batch-norm layers against naive loops and central differences."""
from __future__ import annotations

import numpy as np
import pytest

from quantmodels.layers import BatchNorm, Bias, ConvGeom, MaxPool2d, OutScale, col2im, im2col
from quantmodels.quantizers import ClipAct, InputQuant, LevelAct, ReLUAct, SignAct, UniformAct, ap2


def naive_conv(x, w, k, s, p, pad_value):
    """x (N,H,W,C), w (O, k*k*C) in (ky,kx,c) order -> (N,OH,OW,O) by explicit loops."""
    n, h, wd, c = x.shape
    xp = np.full((n, h + 2 * p, wd + 2 * p, c), pad_value, x.dtype)
    xp[:, p:p + h, p:p + wd] = x
    oh, ow = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
    out = np.zeros((n, oh, ow, len(w)))
    for i in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for o in range(len(w)):
                    acc = 0.0
                    for ky in range(k):
                        for kx in range(k):
                            for ch in range(c):
                                acc += xp[i, oy * s + ky, ox * s + kx, ch] * w[o, (ky * k + kx) * c + ch]
                    out[i, oy, ox, o] = acc
    return out


# (k, stride, pad): odd/even kernels, strides 1-2, with and without padding
@pytest.mark.parametrize("k, s, p", [(3, 1, 0), (3, 2, 1), (2, 2, 0), (1, 1, 0), (3, 1, 2)])
def test_conv_im2col_matches_naive_loops(k, s, p):
    rng = np.random.default_rng(k * 10 + s + p)
    x = rng.normal(size=(2, 7, 6, 3))
    w = rng.normal(size=(4, k * k * 3))
    g = ConvGeom((7, 6, 3), k, s, p)
    got = im2col(x, g, pad_value=-1.0) @ w.T
    np.testing.assert_allclose(got, naive_conv(x, w, k, s, p, -1.0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k, s, p", [(3, 1, 1), (3, 2, 0), (2, 1, 1)])
def test_col2im_is_the_adjoint_and_conv_gradients_match_central_differences(k, s, p):
    rng = np.random.default_rng(1)
    g = ConvGeom((5, 6, 2), k, s, p)
    x = rng.normal(size=(2, 5, 6, 2))
    w = rng.normal(size=(3, g.fan_in))
    R = rng.normal(size=(2, *g.out_hw, 3))

    def loss(x_, w_):
        return float(np.sum(R * (im2col(x_, g) @ w_.T)))

    P = im2col(x, g)
    dW = R.reshape(-1, 3).T @ P.reshape(-1, g.fan_in)
    dx = col2im(R @ w, g)
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (1, 2, 3, 1), (0, 4, 5, 1), (1, 0, 5, 0)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        assert abs((loss(xp, w) - loss(xm, w)) / (2 * eps) - dx[idx]) < 1e-6
    for idx in [(0, 0), (2, g.fan_in - 1), (1, 5)]:
        wp, wm = w.copy(), w.copy()
        wp[idx] += eps
        wm[idx] -= eps
        assert abs((loss(x, wp) - loss(x, wm)) / (2 * eps) - dW[idx]) < 1e-6


@pytest.mark.parametrize("k, s", [(2, 2), (3, 2), (2, 1)])
def test_maxpool_forward_backward(k, s):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 7, 6, 3))
    pool = MaxPool2d(k, s)
    y = pool.forward(x, train=True)
    ph, pw = pool.out_hw(7, 6)
    want = np.array([[[[x[i, oy * s:oy * s + k, ox * s:ox * s + k, c].max() for c in range(3)]
                       for ox in range(pw)] for oy in range(ph)] for i in range(2)])
    np.testing.assert_array_equal(y, want)
    R = rng.normal(size=y.shape)
    dx = pool.backward(R)
    eps = 1e-6
    for idx in [tuple(rng.integers(0, d) for d in x.shape) for _ in range(12)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num = (np.sum(R * pool.forward(xp)) - np.sum(R * pool.forward(xm))) / (2 * eps)
        assert abs(num - dx[idx]) < 1e-6
    assert np.count_nonzero(dx) > 0


def test_maxpool_ties_take_the_first_window_offset():
    x = np.zeros((1, 2, 2, 1))
    pool = MaxPool2d(2)
    pool.forward(x, train=True)
    dx = pool.backward(np.ones((1, 1, 1, 1)))
    assert dx[0, 0, 0, 0] == 1 and dx.sum() == 1


@pytest.mark.parametrize("shift", [False, True])
def test_batchnorm_train_gradient(shift):
    rng = np.random.default_rng(3)
    params, state = {}, {}
    bn = BatchNorm("bn", 4, params, state, shift=shift)
    params["bn.gamma"] = rng.uniform(0.5, 2, 4)
    params["bn.beta"] = rng.normal(size=4)
    a = rng.normal(size=(6, 3, 4)) * 3
    R = rng.normal(size=a.shape)
    bn.forward(a, True)
    da, g = bn.backward(R)
    if shift:  # shift BN: AP2(gamma), AP2(1/std) -> forward uses powers of two
        y = bn.forward(a, True)
        c = a.reshape(-1, 4) - a.reshape(-1, 4).mean(0)
        inv = ap2(1 / np.sqrt((c * ap2(c)).mean(0) + 1e-4))
        np.testing.assert_allclose(y.reshape(-1, 4), ap2(params["bn.gamma"]) * c * inv + params["bn.beta"])
        return
    eps = 1e-6
    for idx in [(0, 0, 0), (5, 2, 3), (3, 1, 2)]:
        ap_, am = a.copy(), a.copy()
        ap_[idx] += eps
        am[idx] -= eps
        num = (np.sum(R * bn.forward(ap_, True)) - np.sum(R * bn.forward(am, True))) / (2 * eps)
        assert abs(num - da[idx]) < 1e-5
    for j in range(4):
        gp = dict(params)
        params["bn.gamma"] = gp["bn.gamma"].copy()
        params["bn.gamma"][j] += eps
        lp = np.sum(R * bn.forward(a, True))
        params["bn.gamma"][j] -= 2 * eps
        lm = np.sum(R * bn.forward(a, True))
        params["bn.gamma"][j] += eps
        assert abs((lp - lm) / (2 * eps) - g["bn.gamma"][j]) < 1e-5


def test_activation_rounding_rules():
    q = UniformAct(2)  # n = 3 levels above zero
    y = np.array([-0.2, 0.0, 0.5 / 3 - 1e-12, 0.5 / 3, 1.5 / 3, 2.5 / 3, 1.0, 7.0])
    np.testing.assert_array_equal(q.level(y), [0, 0, 0, 1, 2, 3, 3, 3])  # halves round up
    y2 = np.array([-0.5, 0.1, 0.2, 0.45, 0.55, 0.9, 1.2], np.float32)  # off the rounding boundaries
    np.testing.assert_allclose(q.forward(y2), [0, 0, 1 / 3, 1 / 3, 2 / 3, 1, 1], rtol=1e-6)
    s = SignAct()
    np.testing.assert_array_equal(s.level(np.array([-1e-9, 0.0, 2.0])), [0, 1, 1])  # sign(0) = +1
    np.testing.assert_array_equal(s.u(np.array([0, 1])), [-1, 1])
    v = ap2(np.array([0.0, 0.3, -3.1, 1.0, 0.75]))
    np.testing.assert_array_equal(v, [0.0, 0.25, -4.0, 1.0, 1.0])  # 0.75 = 2**-0.415 -> 2**0


# norm: the float / lut networks' per-channel bias, the quantized output layer's learned scale
@pytest.mark.parametrize("norm", ["bias", "outscale"])
def test_bias_and_outscale_gradients(norm):
    rng = np.random.default_rng(4)
    params: dict = {}
    layer = Bias("b", 3, params, 0.1) if norm == "bias" else OutScale("o", params, 0.5)
    key = layer.key
    params[key] = params[key].astype(np.float64) + rng.normal(0, 0.1, params[key].shape)
    a = rng.normal(size=(5, 2, 3))
    R = rng.normal(size=a.shape)
    layer.forward(a, True)
    da, g = layer.backward(R)
    assert set(g) == {key}
    eps = 1e-6
    for idx in [(0, 0, 0), (4, 1, 2)]:
        ap_, am = a.copy(), a.copy()
        ap_[idx] += eps
        am[idx] -= eps
        num = (np.sum(R * layer.forward(ap_, True)) - np.sum(R * layer.forward(am, True))) / (2 * eps)
        assert abs(num - da[idx]) < 1e-6
    for j in range(params[key].size):
        params[key][j] += eps
        lp = np.sum(R * layer.forward(a, True))
        params[key][j] -= 2 * eps
        lm = np.sum(R * layer.forward(a, True))
        params[key][j] += eps
        assert abs((lp - lm) / (2 * eps) - g[key][j]) < 1e-6
    # the exact eval formula is the forward pass in float64
    np.testing.assert_allclose(layer.eval64(a), layer.forward(a, False), rtol=1e-15)


def test_lut_level_activation_and_float_acts():
    q = LevelAct(2)  # 4 levels: values 0, 1/3, 2/3, 1
    y = np.array([-0.5, 0.1, 0.5 / 3, 0.45, 0.9, 1.2], np.float32)
    np.testing.assert_array_equal(q.level(y), [0, 0, 0, 1, 3, 3])  # 0.5 rounds to even (0)
    np.testing.assert_allclose(q.forward(y), q.level(y) / 3, rtol=1e-7)
    np.testing.assert_array_equal(q.backward(np.ones_like(y)), [0, 1, 1, 1, 1, 0])  # STE window [0, 1]
    np.testing.assert_array_equal(q.values(), np.arange(4) / 3)
    c = ClipAct(2)
    np.testing.assert_array_equal(c.forward(y), np.clip(y, 0, 1))
    assert not c.levels and q.levels
    r = ReLUAct()
    np.testing.assert_array_equal(r.forward(y), np.maximum(y, 0))
    np.testing.assert_array_equal(r.backward(np.full_like(y, 2)), 2 * (y > 0))


@pytest.mark.parametrize("bits", [3, 8])  # kept bits per pixel (8: the IR's identity input)
def test_truncate_input_codes_and_values(bits):
    q = InputQuant("truncate", bits=bits)
    px = np.arange(256, dtype=np.uint8).reshape(4, 64)
    L = q.level(px)
    assert L.shape == px.shape and L.max() == (1 << bits) - 1
    np.testing.assert_array_equal(L, px.astype(np.int64) >> (8 - bits))
    assert q.kind == ("identity" if bits == 8 else "truncate") and q.bits == bits and q.zero == 0.0
    # the float32 training inputs are the correctly rounded c / (2**bits - 1)
    np.testing.assert_array_equal((q.scale * q.u(L)).astype(np.float32),
                                  (L / np.float64((1 << bits) - 1)).astype(np.float32))
