"""The hardware side of each IR kind: one :class:`LaneSpec` per :class:`~quantmodels.ir.Kind`.

A kind's lanes are what one PE computes from a SIMD chunk of inputs and the matching weight ROM
slice in one step; :class:`hw.mvu.MatrixVectorCore` asks the spec, never the kind's name. The
spec also says how a weight is coded in the ROM and how many cycles (bit planes) a chunk takes.
Semantics (ranges, golden arithmetic) stay in :mod:`quantmodels.ir.kinds`; this table must
cover every kind (checked at import and by tests).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from amaranth.hdl import Module, Value

from quantmodels.ir import Kind, Layer, as_kind, kind_spec

from .arith import (accumulate_lanes, bit_plane_popcount, lut_product_lanes, lut_product_stages, mac_products,
                    shift_add_lanes,
                    shift_code_width, xnor_popcount)


@dataclass(frozen=True)
class LaneContext:
    """What a lane builder may use besides the chunk and the weights."""

    popcount: str  #: popcount style (hw.arith.POPCOUNT_STYLES)
    plane_a: Value  #: bit_serial: the activation bit plane of this step
    plane_b: Value  #: bit_serial: the weight bit plane of this step
    tree_every: int = 0  #: register the adder tree every this many levels (0: combinational)
    product_reg: bool = False  #: register the lane products before the tree (LaneSpec.product_stage)
    mem_style: str = "auto"  #: hw.memstyle style of a lane's own memories (lut_product's product ROMs)


#: (m, chunk, weight slice, layer, simd, weight code bits, ctx, name) -> the PE's partial sum
LaneBuilder = Callable[[Module, Value, Value, Layer, int, int, LaneContext, str], Value]


def _twos_complement_bits(layer: Layer) -> int:
    return layer.weight_bits


def _twos_complement(layer: Layer, v: int) -> int:
    return int(v) & ((1 << layer.weight_bits) - 1)


def _stored_bits(layer: Layer) -> int:
    return kind_spec(layer.kind).stored_bits(layer)


def _ternary_code(layer: Layer, v: int) -> int:
    """1-bit code (no zero weights): the sign bit, 1 = -1; else 2-bit two's complement."""
    return int(v < 0) if _stored_bits(layer) == 1 else _twos_complement(layer, v)


def _shift_code_bits(layer: Layer) -> int:
    return shift_code_width(layer.max_exponent)[1]


def _shift_code(layer: Layer, v: int) -> int:
    """{exponent, nonzero, sign}: the barrel shifter's amount, then whether and how to add."""
    eb, _ = shift_code_width(layer.max_exponent)
    if v == 0:
        return 0
    return (abs(int(v)).bit_length() - 1) | (1 << eb) | ((1 << (eb + 1)) if v < 0 else 0)


#: Families whose synthesis gets a DSP multiplier's product wrong when lowbit registers it: Yosys 0.70's
#: ``ice40_dsp`` takes one registered product of an adder-tree pair as the other SB_MAC16's C/D input
#: register and leaves that input undriven, so half the products vanish from the netlist (found by the
#: estimator calibration: 4 SB_MAC16 for 8 lanes; a gate-level simulation of synth_ice40 -dsp against the
#: RTL mismatches on every cycle; unregistered products, or the tree registered, simulate exact:
#: tests/test_dsp_netlist.py). There the product feeds the tree unregistered (SB_MAC16's own
#: multiplier timing; 27 instead of 98 LUT4 on the 8-lane probe, benchmarks/mac_product_register.py).
UNREGISTERED_DSP_PRODUCT_FAMILIES = frozenset({"ice40"})


def _no_product_stage(layer: Layer, mem_style: str) -> int:
    return 0


def _one_product_stage(layer: Layer, mem_style: str) -> int:
    return 1


@dataclass(frozen=True)
class LaneSpec:
    """How the hardware computes one kind (see the module docstring)."""

    build: LaneBuilder
    code_bits: Callable[[Layer], int] = _twos_complement_bits  #: ROM bits per weight
    encode: Callable[[Layer, int], int] = _twos_complement  #: ROM code of one weight value
    serial: bool = False  #: one (activation bit, weight bit) plane pair per cycle
    #: register stages of the product with a target clock, (layer, memory style) -> stages: one when
    #: the product is more than one LUT level (negation, shift, table, multiplier, a bit-serial plane
    #: select), two for lut_product's block-RAM product ROM (its read, then a register), none for an
    #: XNOR, which merges into the popcount's first LUT (hw.pipeline.core_stages)
    product_stages_of: Callable[[Layer, str], int] = _no_product_stage
    #: the product is a multiplier synthesis may put in a DSP block (UNREGISTERED_DSP_PRODUCT_FAMILIES)
    dsp_product: bool = False

    @property
    def product_stage(self) -> bool:
        """Whether a target clock registers this kind's products at all."""
        return self.product_stages_of is not _no_product_stage

    def product_stages(self, layer: Layer, mem_style: str = "auto", family: str | None = None) -> int:
        """Register stages between the lane inputs and the adder tree when a target clock asks for them
        (``family``: the FPGA family the design is built for; None = no family rule)."""
        if self.dsp_product and family in UNREGISTERED_DSP_PRODUCT_FAMILIES:
            return 0
        return self.product_stages_of(layer, mem_style)

    def planes(self, layer: Layer) -> int:
        """Cycles per SIMD chunk: input_bits x weight_bits plane pairs when serial, else 1."""
        return layer.input_bits * layer.weight_bits if self.serial else 1


LANES: dict[Kind, LaneSpec] = {
    Kind.XNOR_POPCOUNT: LaneSpec(lambda m, x, w, L, simd, wb, ctx, name: xnor_popcount(m, x, w, simd, name, ctx.popcount,
                                                                                        ctx.tree_every)),
    Kind.MAC: LaneSpec(lambda m, x, w, L, simd, wb, ctx, name: mac_products(m, x, w, simd, L.input_bits, wb, name,
                                                                            ctx.tree_every, ctx.product_reg),
                       product_stages_of=_one_product_stage, dsp_product=True),
    Kind.ACCUMULATE: LaneSpec(
        lambda m, x, w, L, simd, wb, ctx, name: accumulate_lanes(m, x, w, simd, L.input_bits, name, wb,
                                                                 ctx.tree_every, ctx.product_reg),
        code_bits=_stored_bits, encode=_ternary_code, product_stages_of=_one_product_stage),
    Kind.SHIFT_ADD: LaneSpec(
        lambda m, x, w, L, simd, wb, ctx, name: shift_add_lanes(m, x, w, simd, L.input_bits, L.max_exponent, name,
                                                                 ctx.tree_every, ctx.product_reg),
        code_bits=_shift_code_bits, encode=_shift_code, product_stages_of=_one_product_stage),
    Kind.BIT_SERIAL: LaneSpec(
        lambda m, x, w, L, simd, wb, ctx, name: bit_plane_popcount(m, x, w, simd, L.input_bits, wb, ctx.plane_a,
                                                                    ctx.plane_b, name, ctx.popcount, ctx.product_reg),
        serial=True, product_stages_of=_one_product_stage),
    Kind.LUT_PRODUCT: LaneSpec(
        lambda m, x, w, L, simd, wb, ctx, name: lut_product_lanes(m, x, w, simd, L.input_bits, wb, L.products, name,
                                                                  ctx.tree_every, ctx.product_reg, ctx.mem_style),
        product_stages_of=lambda L, style: lut_product_stages(L.products, L.weight_bits, L.input_bits, style)),
}
assert tuple(LANES) == tuple(Kind), "every Kind needs exactly one LaneSpec"


def lane_spec(kind: Kind | str) -> LaneSpec:
    """THE lookup of a kind's hardware; an unknown kind raises IRError here."""
    return LANES[as_kind(kind)]
