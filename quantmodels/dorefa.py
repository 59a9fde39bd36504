"""DoReFa-Net quantizers (Zhou et al., "DoReFa-Net: Training Low Bitwidth Convolutional Neural
Networks with Low Bitwidth Gradients", arXiv:1606.06160), as pure forward / STE functions.

``quantize_k(r) = round((2**k - 1) r) / (2**k - 1)`` for r in [0, 1]; STE: d/dr = 1.

Weights, k > 1 (paper eq. 9)::

    u   = tanh(w) / (2 max|tanh(w)|) + 1/2          in [0, 1]   (max over the whole layer)
    w_q = 2 quantize_k(u) - 1 = c / M,  M = 2**k - 1,  c = 2 i - M,  i = round(M u) in 0..M

so the integer code ``c`` is an *odd* integer in [-M, M]: it needs k + 1 signed bits (the IR's
``bit_serial`` layer then has ``weight_bits = k + 1``; the k-bit index ``i`` alone would need a
``- M sum(x)`` correction per input vector, which is not a per-neuron constant). ``round`` is
NumPy's round-half-to-even; ``u`` is a float64 value, and exact ties matter only for the codes
(the eval forward reads the stored codes, so float and integer models agree by construction).

Weights, k = 1 (paper eq. 8): ``w_q = E(|w|) sign(w)``, sign(0) = +1, codes c = +-1; STE
d w_q / d w = 1 (the scale is a per-layer constant absorbed by the following batch norm).

Activations (paper sec. 2.3): ``a_q = quantize_k(clip(x, 0, 1))``, integer code
``a = round(M clip(x, 0, 1))`` in 0..M; STE gradient passes where 0 <= x <= 1. They are the
generic network's :class:`~quantmodels.quantizers.UniformAct` (used by the ``dorefa`` and
``bitnet`` methods), where exact ties ``M clip(x, 0, 1) = j + 1/2`` round up; the exported
thresholds follow the float model's rule, so golden == float.

Gradients (paper eq. 12), optional: per sample ``m = max|dr|`` over all non-batch axes, then
``2 m [quantize_k(dr / (2 m) + 1/2 + N(k)) - 1/2]`` with ``N(k) = sigma / (2**k - 1)``,
``sigma ~ Uniform(-1/2, 1/2)``: an unbiased stochastic rounding to 2**k levels of [-m, m].
"""
from __future__ import annotations

import numpy as np

from .quantizers import sign


def quantize_k(r: np.ndarray, k: int) -> np.ndarray:
    """round((2**k - 1) r) / (2**k - 1) for r in [0, 1] (round half to even)."""
    m = (1 << k) - 1
    return np.round(r * m) / m


def tanh_normalize(w: np.ndarray) -> np.ndarray:
    """u = tanh(w) / (2 max|tanh(w)|) + 1/2, in [0, 1]."""
    t = np.tanh(w)
    m = max(float(np.abs(t).max()), 1e-12)
    return t / (2 * m) + 0.5


def tanh_normalize_grad(w: np.ndarray, grad_u: np.ndarray) -> np.ndarray:
    """Exact gradient of :func:`tanh_normalize` (including through the max, to its argmax)."""
    t = np.tanh(w)
    a = np.abs(t)
    j = np.unravel_index(np.argmax(a), a.shape)
    m = max(float(a[j]), 1e-12)
    dt = grad_u / (2 * m)  # direct path
    # max path: d/dm of sum(g * t / (2m)) = -sum(g t) / (2 m^2), and dm/dt_j = sign(t_j)
    dt[j] += -float(np.sum(grad_u * t)) / (2 * m * m) * np.sign(t[j])
    return dt * (1 - t * t)


def weight_codes(w: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Integer weight codes and the scale so that ``w_q = scale * codes``.

    k > 1: odd codes in [-(2**k - 1), 2**k - 1], scale 1 / (2**k - 1).
    k = 1: codes +-1 (sign(0) = +1), scale E|w|.
    """
    if k == 1:
        return sign(w).astype(np.int64), float(np.mean(np.abs(w)))
    m = (1 << k) - 1
    i = np.round(tanh_normalize(w) * m).astype(np.int64)
    return 2 * i - m, 1.0 / m


def quantize_weights(w: np.ndarray, k: int) -> np.ndarray:
    """Forward DoReFa weight quantizer: w_q (float)."""
    codes, scale = weight_codes(w, k)
    return (codes * scale).astype(w.dtype)


def quantize_weights_grad(w: np.ndarray, k: int, grad_wq: np.ndarray) -> np.ndarray:
    """STE backward of :func:`quantize_weights`: through quantize_k as identity."""
    if k == 1:
        return grad_wq
    # w_q = 2 quantize_k(u) - 1 ~ 2 u - 1  ->  d w_q / d u = 2
    return tanh_normalize_grad(w.astype(np.float64), 2.0 * grad_wq).astype(w.dtype)


def quantize_grad(g: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """DoReFa k-bit gradient with uniform noise (per-sample max over non-batch axes)."""
    axes = tuple(range(1, g.ndim))
    m = np.max(np.abs(g), axis=axes, keepdims=True)
    m = np.where(m > 0, m, 1.0)
    noise = rng.uniform(-0.5, 0.5, g.shape) / ((1 << k) - 1)
    q = quantize_k(np.clip(g / (2 * m) + 0.5 + noise, 0.0, 1.0), k)
    return (2 * m * (q - 0.5)).astype(g.dtype)
