"""Pure quantizer / clustering / regulariser functions of DoReFa, BitNet and Baluja-LUT."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from quantmodels import bitnet, discretize, dorefa
from quantmodels.bitwidth import signed_bits


def _num_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


# ------------------------------------------------------------------------------ DoReFa
@pytest.mark.parametrize("k", [2, 3, 5, 8])  # weight bits
def test_dorefa_weight_codes_are_odd_and_match_values(k):
    rng = np.random.default_rng(k)
    w = rng.normal(0, 0.7, (30, 40))
    codes, scale = dorefa.weight_codes(w, k)
    m = (1 << k) - 1
    assert np.all(codes % 2 == 1) or np.all(np.abs(codes) % 2 == 1)
    assert codes.min() == -m and codes.max() == m  # the max|tanh| weight reaches the end
    assert len(np.unique(codes)) > min(m, 6)  # varied
    np.testing.assert_allclose(dorefa.quantize_weights(w, k), codes / m)
    # same as the paper's formula 2 quantize_k(u) - 1
    u = np.tanh(w) / (2 * np.abs(np.tanh(w)).max()) + 0.5
    np.testing.assert_allclose(codes / m, 2 * np.round(u * m) / m - 1, atol=1e-12)
    # k + 1 signed bits are needed and enough
    assert signed_bits(int(codes.min()), int(codes.max())) == k + 1


def test_dorefa_k1_sign_with_mean_scale():
    w = np.array([[-0.5, 0.0, 0.25, 2.0]])
    codes, scale = dorefa.weight_codes(w, 1)
    np.testing.assert_array_equal(codes, [[-1, 1, 1, 1]])
    assert scale == pytest.approx(np.mean(np.abs(w)))


def test_tanh_normalize_gradient_central_differences():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (4, 5))
    g = rng.normal(0, 1, (4, 5))
    ana = dorefa.tanh_normalize_grad(w, g)
    num = _num_grad(lambda: float(np.sum(g * dorefa.tanh_normalize(w))), w)
    np.testing.assert_allclose(ana, num, rtol=1e-5, atol=1e-8)
    assert np.abs(ana).max() > 0.01


def test_dorefa_gradient_quantizer_grid_and_unbiased():
    rng = np.random.default_rng(1)
    g = rng.normal(0, 1, (8, 50)) * rng.uniform(0.1, 10, (8, 1))
    k = 3
    m = np.abs(g).max(axis=1, keepdims=True)
    qs = np.stack([dorefa.quantize_grad(g, k, rng) for _ in range(3000)])
    # each value sits on the grid 2m (i/(2**k-1) - 1/2)
    levels = qs[0] / (2 * m) + 0.5
    np.testing.assert_allclose(levels * 7, np.round(levels * 7), atol=1e-9)
    # stochastic rounding is unbiased
    np.testing.assert_allclose(qs.mean(0), g, atol=float(0.1 * m.max()))
    assert np.abs(qs.mean(0) - g).mean() < 0.02 * m.mean()


# ------------------------------------------------------------------------------ BitNet
def test_bitnet_codes_window_and_zero_point():
    rng = np.random.default_rng(2)
    w = rng.normal(0.05, 0.3, 500)
    s, t, b = 0.05, -0.2, 4
    qz = bitnet.quantize(w, s, t, b)
    assert qz.z == 4  # round(0.2 / 0.05)
    assert qz.codes.min() == -4 and qz.codes.max() == 11  # window [-z, 2**b - 1 - z]
    inside = qz.inside
    np.testing.assert_allclose(qz.values(s)[inside], w[inside], atol=s / 2 + 1e-12)
    assert bitnet.code_width(qz.z, b) == 5  # [-4, 11] needs 5 signed bits
    # translation in the middle of the window: b bits suffice ([-8, 7]) unless rows are negated
    z = bitnet.quantize(w, s, -8 * s, b).z
    assert (z, bitnet.code_width(z, b), bitnet.code_width(z, b, negated=True)) == (8, 4, 5)
    assert bitnet.code_width(0, b, negated=True) == 5  # [0, 15] and [-15, 0]


def test_bitnet_ste_grads():
    w = np.array([-1.0, -0.02, 0.03, 0.5])
    s, t, b = 0.1, 0.0, 2  # z = 0: window codes 0..3 -> w in [0, 0.3]
    qz = bitnet.quantize(w, s, t, b)
    np.testing.assert_array_equal(qz.codes, [0, 0, 0, 3])
    np.testing.assert_array_equal(qz.inside, [False, False, True, False])
    g = np.array([1.0, 2.0, 3.0, 4.0])
    dw, ds, dt = bitnet.ste_grads(w, s, qz, g)
    np.testing.assert_array_equal(dw, [0, 0, 3, 0])
    assert ds == pytest.approx(3 * (0 - 0.3) + 4 * 3)
    assert dt == pytest.approx(1 + 2 + 4)


def test_bitnet_relerr_gradient_central_differences():
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.5, (6, 7))
    s = np.array([0.13])
    qz = bitnet.quantize(w, s[0], -0.6, 4)
    codes = qz.codes
    assert 0 < (~qz.inside).sum() < w.size  # some weights clipped on each side of the window
    dw, ds, dt = bitnet.relerr_grads(w, s[0], qz)
    num_w = _num_grad(lambda: bitnet.relerr(w, s[0], codes), w)
    num_s = _num_grad(lambda: bitnet.relerr(w, s[0], codes), s)
    np.testing.assert_allclose(dw, num_w, rtol=1e-5, atol=1e-9)
    assert ds == pytest.approx(num_s[0], rel=1e-5)
    assert bitnet.relerr(w, s[0], codes) > 0
    # t: the clipped weights sit on the edges, which move with t (the STE rule)
    shift = np.zeros(1)

    def err_edges_moved() -> float:
        wq = s[0] * codes + shift[0] * ~qz.inside
        return float(np.mean((w - wq) ** 2) / np.mean(w * w))

    assert dt == pytest.approx(_num_grad(err_edges_moved, shift)[0], rel=1e-5)


def test_bitnet_relerr_pulls_the_window_back_over_clipped_weights():
    """A window that clips the negative weights (t > 0, zero point clipped to 0) gets a t
    gradient that moves it down, and live_translation puts t back where it acts."""
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.2, 1000)
    s, b = 0.01, 6
    qz = bitnet.quantize(w, s, 0.05, b)
    assert qz.z == 0 and qz.codes.min() == 0  # no negative weight representable
    _, _, dt = bitnet.relerr_grads(w, s, qz)
    assert dt > 0  # gradient descent lowers t
    assert bitnet.live_translation(0.05, s, b) == 0.0
    assert bitnet.live_translation(-1.0, s, b) == pytest.approx(-63 * s)
    assert bitnet.live_translation(-0.3, s, b) == -0.3


def test_bitnet_choose_bits_trades_error_against_bits():
    rng = np.random.default_rng(4)
    w = rng.normal(0, 1, 2000)
    b = 4
    s = 6.0 / ((1 << b) - 1)
    t = -3.0
    # no bit cost: more bits always lower the error -> grow
    assert bitnet.choose_bits(w, s, t, b, 2000, lam_q=1.0, lam_b=0.0)[0] == 5
    # expensive bits: shrink
    assert bitnet.choose_bits(w, s, t, b, 2000, lam_q=1.0, lam_b=1.0)[0] == 3
    nb, ns = bitnet.choose_bits(w, s, t, b, 2000, lam_q=1.0, lam_b=1.0)
    assert ns * ((1 << nb) - 1) == pytest.approx(s * ((1 << b) - 1))  # same range
    assert bitnet.bits_penalty([2, 4], [100, 300]) == pytest.approx(3.5)


@pytest.mark.parametrize("lo, hi, w", [(0, 0, 1), (-1, 0, 1), (-1, 1, 2), (-4, 11, 5), (-8, 7, 4), (0, 8, 5)])
def test_signed_width(lo, hi, w):
    assert signed_bits(lo, hi) == w


# ------------------------------------------------------------------------------ LUT
def test_nearest_index_ties_go_low():
    c = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(discretize.nearest_index(np.array([-0.5, -0.49, 1.0, 1.01, 9]), c),
                                  [0, 1, 1, 2, 2])


def _brute_force_sse(x: np.ndarray, k: int) -> float:
    xs = np.sort(x)
    best = np.inf
    for cuts in itertools.combinations(range(1, len(xs)), k - 1):
        parts = np.split(xs, cuts)
        best = min(best, sum(float(((p - p.mean()) ** 2).sum()) for p in parts))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])  # different random samples
def test_optimal_1d_matches_brute_force_and_beats_kmeans(seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 1, 7), rng.normal(4, 0.3, 5)])
    for k in (2, 3, 4):
        c = discretize.optimal_1d(x, k)
        assert len(c) == k and np.all(np.diff(c) > 0)
        assert discretize.sse(x, c) == pytest.approx(_brute_force_sse(x, k), rel=1e-9)
        assert discretize.sse(x, c) <= discretize.sse(x, discretize.kmeans_1d(x, k)) + 1e-9


def test_kmeans_1d_large_and_warm_start():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.1, 20000)
    c = discretize.kmeans_1d(x, 16)
    assert len(c) == 16 and np.all(np.diff(c) > 0)
    c2 = discretize.kmeans_1d(x + 0.01, 16, init=c, iters=5)
    assert discretize.sse(x + 0.01, c2) <= discretize.sse(x + 0.01, c) + 1e-9
    opt = discretize.optimal_1d(x, 16)
    assert discretize.sse(x, opt) <= discretize.sse(x, c) * 1.01  # binned DP ~ optimal
    # a codebook of 16 keeps relative error small for a gaussian
    assert discretize.sse(x, c) / float(np.sum(x * x)) < 0.02


def test_levels_and_product_table():
    u = np.array([-1.0, 0.0, 0.5 / 31, 0.51 / 31, 0.5, 1.0, 3.0])
    np.testing.assert_array_equal(discretize.level_index(u, 32), [0, 0, 0, 1, 16, 31, 31])
    lv = discretize.act_levels(32)
    assert lv[0] == 0 and lv[-1] == 1 and len(lv) == 32
    cb = np.array([-0.3, -0.01, 0.02, 0.4])
    s = discretize.table_scale(cb, lv, 12)
    p = discretize.product_table(cb, lv, s)
    assert np.abs(p).max() <= 2047 and np.abs(p).max() > 1023  # power of two: at least half used
    np.testing.assert_allclose(p / s, np.outer(cb, lv), atol=0.5 / s)


@pytest.mark.parametrize("wbits, ibits", [(3, 5), (5, 3)])  # loop over codes / over levels
def test_table_accumulate_equals_golden_lut_product(wbits, ibits):
    from quantmodels.golden import accumulate
    from quantmodels.ir import Layer

    rng = np.random.default_rng(6)
    table = rng.integers(-300, 300, (1 << wbits, 1 << ibits))
    w = rng.integers(0, 1 << wbits, (5, 40))
    x = rng.integers(0, 1 << ibits, (50, 40))
    L = Layer("fc0", "lut_product", 40, 5, ibits, wbits, "argmax", w, products=table)
    got = discretize.table_accumulate(table, w, x)
    np.testing.assert_array_equal(got, accumulate(L, x))
    want = np.array([[table[w[o], x[n]].sum() for o in range(5)] for n in range(50)])
    np.testing.assert_array_equal(got, want)
