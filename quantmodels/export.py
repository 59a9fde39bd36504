"""Export trained NumPy networks to the integer IR.

BNN threshold folding (exact by construction)
---------------------------------------------
A hidden neuron outputs 1 iff ``bn_eval(a) >= 0`` where ``a = 2p - N`` is the +-1 dot product
and ``p`` the popcount of agreeing bits. Instead of rearranging the batch-norm formula
algebraically (whose float rounding could disagree with the float model at the boundary),
we evaluate the *same* float64 ``bn_eval`` at every possible popcount ``p = 0..N`` and take
the smallest ``p`` that yields 1 as the integer threshold ``T`` (``N + 1`` if none does).
For ``gamma < 0`` the function decreases in ``p``; the neuron's weight row is flipped
(``w -> 1 - w`` turns ``p`` into ``N - p``) so that every neuron is ``p >= T``.
Hence the integer model reproduces the float eval-mode model bit for bit.

int8 post-training quantization
-------------------------------
Weights: per-layer symmetric ``round(W / s_w)``, ``s_w = max|W| / 127``. Inputs: raw uint8
pixels (scale 1/255). Hidden outputs: ``y = clip((acc + B) >> shift, 0, 255)`` with a power
of two scale chosen from the 99.99th percentile of the float activations on training data;
``B = round(b / s_acc) + 2**(shift-1)`` folds the float bias and round-to-nearest.
"""
from __future__ import annotations

import warnings

import numpy as np

from .ir import InputSpec, IRModel, Layer
from .nets import INPUT_THRESHOLD, BinaryMLP, FloatMLP, bn_eval


def fold_bn_thresholds(w_bits: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                       var: np.ndarray, name: str = "layer") -> tuple[np.ndarray, np.ndarray]:
    """Fold eval-mode BN + sign into (possibly row-flipped) weight bits and thresholds (out, 1)."""
    n_out, n = w_bits.shape
    orient = np.where(gamma < 0, -1, 1)
    p = np.arange(n + 1)
    a = orient[:, None] * (2 * p[None, :] - n)  # pre-activation reached at popcount p (flipped rows)
    ok = bn_eval(a, gamma[:, None], beta[:, None], mean[:, None], var[:, None]) >= 0
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), n + 1)
    monotone = ok == (p[None, :] >= first[:, None])
    if not monotone.all():  # float rounding made bn_eval non-monotone: threshold cannot be exact
        bad = np.flatnonzero(~monotone.all(axis=1))
        warnings.warn(f"{name}: batch norm not monotone in the popcount for neurons {bad[:5].tolist()}")
    wb = np.where(orient[:, None] < 0, 1 - w_bits, w_bits)
    return wb.astype(np.uint8), first.astype(np.int32)[:, None]


def export_bnn(net: BinaryMLP, name: str, image_shape: tuple[int, ...], meta: dict) -> IRModel:
    """BinaryMLP -> IR with xnor_popcount layers, threshold stages and an argmax output."""
    layers = []
    for i in range(net.n_layers):
        w = (net.params[f"W{i}"] >= 0).astype(np.uint8)  # bit 1 encodes +1 (sign(0) = +1)
        n_out, n_in = w.shape
        if i < net.n_layers - 1:
            w, t = fold_bn_thresholds(w, net.params[f"gamma{i}"], net.params[f"beta{i}"],
                                      net.state[f"mean{i}"], net.state[f"var{i}"], f"fc{i}")
            layers.append(Layer(f"fc{i}", "xnor_popcount", n_in, n_out, 1, 1, "threshold", w,
                                output_bits=1, thresholds=t))
        else:
            layers.append(Layer(f"fc{i}", "xnor_popcount", n_in, n_out, 1, 1, "argmax", w))
    inp = InputSpec(net.sizes[0], 1, "threshold", INPUT_THRESHOLD, tuple(image_shape))
    return IRModel(name, "bnn", inp, layers, meta).validate()


def export_int8(net: FloatMLP, name: str, image_shape: tuple[int, ...], calib: np.ndarray,
                meta: dict, percentile: float = 99.99) -> IRModel:
    """FloatMLP -> int8 IR (mac layers, power-of-two requantize, argmax), calibrated on ``calib``."""
    acts = net.hidden_activations(calib)
    s_x = 1.0 / 255.0
    layers = []
    for i in range(net.n_layers):
        W, b = net.params[f"W{i}"].astype(np.float64), net.params[f"b{i}"].astype(np.float64)
        s_w = max(float(np.abs(W).max()), 1e-12) / 127.0
        wq = np.clip(np.round(W / s_w), -127, 127).astype(np.int8)
        s_acc = s_w * s_x
        n_out, n_in = W.shape
        if i == net.n_layers - 1:
            bias = np.round(b / s_acc).astype(np.int64)
            layers.append(Layer(f"fc{i}", "mac", n_in, n_out, 8, 8, "argmax", wq, bias=bias))
            break
        amax = max(float(np.percentile(acts[i], percentile)), 1e-12)
        shift = max(0, int(np.ceil(np.log2(amax / (255.0 * s_acc)))))
        bias = np.round(b / s_acc).astype(np.int64) + ((1 << shift) >> 1)
        layers.append(Layer(f"fc{i}", "mac", n_in, n_out, 8, 8, "requantize", wq,
                            output_bits=8, shift=shift, bias=bias))
        s_x = s_acc * (1 << shift)
    inp = InputSpec(net.sizes[0], 8, "identity", None, tuple(image_shape))
    return IRModel(name, "int8", inp, layers, meta).validate()
