"""Pareto fronts of design points: higher accuracy is better, lower cost is better."""
from __future__ import annotations

import numpy as np


def pareto_mask(cost, accuracy) -> np.ndarray:
    """True for each point no other point dominates.

    A point is dominated if another has cost <= and accuracy >= with at least one strict.
    Points with a missing (NaN) cost or accuracy are never on the front. Identical points
    do not dominate each other, so both stay on the front.
    """
    c = np.asarray(cost, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    if c.shape != a.shape or c.ndim != 1:
        raise ValueError(f"pareto_mask: cost shape {c.shape} and accuracy shape {a.shape} must be equal 1-D")
    ok = ~(np.isnan(c) | np.isnan(a))
    mask = np.zeros(len(c), dtype=bool)
    idx = np.flatnonzero(ok)
    # sort by cost ascending, then accuracy descending: a point is on the front iff its
    # accuracy beats every cheaper point (ties in cost and accuracy both kept)
    order = idx[np.lexsort((-a[idx], c[idx]))]
    best = -np.inf
    best_cost = None
    for i in order:
        if a[i] > best:
            mask[i] = True
            best, best_cost = a[i], c[i]
        elif a[i] == best and c[i] == best_cost:
            mask[i] = True  # exact duplicate of a front point
    return mask


def pareto_front_order(cost, accuracy) -> np.ndarray:
    """Indices of the front points, cheapest first (for drawing the staircase)."""
    m = pareto_mask(cost, accuracy)
    idx = np.flatnonzero(m)
    return idx[np.argsort(np.asarray(cost, dtype=float)[idx], kind="stable")]
