"""The sweep's task functions, one per stage; each writes its output atomically and returns a
small :class:`~lowbit.sweep.cache.TaskResult` (they run in worker processes)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from hw.folding import parse_folding
from hw.verilog import VerilogDesign
from quantmodels.atomic import atomic_write_json
from quantmodels.errors import ConfigError
from quantmodels.ir import load_model
from reports.report import DesignInput, collect
from sim.harness import HarnessPorts
from sim.regression import RegressionResult

from ..steps import make_hardware, simulate, train_and_save
from ..sweep_config import HwSpec, Point, TrainSpec
from .cache import TaskResult, captured, hw_dir, model_dir, point_file, record_timing
from .plan import load_data, pnr_applies
from .tables import point_doc

#: RegressionResult fields that vary from run to run: kept in timings, out of sim.json.
_VOLATILE = ("build_seconds", "build_cached", "sim_seconds")


def task_train(out: str, ts: TrainSpec, tkey: str) -> TaskResult:
    """Train one model into ``models/<tkey>`` (model.json is written last: it marks completion)."""
    out_p = Path(out)
    mdir = model_dir(out_p, tkey)
    if (mdir / "model.json").exists():
        return TaskResult("train", tkey, "cached")
    t0 = time.perf_counter()
    data = load_data(ts.dataset)
    # one BLAS thread: parallelism comes from tasks, and results do not depend on the thread count
    with threadpool_limits(limits=1), captured(out_p, f"train-{tkey}"):
        train_and_save(ts.method, ts.hidden, data, ts.dataset, mdir, ts.seed, ts.epochs, progress=False,
                       name=tkey, **dict(ts.train_kwargs))
    return record_timing(out_p, TaskResult("train", tkey, "ran", round(time.perf_counter() - t0, 3)))


def task_hw(out: str, hs: HwSpec, tkey: str, hkey: str, sim_images: int) -> TaskResult:
    """Generate the Verilog and simulate a bit-exactness sample; ``sim.json`` marks completion."""
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
    with captured(out_p, f"hw-{hkey}"):
        r = simulate(model, h, data.x_test[:n], data.y_test[:n])
    doc = r.to_json()
    volatile = {k: doc.pop(k) for k in _VOLATILE}
    doc.pop("tool_versions", None)  # recorded once per sweep, in sweep.json
    atomic_write_json(hdir / "sim.json", {**doc, "verilog_sha256": h.design.sha256})
    return record_timing(out_p, TaskResult("hw", hkey, "ran", round(time.perf_counter() - t0, 3),
                                           note=json.dumps(volatile)))


def task_point(out: str, p: Point, tkey: str, hkey: str, pkey: str, pnr: bool, synth: bool = True,
               activity_images: int = 0) -> TaskResult:
    """Synthesize one point for its target (or only estimate it, ``synth=False``), run the
    activity trace on ``activity_images`` test images, and write every figure to ``points/<pkey>.json``."""
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
    hwd = VerilogDesign(**json.loads((hdir / "hw.json").read_text()))
    ts = p.hw.train
    samples = load_data(ts.dataset).x_test[:activity_images] if activity_images else None
    design = DesignInput(point_label(p), model, hdir / Path(hwd.verilog_path).name, HarnessPorts.of(hwd),
                         int(hwd.cycles_per_image), hwd.latency_cycles, RegressionResult.from_json(sim),
                         layer_cycles=hwd.layer_cycles, foldings=parse_folding(model, p.hw.fold_spec),
                         activity_samples=samples, build=hwd)
    with captured(out_p, f"point-{pkey}"):
        res = collect(design, (p.target,), pnr=pnr and pnr_applies(p.target), progress=lambda _m: None,
                      per_layer_area=False,  # totals only: the hierarchical per-layer run doubles synthesis
                      synth=synth)
    atomic_write_json(pfile, point_doc(p, res, hwd, tkey, hkey, pkey))
    return record_timing(out_p, TaskResult("point", pkey, "ran", round(time.perf_counter() - t0, 3)))


def point_label(p: Point) -> str:
    """The point's ``design`` label: network, method, bits, seed, fold, target."""
    ts = p.hw.train
    bits = "" if ts.weight_bits is None and ts.act_bits is None else \
        f" W{ts.weight_bits or '-'}A{ts.act_bits or '-'}"
    return f"{ts.network} {ts.method}{bits} seed={ts.seed} fold={p.hw.fold} {p.target}"
