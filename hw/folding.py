"""Folding: how many output channels (PE) and input elements (SIMD) a layer handles per cycle.

A layer of ``rows`` outputs and ``cols`` inputs takes (rows/PE)*(cols/SIMD) cycles per
vector, times the bit planes of a bit-serial layer, times the output positions of a conv
layer (its window generator streams positions back to back into the same datapath). Foldings are validated where they are made, so an impossible one never reaches
the generators.

Any PE <= rows and SIMD <= cols is legal: a PE or SIMD that does not divide its dimension pads
the weight matrix (FINN pads 784 inputs to 832 for SIMD 64) with neutral weights (a term of 0
on the zero-padded inputs, :attr:`quantmodels.ir.KindSpec.pad_weight`) and rows whose outputs
are dropped; the cycle count uses the padded sizes (ceil(rows/PE) * ceil(cols/SIMD)).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from quantmodels.errors import ConfigError, clip
from quantmodels.ir import IRModel, Layer

from .lanes import lane_spec

#: Lanes (PE*SIMD) the automatic folding allows the most expensive layer. The same budget
#: for every kind keeps a binarized net and its int8 baseline at the same throughput.
AUTO_LANE_BUDGET = 256
#: Cycles a whole-image (conv) unit adds to its compute cycles per image (accept, 3 pipeline
#: stages, hand-over): its initiation interval is Folding.cycles + this. A streaming dense
#: unit adds none (hw.mvu); throughput budgets keep this margin for every layer.
PIPELINE_CYCLES = 5
DEFAULT_CLOCK_MHZ = 100.0


@dataclass(frozen=True)
class Folding:
    """PE x SIMD folding of one layer (validated on construction)."""

    name: str  #: layer name, for messages
    rows: int  #: weight-matrix rows: out_features (dense) or output channels (conv2d)
    cols: int  #: weight-matrix cols: in_features (dense) or kh*kw*C (conv2d)
    pe: int  #: output channels computed in parallel
    simd: int  #: input elements consumed per cycle
    planes: int = 1  #: bit_serial: (activation bit, weight bit) plane pairs per SIMD chunk
    positions: int = 1  #: conv2d: output positions, each one pass over the weight matrix

    def __post_init__(self) -> None:
        for fld in ("pe", "simd"):
            v = getattr(self, fld)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{self.name}: {fld}={v!r}, expected a positive integer")
        if self.pe > self.rows:
            raise ConfigError(f"{self.name}: pe={self.pe} exceeds out_features={self.rows}, expected 1..{self.rows}")
        if self.simd > self.cols:
            raise ConfigError(f"{self.name}: simd={self.simd} exceeds in_features={self.cols}, expected 1..{self.cols}")

    @property
    def row_folds(self) -> int:
        """ceil(rows / PE): the last fold is padded when PE does not divide rows."""
        return -(-self.rows // self.pe)

    @property
    def col_folds(self) -> int:
        """ceil(cols / SIMD): the last chunk is padded when SIMD does not divide cols."""
        return -(-self.cols // self.simd)

    @property
    def rows_padded(self) -> int:
        """Weight-matrix rows the hardware computes (rows + padding)."""
        return self.row_folds * self.pe

    @property
    def cols_padded(self) -> int:
        """Weight-matrix columns the hardware reads (cols + padding)."""
        return self.col_folds * self.simd

    @property
    def cycles(self) -> int:
        """Compute cycles per input vector."""
        return self.positions * self.row_folds * self.col_folds * self.planes

    @property
    def lanes(self) -> int:
        return self.pe * self.simd

    def __str__(self) -> str:
        return f"{self.name}:pe={self.pe},simd={self.simd}"


def planes_for(layer: Layer) -> int:
    """Cycles per SIMD chunk: input_bits*weight_bits for a serial kind (bit_serial), 1 for every parallel one."""
    return lane_spec(layer.kind).planes(layer)


def _make(layer: Layer, pe: int, simd: int) -> Folding:
    return Folding(layer.name, layer.rows, layer.cols, pe, simd, planes_for(layer), layer.positions)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _fastest_within(layer: Layer, lanes: int) -> Folding:
    """Fewest cycles with pe*simd <= lanes (ties: wider SIMD, i.e. fewer accumulators)."""
    best = None
    for pe in _divisors(layer.rows):
        for simd in _divisors(layer.cols):
            if pe * simd > lanes:
                continue
            key = ((layer.rows // pe) * (layer.cols // simd), -simd)
            if best is None or key < best[0]:
                best = (key, pe, simd)
    return _make(layer, best[1], best[2])


def _cheapest_within(layer: Layer, cycles: int) -> Folding:
    """Fewest lanes reaching <= cycles (ties: wider SIMD)."""
    best = None
    for pe in _divisors(layer.rows):
        for simd in _divisors(layer.cols):
            c = layer.positions * (layer.rows // pe) * (layer.cols // simd) * planes_for(layer)
            if c > cycles:
                continue
            key = (pe * simd, c, -simd)
            if best is None or key < best[0]:
                best = (key, pe, simd)
    if best is None:  # a bit-serial layer cannot be as fast: take its fastest folding
        return _fastest_within(layer, layer.rows * layer.cols)
    return _make(layer, best[1], best[2])


def floor_cycles(layer: Layer) -> int:
    """Cycles of the fully parallel folding: one pass per conv position (times the bit planes)."""
    return layer.positions * planes_for(layer)


def auto_folding(model: IRModel, lanes: int = AUTO_LANE_BUDGET) -> list[Folding]:
    """Throughput-balanced folding: the largest layer gets ``lanes`` lanes at most; every other
    layer gets the fewest lanes that keep it no slower than that layer. A layer that cannot keep
    that pace even fully parallel (a conv layer with many positions, a bit-serial one) sets the
    pace instead, so no layer spends lanes on a frame rate the network cannot reach."""
    big = max(model.layers, key=lambda L: L.macs)
    target = max([_fastest_within(big, lanes).cycles] + [floor_cycles(L) for L in model.layers])
    return [_cheapest_within(L, target) for L in model.layers]


def folding_for_throughput(model: IRModel, frames_per_s: float,
                           clock_mhz: float = DEFAULT_CLOCK_MHZ) -> list[Folding]:
    """Fewest lanes per layer that sustain ``frames_per_s`` at ``clock_mhz`` (FINN-style balancing)."""
    if frames_per_s <= 0 or clock_mhz <= 0:
        raise ConfigError(f"--fold: fps={frames_per_s:g}, clock_mhz={clock_mhz:g}: both must be > 0")
    budget = int(clock_mhz * 1e6 // frames_per_s) - PIPELINE_CYCLES
    return _within_budget(model, budget, lambda need: (
        f"needs at least {need + PIPELINE_CYCLES} cycles/frame (fully parallel), {frames_per_s:g} frames/s at "
        f"{clock_mhz:g} MHz allows {budget + PIPELINE_CYCLES}"))


def folding_for_cycles(model: IRModel, cycles: int) -> list[Folding]:
    """Fewest lanes per layer with at most ``cycles`` steps per image each (ties: wider SIMD, so fewer
    PEs and fewer per-PE accumulators, threshold compares and ROM reads)."""
    if cycles < 1:
        raise ConfigError(f"--fold: cycles={cycles}: expected a whole number >= 1")
    return _within_budget(model, cycles, lambda need: f"needs at least {need} cycles/image (fully parallel), "
                                                       f"cycles={cycles} asked")


def _within_budget(model: IRModel, budget: int, why) -> list[Folding]:
    """:func:`_cheapest_within` for every layer; a layer slower than ``budget`` even fully parallel is
    refused with ``why(its fastest cycles)``."""
    out = []
    for L in model.layers:
        best = _fastest_within(L, L.rows * L.cols)
        if best.cycles > budget:
            raise ConfigError(f"{L.name}: {why(best.cycles)}")
        out.append(_cheapest_within(L, budget))
    return out


_THROUGHPUT = re.compile(r"^\s*fps\s*=\s*([0-9.eE+]+)\s*(?:,\s*clock_mhz\s*=\s*([0-9.eE+]+)\s*)?$")
_CYCLES = re.compile(r"^\s*cycles\s*=\s*(\d{1,9})\s*$")
_FIELD = re.compile(r"^\s*(pe|simd)\s*=\s*(\d{1,9})\s*$")
#: Largest clock a --fold spec may name (MHz): beyond any FPGA, and keeps cycle budgets finite.
MAX_CLOCK_MHZ = 1e5


def _parse_fields(text: str, where: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in text.split(","):
        m = _FIELD.match(part)
        if not m:
            raise ConfigError(f"--fold: {where}{clip(part.strip())} is not 'pe=N' or 'simd=N'")
        if m.group(1) in out:  # 'pe=2,pe=4': refuse rather than let the last one win silently
            raise ConfigError(f"--fold: {where}{m.group(1)} given twice, expected each of pe, simd at most once")
        out[m.group(1)] = int(m.group(2))
    return out


def _number(text: str, name: str, spec: str, hi: float) -> float:
    """A finite, positive number from a throughput spec (no inf/nan: they would reach int())."""
    shown = text if len(text) <= 30 else text[:27] + "..."  # digits, '.', 'e' and '+' only (the regex)
    try:
        v = float(text)
    except ValueError:
        raise ConfigError(f"--fold: {clip(spec)}: {name}={shown}, expected a number") from None
    if not (math.isfinite(v) and 0 < v <= hi):
        raise ConfigError(f"--fold: {clip(spec)}: {name}={shown}, expected a number in (0, {hi:g}]")
    return v


def parse_folding(model: IRModel, spec: str | None) -> list[Folding]:
    """Foldings for every layer from a spec string.

    ``None`` or ``"auto"``: :func:`auto_folding`. ``"pe=16,simd=49"``: the same for every layer
    (a missing field keeps the automatic choice). ``"fc0:pe=16,simd=49;fc3:pe=10"``: per layer.
    ``"fps=1e6,clock_mhz=100"``: :func:`folding_for_throughput` (clock defaults to 100 MHz).
    ``"cycles=256"``: :func:`folding_for_cycles`.
    """
    if spec is not None and (m := _CYCLES.match(spec)):
        return folding_for_cycles(model, int(m.group(1)))
    if spec is not None and (m := _THROUGHPUT.match(spec)):
        clk = _number(m.group(2) or str(DEFAULT_CLOCK_MHZ), "clock_mhz", spec, MAX_CLOCK_MHZ)
        fps = _number(m.group(1), "fps", spec, clk * 1e6)  # above one frame per cycle nothing fits
        return folding_for_throughput(model, fps, clk)
    auto = auto_folding(model)
    if spec is None or spec.strip() in ("", "auto"):
        return auto
    names = [L.name for L in model.layers]
    per_layer: dict[str, dict[str, int]] = {}
    if ":" in spec:
        for item in spec.split(";"):
            if not item.strip():
                continue
            name, _, fields = item.partition(":")
            name = name.strip()
            if name not in names:
                known = ", ".join(names)
                known = known if len(known) <= 120 else known[:117] + "..."
                raise ConfigError(f"--fold: layer {clip(name)} not in the model (layers: {known})")
            if name in per_layer:  # two entries for one layer: refuse rather than resolve silently
                raise ConfigError(f"--fold: layer {name!r} given twice, expected one entry per layer")
            per_layer[name] = _parse_fields(fields, f"{name}: ")
    else:
        fields = _parse_fields(spec, "")
        per_layer = {n: fields for n in names}
    out = []
    for L, a in zip(model.layers, auto):
        f = per_layer.get(L.name, {})
        out.append(_make(L, f.get("pe", a.pe), f.get("simd", a.simd)))
    return out
