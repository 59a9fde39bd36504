"""The area estimator's view of each IR kind: one :class:`KindCost` per :class:`~quantmodels.ir.Kind`.

For the estimator (:mod:`reports.estimator`, a MODEL) a kind is the width of one lane's term
entering the adder tree, the LUT work of its lanes (per lane, and per SIMD column shared by the
PEs), the per-PE work after the tree, and whether its lanes multiply (then DSP blocks may take
them). The logic-cost primitives those formulas use (LUTs of an n-input function or an n:1 mux
per FPGA family) are here too. The table must cover every kind (checked at import and by tests).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hw.folding import Folding
from quantmodels.bitwidth import signed_bits
from quantmodels.ir import Kind, Layer, as_kind

#: LUT inputs per family (a 2^k-entry table fits one LUT).
LUT_INPUTS = {"ice40": 4, "ecp5": 4, "xilinx": 6}


def fn_luts(n: int, fam: str) -> float:
    """LUTs of one arbitrary ``n``-input boolean function: one LUT up to k inputs, else 2^(n-k)
    LUTs (Shannon cofactors) joined by a mux tree; the mux levels are LUTs on ice40, free
    wide-function muxes up to 6 inputs on ecp5 (PFUMX, L6MUX21) and 8 on xilinx (MUXF7/F8)."""
    k = LUT_INPUTS.get(fam, 4)
    if n <= 0:
        return 0.0
    if n <= k:
        return 1.0
    leaves = 2 ** (n - k)
    free = {"ecp5": 6, "xilinx": 8}.get(fam, k)  # inputs covered by dedicated mux cells
    return leaves + (2 ** (n - free) - 1 if n > free else 0)


def mux_luts(n: int, fam: str) -> float:
    """LUTs of an n:1 multiplexer: n-1 2:1 muxes in LUT4s on ice40; LUT4 pairs joined by the
    free PFUMX / L6MUX21 on ecp5 (MUXF7/F8 with LUT6 on xilinx)."""
    if n <= 1:
        return 0.0
    if fam == "ecp5":
        return max(1.0, n / 2)
    if fam == "xilinx":
        return max(1.0, n / 4)
    return n - 1.0


def shifter_muxes(in_bits: int, max_exp: int) -> int:
    """2:1 mux inputs of a barrel shifter x << e (e in 0..max_exp): output bit j selects among
    the shifts s with 0 <= j - s < in_bits."""
    return sum(max(0, sum(1 for s in range(max_exp + 1) if 0 <= j - s < in_bits) - 1)
               for j in range(in_bits + max_exp))


@functools.cache
def free_functions(n: int) -> frozenset[bytes]:
    """Truth tables (n entries, as uint8 bytes) that need no logic: the constants and each
    address bit or its complement."""
    out = {np.zeros(n, np.uint8).tobytes(), np.ones(n, np.uint8).tobytes()}
    for a in range(max(1, (n - 1).bit_length())):
        col = ((np.arange(n) >> a) & 1).astype(np.uint8)
        out |= {col.tobytes(), (1 - col).tobytes()}
    return frozenset(out)


def product_functions(layer: Layer) -> tuple[int, int]:
    """lut_product table as logic: (distinct non-trivial functions of the activation code over all
    weight codes and product bits, product bits that are not constant). Sign-extension bits of
    small products repeat one function, so they are counted once."""
    tw = term_width(layer)
    tbl = np.asarray(layer.products, dtype=np.int64) & ((1 << tw) - 1)  # two's complement, tw bits
    bits = (tbl[:, :, None] >> np.arange(tw)) & 1  # (weight code, activation code, bit)
    funcs = {bits[c, :, j].astype(np.uint8).tobytes() for c in range(bits.shape[0]) for j in range(tw)}
    live = int(np.sum(bits.reshape(-1, tw).min(axis=0) != bits.reshape(-1, tw).max(axis=0)))
    return len(funcs - free_functions(bits.shape[1])), live


# ----------------------------------------------------------------------------- per kind


def _lut_term_width(L: Layer) -> int:
    p = L.products
    return signed_bits(min(int(p.min()), 0), max(int(p.max()), 0))


def _lut_lanes(L: Layer, fold: Folding, fam: str, dsp: bool) -> tuple[float, float]:
    ib, wb = L.input_bits, L.weight_bits
    if ib + wb <= LUT_INPUTS.get(fam, 4):  # the whole product table bit fits one LUT
        return float(term_width(L)), 0.0
    # Shannon split on the weight code: per code and product bit a function of the activation
    # (shared by the PEs that see the same activation; constant, identity and duplicate
    # functions cost nothing) and, per lane and live product bit, a 2^wb:1 mux on the weight
    funcs, live = product_functions(L)
    return float(live * (2 ** wb - 1)), float(funcs * fn_luts(ib, fam))


def _acc_code_bits(L: Layer) -> int:
    """Bits of an accumulate weight code: 1 (the sign) when the layer has no zero weights, else 2."""
    from hw.mvu import weight_code_bits

    return weight_code_bits(L)


def _serial_post(L: Layer, fold: Folding) -> float:
    """bit_serial shifts its plane popcount by a_bit + w_bit (a barrel shifter) and negates the
    weight's MSB plane."""
    pcw = max(1, fold.simd.bit_length())
    ib, wb = L.input_bits, L.weight_bits
    return float(shifter_muxes(pcw, ib + wb - 2) + pcw + ib + wb + 1)


def _mac_lanes(L: Layer, fold: Folding, fam: str, dsp: bool) -> tuple[float, float]:
    """A multiplier in LUTs: its ib x wb partial-product bits summed through log2(max(ib, wb)) adder
    levels (calibration: an 8x8 lane costs about 6x a 4x4 one on ecp5 and xilinx, not 4x); 0 in a DSP."""
    ib, wb = L.input_bits, L.weight_bits
    return (0.0 if dsp else float(ib * wb * max(1.0, math.log2(max(ib, wb))))), 0.0


@dataclass(frozen=True)
class KindCost:
    """The estimator's structural features of one kind (see the module docstring)."""

    term_width: Callable[[Layer], int]  #: bits of one lane's term entering the adder tree
    lanes: Callable[[Layer, Folding, str, bool], tuple[float, float]]  #: (per lane, per SIMD column) LUTs
    post: Callable[[Layer, Folding], float] = lambda L, fold: 0.0  #: per-PE LUT work after the tree
    multiplier: bool = False  #: lanes multiply: on DSP targets they may become DSP blocks
    #: the lanes' terms are signed products (a multiplier's, a product table's), which the adder tree sums
    #: sign-extended to its width (reports.estimator.tree_segments ``signed``)
    signed_products: bool = False


COSTS: dict[Kind, KindCost] = {
    Kind.XNOR_POPCOUNT: KindCost(lambda L: 1, lambda L, fold, fam, dsp: (1.0, 0.0)),
    Kind.MAC: KindCost(lambda L: L.input_bits + L.weight_bits + 1, _mac_lanes, multiplier=True, signed_products=True),
    # add / subtract / zero mux per term bit; the negation -x per SIMD column (the PEs see the same x:
    # Yosys merges their identical negations)
    # (one 2:1 mux level per code bit: the sign select, and with the 2-bit code the zero select; measured on
    # ecp5, the lanes and tree of the 1-bit code cost 15-19 LUT4 a lane, of the 2-bit code 17-25)
    Kind.ACCUMULATE: KindCost(lambda L: L.input_bits + 2, lambda L, fold, fam, dsp: (_acc_code_bits(L) * (L.input_bits + 2.0),
                                                                                     L.input_bits + 1.0)),
    # barrel shifter muxes, then the conditional negation (an incrementer of the term width)
    Kind.SHIFT_ADD: KindCost(lambda L: L.input_bits + L.max_exponent + 1,
                             lambda L, fold, fam, dsp: (float(shifter_muxes(L.input_bits, L.max_exponent)
                                                              + term_width(L)), 0.0)),
    # the weight's wb:1 bit-select and an AND per lane; the activation's ib:1 bit-select per SIMD column
    # (every PE selects the same plane of the same chunk: Yosys merges them)
    Kind.BIT_SERIAL: KindCost(lambda L: 1, lambda L, fold, fam, dsp: (mux_luts(L.weight_bits, fam) + 1.0,
                                                                      mux_luts(L.input_bits, fam)),
                              post=_serial_post),
    Kind.LUT_PRODUCT: KindCost(_lut_term_width, _lut_lanes, signed_products=True),
}
assert tuple(COSTS) == tuple(Kind), "every Kind needs exactly one KindCost"


def cost_spec(kind: Kind | str) -> KindCost:
    """THE lookup of a kind's area features; an unknown kind raises IRError here."""
    return COSTS[as_kind(kind)]


def term_width(layer: Layer) -> int:
    """Width of one lane's term entering the adder tree (hw/arith.py)."""
    return cost_spec(layer.kind).term_width(layer)


def lane_cost(layer: Layer, fold: Folding, fam: str, dsp: bool) -> tuple[float, float]:
    """(per-lane LUT work, per-SIMD-column work shared by the PEs) of the unit's lanes."""
    return cost_spec(layer.kind).lanes(layer, fold, fam, dsp)


def pe_cost(layer: Layer, fold: Folding) -> float:
    """Per-PE LUT work after the adder tree (bit_serial's plane shift and negation, else 0)."""
    return cost_spec(layer.kind).post(layer, fold)
