"""Modelled energy per inference from operation counts x the cited per-op table.

Everything in this module is a MODEL (labelled so in every output): operation counts come
from the IR, energies from :mod:`reports.energy_constants`. Measured figures (synthesis,
simulation) live elsewhere and are never mixed in here.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from quantmodels.bitwidth import range_bits
from quantmodels.ir import IRModel, Layer, OpCost, OpCount, kind_spec

from .energy_constants import HOROWITZ_PJ as H
from .memory import layer_memory, model_memory


def add_pj(bits: int) -> float:
    """Energy of an n-bit integer add (derived rule ``int_add_n``)."""
    pts = [(8, H["int_add_8"]), (16, H["int_add_16"]), (32, H["int_add_32"])]
    if bits <= 8:
        return H["int_add_8"] * bits / 8
    for (b0, e0), (b1, e1) in zip(pts, pts[1:]):
        if bits <= b1:
            return e0 + (e1 - e0) * (bits - b0) / (b1 - b0)
    return H["int_add_32"] * bits / 32


def mult_pj(n: int, m: int) -> float:
    """Energy of an n x m-bit integer multiply (derived rule ``int_mult_nxm``)."""
    return H["int_mult_8"] * n * m / 64


def sram_bit_pj(total_bits: int) -> float:
    """Energy to read one bit from an SRAM holding ``total_bits`` (derived rule ``sram_read_bit``)."""
    kb = total_bits / 8 / 1024
    for size_kb, key in ((8, "sram_read_64b_8KB"), (32, "sram_read_64b_32KB"), (1024, "sram_read_64b_1MB")):
        if kb <= size_kb:
            return H[key] / 64
    return H["sram_read_64b_1MB"] / 64 * math.sqrt(kb / 1024)


@dataclass
class LayerEnergy:
    """Modelled energy of one layer for one inference (pJ)."""

    name: str
    kind: str
    compute_pj: float
    memory_pj: float
    ops: dict

    @property
    def total_pj(self) -> float:
        return self.compute_pj + self.memory_pj


def acc_bits(layer: Layer) -> int:
    """Width of the adds that accumulate ``layer`` (its logit range, unsigned when non-negative)."""
    return range_bits(*layer.logit_range())


def op_pj(op: OpCount) -> float:
    """Modelled energy of ``op.count`` operations of one type (the kind's op counts, priced here)."""
    if op.cost == OpCost.BIT:  # rules xnor_1 / popcount_n / bit_plane: one bit-slice of an 8-bit add
        return op.count * H["int_add_8"] / 8
    if op.cost == OpCost.ADD:
        return op.count * add_pj(op.bits[0])
    if op.cost == OpCost.MULT:
        return op.count * mult_pj(*op.bits)
    return 0.0  # OpCost.FREE: rule skip_zero_weights


def layer_energy(layer: Layer, sram_bit: float) -> LayerEnergy:
    """Operation counts and modelled energy for ``layer`` (per inference)."""
    acc = acc_bits(layer)
    counts = kind_spec(layer.kind).ops(layer, acc)
    ops: dict[str, int] = {op.label: op.count for op in counts}
    compute = sum(op_pj(op) for op in counts)
    n_out = layer.positions * layer.rows  # output-stage evaluations (before pooling)
    if layer.output == "threshold":
        ops["threshold_compares"] = n_out * layer.n_thresholds
        compute += n_out * layer.n_thresholds * add_pj(acc)
    elif layer.output == "requantize":
        ops["requantize_adds"] = n_out
        compute += n_out * add_pj(acc)
    else:
        ops["argmax_compares"] = n_out - 1
        compute += (n_out - 1) * add_pj(acc)
    mem = layer_memory(layer)
    memory = mem.total_bits * sram_bit
    return LayerEnergy(layer.name, layer.kind, compute, memory, ops)


def model_energy(model: IRModel) -> list[LayerEnergy]:
    """Per-layer modelled energy; every stored parameter bit is read once per inference."""
    sram_bit = sram_bit_pj(model_memory(model).total_bits)
    return [layer_energy(L, sram_bit) for L in model.layers]


def float32_energy(model: IRModel) -> float:
    """Modelled energy (pJ) of the same layer shapes in float32 (fp mult + fp add per MAC,
    32-bit weights read from SRAM): the reference every report compares against."""
    n_mac = sum(L.macs for L in model.layers)
    n_param = sum(L.rows * L.cols + L.rows for L in model.layers)
    bits = 32 * n_param
    return n_mac * (H["fp_mult_32"] + H["fp_add_32"]) + bits * sram_bit_pj(bits)


def energy_table(model: IRModel) -> list[dict]:
    """Rows for reports: one per layer, modelled figures labelled as such."""
    return [{"layer": e.name, "kind": e.kind, "model_compute_pj": e.compute_pj,
             "model_memory_pj": e.memory_pj, "model_total_pj": e.total_pj, **e.ops}
            for e in model_energy(model)]


def as_dict(e: LayerEnergy) -> dict:
    return asdict(e)
