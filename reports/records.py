"""The records of one reported design: what goes in (:class:`DesignInput`) and every figure that
comes out (:class:`DesignResult`), as the typed records the tools and models returned.
:mod:`reports.report` fills them, :mod:`reports.tables` flattens them into columns."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quantmodels.ir import IRModel
from sim.harness import HarnessPorts
from sim.regression import RegressionResult

from .activity import ActivityResult
from .energy import LayerEnergy
from .estimator import ModelEstimate
from .memory import ModelMemory
from .pnr import PnrFamily, PnrResult
from .synth import ModuleArea, SynthResult, Target


@dataclass(frozen=True)
class DesignInput:
    """One generated design to report on."""

    label: str  #: e.g. "W1A1 xnor_popcount"
    model: IRModel
    verilog: Path
    ports: HarnessPorts
    cycles_per_image: int  #: initiation interval from the hardware generator
    latency_cycles: int | None = None
    sim: RegressionResult | None = None  #: the bit-exactness regression, if one was run
    layer_cycles: list[int] | None = None  #: compute cycles per layer (hw.json layer_cycles)
    foldings: list | None = None  #: hw.folding.Folding per layer: enables the area estimator columns
    activity_samples: np.ndarray | None = None  #: raw uint8 images for the activity-energy run
    #: the generator's record of the design (hw.verilog.VerilogDesign: memory style, target clock,
    #: popcount): the area estimate models the network built with these; None = defaults, layers only
    build: object | None = None


@dataclass(frozen=True)
class StepFailure:
    """A tool step that failed on one design: recorded as a status, the report is still written."""

    step: str  #: "synthesis", "per-layer area", "place-and-route" or "activity"
    where: str  #: the target or family it ran for ("" for activity)
    message: str  #: the tool's error, one line
    log: str | None = None  #: file holding the tool's whole output, linked from the report

    def to_json(self) -> dict:
        return {"step": self.step, "where": self.where, "message": self.message, "log": self.log}


@dataclass(frozen=True)
class Timing:
    """Place-and-route of one family and the throughput it implies (MEASURED fmax)."""

    family: PnrFamily
    pnr: PnrResult
    frames_per_s: float | None  #: fmax / cycles per image
    latency_us: float | None  #: latency cycles / fmax


@dataclass(frozen=True)
class DesignResult:
    """Every figure of one design, as the records the tools and models returned.

    Tables are made from it by :mod:`reports.tables` (the one place column names exist)."""

    design: DesignInput
    synthesized: bool  #: False: a pre-screened point, estimated only
    memory: ModelMemory  #: counted from the IR
    energy: tuple[LayerEnergy, ...]  #: MODEL: op-count energy per layer
    float32_energy_pj: float  #: MODEL: the same layer shapes in float32
    synth: dict[Target, SynthResult] = field(default_factory=dict)
    layer_area: dict[Target, dict[str, ModuleArea]] = field(default_factory=dict)  #: hierarchy kept
    estimates: dict[Target, ModelEstimate] = field(default_factory=dict)  #: calibrated targets only
    timing: dict[PnrFamily, Timing] = field(default_factory=dict)
    activity: ActivityResult | None = None  #: with activity samples only
    failures: tuple[StepFailure, ...] = ()  #: tool steps that failed (their figures are absent)
    pnr_requested: bool = True  #: False: place-and-route was switched off (--no-pnr)
