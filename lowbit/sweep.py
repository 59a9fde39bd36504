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
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from quantmodels.atomic import atomic_write_json, atomic_write_text

from .methods import cli_flags
from .sweep_config import HwSpec, Point, SweepConfig, TrainSpec

STAGES = ("train", "hw", "point")


# ------------------------------------------------------------------------------- identities

@functools.cache
def code_version(*packages: str) -> str:
    """Hash of the Python sources and JSON data files (e.g. the estimator's calibrated
    constants) of ``packages``: a change invalidates that stage's cache."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for pkg in packages:
        for f in sorted([*(root / pkg).glob("*.py"), *(root / pkg).glob("*.json")]):
            h.update(f"{pkg}/{f.name}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def load_data(spec: str):
    """The dataset (loaded once per process)."""
    from quantmodels.datasets import load_dataset

    return load_dataset(spec)


@functools.cache
def data_identity(spec: str) -> str:
    """Content hash of the dataset's arrays: a changed file means new models."""
    d = load_data(spec)
    h = hashlib.sha256()
    for a in (d.x_train, d.y_train, d.x_test, d.y_test):
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _key(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def train_key(ts: TrainSpec) -> str:
    return _key({"train": asdict(ts) | {"dataset": data_identity(ts.dataset)},
                 "code": code_version("quantmodels")})


def hw_key(hs: HwSpec) -> str:
    # the model is a function of its train key, so the train key stands for the model's hash
    return _key({"model": train_key(hs.train), "fold": hs.fold, "popcount": hs.popcount,
                 "code": code_version("hw", "sim")})


def point_key(p: Point, pnr: bool, sim_images: int, synth: bool = True, activity_images: int = 0) -> str:
    doc = {"hw": hw_key(p.hw), "sim_images": sim_images, "target": p.target,
           "pnr": pnr and _pnr_applies(p.target), "code": code_version("reports")}
    if not synth:  # a pre-screened point: its file must not pass for a synthesized one
        doc["synth"] = False
    if activity_images:
        doc["activity_images"] = activity_images
    return _key(doc)


def _pnr_applies(target: str) -> bool:
    return target.split("-")[0] == "ice40"  # nextpnr runs for iCE40 only so far


# ------------------------------------------------------------------------------- tasks

@dataclass
class TaskResult:
    """What a task reports back to the orchestrator (small: everything else is on disk)."""

    stage: str
    key: str
    status: str  #: "ran", "cached" or "skipped"
    seconds: float = 0.0
    note: str = ""


def _timing(out: Path, r: TaskResult) -> TaskResult:
    atomic_write_json(out / "timings" / f"{r.stage}-{r.key}.json", asdict(r))
    return r


@contextlib.contextmanager
def _captured(out: Path, name: str):
    """Keep a task's console output in ``logs/<name>.log`` (parallel workers would interleave it)."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield
    finally:
        atomic_write_text(out / "logs" / f"{name}.log", buf.getvalue())


def model_dir(out: Path, tkey: str) -> Path:
    return out / "models" / tkey


def hw_dir(out: Path, hkey: str) -> Path:
    return out / "hw" / hkey


def point_file(out: Path, pkey: str) -> Path:
    return out / "points" / f"{pkey}.json"


def task_train(out: str, ts: TrainSpec, tkey: str) -> TaskResult:
    """Train one model into ``models/<tkey>`` (model.json is written last: it marks completion)."""
    from threadpoolctl import threadpool_limits

    from .flow import train_and_save

    out_p = Path(out)
    mdir = model_dir(out_p, tkey)
    if (mdir / "model.json").exists():
        return TaskResult("train", tkey, "cached")
    t0 = time.perf_counter()
    data = load_data(ts.dataset)
    # one BLAS thread: parallelism comes from tasks, and results do not depend on the thread count
    with threadpool_limits(limits=1), _captured(out_p, f"train-{tkey}"):
        train_and_save(ts.method, ts.hidden, data, ts.dataset, mdir, ts.seed, ts.epochs, progress=False,
                       name=tkey, **dict(ts.train_kwargs))
    return _timing(out_p, TaskResult("train", tkey, "ran", round(time.perf_counter() - t0, 3)))


def task_hw(out: str, hs: HwSpec, tkey: str, hkey: str, sim_images: int) -> TaskResult:
    """Generate the Verilog and simulate a bit-exactness sample; ``sim.json`` marks completion."""
    from quantmodels.errors import ConfigError
    from quantmodels.ir import load_model

    from .flow import make_hardware, simulate

    out_p = Path(out)
    hdir = hw_dir(out_p, hkey)
    if (hdir / "sim.json").exists():
        return TaskResult("hw", hkey, "cached")
    t0 = time.perf_counter()
    model = load_model(model_dir(out_p, tkey))
    try:
        h = make_hardware(model, hs.fold_spec, hdir, hs.popcount)
    except ConfigError as e:  # e.g. fps= out of reach for this model's arithmetic
        atomic_write_json(hdir / "sim.json", {"skipped": str(e)})
        return TaskResult("hw", hkey, "skipped", note=str(e))
    data = load_data(hs.train.dataset)
    n = min(sim_images, len(data.x_test))
    with _captured(out_p, f"hw-{hkey}"):
        r = simulate(model, h, data.x_test[:n], data.y_test[:n])
    doc = r.to_json()
    volatile = {k: doc.pop(k) for k in ("build_seconds", "build_cached", "sim_seconds")}
    doc.pop("tool_versions", None)
    atomic_write_json(hdir / "sim.json", {**doc, "verilog_sha256": h.design.sha256})
    return _timing(out_p, TaskResult("hw", hkey, "ran", round(time.perf_counter() - t0, 3),
                                     note=json.dumps(volatile)))


def regenerate_commands(p: Point, tkey: str, hkey: str) -> tuple[str, str]:
    """``lowbit train`` / ``lowbit verilog`` commands (run in the sweep directory) that rebuild
    this point's model and Verilog."""
    ts = p.hw.train
    train = ["lowbit", "train", "--data", ts.dataset, "--hidden", ",".join(map(str, ts.hidden)),
             "--method", ts.method, *cli_flags(dict(ts.train_kwargs))]
    if ts.epochs is not None:
        train += ["--epochs", str(ts.epochs)]
    train += ["--seed", str(ts.seed), "--quiet", "--out", f"models/{tkey}"]
    verilog = ["lowbit", "verilog", f"models/{tkey}", "--fold", p.hw.fold, "--popcount", p.hw.popcount,
               "--out", f"hw/{hkey}"]
    return shlex.join(train), shlex.join(verilog)


def _rename_target_columns(row: dict, target: str) -> dict:
    """``measured_<target>_luts`` -> ``measured_luts`` (and ``model_est_<target>_luts`` ->
    ``model_est_luts``): one column per figure across targets."""
    out = {}
    for k, v in row.items():
        for prefix, new in ((f"measured_{target}_", "measured_"), ("measured_ice40_", "measured_"),
                            (f"model_est_{target}_", "model_est_")):
            if k.startswith(prefix):
                k = new + k[len(prefix):]
                break
        out[k] = v
    return out


def task_point(out: str, p: Point, tkey: str, hkey: str, pkey: str, pnr: bool, synth: bool = True,
               activity_images: int = 0) -> TaskResult:
    """Synthesize one point for its target (or only estimate it, ``synth=False``), run the
    activity trace on ``activity_images`` test images, and write every figure to ``points/<pkey>.json``."""
    from hw.folding import parse_folding
    from quantmodels.ir import load_model
    from reports.report import DesignInput, collect
    from sim.harness import HarnessPorts
    from sim.tools import tool_versions

    out_p = Path(out)
    pfile = point_file(out_p, pkey)
    if pfile.exists():
        return TaskResult("point", pkey, "cached")
    t0 = time.perf_counter()
    hdir = hw_dir(out_p, hkey)
    sim = json.loads((hdir / "sim.json").read_text())
    if "skipped" in sim:
        atomic_write_json(pfile, {"skipped": sim["skipped"]})
        return TaskResult("point", pkey, "skipped", note=sim["skipped"])
    model = load_model(model_dir(out_p, tkey))
    hwj = json.loads((hdir / "hw.json").read_text())
    ports = HarnessPorts(dut=hwj["top_name"], in_width=hwj["in_width"], class_width=hwj["class_width"],
                         logits_width=hwj["logit_width"] * hwj["n_classes"])
    ts = p.hw.train
    bits = "" if ts.weight_bits is None and ts.act_bits is None else \
        f" W{ts.weight_bits or '-'}A{ts.act_bits or '-'}"
    label = f"{ts.network} {ts.method}{bits} seed={ts.seed} fold={p.hw.fold} {p.target}"
    samples = load_data(ts.dataset).x_test[:activity_images] if activity_images else None
    design = DesignInput(label, model, hdir / Path(hwj["verilog_path"]).name, ports,
                         int(hwj["cycles_per_image"]), hwj.get("latency_cycles"), sim,
                         layer_cycles=hwj.get("layer_cycles"),
                         foldings=parse_folding(model, p.hw.fold_spec),
                         activity_samples=samples)
    with _captured(out_p, f"point-{pkey}"):
        res = collect(design, (p.target,), pnr=pnr and _pnr_applies(p.target), progress=lambda _m: None,
                      per_layer_area=False,  # totals only: the hierarchical per-layer run doubles synthesis
                      synth=synth)
    cmd_train, cmd_verilog = regenerate_commands(p, tkey, hkey)
    tools = tool_versions()
    head = {"point": pkey, "design": label, "dataset": "digits" if ts.dataset == "digits" else ts.dataset,
            "seed": ts.seed, "network": ts.network, "hidden": ",".join(map(str, ts.hidden)),
            "method": ts.method, "weight_bits_requested": ts.weight_bits, "act_bits_requested": ts.act_bits,
            "epochs": model.meta.get("epochs_run"), "fold": p.hw.fold, "foldings": ";".join(hwj["foldings"]),
            "popcount": p.hw.popcount, "target": p.target}
    row = {**head, **{k: v for k, v in _rename_target_columns(res["row"], p.target).items()
                      if k not in ("design", "method", "seed")}}
    row["float_test_accuracy"] = model.meta.get("float_test_accuracy")
    row["golden_float_agreement"] = model.meta.get("golden_float_agreement")
    row["measured_sim_accuracy"] = sim.get("accuracy")
    row["measured_sim_bit_exact"] = bool(sim.get("mismatches", 1) == 0 and sim.get("n_images", 0) > 0)
    row["tool_versions"] = "; ".join(f"{k} {v}" for k, v in sorted(tools.items()))
    row.update(train_key=tkey, hw_key=hkey, cmd_train=cmd_train, cmd_verilog=cmd_verilog)
    layers = [{"point": pkey, **lr} for lr in res["layers"]]
    cells = {t: s["cells"] for t, s in res["raw"]["synth"].items()}
    atomic_write_json(pfile, {"row": row, "layers": layers, "synth_cells": cells})
    return _timing(out_p, TaskResult("point", pkey, "ran", round(time.perf_counter() - t0, 3)))


# ------------------------------------------------------------------------------- executors

def _joblib_map(fn: Callable, calls: list[tuple], jobs: int) -> Iterator:
    from joblib import Parallel, delayed

    n_jobs = jobs if jobs > 0 else -1  # 0: every core
    if n_jobs == 1 or len(calls) <= 1:
        for c in calls:  # in-process: no worker start-up for a single task
            yield fn(*c)
        return
    yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(fn)(*c) for c in calls)


def _dask_map(client, fn: Callable, calls: list[tuple]) -> Iterator:
    from distributed import as_completed

    futures = [client.submit(fn, *c, pure=False) for c in calls]
    for f in as_completed(futures):
        yield f.result()


# ------------------------------------------------------------------------------- orchestration

@dataclass
class SweepResult:
    """Where the outputs went and what each stage did."""

    out: Path
    paths: dict[str, Path]
    stats: dict[str, dict[str, int]]  #: stage -> {"ran", "cached", "skipped"}
    n_points: int
    mismatching_points: int
    skipped: list[dict] = field(default_factory=list)


def _clean_stale(out: Path) -> int:
    """Remove temporary files an interrupted run left behind (atomic writes' ``.name.xxx.tmp``)."""
    n = 0
    for sub in ("models", "hw", "points", "timings", "logs"):
        for f in (out / sub).rglob(".*.tmp") if (out / sub).exists() else ():
            f.unlink(missing_ok=True)
            n += 1
    return n


def run_sweep(cfg: SweepConfig, out: str | Path, jobs: int | None = None, dask: str | None = None,
              pnr: bool | None = None, progress: bool = True,
              log: Callable[[str], None] = print) -> SweepResult:
    """Run (or resume) the sweep into ``out`` and write tables, plots and the HTML report."""
    from tqdm import tqdm

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    jobs = cfg.jobs if jobs is None else jobs
    dask = dask or cfg.dask
    pnr = cfg.pnr if pnr is None else pnr
    stale = _clean_stale(out)
    if stale:
        log(f"sweep: removed {stale} temporary file(s) left by an interrupted run")
    points, skipped = cfg.points()
    for s in skipped:
        log(f"sweep: skip {s['method']} W{s['weight_bits']}A{s['act_bits']} {s['network']} seed {s['seed']}: "
            f"{s['reason']}")
    tkeys = {p.index: train_key(p.hw.train) for p in points}
    hkeys = {p.index: hw_key(p.hw) for p in points}
    sout = str(out)
    trains = {tkeys[p.index]: (sout, p.hw.train, tkeys[p.index]) for p in points}
    hws = {hkeys[p.index]: (sout, p.hw, tkeys[p.index], hkeys[p.index], cfg.sim_images) for p in points}
    done = {"train": lambda k: (model_dir(out, k) / "model.json").exists(),
            "hw": lambda k: (hw_dir(out, k) / "sim.json").exists(),
            "point": lambda k: point_file(out, k).exists()}
    stages: dict[str, tuple[Callable, dict]] = {"train": (task_train, trains), "hw": (task_hw, hws)}
    stats = {s: {"ran": 0, "cached": 0, "skipped": 0} for s in STAGES}
    pending: dict[str, list] = {}

    def plan(s: str) -> None:
        """The stage's unfinished calls; the finished ones count as cached."""
        pending[s] = [c for k, c in stages[s][1].items() if not done[s](k)]
        stats[s]["cached"] = len(stages[s][1]) - len(pending[s])

    plan("train")
    plan("hw")
    log(f"sweep: {len(points)} design points ({len(trains)} models, {len(hws)} hardware variants, "
        f"{len(skipped)} grid combinations skipped); to run: "
        + ", ".join(f"{s} {len(pending[s])} (cached {stats[s]['cached']})" for s in ("train", "hw"))
        + f", then up to {len(points)} synthesis points")
    client, cluster = None, None
    if dask:
        from distributed import Client, LocalCluster

        if dask == "local":  # a throw-away cluster of worker processes on this machine
            cluster = LocalCluster(n_workers=jobs or os.cpu_count() or 1, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            dask = cluster.scheduler_address
        client = Client(dask)
        log(f"sweep: running on the Dask cluster at {dask}")
    pkeys: dict[int, str] = {}
    try:
        bar = tqdm(total=sum(len(v) for v in pending.values()) + len(points), unit="task",
                   disable=not progress, desc="sweep", dynamic_ncols=True)
        for s in STAGES:
            if s == "point":  # known only now: pre-screening needs the trained models' accuracy
                synth = _synthesis_plan(cfg, out, points, tkeys, log)
                pkeys = {p.index: point_key(p, pnr, cfg.sim_images, p.index in synth, cfg.activity_images)
                         for p in points}
                stages["point"] = (task_point, {pkeys[p.index]: (sout, p, tkeys[p.index], hkeys[p.index],
                                                                 pkeys[p.index], pnr, p.index in synth,
                                                                 cfg.activity_images) for p in points})
                plan("point")
                bar.update(len(points) - len(pending["point"]))
            fn, _ = stages[s]
            bar.set_description(f"sweep [{s}]")
            it = _dask_map(client, fn, pending[s]) if client else _joblib_map(fn, pending[s], jobs)
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
    return _finish(cfg, out, points, pkeys, skipped, stats, pnr, log)


def _synthesis_plan(cfg: SweepConfig, out: Path, points: list[Point], tkeys: dict[int, str],
                    log: Callable[[str], None]) -> set[int]:
    """Indices of the points to synthesize: all, or the estimator's promising ones."""
    if cfg.synthesize == "all":
        return {p.index for p in points}
    from hw.folding import parse_folding
    from quantmodels.errors import ConfigError
    from quantmodels.ir import load_model
    from reports.estimator import estimate_model

    from .prescreen import Candidate, promising

    models = {k: load_model(model_dir(out, k)) for k in set(tkeys.values())}  # shared by folds and targets
    cands = []
    for p in points:
        model = models[tkeys[p.index]]
        try:
            est = estimate_model(model.layers, parse_folding(model, p.hw.fold_spec), p.target)["luts"]
        except ConfigError:  # uncalibrated target, conv layers, or a fold the model cannot take
            est = None
        cands.append(Candidate(p.index, p.target, p.hw.train.method,
                               float(model.meta.get("golden_test_accuracy", 0.0)), est))
    keep = promising(cands, cfg.prescreen_margin)
    log(f"sweep: pre-screen (estimator, margin {cfg.prescreen_margin:.0%}): synthesize {len(keep)} of "
        f"{len(points)} points; {sum(c.est_luts is None for c in cands)} could not be estimated and are kept")
    return keep


def _finish(cfg: SweepConfig, out: Path, points: list[Point], pkeys: dict[int, str], skipped: list[dict],
            stats: dict, pnr: bool, log: Callable[[str], None]) -> SweepResult:
    """Rebuild every table from the point files, in grid order, and write the report."""
    import pandas as pd

    from reports.sweep_report import write_sweep_report
    from sim.tools import tool_versions

    rows, layers = [], []
    skipped = list(skipped)
    for p in points:
        doc = json.loads(point_file(out, pkeys[p.index]).read_text())
        if "skipped" in doc:
            ts = p.hw.train
            skipped.append({"seed": ts.seed, "network": ts.network, "method": ts.method,
                            "weight_bits": ts.weight_bits, "act_bits": ts.act_bits, "fold": p.hw.fold,
                            "target": p.target, "reason": doc["skipped"]})
            continue
        rows.append(doc["row"])
        layers += [{"design": doc["row"]["design"], **lr} for lr in doc["layers"]]
    df = pd.DataFrame(rows)
    ldf = pd.DataFrame(layers)
    timings = [json.loads(f.read_text()) for f in sorted((out / "timings").glob("*.json"))] \
        if (out / "timings").exists() else []
    meta = {"config": str(cfg.path), "config_toml": cfg.raw, "seeds": list(cfg.seeds), "dataset": cfg.dataset,
            "sim_images": cfg.sim_images, "pnr": pnr, "activity_images": cfg.activity_images,
            "synthesize": cfg.synthesize, "prescreen_margin": cfg.prescreen_margin, "tool_versions": tool_versions(),
            "code_versions": {s: code_version(*pk) for s, pk in
                              (("train", ("quantmodels",)), ("hw", ("hw", "sim")), ("point", ("reports",)))},
            "n_points": len(df), "skipped": skipped}
    paths = {"csv": out / "sweep.csv", "json": out / "sweep.json", "layers_csv": out / "layers.csv",
             "timings_csv": out / "timings.csv"}
    atomic_write_text(paths["csv"], df.to_csv(index=False))
    atomic_write_text(paths["layers_csv"], ldf.to_csv(index=False))
    atomic_write_json(paths["json"], {"meta": meta, "points": json.loads(df.to_json(orient="records"))})
    atomic_write_text(paths["timings_csv"], pd.DataFrame(timings).to_csv(index=False))
    paths.update(write_sweep_report(df, ldf, meta, out))
    bad = int((~df["measured_sim_bit_exact"].astype(bool)).sum()) if len(df) else 0
    log(f"sweep: {len(df)} points in {paths['csv']}; report {paths['html']}")
    return SweepResult(out, paths, stats, len(df), bad, skipped)
