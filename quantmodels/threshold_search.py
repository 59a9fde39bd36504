"""Exact multi-threshold folding by search over the integer accumulator.

A hidden neuron's output level is ``f(acc)`` where ``f`` is the float64 function the float
model's eval forward applies to its (exactly integer) accumulator. If ``f`` is non-decreasing,
``T[o, k] = min{acc in [lo_o, hi_o] : f(acc)[o] >= k}`` (``hi_o + 1`` if none) gives
``sum_k (acc >= T[o, k]) == f(acc)`` for every reachable accumulator, bit for bit, with no
algebra on float formulas. Found by a vectorised binary search (about log2(hi - lo) calls of f).
IEEE rounding is monotone, so a composition of monotone float ops with fixed constants is
monotone; :func:`search_thresholds` still verifies it at the found points.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def search_thresholds(f: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray,
                      n_levels: int) -> np.ndarray:
    """Thresholds (out, n_levels - 1) for a non-decreasing ``f``: (out, m) int64 acc -> levels.

    ``f`` receives an (out, m) int64 array of accumulator values (row o for neuron o) and
    returns the level each would produce."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    ks = np.arange(1, n_levels)
    a = np.repeat(lo[:, None], len(ks), axis=1)  # invariant: answer in [a, b]
    b = np.repeat(hi[:, None] + 1, len(ks), axis=1)
    while np.any(a < b):
        mid = (a + b) // 2
        ok = f(np.minimum(mid, hi[:, None])) >= ks[None, :]
        ok &= mid <= hi[:, None]
        b = np.where(ok, mid, b)
        a = np.where(ok, a, mid + 1)
    # verify: f just below each threshold is < k, at it >= k (within the range)
    at = f(np.minimum(a, hi[:, None]))
    below = f(np.maximum(a - 1, lo[:, None]))
    bad = ((a <= hi[:, None]) & (at < ks)) | ((a > lo[:, None]) & (below >= ks))
    if np.any(bad):
        raise ArithmeticError("threshold search: level function not monotone in the accumulator")
    return a
