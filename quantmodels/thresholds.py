"""Exact multi-threshold search: integer thresholds reproducing a monotone level function.

Given, per output channel ``o``, a level function ``f_o(acc)`` of the integer accumulator with
values in ``0..K`` (evaluated in float64 by the same code as the float model's eval pass),
find ``T[o, k] = min{acc in [lo_o, hi_o] : g_o(acc) >= k}`` for ``k = 1..K`` (``hi_o + 1`` when
no acc reaches level k) by a vectorised binary search, where ``g_o = f_o`` if ``f_o`` is
non-decreasing and ``g_o(acc') = f_o(reflect - acc')`` if it is decreasing (the caller flips the
channel's weights so that the hardware's accumulator is ``acc' = reflect - acc``: negated
weights for dot products, inverted bits for xnor-popcount). If every ``g_o`` is
non-decreasing, ``sum_k (acc' >= T[o, k]) == g_o(acc')`` for every integer acc' in range: the
integer model equals the float model by construction. Monotonicity is verified (exhaustively
when the ranges are small, else at the thresholds and on a sample) and a warning names the
channels where it fails.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

#: Up to this many (channel, acc) evaluations the monotonicity check is exhaustive.
EXHAUSTIVE_LIMIT = 20_000_000
SAMPLE_POINTS = 4096


def exact_thresholds(f: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray, n_levels: int,
                     reflect: np.ndarray | int, name: str = "layer",
                     rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (T (out, n_levels - 1) int64 ascending, flip (out,) bool) for level function ``f``.

    ``f`` maps an int64 array (M, out) of accumulators (column o for channel o) to levels (M, out).
    """
    lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
    out = len(lo)
    reflect = np.broadcast_to(np.asarray(reflect, np.int64), (out,))
    ends = f(np.stack([lo, hi]))
    flip = ends[0] > ends[1]
    glo = np.where(flip, reflect - hi, lo)
    ghi = np.where(flip, reflect - lo, hi)

    def g(a: np.ndarray) -> np.ndarray:
        return f(np.where(flip, reflect - a, a))

    K = n_levels - 1
    ks = np.arange(1, K + 1, dtype=np.int64)[:, None]
    left = np.broadcast_to(glo, (K, out)).copy()
    right = np.broadcast_to(ghi + 1, (K, out)).copy()
    while np.any(left < right):
        active = left < right
        mid = (left + right) // 2
        ok = g(np.minimum(mid, ghi)) >= ks
        right = np.where(active & ok, mid, right)
        left = np.where(active & ~ok, mid + 1, left)
    T = left.T.copy()
    if K > 1 and np.any(np.diff(T, axis=1) < 0):  # only possible if g is not monotone
        T = np.maximum.accumulate(T, axis=1)
    bad = _check(g, T, glo, ghi, rng or np.random.default_rng(0))
    if bad.size:
        warnings.warn(f"{name}: output level not monotone in the accumulator for channels "
                      f"{bad[:5].tolist()}; integer thresholds cannot reproduce the float model there")
    return T, flip


def _check(g, T: np.ndarray, glo: np.ndarray, ghi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Channels where sum_k(acc >= T) != g(acc) at the checked accumulators."""
    out = len(glo)
    span = int((ghi - glo).max()) + 1
    if span * out <= EXHAUSTIVE_LIMIT:
        steps = max(1, EXHAUSTIVE_LIMIT // (8 * out))
        pts = [np.minimum(glo[None] + np.arange(s, min(s + steps, span))[:, None], ghi[None])
               for s in range(0, span, steps)]
    else:
        r = rng.random((SAMPLE_POINTS, out))
        pts = [np.minimum(glo + np.floor(r * (ghi - glo + 1)).astype(np.int64), ghi),
               np.clip(T.T, glo, ghi), np.clip(T.T - 1, glo, ghi), np.stack([glo, ghi])]
    bad = np.zeros(out, bool)
    for a in pts:
        want = g(a)
        got = (a[:, :, None] >= T[None, :, :]).sum(2)
        bad |= np.any(got != want, axis=0)
    return np.flatnonzero(bad)
