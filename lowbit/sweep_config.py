"""``lowbit sweep`` configuration: a TOML file, fully validated at load time, expanded to points.

Every error names the TOML key, the value and what was expected, in one line::

    sweep.toml: axes.method[1]: 'foo', expected one of bnn, int8

Layout (see ``examples/sweep_digits.toml``)::

    [sweep]  dataset, seeds (or seed), epochs, sim_images, activity_images, pnr, popcount, out,
             synthesize ("all" or "promising": estimator pre-screening), prescreen_margin
    [axes]   method, weight_bits, act_bits, network, fold, target   (lists; the grid is their product)
    [[grid]] optional sub-grids: each takes [axes] keys, missing ones come from [axes]; the
             sweep is the union of the sub-grids (e.g. bnn at W1A1 plus dorefa at W2A2 and W4A4)
    [parallel] jobs, dask
"""
from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from hw.folding import parse_folding
from quantmodels.datasets import load_dataset
from quantmodels.arch import MAX_UNITS
from quantmodels.errors import ConfigError, DataError, clip
from quantmodels.ir import InputSpec, IRModel, Layer
from reports.activity import ACTIVITY_DEPTH
from reports.synth import Target

from .methods import known_methods, method_bits
from .steps import PRESETS  # network presets: the same table ``lowbit train --model`` uses


class Popcount(StrEnum):
    """Popcount circuits a sweep may use (a subset of hw.arith.POPCOUNT_STYLES)."""

    TREE = "tree"
    LUT6 = "lut6"


class Synthesize(StrEnum):
    """Which points a sweep synthesizes."""

    ALL = "all"  #: every point
    PROMISING = "promising"  #: only those the area estimator cannot rule out (lowbit.prescreen)


MAX_BITS = 16
#: Resource bounds: a config beyond them is refused at load time instead of hanging or exhausting memory.
MAX_CONFIG_BYTES = 1 << 20  #: a sweep config is a page of TOML
MAX_EPOCHS = 10_000
MAX_JOBS = 1024
MAX_SEEDS = 1000
MAX_POINTS = 10_000  #: design points of all grids together
MAX_LAYERS = 64  #: hidden layers of a network
#: ``parallel.dask`` values a TOML file may set: a remote scheduler exchanges pickles (it can run code
#: on this machine), so its address must come from the command line (``--dask``).
TOML_DASK = ("local",)
_SECTIONS = {
    "sweep": {"dataset", "seed", "seeds", "epochs", "sim_images", "activity_images", "pnr", "popcount", "out",
              "synthesize", "prescreen_margin"},
    "axes": {"method", "weight_bits", "act_bits", "network", "fold", "target"},
    "parallel": {"jobs", "dask"},
    "grid": set(),  # [[grid]]: an array of tables with [axes] keys, checked by _grid
}


@dataclass(frozen=True)
class TrainSpec:
    """What identifies a trained model (shared by every point differing only in fold/target)."""

    dataset: str  #: "digits" or an absolute path
    seed: int
    network: str  #: label as written in the config ("tfc" or "32,32")
    hidden: tuple[int, ...]
    method: str
    weight_bits: int | None  #: None: the method's default
    act_bits: int | None
    epochs: int | None
    train_kwargs: tuple[tuple[str, Any], ...] = ()  #: extra TrainConfig fields from lowbit.methods


@dataclass(frozen=True)
class HwSpec:
    """A trained model folded into one piece of hardware (simulated once)."""

    train: TrainSpec
    fold: str
    popcount: Popcount

    @property
    def fold_spec(self) -> str | None:
        """The fold as :func:`hw.folding.parse_folding` takes it: None for "auto"."""
        return None if self.fold == "auto" else self.fold


@dataclass(frozen=True)
class Point:
    """One design point: hardware synthesized for one target."""

    index: int  #: position in the grid: the table's row order
    hw: HwSpec
    target: Target


@dataclass(frozen=True)
class Grid:
    """One product grid of axes (``[axes]``, or a ``[[grid]]`` table overriding some of them)."""

    methods: tuple[str, ...]
    weight_bits: tuple[int | None, ...]
    act_bits: tuple[int | None, ...]
    networks: tuple[tuple[str, tuple[int, ...]], ...]
    folds: tuple[str, ...]
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep configuration."""

    path: Path  #: the TOML file (relative paths in it are relative to its directory)
    dataset: str  #: "digits" or an absolute path to MNIST (.npz or IDX directory)
    seeds: tuple[int, ...]  #: one model per seed; recorded in every row
    epochs: int | None  #: None: each method's default
    sim_images: int  #: bit-exactness sample: the first N test images, 0 mismatches expected
    pnr: bool  #: nextpnr place-and-route for iCE40 targets
    popcount: Popcount  #: popcount circuit
    out: Path | None  #: output directory ([sweep] out, resolved inside the config's directory); the CLI's --out wins
    grids: tuple[Grid, ...]  #: [axes] alone, or one Grid per [[grid]] table
    jobs: int  #: parallel local tasks, 0 = every core
    dask: str | None  #: Dask scheduler address or "local"
    image_shape: tuple[int, ...] = ()
    n_classes: int = 10
    raw: dict = field(default_factory=dict)  #: the TOML document, recorded in sweep.json
    activity_images: int = 16  #: test images of the traced (activity-energy) Verilator run; 0 = none
    synthesize: Synthesize = Synthesize.ALL  #: PROMISING: synthesize only points the estimator cannot rule out
    prescreen_margin: float = 0.25  #: estimator error allowance of the pre-screen (lowbit.prescreen)

    def points(self) -> tuple[list[Point], list[dict]]:
        """The grids' points in a fixed order (duplicates dropped), and the skipped combinations."""
        pts: list[Point] = []
        seen: set = set()
        skipped: list[dict] = []
        for g in self.grids:
            for seed, (label, hidden), method, wb, ab in itertools.product(
                    self.seeds, g.networks, g.methods, g.weight_bits, g.act_bits):
                kw, reason = method_bits(method, wb, ab)
                if reason:
                    s = {"seed": seed, "network": label, "method": method, "weight_bits": wb, "act_bits": ab,
                         "reason": reason}
                    if s not in skipped:
                        skipped.append(s)
                    continue
                ts = TrainSpec(self.dataset, seed, label, hidden, method, wb, ab, self.epochs,
                               tuple(sorted(kw.items())))
                for fold in g.folds:
                    hw = HwSpec(ts, fold, self.popcount)
                    for target in g.targets:
                        if (hw, target) not in seen:
                            seen.add((hw, target))
                            pts.append(Point(len(pts), hw, target))
        return pts, skipped


class _Reader:
    """Typed access to the TOML document with key-naming errors."""

    def __init__(self, path: Path, doc: dict):
        self.path, self.doc = path, doc

    def fail(self, key: str, value: Any, expected: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {clip(value)}, expected {expected}")

    def get(self, section: str, name: str, default: Any = None) -> Any:
        return self.doc.get(section, {}).get(name, default)

    def int_(self, key: str, v: Any, lo: int, hi: int | None = None) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            rng = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"
            raise self.fail(key, v, rng)
        return v

    def choice(self, key: str, v: Any, enum: type[StrEnum]) -> Any:
        """``v`` as a member of the closed choice ``enum``."""
        try:
            return enum(v)
        except (ValueError, TypeError):
            raise self.fail(key, v, f"one of {', '.join(enum)}") from None

    def list_(self, section: str, name: str, default: list | None = None) -> list:
        v = self.get(section, name, default)
        if v is None:
            raise ConfigError(f"{self.path}: {section}.{name}: missing, expected a non-empty list")
        if not isinstance(v, list):
            v = [v]
        if not v:
            raise self.fail(f"{section}.{name}", v, "a non-empty list")
        return v


def _check_keys(r: _Reader) -> None:
    for section, body in r.doc.items():
        if section not in _SECTIONS:
            raise ConfigError(f"{r.path}: {section}: unknown table, expected "
                              f"{', '.join(f'[{s}]' for s in _SECTIONS)}")
        if section == "grid":
            continue
        if not isinstance(body, dict):
            raise r.fail(section, body, "a table")
        for k in body:
            if k not in _SECTIONS[section]:
                raise ConfigError(f"{r.path}: {section}.{k}: unknown key, expected one of "
                                  f"{', '.join(sorted(_SECTIONS[section]))}")


def _network(r: _Reader, key: str, v: Any) -> tuple[str, tuple[int, ...]]:
    if isinstance(v, str) and v in PRESETS:
        return v, PRESETS[v]
    parts: list[Any]
    if isinstance(v, list):
        parts = v
    elif isinstance(v, str):
        parts = [p.strip() for p in v.split(",", MAX_LAYERS + 1) if p.strip()]
    else:
        parts = []
    try:
        sizes = tuple(int(p) for p in parts[:MAX_LAYERS + 1])
    except (TypeError, ValueError):
        sizes = ()
    if not sizes or min(sizes) < 1 or any(isinstance(p, (bool, float)) for p in parts):
        raise r.fail(key, v, f"a preset ({', '.join(PRESETS)}) or hidden sizes like \"64,64\"")
    if max(sizes) > MAX_UNITS or len(sizes) > MAX_LAYERS:  # before any stub model is built from them
        raise r.fail(key, v, f"at most {MAX_LAYERS} hidden layers of 1..{MAX_UNITS} units")
    return ",".join(map(str, sizes)), sizes


def _stub_model(hidden: tuple[int, ...], n_in: int, n_classes: int) -> IRModel:
    """Shape-only IR model: lets fold specs be checked against a network before training."""
    sizes = (n_in, *hidden, n_classes)
    layers = [Layer(f"fc{i}", "xnor_popcount", a, b, 1, 1, "threshold", np.zeros((b, a), np.int8))
              for i, (a, b) in enumerate(zip(sizes, sizes[1:]))]
    return IRModel("stub", "stub", InputSpec(n_in, 1, "threshold", 128, (n_in,)), layers)


def _check_fold(r: _Reader, key: str, spec: Any, networks, n_in: int, n_classes: int) -> str:
    if not isinstance(spec, str) or not spec.strip():
        raise r.fail(key, spec, "a fold spec string: 'auto', 'pe=N,simd=M', 'fc0:pe=N;...', 'fps=F' or 'cycles=N'")
    for label, hidden in networks:
        try:
            parse_folding(_stub_model(hidden, n_in, n_classes), None if spec == "auto" else spec)
        except ConfigError as e:
            msg = str(e).removeprefix("--fold: ")
            raise ConfigError(f"{r.path}: {key}: {clip(spec)} for network {label!r}: {msg}") from None
    return spec.strip()


def _grid(r: _Reader, axes: dict, where: str, n_in: int, n_classes: int) -> Grid:
    """Validate one grid's axes; keys in messages are ``axes.<name>[i]`` or ``grid[k].<name>[i]``."""
    def items(name: str, default: list | None = None) -> list:
        v = axes.get(name, default)
        if v is None:
            raise ConfigError(f"{r.path}: {where}.{name}: missing, expected a non-empty list")
        v = v if isinstance(v, list) else [v]
        if not v:
            raise r.fail(f"{where}.{name}", v, "a non-empty list")
        return v

    for k in axes:
        if k not in _SECTIONS["axes"]:
            raise ConfigError(f"{r.path}: {where}.{k}: unknown key, expected one of "
                              f"{', '.join(sorted(_SECTIONS['axes']))}")
    methods = known_methods()
    meth = []
    for i, m in enumerate(items("method")):
        if m not in methods:
            raise r.fail(f"{where}.method[{i}]", m, f"one of {', '.join(methods)}")
        meth.append(m)
    bits = {}
    for name in ("weight_bits", "act_bits"):
        bits[name] = (None,) if axes.get(name) is None else tuple(dict.fromkeys(
            r.int_(f"{where}.{name}[{i}]", b, 1, MAX_BITS) for i, b in enumerate(items(name))))
    networks = tuple(dict.fromkeys(_network(r, f"{where}.network[{i}]", v)
                                   for i, v in enumerate(items("network", ["tfc"]))))
    folds = tuple(dict.fromkeys(_check_fold(r, f"{where}.fold[{i}]", f, networks, n_in, n_classes)
                                for i, f in enumerate(items("fold", ["auto"]))))
    targets = []
    for i, t in enumerate(items("target", ["ice40"])):
        targets.append(r.choice(f"{where}.target[{i}]", t, Target))
    return Grid(tuple(dict.fromkeys(meth)), bits["weight_bits"], bits["act_bits"], networks, folds,
                tuple(dict.fromkeys(targets)))


def _contained_out(r: _Reader, out: str) -> Path:
    """``sweep.out`` resolved against the config's directory; an absolute path or one escaping that
    directory (``../``, a symlink) is refused: a config file must not pick where files go elsewhere."""
    base = r.path.parent.resolve()
    p = Path(out).expanduser()
    resolved = (base / p).resolve()
    if p.is_absolute() or not resolved.is_relative_to(base):
        shown = str(base) if len(str(base)) <= 80 else "..." + str(base)[-77:]
        raise r.fail("sweep.out", out, f"a directory inside {shown} (the config's directory); "
                     "pass --out to write elsewhere")
    return resolved


def load_sweep_config(path: str | Path, out_given: bool = False) -> SweepConfig:
    """Read and validate a sweep TOML file; nothing is trained or built here.

    ``out_given``: the command line names the output directory, so ``sweep.out`` is neither used
    nor checked (otherwise it must stay inside the config's directory)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise ConfigError(f"{clip(str(path), 120)}: cannot read the sweep config "
                          f"({clip(getattr(e, 'strerror', None) or str(e), 80)})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: more than {MAX_CONFIG_BYTES} bytes, expected a sweep config of a few lines")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:  # e.g. saved as UTF-16
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}), expected a UTF-8 TOML file") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({clip(str(e), 120)})") from None
    except (RecursionError, ValueError) as e:  # deeply nested arrays; integers of thousands of digits
        raise ConfigError(f"{path}: not valid TOML ({type(e).__name__}: {clip(str(e), 80)})") from None
    r = _Reader(path, doc)
    _check_keys(r)

    ds = r.get("sweep", "dataset", "digits")
    if not isinstance(ds, str) or not ds:
        raise r.fail("sweep.dataset", ds, "'digits' or a path to an MNIST .npz / IDX directory")
    if ds != "digits":
        p = Path(ds).expanduser()
        ds = str((p if p.is_absolute() else path.parent / p).resolve())
    try:
        data = load_dataset(ds)
    except DataError as e:
        raise ConfigError(f"{path}: sweep.dataset: {e}") from None

    if "seed" in doc.get("sweep", {}) and "seeds" in doc.get("sweep", {}):
        raise r.fail("sweep.seed", r.get("sweep", "seed"), "either sweep.seed or sweep.seeds, not both")
    seeds_raw = r.list_("sweep", "seeds" if "seeds" in doc.get("sweep", {}) else "seed", [0])
    key_s = "sweep.seeds" if "seeds" in doc.get("sweep", {}) else "sweep.seed"
    if len(seeds_raw) > MAX_SEEDS:
        raise r.fail(key_s, f"<{len(seeds_raw)} seeds>", f"at most {MAX_SEEDS} seeds")
    seeds = tuple(dict.fromkeys(r.int_(f"{key_s}[{i}]", s, 0, 2**32 - 1) for i, s in enumerate(seeds_raw)))
    epochs = r.get("sweep", "epochs")
    epochs = None if epochs is None else r.int_("sweep.epochs", epochs, 1, MAX_EPOCHS)
    sim_images = r.int_("sweep.sim_images", r.get("sweep", "sim_images", 100), 1, len(data.x_test))
    pnr = r.get("sweep", "pnr", True)
    if not isinstance(pnr, bool):
        raise r.fail("sweep.pnr", pnr, "true or false")
    popcount = r.choice("sweep.popcount", r.get("sweep", "popcount", "tree"), Popcount)
    activity_images = r.int_("sweep.activity_images", r.get("sweep", "activity_images", 16), 0,
                             min(ACTIVITY_DEPTH, len(data.x_test)))
    synthesize = r.choice("sweep.synthesize", r.get("sweep", "synthesize", "all"), Synthesize)
    margin = r.get("sweep", "prescreen_margin", 0.25)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        raise r.fail("sweep.prescreen_margin", margin, "a number in [0, 1)")
    out = r.get("sweep", "out")
    if out is not None and (not isinstance(out, str) or not out or "\0" in out):
        raise r.fail("sweep.out", out, "a directory path")
    out_dir = None if out is None or out_given else _contained_out(r, out)

    n_in = int(np.prod(data.image_shape))
    base = doc.get("axes", {})
    tables = doc.get("grid", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise r.fail("grid", tables, "[[grid]] tables")
    if len(tables) > MAX_POINTS:
        raise r.fail("grid", f"<{len(tables)} tables>", f"at most {MAX_POINTS} [[grid]] tables")
    if tables:
        grids = tuple(_grid(r, {**base, **t}, f"grid[{i}]", n_in, data.n_classes) for i, t in enumerate(tables))
    else:
        grids = (_grid(r, base, "axes", n_in, data.n_classes),)
    size = sum(len(seeds) * len(g.networks) * len(g.methods) * len(g.weight_bits) * len(g.act_bits)
               * len(g.folds) * len(g.targets) for g in grids)
    if size > MAX_POINTS:  # before the product is expanded
        raise ConfigError(f"{path}: axes: the grid has {size} design points, expected at most {MAX_POINTS}")
    jobs = r.int_("parallel.jobs", r.get("parallel", "jobs", 0), 0, MAX_JOBS)
    dask = r.get("parallel", "dask")
    if dask is not None and dask not in TOML_DASK:
        raise r.fail("parallel.dask", dask, f"one of {', '.join(map(repr, TOML_DASK))}; a remote Dask scheduler "
                     "runs pickled code, so its address is accepted only from the command line (--dask)")
    cfg = SweepConfig(path, ds, seeds, epochs, sim_images, pnr, popcount, out_dir,
                      grids, jobs, dask, data.image_shape, data.n_classes, doc, activity_images, synthesize,
                      float(margin))
    pts, skipped = cfg.points()
    if not pts:
        raise ConfigError(f"{path}: axes: no valid design point, expected at least one method x weight_bits "
                          f"x act_bits combination a method trains (e.g. {skipped[0]['reason']})")
    return cfg
