"""BitNet bit-regularised weights (Raghavan, Amer, Chai, Taylor, "BitNet: Bit-Regularized Deep
Neural Networks", arXiv:1708.04788): per layer a real scale ``s > 0``, a real translation ``t``
and integer weights of a per-layer bit width ``b``, trained under an MDL-style regulariser.

Quantizer (our exact-integer reading of the paper's ``w = t + s q``, q in 0..2**b - 1)::

    z   = clip(round(-t / s), 0, 2**b - 1)     integer zero point (translation snapped to the grid)
    q   = clip(round(w / s) + z, 0, 2**b - 1)  the b-bit integer the paper stores
    c   = q - z                                signed integer code in [-z, 2**b - 1 - z]
    w~  = s c  =  s * round(-t/s) * (-1) + s q  ~  t + s q

The translation becomes exact integer arithmetic by folding the zero point into the codes
(``c = q - z``): ``w~ . x = s (c . x)``, so the IR layer is ``bit_serial`` with the codes ``c``
as signed weights (``weight_bits`` = :func:`code_width`: the signed width of [-z, 2**b - 1 - z],
at most b + 1) and ``s`` folded into the thresholds. ``round`` is NumPy's half-to-even.
The same quantizer serves dense and conv layers (a conv layer's weights are its (out, k*k*in)
im2col matrix): :mod:`quantmodels.methods.bitnet` plugs it into the generic network.

STE (LSQ rules, Esser et al., ICLR 2020) with v = w / s + z:
inside the window (0 <= v <= 2**b - 1): d w~/dw = 1, d w~/ds = c - w/s, d w~/dt = 0;
outside: d w~/dw = 0, d w~/ds = c, d w~/dt = 1 (the clipped weights sit on the window edge,
which moves with the translation).

MDL-style objective (description length = data loss + bits to code the weights)::

    J = loss + lam_q * sum_l relerr_l + lam_b * sum_l n_l b_l / sum_l n_l
    relerr_l = mean((W_l - s_l c_l)^2) / mean(W_l^2)

``relerr`` is the differentiable surrogate of the loss increase caused by quantization (its
gradient pulls latent weights to grid points and adapts ``s`` and ``t``: a clipped weight sits
on the window edge, which moves with ``t``, so clipping pulls the window towards the weights);
the bit term is the storage
cost in bits/weight (``n_l`` = the layer's weight count, conv kernels included). Bit widths
are integers: every ``bits_every`` optimizer steps each layer moves to the best of
``b - 1, b, b + 1`` under the same objective (:func:`choose_bits`), the representable range
kept fixed (``s`` rescaled by (2**b - 1) / (2**b' - 1)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bitwidth import signed_bits

B_MIN, B_MAX = 1, 8


def zero_point(s: float, t: float, b: int) -> int:
    """z = clip(round(-t / s), 0, 2**b - 1)."""
    return int(np.clip(np.round(-t / s), 0, (1 << b) - 1))


@dataclass
class Quantized:
    """One layer's quantized weights."""

    codes: np.ndarray  #: signed integer codes c = q - z (int64)
    z: int  #: zero point
    inside: np.ndarray  #: bool mask: latent weight inside the representable window

    def values(self, s: float) -> np.ndarray:
        return s * self.codes


def quantize(w: np.ndarray, s: float, t: float, b: int) -> Quantized:
    """Codes of the latent weights ``w`` for scale ``s``, translation ``t``, ``b`` bits."""
    m = (1 << b) - 1
    z = zero_point(s, t, b)
    v = w / s + z
    q = np.clip(np.round(v), 0, m).astype(np.int64)
    return Quantized(q - z, z, (v >= 0) & (v <= m))


def ste_grads(w: np.ndarray, s: float, qz: Quantized, g: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Back-propagate ``g = dL/dw~`` to (dL/dw, dL/ds, dL/dt) with the LSQ rules above."""
    inside = qz.inside
    dw = g * inside
    ds = float(np.sum(g * np.where(inside, qz.codes - w / s, qz.codes)))
    dt = float(np.sum(g * ~inside))
    return dw, ds, dt


def relerr(w: np.ndarray, s: float, codes: np.ndarray) -> float:
    """mean((w - s c)^2) / mean(w^2): relative quantization error."""
    d = max(float(np.mean(w * w)), 1e-12)
    return float(np.mean((w - s * codes) ** 2)) / d


def relerr_grads(w: np.ndarray, s: float, qz: Quantized) -> tuple[np.ndarray, float, float]:
    """Gradients of :func:`relerr` w.r.t. ``w``, ``s`` and ``t``. For ``w`` and ``s`` they are
    exact with the codes held fixed (codes are piecewise constant, so this is the true gradient
    between rounding boundaries); for ``t`` they follow the STE rule above (d w~/dt = 1 for a
    clipped weight, 0 inside).

    Without the ``t`` term nothing pulls the window back over weights it clips: the ``w`` term
    instead pulls those weights onto the edge, and ``t`` drifted until a layer's window held
    no negative weight at all (measured on SFC: then each zero-point flip 0 <-> 1 moved half
    the layer by ``s`` and the eval pass collapsed to 14-67 % for a few steps)."""
    n = w.size
    d = max(float(np.mean(w * w)), 1e-12)
    e = w - s * qz.codes
    num = float(np.mean(e * e))
    dw = 2 * e / (n * d) - num * 2 * w / (n * d * d)
    ds = float(-2 * np.sum(e * qz.codes) / (n * d))
    dt = float(-2 * np.sum(e[~qz.inside]) / (n * d))
    return dw, ds, dt


def live_translation(t: float, s: float, b: int) -> float:
    """``t`` clipped to [-(2**b - 1) s, 0], where it moves the window: beyond, the zero point
    is clipped and ``t`` would drift with no effect on the codes while the STE still credits
    it with moving an edge."""
    return float(np.clip(t, -((1 << b) - 1) * s, 0.0))


def bits_penalty(bits: list[int], sizes: list[int]) -> float:
    """Average bits per weight: sum_l n_l b_l / sum_l n_l."""
    return float(np.dot(bits, sizes)) / float(np.sum(sizes))


def rescale(s: float, b_old: int, b_new: int) -> float:
    """Scale keeping the represented range when the bit width changes."""
    return s * ((1 << b_old) - 1) / ((1 << b_new) - 1)


def choose_bits(w: np.ndarray, s: float, t: float, b: int, n_total: int, lam_q: float, lam_b: float,
                b_min: int = B_MIN, b_max: int = B_MAX) -> tuple[int, float]:
    """One MDL step on a layer's bit width: the best of b-1, b, b+1 (ties keep fewer bits).

    Returns the new bit width and its (range-preserving) scale."""
    best = None
    for nb in (b - 1, b, b + 1):
        if not b_min <= nb <= b_max:
            continue
        ns = rescale(s, b, nb)
        cost = lam_q * relerr(w, ns, quantize(w, ns, t, nb).codes) + lam_b * w.size * nb / n_total
        if best is None or cost < best[0] - 1e-15:
            best = (cost, nb, ns)
    return best[1], best[2]


def code_width(z: int, b: int, negated: bool = False) -> int:
    """IR weight_bits of a layer: the signed width of its code window [-z, 2**b - 1 - z], and of
    the negated window too when ``negated`` (the export negates the rows of neurons whose
    batch norm scale is negative)."""
    lo, hi = -z, (1 << b) - 1 - z
    return signed_bits(min(lo, -hi), max(hi, -lo)) if negated else signed_bits(lo, hi)
