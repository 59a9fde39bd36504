"""The IR's data: the dataclasses of a model (input spec, conv geometry, layer, model).

The contract itself (what each field means, the arithmetic of each kind and output stage) is
documented in :mod:`quantmodels.ir`; each kind's semantics live in :mod:`.kinds`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import IRError
from .constants import FORMAT, SCHEMA_VERSION, Op
from .kinds import Kind, as_kind, kind_spec
from .validate import validate_model


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
