"""Drive the sweep: plan the tasks, run each stage on joblib or Dask, then write the tables."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from tqdm import tqdm

from quantmodels.ir import load_model

from ..sweep_config import Point, SweepConfig
from .cache import STAGES, clean_stale, is_done, model_dir
from .plan import hw_key, point_key, synthesis_plan, train_key
from .stages import task_hw, task_point, task_train
from .tables import write_tables


@dataclass(frozen=True)
class SweepResult:
    """Where the outputs went and what each stage did."""

    out: Path
    paths: dict[str, Path]
    stats: dict[str, dict[str, int]]  #: stage -> {"ran", "cached", "skipped"}
    n_points: int
    mismatching_points: int
    skipped: list[dict] = field(default_factory=list)


def _joblib_map(fn: Callable, calls: list[tuple], jobs: int) -> Iterator:
    from joblib import Parallel, delayed  # local: joblib's start-up is paid only by parallel runs

    n_jobs = jobs if jobs > 0 else -1  # 0: every core
    if n_jobs == 1 or len(calls) <= 1:
        for c in calls:  # in-process: no worker start-up for a single task
            yield fn(*c)
        return
    yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(fn)(*c) for c in calls)


def _dask_map(client, fn: Callable, calls: list[tuple]) -> Iterator:
    from distributed import as_completed  # local: Dask is optional

    futures = [client.submit(fn, *c, pure=False) for c in calls]
    for f in as_completed(futures):
        yield f.result()


def _dask_client(dask: str, jobs: int) -> tuple:
    """(client, cluster or None, scheduler address) for ``dask``: an address, or "local" for a
    throw-away cluster."""
    from distributed import Client, LocalCluster  # local: Dask is optional

    cluster = None
    if dask == "local":  # worker processes on this machine
        cluster = LocalCluster(n_workers=jobs or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None)
        dask = cluster.scheduler_address
    return Client(dask), cluster, dask


def run_sweep(cfg: SweepConfig, out: str | Path, jobs: int | None = None, dask: str | None = None,
              pnr: bool | None = None, progress: bool = True,
              log: Callable[[str], None] = print) -> SweepResult:
    """Run (or resume) the sweep into ``out`` and write tables, plots and the HTML report."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    jobs = cfg.jobs if jobs is None else jobs
    dask = dask or cfg.dask
    pnr = cfg.pnr if pnr is None else pnr
    stale = clean_stale(out)
    if stale:
        log(f"sweep: removed {stale} temporary file(s) left by an interrupted run")
    points, skipped = cfg.points()
    for s in skipped:
        log(f"sweep: skip {s['method']} W{s['weight_bits']}A{s['act_bits']} {s['network']} seed {s['seed']}: "
            f"{s['reason']}")
    tkeys = {p.index: train_key(p.hw.train) for p in points}
    hkeys = {p.index: hw_key(p.hw) for p in points}
    sout = str(out)
    calls: dict[str, dict[str, tuple]] = {
        "train": {tkeys[p.index]: (sout, p.hw.train, tkeys[p.index]) for p in points},
        "hw": {hkeys[p.index]: (sout, p.hw, tkeys[p.index], hkeys[p.index], cfg.sim_images) for p in points}}
    tasks = {"train": task_train, "hw": task_hw, "point": task_point}
    stats = {s: {"ran": 0, "cached": 0, "skipped": 0} for s in STAGES}
    pending: dict[str, list] = {}

    def plan(s: str) -> None:
        """The stage's unfinished calls; the finished ones count as cached."""
        pending[s] = [c for k, c in calls[s].items() if not is_done(out, s, k)]
        stats[s]["cached"] = len(calls[s]) - len(pending[s])

    plan("train")
    plan("hw")
    log(f"sweep: {len(points)} design points ({len(calls['train'])} models, {len(calls['hw'])} hardware variants, "
        f"{len(skipped)} grid combinations skipped); to run: "
        + ", ".join(f"{s} {len(pending[s])} (cached {stats[s]['cached']})" for s in ("train", "hw"))
        + f", then up to {len(points)} synthesis points")
    client, cluster, address = _dask_client(dask, jobs) if dask else (None, None, None)
    if client is not None:
        log(f"sweep: running on the Dask cluster at {address}")
    pkeys: dict[int, str] = {}
    try:
        bar = tqdm(total=sum(len(v) for v in pending.values()) + len(points), unit="task",
                   disable=not progress, desc="sweep", dynamic_ncols=True)
        for s in STAGES:
            if s == "point":  # known only now: pre-screening needs the trained models' accuracy
                pkeys = _plan_points(cfg, out, points, tkeys, hkeys, pnr, calls, log)
                plan("point")
                bar.update(len(points) - len(pending["point"]))
            bar.set_description(f"sweep [{s}]")
            it = _dask_map(client, tasks[s], pending[s]) if client else _joblib_map(tasks[s], pending[s], jobs)
            for r in it:
                stats[s][r.status] += 1
                if r.status == "skipped":
                    log(f"sweep: {s} {r.key}: skipped: {r.note}")
                bar.update(1)
        bar.close()
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    log("sweep: " + "; ".join(f"{s}: ran {v['ran']}, cached {v['cached']}, skipped {v['skipped']}"
                              for s, v in stats.items()))
    paths, df, skipped = write_tables(cfg, out, points, pkeys, skipped, pnr)
    bad = int((~df["measured_sim_bit_exact"].astype(bool)).sum()) if len(df) else 0
    log(f"sweep: {len(df)} points in {paths['csv']}; report {paths['html']}")
    return SweepResult(out, paths, stats, len(df), bad, skipped)


def _plan_points(cfg: SweepConfig, out: Path, points: list[Point], tkeys: dict[int, str], hkeys: dict[int, str],
                 pnr: bool, calls: dict[str, dict[str, tuple]], log: Callable[[str], None]) -> dict[int, str]:
    """Decide which points are synthesized, key them and add their calls; returns the point keys."""
    models: dict[str, object] = {}

    def model(p: Point):  # loaded once per train key: shared by folds and targets
        k = tkeys[p.index]
        if k not in models:
            models[k] = load_model(model_dir(out, k))
        return models[k]

    synth = synthesis_plan(cfg, points, model, log)
    pkeys = {p.index: point_key(p, pnr, cfg.sim_images, p.index in synth, cfg.activity_images) for p in points}
    calls["point"] = {pkeys[p.index]: (str(out), p, tkeys[p.index], hkeys[p.index], pkeys[p.index], pnr,
                                       p.index in synth, cfg.activity_images) for p in points}
    return pkeys
