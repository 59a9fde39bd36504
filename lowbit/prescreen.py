"""Estimator pre-screening for sweeps: synthesize only the points that could be Pareto-optimal.

After training, every point's accuracy is known and the analytic area estimator
(:mod:`reports.estimator`, calibrated against Yosys) gives its LUTs without synthesis. A point
is *promising* unless another point on the same target is at least as accurate and clearly
cheaper: its estimate, inflated by the margin, is still below the point's estimate deflated
by the margin. The margin covers the estimator's error (about 10 % mean, up to ~30 % on
single points in ``benchmarks/results/estimator_calibration.json``), so a point the estimator
misjudges by less than the margin is never dropped wrongly.

Points the estimator cannot cover (uncalibrated target, conv layers) and the multiplier
baselines are always synthesized: the report compares everything against them.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Methods always synthesized: the baselines every plot is read against.
ALWAYS_SYNTHESIZED = ("int8",)
DEFAULT_MARGIN = 0.25


@dataclass(frozen=True)
class Candidate:
    """What pre-screening knows about one design point before synthesis."""

    index: int  #: the point's position in the sweep grid
    target: str
    method: str
    accuracy: float  #: golden integer model test accuracy
    est_luts: float | None  #: estimator LUTs on ``target``; None if it cannot estimate this point


def promising(cands: list[Candidate], margin: float = DEFAULT_MARGIN) -> set[int]:
    """Indices of the points worth synthesizing (see the module docstring for the rule)."""
    if not 0 <= margin < 1:
        raise ValueError(f"margin: {margin}, expected 0 <= margin < 1")
    keep: set[int] = set()
    for c in cands:
        if c.est_luts is None or c.method in ALWAYS_SYNTHESIZED:
            keep.add(c.index)
            continue
        dominated = any(
            o.index != c.index and o.target == c.target and o.est_luts is not None
            and o.accuracy >= c.accuracy and o.est_luts * (1 + margin) < c.est_luts * (1 - margin)
            for o in cands)
        if not dominated:
            keep.add(c.index)
    return keep
