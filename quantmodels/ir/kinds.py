"""The layer kinds of the IR: one closed :class:`Kind` enum and one :class:`KindSpec` per kind.

A kind says *what arithmetic the hardware must do*. Everything lowbit's semantics needs to
know about a kind lives in its spec here, looked up once through :func:`kind_spec`:

* the weight code range and the IR rules the kind adds (fixed bit widths, a product table,
  power-of-two magnitudes);
* the accumulator range over every possible input (hardware widths derive from it);
* the golden integer arithmetic (:func:`quantmodels.ir.golden.accumulate` calls it);
* the operation counts per inference (the energy model prices them in ``reports``);
* how to draw valid random weights (tests and the estimator's calibration probes).

The other stack layers keep their own table keyed by the same enum (``hw.lanes.LANES``:
the lane builder and weight ROM code; ``reports.kind_costs.COSTS``: the area estimator's
features), each checked exhaustive by a test that iterates :class:`Kind`. Adding a kind is one
entry here, one in each of those tables, its tests and the method that emits it.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Callable, Protocol

import numpy as np

from ..bitwidth import signed_bits
from ..errors import IRError, clip

class LayerView(Protocol):
    """What a kind's functions read of a layer (:class:`quantmodels.ir.schema.Layer` provides it;
    the schema depends on this module, not the other way round)."""

    name: str
    input_bits: int
    weight_bits: int
    weights: np.ndarray
    products: np.ndarray | None

    @property
    def rows(self) -> int: ...
    @property
    def cols(self) -> int: ...
    @property
    def positions(self) -> int: ...
    @property
    def macs(self) -> int: ...
    @property
    def max_exponent(self) -> int: ...


class Kind(StrEnum):
    """IR layer kinds (the order is the order error messages list them in)."""

    XNOR_POPCOUNT = "xnor_popcount"
    MAC = "mac"
    ACCUMULATE = "accumulate"
    SHIFT_ADD = "shift_add"
    BIT_SERIAL = "bit_serial"
    LUT_PRODUCT = "lut_product"


class OpCost(StrEnum):
    """How the energy model prices one operation (the constants live in ``reports``)."""

    BIT = "bit"  #: a 1-bit cell: XNOR, AND, one full-adder bit of a popcount
    ADD = "add"  #: an integer add of ``bits[0]`` bits (also a shift or a table read of that width)
    MULT = "mult"  #: a ``bits[0]`` x ``bits[1]`` integer multiply
    FREE = "free"  #: counted, costs nothing (a skipped zero weight)


@dataclass(frozen=True)
class OpCount:
    """``count`` operations of one type per inference, for the energy model.

    ``cost`` (:class:`OpCost`) says how ``reports.energy`` prices one operation."""

    label: str  #: column name in energy tables, e.g. "xnor_1b", "add_12b"
    count: int
    cost: OpCost
    bits: tuple[int, ...] = ()


@dataclass(frozen=True)
class KindSpec:
    """Everything the IR's semantics say about one kind (see the module docstring)."""

    kind: Kind
    doc: str  #: one line: the arithmetic
    weight_range: Callable[[LayerView], tuple[int, int]]  #: inclusive range of a stored weight
    accumulate: Callable[[LayerView, np.ndarray], np.ndarray]  #: (N, cols) inputs -> (N, rows) int64
    ops: Callable[[LayerView, int], list[OpCount]]  #: op counts per inference, given the acc bits
    random_weights: Callable[[np.random.Generator, tuple[int, int], int], np.ndarray]  #: (rng, shape, wbits)
    example_bits: tuple[int, int]  #: (weight_bits, input_bits) of a representative layer (tests, probes)
    fixed_weight_bits: int | None = None  #: weight_bits the kind requires, if any
    fixed_input_bits: int | None = None  #: input_bits the kind requires, if any
    min_weight_bits: int = 1
    needs_products: bool = False  #: a ``<layer>.products`` table (2**wbits x 2**ibits) is required
    check_weights: Callable[[LayerView, str], None] | None = None  #: extra value rules -> IRError
    #: (spec, layer) -> accumulator range; None: a dot product of the weight range with the inputs
    acc_bounds: Callable[["KindSpec", LayerView], tuple[int, int]] | None = None
    #: weights and inputs are bits standing for -1/+1 (acc counts agreements, not a dot product)
    bipolar: bool = False
    #: (layer) -> bits per stored weight, the fewest the layer's actual values need; None: weight_bits
    storage_bits: Callable[[LayerView], int] | None = None
    #: (layer) -> a stored weight whose term with input code 0 is 0 (pads the weight matrix when a
    #: folding does not divide it), None if the kind has none for this layer
    pad_weight: Callable[[LayerView], int | None] = lambda L: 0

    def stored_bits(self, layer: LayerView) -> int:
        """Bits one weight of ``layer`` takes in memory (ROM width and memory reports read this)."""
        return self.storage_bits(layer) if self.storage_bits else layer.weight_bits

    def store_codes(self, codes: np.ndarray) -> np.ndarray:
        """A method's signed integer weight codes -> the IR's stored weights (bipolar: bit 1 = +1)."""
        codes = np.asarray(codes)
        return (codes > 0).astype(np.int64) if self.bipolar else codes

    def acc_range(self, layer: LayerView) -> tuple[int, int]:
        """Inclusive accumulator range over all possible inputs (not just these weights)."""
        return (self.acc_bounds or _dot_bounds)(self, layer)


# ----------------------------------------------------------------------------- arithmetic


def _dot(layer: LayerView, x: np.ndarray) -> np.ndarray:
    return x @ layer.weights.astype(np.int64).T


def _xnor_popcount(layer: LayerView, x: np.ndarray) -> np.ndarray:
    w = layer.weights.astype(np.int64)
    return x @ w.T + (1 - x) @ (1 - w).T  # popcount(xnor(x, w)) = #agreeing bits


def _lut_product(layer: LayerView, x: np.ndarray) -> np.ndarray:
    w = layer.weights.astype(np.int64)
    table = layer.products.astype(np.int64)
    acc = np.zeros((len(x), layer.rows), dtype=np.int64)
    for c in np.unique(w):  # one pass per codebook entry actually used
        acc += table[c][x] @ (w == c).T.astype(np.int64)
    return acc


def _dot_bounds(spec: KindSpec, layer: LayerView) -> tuple[int, int]:
    """acc = w . x: every weight at an end of its range times the largest unsigned input."""
    wlo, whi = spec.weight_range(layer)
    n, xhi = layer.cols, (1 << layer.input_bits) - 1
    return n * wlo * xhi, n * whi * xhi


def _popcount_bounds(spec: KindSpec, layer: LayerView) -> tuple[int, int]:
    return 0, layer.cols


def _table_bounds(spec: KindSpec, layer: LayerView) -> tuple[int, int]:
    """Sum of ``cols`` table entries: the table's extremes (and 0) times the fan-in."""
    p = layer.products
    lo, hi = (int(p.min()), int(p.max())) if p is not None and p.size else (0, 0)
    return layer.cols * min(lo, 0), layer.cols * max(hi, 0)


def _signed_range(layer: LayerView) -> tuple[int, int]:
    return -(1 << (layer.weight_bits - 1)), (1 << (layer.weight_bits - 1)) - 1


def _pow2_range(layer: LayerView) -> tuple[int, int]:
    m = 1 << (layer.weight_bits - 2) if layer.weight_bits >= 2 else 0
    return -m if m else 0, m


def pow2_weight_bits(weights: np.ndarray) -> int | None:
    """The ``weight_bits`` kind ``shift_add`` needs for integer weights of 0 and +-2**e (b bits
    hold exponents up to b - 2, see ``_pow2_range``); None if a magnitude is not a power of two."""
    mag = np.abs(np.asarray(weights, np.int64))
    mag = mag[mag != 0]
    if np.any(mag & (mag - 1)):
        return None
    return (int(mag.max()).bit_length() + 1) if mag.size else 2


def _check_pow2(layer: LayerView, wfile: str) -> None:
    if pow2_weight_bits(layer.weights) is None:
        mag = np.abs(layer.weights[layer.weights != 0])
        bad = int(mag[(mag & (mag - 1)) != 0][0])
        raise IRError(f"{wfile}: {layer.name}.weights: magnitude {bad} is not a power of two "
                      f"(kind 'shift_add' takes 0 and +-2**e)")


def _ternary_storage_bits(layer: LayerView) -> int:
    """A ternary layer without zero weights (BinaryConnect, any binary-weight x k-bit-activation
    layer) needs only the sign: 1 bit instead of 2 halves its weight memory."""
    return 1 if np.all(np.asarray(layer.weights) != 0) else 2


def _lut_pad_weight(layer: LayerView) -> int | None:
    """A codebook index whose product with activation level 0 is 0, if the table has one."""
    p = layer.products
    zero = np.flatnonzero(np.asarray(p)[:, 0] == 0) if p is not None else np.array([])
    return int(zero[0]) if zero.size else None


def _nonzero(layer: LayerView) -> int:
    """Weights actually applied per inference: zero weights are skipped (sparsity saves energy)."""
    return layer.positions * int(np.count_nonzero(layer.weights))


# ----------------------------------------------------------------------------- op counts


def _ops_xnor(L: LayerView, acc: int) -> list[OpCount]:
    return [OpCount("xnor_1b", L.macs, OpCost.BIT), OpCount("popcount_bit_adds", L.macs, OpCost.BIT)]


def _ops_mac(L: LayerView, acc: int) -> list[OpCount]:
    return [OpCount(f"mult_{L.weight_bits}x{L.input_bits}", L.macs, OpCost.MULT, (L.weight_bits, L.input_bits)),
            OpCount(f"add_{acc}b", L.macs, OpCost.ADD, (acc,))]


def _ops_accumulate(L: LayerView, acc: int) -> list[OpCount]:
    nz = _nonzero(L)
    return [OpCount(f"add_sub_{acc}b", nz, OpCost.ADD, (acc,)), OpCount("skipped", L.macs - nz, OpCost.FREE)]


def _ops_shift_add(L: LayerView, acc: int) -> list[OpCount]:
    nz = _nonzero(L)
    return [OpCount("shift", nz, OpCost.ADD, (L.input_bits + L.max_exponent,)), OpCount(f"add_{acc}b", nz, OpCost.ADD, (acc,)),
            OpCount("skipped", L.macs - nz, OpCost.FREE)]


def _ops_bit_serial(L: LayerView, acc: int) -> list[OpCount]:
    n = L.macs * L.input_bits * L.weight_bits  # one (activation bit, weight bit) plane pair each
    return [OpCount("and_1b", n, OpCost.BIT), OpCount("popcount_bit_adds", n, OpCost.BIT)]


def _ops_lut_product(L: LayerView, acc: int) -> list[OpCount]:
    p = int(np.abs(L.products).max())
    return [OpCount("table_lookup", L.macs, OpCost.ADD, (signed_bits(-p, p),)), OpCount(f"add_{acc}b", L.macs, OpCost.ADD, (acc,))]


# ----------------------------------------------------------------------------- random weights
# Uniform over the kind's codes (shift_add: nonzero +-2**e). The estimator's calibration probes
# draw these, so its stored measurements stay valid: change a draw only with a recalibration.


def _rand_bits(rng: np.random.Generator, shape: tuple[int, int], wb: int) -> np.ndarray:
    return rng.integers(0, 2, shape)


def _rand_ternary(rng: np.random.Generator, shape: tuple[int, int], wb: int) -> np.ndarray:
    return rng.integers(-1, 2, shape)


def _rand_pow2(rng: np.random.Generator, shape: tuple[int, int], wb: int) -> np.ndarray:
    return rng.choice([-1, 1], shape) * (1 << rng.integers(0, wb - 1, shape))


def _rand_index(rng: np.random.Generator, shape: tuple[int, int], wb: int) -> np.ndarray:
    return rng.integers(0, 1 << wb, shape)


def _rand_signed(rng: np.random.Generator, shape: tuple[int, int], wb: int) -> np.ndarray:
    return rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), shape)


# ----------------------------------------------------------------------------- the registry

_SPECS = (
    KindSpec(Kind.XNOR_POPCOUNT, "1-bit weights and inputs (1 = +1, 0 = -1); acc = popcount(xnor(x, w))",
             weight_range=lambda L: (0, 1), accumulate=_xnor_popcount, ops=_ops_xnor, random_weights=_rand_bits,
             example_bits=(1, 1), fixed_weight_bits=1, fixed_input_bits=1, acc_bounds=_popcount_bounds, bipolar=True,
             pad_weight=lambda L: 1),  # xnor(input bit 0, weight bit 1) = 0: no agreement counted
    KindSpec(Kind.MAC, "signed weights x unsigned inputs, acc = w . x on multipliers",
             weight_range=_signed_range, accumulate=_dot, ops=_ops_mac, random_weights=_rand_signed,
             example_bits=(8, 8)),
    KindSpec(Kind.ACCUMULATE, "ternary weights {-1, 0, +1}: add, subtract or skip each input",
             weight_range=lambda L: (-1, 1), accumulate=_dot, ops=_ops_accumulate, random_weights=_rand_ternary,
             example_bits=(2, 8), fixed_weight_bits=2, storage_bits=_ternary_storage_bits),
    KindSpec(Kind.SHIFT_ADD, "weights {0, +-2**e}: barrel shift + add",
             weight_range=_pow2_range, accumulate=_dot, ops=_ops_shift_add, random_weights=_rand_pow2,
             example_bits=(4, 8), min_weight_bits=2, check_weights=_check_pow2),
    KindSpec(Kind.BIT_SERIAL, "signed k-bit weights x unsigned inputs, one bit-plane pair per cycle",
             weight_range=_signed_range, accumulate=_dot, ops=_ops_bit_serial, random_weights=_rand_signed,
             example_bits=(3, 8)),
    KindSpec(Kind.LUT_PRODUCT, "codebook indices x level indices through an integer product table",
             weight_range=lambda L: (0, (1 << L.weight_bits) - 1), accumulate=_lut_product, ops=_ops_lut_product,
             random_weights=_rand_index, example_bits=(2, 8), needs_products=True, acc_bounds=_table_bounds,
             pad_weight=_lut_pad_weight),
)
#: The registry: every kind's spec, in :class:`Kind` order.
KINDS: dict[Kind, KindSpec] = {s.kind: s for s in _SPECS}
assert tuple(KINDS) == tuple(Kind), "every Kind needs exactly one KindSpec"


def kind_names() -> str:
    return ", ".join(k.value for k in Kind)


def as_kind(name: object, where: str = "kind") -> Kind:
    """The :class:`Kind` named ``name``; IRError naming ``where`` and the valid kinds otherwise."""
    try:
        return Kind(name)
    except ValueError:
        raise IRError(f"{where}: {clip(name)}, expected one of {kind_names()}") from None


def kind_spec(kind: Kind | str) -> KindSpec:
    """THE lookup of a kind's semantics; an unknown kind fails here, never falls through."""
    return KINDS[as_kind(kind)]
