"""The flow's steps as functions: train a model, make its hardware, simulate it.

Both the CLI commands (:mod:`lowbit.flow`) and the sweep (:mod:`lowbit.sweep`) call these;
neither imports the other for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.folding import Folding, parse_folding
from hw.pipeline import DEFAULT_CLOCK_MHZ, NS_PER_LEVEL, levels_per_stage
from hw.verilog import VerilogDesign, generate_verilog
from quantmodels.arch import PRESETS as ARCH_PRESETS
from quantmodels.arch import Dense, parse_arch
from quantmodels.datasets import Dataset
from quantmodels.errors import ConfigError, clip
from quantmodels.ir import IRModel, save_model
from quantmodels.methods import REGISTRY
from quantmodels.train import TrainConfig, train
from sim.build import Simulator
from sim.harness import HarnessPorts
from sim.regression import RegressionResult, build_simulator, run_regression

#: MLP presets as hidden layer sizes (the FINN/Brevitas family), from quantmodels.arch.PRESETS.
PRESETS = {k: tuple(i.out for i in parse_arch(v)) for k, v in ARCH_PRESETS.items()
           if all(isinstance(i, Dense) for i in parse_arch(v))}
METHODS = tuple(REGISTRY)
#: Harness stimulus depth: fixed so the Verilator build is reused for any image count up to it.
SIM_DEPTH = 10000


@dataclass(frozen=True)
class Hardware:
    """A generated design and what the simulator and reports need from it."""

    design: VerilogDesign
    verilog: Path
    ports: HarnessPorts
    cycles_per_image: int
    latency_cycles: int | None
    foldings: list[Folding] | None = None  #: per layer


#: --clock-mhz words: the family's default target clock, or no target (no adder-tree stages).
CLOCK_WORDS = ("auto", "none")


def target_clock(spec: str | float | None, family: str = "ice40") -> float | None:
    """The target clock (MHz) a ``--clock-mhz`` value asks for on ``family``: ``auto`` (or None)
    is the family's default (hw.pipeline.DEFAULT_CLOCK_MHZ, issue 18's fmax targets), ``none`` no
    target; a number is checked against hw.pipeline's bound at once."""
    if family not in NS_PER_LEVEL:
        raise ConfigError(f"--family: {clip(family)}, expected one of {', '.join(NS_PER_LEVEL)}")
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "auto"):
        return DEFAULT_CLOCK_MHZ[family]
    if isinstance(spec, str) and spec.strip().lower() == "none":
        return None
    try:
        clock = float(spec)
    except ValueError:
        raise ConfigError(f"--clock-mhz: {clip(spec, 30)}, expected a clock in MHz, 'auto' (the family's "
                          f"default) or 'none' (no register stages)") from None
    levels_per_stage(clock, family)  # the bound lives there; refused here, before any work
    return clock


def make_hardware(model: IRModel, fold: str | None, out_dir: Path, popcount: str = "tree",
                  mem_style: str = "auto", clock_mhz: float | None = None, family: str = "ice40") -> Hardware:
    """Fold the model, generate Verilog into ``out_dir`` and describe its ports."""
    foldings = parse_folding(model, fold)
    d = generate_verilog(model, foldings, out_dir, popcount=popcount, mem_style=mem_style, clock_mhz=clock_mhz,
                         family=family)
    return Hardware(d, Path(d.verilog_path), HarnessPorts.of(d), int(d.cycles_per_image), d.latency_cycles,
                    foldings)


def simulate(model: IRModel, hwd: Hardware, samples: np.ndarray, labels: np.ndarray | None,
             stall_pct: int = 0, simulator: Simulator = Simulator.VERILATOR) -> RegressionResult:
    """Build (cached) and run the regression under ``simulator`` (Verilator or Icarus)."""
    depth = max(SIM_DEPTH, len(samples))
    print(f"  {simulator}: building {hwd.verilog.name} (cached by content hash) ...", flush=True)
    b = build_simulator(hwd.verilog, hwd.ports, depth=depth, simulator=simulator)
    print(f"  {simulator}: {'reused cached build' if b.cached else f'built in {b.seconds:.1f} s'}; "
          f"streaming {len(samples)} images ...", flush=True)
    return run_regression(b, model, samples, labels, stall_pct=stall_pct,
                          expected_cycles=hwd.cycles_per_image + (hwd.latency_cycles or 0))


def train_and_save(method: str, hidden: tuple[int, ...] | str, data: Dataset, data_source: str, out: Path,
                   seed: int, epochs: int | None = None, batch_size: int | None = None,
                   lr: float | None = None, progress: bool = True, name: str | None = None,
                   dropout: float | None = None, weight_bits: int | None = None, act_bits: int | None = None,
                   options: dict | None = None, optimizer: str = "adam", patience: int = 0,
                   checkpoint: Path | None = None, lr_schedule: str = "cosine",
                   input_bits: int | None = None) -> IRModel:
    """Train ``method`` on ``hidden`` (sizes, or an arch preset/token string), save the IR to ``out``."""
    kw = {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr, dropout_in=dropout,
                                dropout_hidden=dropout, weight_bits=weight_bits, act_bits=act_bits, input_bits=input_bits,
                                checkpoint_dir=None if checkpoint is None else str(checkpoint)).items()
          if v is not None}
    kw.update({"arch": hidden} if isinstance(hidden, str) else {"hidden": hidden})
    cfg = TrainConfig(method=method, seed=seed, progress=progress, options=options or {}, optimizer=optimizer,
                      lr_schedule=lr_schedule, patience=patience, **kw)
    res = train(cfg, data, name=name or out.name)
    model = res.model
    model.meta["data_source"] = data_source
    save_model(model, out)
    bits = f"W{cfg.weight_bits}A{cfg.act_bits} ({cfg.input_bits}-bit input pixels)"
    print(f"trained {method} {bits} {data.image_shape}->[{cfg.arch}]->{data.n_classes} on {data.name}: "
          f"float test accuracy {100 * res.float_test_accuracy:.2f}%, golden integer "
          f"{100 * res.golden_test_accuracy:.2f}%, agreement {100 * res.agreement:.2f}%, "
          f"{res.seconds:.1f} s (seed {seed})")
    print(f"IR model written to {out}/ (model.json + weights.npz)")
    return model
