"""Where each sweep output lives, and the files that make the sweep resumable.

A task's output marks it finished only once complete (written atomically, the marker file
last), so a killed sweep resumes where it stopped; temporary files an interrupted atomic
write left behind are removed on the next start.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from quantmodels.atomic import atomic_write_json, atomic_write_text

STAGES = ("train", "hw", "point")  #: in the order they run
#: Subdirectories of a sweep directory holding task outputs and records.
_SUBDIRS = ("models", "hw", "points", "timings", "logs")


def model_dir(out: Path, tkey: str) -> Path:
    return out / "models" / tkey


def hw_dir(out: Path, hkey: str) -> Path:
    return out / "hw" / hkey


def point_file(out: Path, pkey: str) -> Path:
    return out / "points" / f"{pkey}.json"


#: Per stage, the file whose existence says a task finished (each task writes it last).
_MARKERS: dict[str, Callable[[Path, str], Path]] = {
    "train": lambda out, key: model_dir(out, key) / "model.json",
    "hw": lambda out, key: hw_dir(out, key) / "sim.json",
    "point": point_file,
}


def is_done(out: Path, stage: str, key: str) -> bool:
    """True if task ``stage``/``key`` has finished (its marker file exists)."""
    return _MARKERS[stage](out, key).exists()


@dataclass(frozen=True)
class TaskResult:
    """What a task reports back to the orchestrator (small: everything else is on disk)."""

    stage: str
    key: str
    status: str  #: "ran", "cached" or "skipped"
    seconds: float = 0.0
    note: str = ""


def record_timing(out: Path, r: TaskResult) -> TaskResult:
    """Keep a task's wall time in ``timings/`` (apart from the tables: they must not vary)."""
    atomic_write_json(out / "timings" / f"{r.stage}-{r.key}.json", asdict(r))
    return r


@contextlib.contextmanager
def captured(out: Path, name: str) -> Iterator[None]:
    """Keep a task's console output in ``logs/<name>.log`` (parallel workers would interleave it)."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield
    finally:
        atomic_write_text(out / "logs" / f"{name}.log", buf.getvalue())


def clean_stale(out: Path) -> int:
    """Remove temporary files an interrupted run left behind (atomic writes' ``.name.xxx.tmp``)."""
    n = 0
    for sub in _SUBDIRS:
        for f in (out / sub).rglob(".*.tmp") if (out / sub).exists() else ():
            f.unlink(missing_ok=True)
            n += 1
    return n
