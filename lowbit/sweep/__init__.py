"""``lowbit sweep``: a resumable, cached, parallel design-space sweep.

Three stages, each a set of independent tasks run in parallel (joblib locally, or a Dask
cluster), each task's output keyed by a content hash and written atomically:

1. train   ``models/<train key>/``   one per (dataset, seed, network, method, bits, epochs);
2. hw      ``hw/<hw key>/``          Verilog + a Verilator bit-exactness sample, one per (model, fold);
3. point   ``points/<point key>.json`` synthesis (+ place-and-route) and every figure, one per target.

Stages run in that order, so a model or a simulation shared by several points is made once.
A task whose output exists is never re-run: a killed sweep (even SIGKILL) resumes where it
stopped. The tables are rebuilt from the point files in grid order, so an interrupted and
resumed sweep writes the same ``sweep.csv`` as an uninterrupted one; wall times live apart
in ``timings.csv``.

Modules, one job each: :mod:`.plan` (content keys, which points to synthesize),
:mod:`.cache` (where each output lives, atomic task records, stale-file cleanup),
:mod:`.stages` (the three task functions), :mod:`.tables` (point rows and the written
tables), :mod:`.run` (executors and the driver).
"""
from .run import SweepResult, run_sweep

__all__ = ["SweepResult", "run_sweep"]
