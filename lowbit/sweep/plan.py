"""What the sweep computes: content keys of every task, and which points are synthesized."""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from hw.folding import parse_folding
from quantmodels.datasets import Dataset, load_dataset
from quantmodels.errors import ConfigError
from quantmodels.ir import IRModel
from reports.estimator import estimate_model
from reports.pnr import PnrFamily
from reports.synth import family

from ..prescreen import Candidate, promising
from ..sweep_config import HwSpec, Point, SweepConfig, Synthesize, TrainSpec

#: Packages (whole trees, subpackages included: quantmodels/methods/ trains the models) and
#: modules whose sources each stage's outputs depend on; a change invalidates that stage. A
#: later stage's key holds the earlier stage's key, so it is invalidated by its sources too.
STAGE_CODE = {"train": ("quantmodels", "lowbit/steps.py", "lowbit/methods.py"),
              "hw": ("hw", "sim", "lowbit/steps.py", "lowbit/sweep/stages.py"),
              "point": ("reports", "lowbit/sweep/stages.py", "lowbit/sweep/tables.py")}
#: The repository root the sources are read from (a test points it at a copy).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def source_files(root: Path, entry: str) -> list[Path]:
    """The Python sources and JSON data files (e.g. the estimator's calibrated constants) of
    package or module ``entry``, at any depth, in a fixed order."""
    p = root / entry
    if p.is_file():
        return [p]
    return sorted(f for pat in ("*.py", "*.json") for f in p.rglob(pat) if "__pycache__" not in f.parts)


@functools.cache
def _code_version(root: Path, entries: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for entry in entries:
        for f in source_files(root, entry):
            h.update(f"{f.relative_to(root).as_posix()}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def code_version(*entries: str) -> str:
    """Hash of every source file of ``entries`` (packages or modules under :data:`SOURCE_ROOT`):
    a change invalidates the cache of the stage that depends on them."""
    return _code_version(SOURCE_ROOT, entries)


@functools.cache
def load_data(spec: str) -> Dataset:
    """The dataset (loaded once per process)."""
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
                 "code": code_version(*STAGE_CODE["train"])})


def hw_key(hs: HwSpec) -> str:
    # the model is a function of its train key, so the train key stands for the model's hash
    return _key({"model": train_key(hs.train), "fold": hs.fold, "popcount": hs.popcount,
                 "code": code_version(*STAGE_CODE["hw"])})


def pnr_applies(target: str) -> bool:
    """nextpnr runs for iCE40 targets only so far."""
    return family(target) == PnrFamily.ICE40


def point_key(p: Point, pnr: bool, sim_images: int, synth: bool = True, activity_images: int = 0) -> str:
    doc = {"hw": hw_key(p.hw), "sim_images": sim_images, "target": p.target,
           "pnr": pnr and pnr_applies(p.target), "code": code_version(*STAGE_CODE["point"])}
    if not synth:  # a pre-screened point: its file must not pass for a synthesized one
        doc["synth"] = False
    if activity_images:
        doc["activity_images"] = activity_images
    return _key(doc)


def synthesis_plan(cfg: SweepConfig, points: list[Point], models: Callable[[Point], IRModel],
                   log: Callable[[str], None]) -> set[int]:
    """Indices of the points to synthesize: all, or the estimator's promising ones.

    ``models(p)`` is point ``p``'s trained model (known only after the train stage)."""
    if cfg.synthesize is Synthesize.ALL:
        return {p.index for p in points}
    cands = []
    for p in points:
        model = models(p)
        try:
            est = estimate_model(model.layers, parse_folding(model, p.hw.fold_spec), p.target).luts
        except ConfigError:  # uncalibrated target, conv layers, or a fold the model cannot take
            est = None
        cands.append(Candidate(p.index, p.target, p.hw.train.method,
                               float(model.meta.get("golden_test_accuracy", 0.0)), est))
    keep = promising(cands, cfg.prescreen_margin)
    log(f"sweep: pre-screen (estimator, margin {cfg.prescreen_margin:.0%}): synthesize {len(keep)} of "
        f"{len(points)} points; {sum(c.est_luts is None for c in cands)} could not be estimated and are kept")
    return keep
