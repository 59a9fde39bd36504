"""The IR's data: the dataclasses of a model (input spec, conv geometry, layer, model) and every
cross-field rule they must satisfy (:func:`validate_model`, one line per violation).

The contract itself (what each field means, the arithmetic of each kind and output stage) is
documented in :mod:`quantmodels.ir`; each kind's semantics live in :mod:`.kinds`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..bitwidth import signed_bits
from ..errors import IRError, clip
from .constants import (FORMAT, LAYER_NAME, MAX_ACC_BITS, MAX_BITS, MAX_FEATURES, SCHEMA_VERSION, WEIGHTS_FILE,
                        InputQuantizer, Op, choices)
from .kinds import Kind, KindSpec, as_kind, kind_spec


@dataclass(frozen=True)
class InputSpec:
    """How raw uint8 samples become the first layer's integer input vector."""

    features: int  #: length of the flattened input vector
    bits: int  #: bits per input element
    quantizer: str  #: an InputQuantizer value: "threshold", "identity" or "truncate"
    threshold: int | None = None  #: for quantizer == "threshold"
    source_shape: tuple[int, ...] = ()  #: shape of one raw sample, e.g. (28, 28)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"features": self.features, "bits": self.bits,
                             "quantizer": self.quantizer, "source_shape": list(self.source_shape)}
        if self.threshold is not None:
            d["threshold"] = self.threshold
        return d


@dataclass(frozen=True)
class ConvSpec:
    """Geometry of a conv2d layer (with an optional fused max-pool), validated on construction."""

    in_shape: tuple[int, int, int]  #: (H, W, C) of the input image, channels-last
    kernel: tuple[int, int]  #: (kh, kw)
    stride: int = 1
    padding: int = 0  #: zero-code padding on every side
    pool: tuple[int, int] = (1, 1)  #: max-pool (window, stride); (1, 1) = no pooling

    def __post_init__(self) -> None:
        object.__setattr__(self, "in_shape", tuple(int(v) for v in self.in_shape))
        object.__setattr__(self, "kernel", tuple(int(v) for v in self.kernel))
        object.__setattr__(self, "pool", tuple(int(v) for v in self.pool))
        if len(self.in_shape) != 3 or min(self.in_shape) < 1:
            raise IRError(f"conv.in_shape: {list(self.in_shape)}, expected [H, W, C] of positive integers")
        if len(self.kernel) != 2 or min(self.kernel) < 1:
            raise IRError(f"conv.kernel: {list(self.kernel)}, expected [kh, kw] of positive integers")
        if self.stride < 1 or self.padding < 0:
            raise IRError(f"conv: stride={self.stride}, padding={self.padding}, expected stride >= 1, padding >= 0")
        if len(self.pool) != 2 or min(self.pool) < 1:
            raise IRError(f"conv.pool: {list(self.pool)}, expected [window, stride] of positive integers")
        oh, ow = self.conv_hw
        if oh < 1 or ow < 1:
            raise IRError(f"conv: kernel {list(self.kernel)} with padding {self.padding} does not fit "
                          f"the input {list(self.in_shape)}")
        if self.pool[0] > min(oh, ow):
            raise IRError(f"conv.pool: window {self.pool[0]} exceeds the conv output {oh}x{ow}")

    @property
    def patch(self) -> int:
        """Weights per output channel: kh*kw*C."""
        return self.kernel[0] * self.kernel[1] * self.in_shape[2]

    @property
    def conv_hw(self) -> tuple[int, int]:
        """(OH, OW) of the convolution before pooling."""
        h, w, _ = self.in_shape
        kh, kw = self.kernel
        return ((h + 2 * self.padding - kh) // self.stride + 1, (w + 2 * self.padding - kw) // self.stride + 1)

    @property
    def out_hw(self) -> tuple[int, int]:
        """(PH, PW) after the optional max-pool."""
        oh, ow = self.conv_hw
        k, s = self.pool
        return ((oh - k) // s + 1, (ow - k) // s + 1)

    def to_json(self) -> dict[str, Any]:
        return {"in_shape": list(self.in_shape), "kernel": list(self.kernel), "stride": self.stride,
                "padding": self.padding, "pool": list(self.pool)}


@dataclass
class Layer:
    """One layer of the IR (dense, or conv2d when ``conv`` is set) with its integer arrays."""

    name: str
    kind: Kind  #: a Kind (a plain string is converted on construction)
    in_features: int
    out_features: int
    input_bits: int
    weight_bits: int
    output: str  #: an OutputType value
    weights: np.ndarray  #: (out_features, in_features) integers
    output_bits: int | None = None  #: threshold / requantize only
    shift: int = 0  #: requantize only
    thresholds: np.ndarray | None = None  #: (out_features, 2**output_bits - 1)
    bias: np.ndarray | None = None  #: (out_features,)
    products: np.ndarray | None = None  #: lut_product: (2**weight_bits, 2**input_bits) table
    conv: ConvSpec | None = None  #: conv2d geometry; None for a dense layer

    def __post_init__(self) -> None:
        self.kind = as_kind(self.kind, f"{self.name}.kind")

    @property
    def op(self) -> Op:
        return Op.DENSE if self.conv is None else Op.CONV2D

    @property
    def rows(self) -> int:
        """Rows of the weight matrix: output channels (conv2d) or out_features (dense)."""
        return self.weights.shape[0] if self.conv is not None else self.out_features

    @property
    def cols(self) -> int:
        """Columns of the weight matrix (the fan-in of one accumulator): kh*kw*C or in_features."""
        return self.conv.patch if self.conv is not None else self.in_features

    @property
    def positions(self) -> int:
        """Times the weight matrix is applied per input: conv output positions, 1 for dense."""
        if self.conv is None:
            return 1
        oh, ow = self.conv.conv_hw
        return oh * ow

    @property
    def macs(self) -> int:
        """Weight x input operations per inference."""
        return self.positions * self.rows * self.cols

    @property
    def n_thresholds(self) -> int:
        return (1 << self.output_bits) - 1 if self.output_bits else 0

    def weight_range(self) -> tuple[int, int]:
        """Inclusive integer range a weight may take (the kind's rule)."""
        return kind_spec(self.kind).weight_range(self)

    @property
    def max_exponent(self) -> int:
        """shift_add: largest exponent e of a +-2**e weight."""
        return max(0, self.weight_bits - 2)

    def input_range(self) -> tuple[int, int]:
        return 0, (1 << self.input_bits) - 1

    def acc_range(self) -> tuple[int, int]:
        """Inclusive range of the accumulator over all possible inputs (not just these weights)."""
        return kind_spec(self.kind).acc_range(self)

    def logit_range(self) -> tuple[int, int]:
        """Range of the value entering the output stage (acc + bias where a bias exists)."""
        lo, hi = self.acc_range()
        if self.bias is not None and self.bias.size:
            lo += int(self.bias.min())
            hi += int(self.bias.max())
        return lo, hi

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.output}
        if self.output_bits is not None:
            out["bits"] = self.output_bits
        if self.output == "requantize":
            out["shift"] = self.shift
        d = {"name": self.name, "op": self.op, "kind": self.kind, "in_features": self.in_features,
             "out_features": self.out_features, "input_bits": self.input_bits,
             "weight_bits": self.weight_bits, "output": out}
        if self.conv is not None:
            d["conv"] = self.conv.to_json()
        return d

    def arrays(self) -> dict[str, np.ndarray]:
        d = {f"{self.name}.weights": self.weights}
        if self.thresholds is not None:
            d[f"{self.name}.thresholds"] = self.thresholds
        if self.bias is not None:
            d[f"{self.name}.bias"] = self.bias
        if self.products is not None:
            d[f"{self.name}.products"] = self.products
        return d


@dataclass
class IRModel:
    """A whole network in the integer IR."""

    name: str
    method: str
    input: InputSpec
    layers: list[Layer]
    meta: dict[str, Any] = field(default_factory=dict)  #: training seed, metrics, dataset, ...

    @property
    def n_classes(self) -> int:
        return self.layers[-1].out_features

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "name": self.name,
                "method": self.method, "input": self.input.to_json(),
                "layers": [layer.to_json() for layer in self.layers], "meta": self.meta}

    def validate(self, where: str = "model") -> "IRModel":
        """Check every cross-field rule; raise IRError with one line naming the field."""
        validate_model(self, where)
        return self


# ----------------------------------------------------------------------------- validation


def validate_model(m: IRModel, where: str, wfile: str = WEIGHTS_FILE) -> None:
    """Check the input spec, then every layer against its predecessor and its kind's rules."""
    _validate_input(m, where)
    if not m.layers:
        raise IRError(f"{where}: layers: empty, expected at least one layer")
    names = [layer.name for layer in m.layers]
    for i, n in enumerate(names):
        if not isinstance(n, str) or not re.match(LAYER_NAME, n):
            raise IRError(f"{where}: layers[{i}].name: {clip(n)}, expected a name of letters, digits and '_' "
                          f"(not starting with a digit, at most 63 characters)")
    if len(set(names)) != len(names):
        raise IRError(f"{where}: layers: duplicate layer names {names}")
    prev_features, prev_bits, prev_name = m.input.features, m.input.bits, "input"
    for i, L in enumerate(m.layers):
        lw = f"{where}: layers[{i}]"
        last = i == len(m.layers) - 1
        spec = kind_spec(L.kind)
        for fld in ("in_features", "out_features", "input_bits", "weight_bits"):
            v = getattr(L, fld)
            if v < 1:
                raise IRError(f"{lw}.{fld}: {v}, expected >= 1")
            if fld.endswith("features") and v > MAX_FEATURES:
                raise IRError(f"{lw}.{fld}: {v}, expected <= {MAX_FEATURES}")
        for fld in ("input_bits", "weight_bits"):
            if getattr(L, fld) > MAX_BITS:
                raise IRError(f"{lw}.{fld}: {getattr(L, fld)}, expected <= {MAX_BITS}")
        if L.conv is not None:
            _validate_conv(L, lw, last)
        if L.in_features != prev_features:
            raise IRError(f"{lw}.in_features: {L.in_features}, expected {prev_features} "
                          f"(= {prev_name} {'features' if i == 0 else 'out_features'})")
        if L.input_bits != prev_bits:
            raise IRError(f"{lw}.input_bits: {L.input_bits}, expected {prev_bits} (= {prev_name} output bits)")
        _validate_kind_bits(L, spec, lw, wfile)
        _validate_output(L, lw, last)
        shape = (L.rows, L.cols)
        if L.weights.ndim != 2 or (L.conv is None and L.weights.shape != shape) or L.weights.shape[1] != L.cols:
            raise IRError(f"{wfile}: {L.name}.weights: shape {L.weights.shape}, expected {shape}")
        lo, hi = L.weight_range()
        if L.weights.size and (L.weights.min() < lo or L.weights.max() > hi):
            raise IRError(f"{wfile}: {L.name}.weights: values in [{L.weights.min()}, {L.weights.max()}], "
                          f"expected [{lo}, {hi}] for kind '{L.kind}' with weight_bits={L.weight_bits}")
        if spec.check_weights is not None:
            spec.check_weights(L, wfile)
        _validate_arrays(L, wfile)
        _validate_widths(L, wfile)
        prev_features, prev_bits, prev_name = L.out_features, (L.output_bits or 0), f"layers[{i}]"


def _validate_input(m: IRModel, where: str) -> None:
    inp = m.input
    if inp.quantizer not in tuple(InputQuantizer):
        raise IRError(f"{where}: input.quantizer: {inp.quantizer!r}, expected one of {choices(InputQuantizer)}")
    if inp.quantizer == "threshold" and (inp.bits != 1 or not isinstance(inp.threshold, int)):
        raise IRError(f"{where}: input: quantizer 'threshold' needs bits=1 and an integer threshold")
    if inp.quantizer == "identity" and inp.bits != 8:
        raise IRError(f"{where}: input.bits: {inp.bits}, expected 8 for quantizer 'identity' (raw uint8)")
    if inp.quantizer == "truncate" and not 1 <= inp.bits <= 8:
        raise IRError(f"{where}: input.bits: {inp.bits}, expected 1..8 for quantizer 'truncate' (top bits of a uint8)")
    if inp.source_shape and int(np.prod(inp.source_shape)) != inp.features:
        raise IRError(f"{where}: input.source_shape: {list(inp.source_shape)} has "
                      f"{int(np.prod(inp.source_shape))} elements, expected input.features={inp.features}")


def _validate_conv(L: Layer, lw: str, last: bool) -> None:
    c = L.conv
    if int(np.prod(c.in_shape)) != L.in_features:
        raise IRError(f"{lw}.conv.in_shape: {list(c.in_shape)} has {int(np.prod(c.in_shape))} elements, "
                      f"expected in_features={L.in_features}")
    ph, pw = c.out_hw
    if L.out_features != ph * pw * L.rows:
        raise IRError(f"{lw}.out_features: {L.out_features}, expected {ph * pw * L.rows} "
                      f"(= {ph}x{pw} positions x {L.rows} channels)")
    if last:
        raise IRError(f"{lw}.op: 'conv2d', expected 'dense' for the last (argmax) layer")


def _validate_kind_bits(L: Layer, spec: KindSpec, lw: str, wfile: str) -> None:
    """The bit widths and tables the layer's kind requires (its :class:`KindSpec`)."""
    for fld, need in (("input_bits", spec.fixed_input_bits), ("weight_bits", spec.fixed_weight_bits)):
        if need is not None and getattr(L, fld) != need:
            raise IRError(f"{lw}.{fld}: {getattr(L, fld)}, expected {need} for kind '{L.kind}'")
    if L.weight_bits < spec.min_weight_bits:
        raise IRError(f"{lw}.weight_bits: {L.weight_bits}, expected >= {spec.min_weight_bits} for kind '{L.kind}'")
    if spec.needs_products:
        pshape = (1 << L.weight_bits, 1 << L.input_bits)
        got = None if L.products is None else L.products.shape
        if got != pshape:
            raise IRError(f"{wfile}: {L.name}.products: shape {got}, expected {pshape} "
                          f"(2**weight_bits x 2**input_bits)")
        if np.abs(L.products).max(initial=0) >= 1 << 24:
            raise IRError(f"{wfile}: {L.name}.products: values exceed +-2**24")


def _validate_output(L: Layer, lw: str, last: bool) -> None:
    if (L.output == "argmax") != last:
        raise IRError(f"{lw}.output.type: {L.output!r}, expected "
                      f"{'argmax' if last else 'threshold or requantize'} for "
                      f"{'the last' if last else 'a hidden'} layer")
    if L.output != "argmax" and not 1 <= (L.output_bits or 0) <= MAX_BITS:
        raise IRError(f"{lw}.output.bits: {L.output_bits}, expected 1..{MAX_BITS}")
    if L.output == "threshold" and (L.output_bits or 0) > 8:
        raise IRError(f"{lw}.output.bits: {L.output_bits}, expected <= 8 for a multi-threshold stage")
    if L.output == "requantize" and not 0 <= L.shift <= 62:
        raise IRError(f"{lw}.output.shift: {L.shift}, expected 0..62")


def _validate_arrays(L: Layer, wfile: str) -> None:
    if L.output == "threshold":
        tshape = (L.rows, L.n_thresholds)
        if L.thresholds is None or L.thresholds.shape != tshape:
            got = None if L.thresholds is None else L.thresholds.shape
            raise IRError(f"{wfile}: {L.name}.thresholds: shape {got}, expected {tshape}")
        if L.n_thresholds > 1 and np.any(np.diff(L.thresholds, axis=1) < 0):
            raise IRError(f"{wfile}: {L.name}.thresholds: not ascending along each row")
    if L.bias is not None and L.bias.shape != (L.rows,):
        raise IRError(f"{wfile}: {L.name}.bias: shape {L.bias.shape}, expected ({L.rows},)")


def _validate_widths(L: Layer, wfile: str) -> None:
    """Accumulator, bias and thresholds within MAX_ACC_BITS: the hardware derives its register widths
    from them, and the golden model's int64 arithmetic must not wrap where the RTL would not."""
    lo, hi = L.logit_range()
    what = "accumulator + bias"
    if L.thresholds is not None and L.thresholds.size:
        tlo, thi = int(L.thresholds.min()), int(L.thresholds.max())
        if signed_bits(tlo, thi) > MAX_ACC_BITS:
            lo, hi, what = tlo, thi, "thresholds"
    if signed_bits(lo, hi) > MAX_ACC_BITS:
        raise IRError(f"{wfile}: {L.name}: {what} span [{lo}, {hi}], {signed_bits(lo, hi)} bits; "
                      f"expected at most {MAX_ACC_BITS} bits")
