"""Quantizers as named forward / straight-through-estimator pairs.

``sign``: forward sign(x) with sign(0) = +1 (the bit 1 encodes +1); backward the
"hard tanh" STE of Courbariaux/Hubara et al., "Binarized Neural Networks" (NIPS 2016):
the gradient passes unchanged where |x| <= 1 and is cancelled elsewhere.
"""
from __future__ import annotations

import numpy as np


def sign(x: np.ndarray) -> np.ndarray:
    """sign(x) in {-1, +1}, with sign(0) = +1 (matches the IR's threshold rule acc >= T)."""
    return np.where(x >= 0, 1, -1).astype(x.dtype, copy=False)


def ste_sign_grad(x: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """STE for sign: d sign(x)/dx ~ 1_{|x| <= 1} (BNN gradient cancelling)."""
    return grad * (np.abs(x) <= 1)


def binarize_input(samples: np.ndarray, threshold: int) -> np.ndarray:
    """Raw uint8 samples -> {-1, +1} float32 (pixel >= threshold -> +1), flattened."""
    x = samples.reshape(len(samples), -1)
    return np.where(x >= threshold, 1.0, -1.0).astype(np.float32)


QUANTIZERS = {"sign": (sign, ste_sign_grad)}
