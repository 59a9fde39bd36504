"""Baluja et al. style discretization ("No Multiplication? No Floating Point? No Problem!
Training Networks for Efficient Inference", Baluja, Marwood, Covell, Johnston, 2018):
weights clustered to a small codebook, activations emitting a fixed set of levels, and
inference by integer product-table lookups and additions.

* 1-D clustering: :func:`kmeans_1d` (Lloyd on sorted data, warm-startable: the periodic
  adaptive clustering during training) and :func:`optimal_1d` (exact minimum-SSE partition of
  sorted values into k contiguous groups by dynamic programming, Bellman 1973 / Wang & Song
  2011 "Ckmeans.1d.dp", with the divide-and-conquer optimisation; large inputs are first
  reduced to weighted quantile bins).
* :func:`nearest_index`: the codebook entry closest to each value; exact midpoints go to the
  lower entry (searchsorted on the midpoints, side='left').
* Levels: a hidden activation emits ``level = round(clip(u, 0, 1) * (L - 1))``, value
  ``level / (L - 1)`` (a clipped-ReLU non-linearity folded into the level table; NumPy's
  half-to-even rounding). Inputs use the 2**k levels c / (2**k - 1) of the k-bit input codes
  (:func:`input_levels`; k = 8: the 256 levels p / 255 of raw uint8 pixels).
* :func:`product_table`: ``P[k, a] = round(S * codebook[k] * levels[a])`` with one power of two
  ``S`` per layer chosen so that every entry fits ``table_bits`` signed bits. The float model's
  eval forward sums the same integer ``P`` (exact in float64), so "no multiplication, no
  floating point" holds for the accumulator exactly; only the monotone level function is
  float, and it is folded into integer thresholds.
"""
from __future__ import annotations

import numpy as np

from .errors import ConfigError


def nearest_index(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest of the ascending ``centers`` (midpoint ties -> lower index)."""
    mids = (centers[1:] + centers[:-1]) / 2
    return np.searchsorted(mids, x, side="left").astype(np.int64)


def _init_quantiles(xs: np.ndarray, k: int) -> np.ndarray:
    return np.quantile(xs, (np.arange(k) + 0.5) / k)


def kmeans_1d(x: np.ndarray, k: int, init: np.ndarray | None = None, iters: int = 30) -> np.ndarray:
    """Lloyd's k-means in 1-D; returns ``k`` ascending centers (empty clusters keep their center).

    ``init`` (e.g. the previous codebook) warm-starts the periodic re-clustering."""
    xs = np.sort(np.asarray(x, dtype=np.float64).ravel())
    if k < 1:
        raise ConfigError(f"codebook size: {k}, expected >= 1")
    c = np.sort(np.asarray(init, dtype=np.float64)) if init is not None else _init_quantiles(xs, k)
    csum = np.concatenate([[0.0], np.cumsum(xs)])
    for _ in range(iters):
        # sorted data: cluster j holds xs[cut[j]:cut[j+1]]
        cut = np.concatenate([[0], np.searchsorted(xs, (c[1:] + c[:-1]) / 2, side="right"), [len(xs)]])
        cnt = np.diff(cut)
        new = np.where(cnt > 0, (csum[cut[1:]] - csum[cut[:-1]]) / np.maximum(cnt, 1), c)
        new = np.sort(new)
        if np.allclose(new, c, rtol=0, atol=1e-12):
            c = new
            break
        c = new
    return c


def sse(x: np.ndarray, centers: np.ndarray) -> float:
    """Sum of squared distances of ``x`` to its nearest center."""
    x = np.asarray(x, dtype=np.float64).ravel()
    return float(np.sum((x - centers[nearest_index(x, centers)]) ** 2))


def optimal_1d(x: np.ndarray, k: int, max_points: int = 4096) -> np.ndarray:
    """Exact optimal 1-D k-means (minimum SSE) over the sorted values, by dynamic programming.

    D[j][i] = min_m D[j-1][m] + cost(m, i) over contiguous groups; the optimal m is monotone in
    i, so each row is solved by divide and conquer in O(n log n). Inputs with more than
    ``max_points`` distinct values are first reduced to that many weighted quantile bins
    (then exact for the binned data)."""
    xs = np.sort(np.asarray(x, dtype=np.float64).ravel())
    vals, wts = np.unique(xs, return_counts=True)
    if len(vals) > max_points:
        edges = np.quantile(xs, np.linspace(0, 1, max_points + 1))
        b = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, max_points - 1)
        wts = np.bincount(b, minlength=max_points).astype(np.float64)
        sums = np.bincount(b, weights=xs, minlength=max_points)
        keep = wts > 0
        vals, wts = sums[keep] / wts[keep], wts[keep]
    wts = wts.astype(np.float64)
    n = len(vals)
    k = min(k, n)
    cw = np.concatenate([[0.0], np.cumsum(wts)])
    c1 = np.concatenate([[0.0], np.cumsum(wts * vals)])
    c2 = np.concatenate([[0.0], np.cumsum(wts * vals * vals)])

    def cost(m: np.ndarray | int, i: int) -> np.ndarray:  # group vals[m:i]
        w = cw[i] - cw[m]
        s = c1[i] - c1[m]
        return (c2[i] - c2[m]) - s * s / np.maximum(w, 1e-300)

    inf = np.inf
    prev = np.full(n + 1, inf)
    prev[0] = 0.0
    arg = np.zeros((k + 1, n + 1), dtype=np.int64)
    for j in range(1, k + 1):
        cur = np.full(n + 1, inf)

        def solve(lo: int, hi: int, mlo: int, mhi: int) -> None:
            stack = [(lo, hi, mlo, mhi)]
            while stack:
                lo_, hi_, mlo_, mhi_ = stack.pop()
                if lo_ > hi_:
                    continue
                i = (lo_ + hi_) // 2
                ms = np.arange(mlo_, min(mhi_, i - 1) + 1)
                if len(ms) == 0:
                    best_m = mlo_
                else:
                    v = prev[ms] + cost(ms, i)
                    t = int(np.argmin(v))
                    best_m = int(ms[t])
                    cur[i] = v[t]
                    arg[j, i] = best_m
                stack.append((lo_, i - 1, mlo_, best_m))
                stack.append((i + 1, hi_, best_m, mhi_))

        solve(j, n, j - 1, n - 1)
        prev = cur
    # backtrack the group boundaries
    centers = []
    i = n
    for j in range(k, 0, -1):
        m = arg[j, i]
        w = cw[i] - cw[m]
        centers.append((c1[i] - c1[m]) / w)
        i = m
    return np.array(sorted(centers))


def act_levels(n_levels: int) -> np.ndarray:
    """Values of the ``n_levels`` hidden activation levels: a / (L - 1), a = 0..L-1."""
    return np.arange(n_levels, dtype=np.float64) / (n_levels - 1)


def level_index(u: np.ndarray, n_levels: int) -> np.ndarray:
    """Level emitted for pre-activation ``u``: round(clip(u, 0, 1) * (L - 1)) (half to even)."""
    return np.round(np.clip(u, 0.0, 1.0) * (n_levels - 1)).astype(np.int64)


def input_levels(bits: int) -> np.ndarray:
    """Values of the first layer's input codes: code c = pixel >> (8 - bits) stands for c / (2**bits - 1).

    With bits = 8 the code is the raw pixel p and stands for p / 255."""
    return np.arange(1 << bits, dtype=np.float64) / ((1 << bits) - 1)


def input_codes(samples: np.ndarray, bits: int) -> np.ndarray:
    """(N, features) int64 input codes: the top ``bits`` bits of each uint8 sample."""
    return samples.reshape(len(samples), -1).astype(np.int64) >> (8 - bits)


def table_scale(codebook: np.ndarray, levels: np.ndarray, table_bits: int) -> float:
    """Largest power of two S with |round(S * c * v)| <= 2**(table_bits - 1) - 1 for all entries."""
    m = float(np.max(np.abs(np.outer(codebook, levels))))
    if m == 0:
        return 1.0
    lim = (1 << (table_bits - 1)) - 1
    return float(2.0 ** np.floor(np.log2((lim - 0.5) / m)))


def product_table(codebook: np.ndarray, levels: np.ndarray, scale: float) -> np.ndarray:
    """Integer products P[k, a] = round(scale * codebook[k] * levels[a])."""
    return np.round(scale * np.outer(codebook, levels)).astype(np.int64)


def table_accumulate(table: np.ndarray, w_idx: np.ndarray, x_idx: np.ndarray) -> np.ndarray:
    """acc[n, o] = sum_j table[w_idx[o, j], x_idx[n, j]]: lookups and additions only.

    One pass per input level or per codebook entry, whichever are fewer; each pass is a 0/1
    selection matrix product done in float64 BLAS, exact while |acc| < 2**53 (checked)."""
    n_codes, n_lv = table.shape
    if np.abs(table).max(initial=0) * w_idx.shape[1] >= 2 ** 53:
        raise OverflowError("table_accumulate: accumulator could exceed 2**53")
    acc = np.zeros((len(x_idx), w_idx.shape[0]), dtype=np.float64)
    if n_lv <= n_codes:
        for a in np.unique(x_idx):
            acc += (x_idx == a).astype(np.float64) @ table[:, a][w_idx].T.astype(np.float64)
    else:
        for c in np.unique(w_idx):
            acc += table[c][x_idx].astype(np.float64) @ (w_idx == c).T.astype(np.float64)
    return acc.astype(np.int64)
