"""The integer IR: the one contract between training (quantmodels) and hardware (hw).

A model directory holds

* ``model.json``: schema version, input quantizer, the layer list (kind, shapes, bit
  widths, output stage) and free-form training metadata (method, seed, metrics);
* ``weights.npz``: integer arrays only, loaded with ``allow_pickle=False``:
  ``<layer>.weights`` (out, in), and per output stage ``<layer>.thresholds``
  (out, 2**bits - 1) or ``<layer>.bias`` (out,).

Arithmetic per layer kind (what the hardware must compute; the golden model in
:mod:`quantmodels.golden` is the executable definition):

``xnor_popcount``
    weights and inputs are bits, 1 encodes +1 and 0 encodes -1;
    ``acc = popcount(xnor(x, w))`` in ``[0, in_features]`` (so the +-1 dot product
    is ``2*acc - in_features``).
``mac``
    signed ``weight_bits`` weights, unsigned ``input_bits`` inputs, ``acc = w . x``
    (multiplier + accumulator hardware).
``accumulate``
    ternary weights in {-1, 0, +1} (``weight_bits`` = 2), unsigned inputs, ``acc = w . x``
    computed by adding, subtracting or skipping each input (no multiplier).
``shift_add``
    weights in {0} U {+-2**e : 0 <= e <= weight_bits - 2} stored as their integer
    values (``weight_bits`` signed bits); ``acc = w . x`` by barrel shift + add.
``bit_serial``
    signed ``weight_bits`` weights x unsigned ``input_bits`` inputs, ``acc = w . x``, computed
    one (activation bit, weight bit) plane pair per cycle: AND + popcount + shift.
``lut_product``
    weights are codebook indices (``weight_bits``), inputs are level indices
    (``input_bits``); ``acc = sum_j P[w_j, x_j]`` with the integer product table
    ``<layer>.products`` of shape (2**weight_bits, 2**input_bits): lookups and adds only.

Output stages:

``threshold``
    FINN-style multi-threshold: ``y = sum_k (acc >= T[k])``, ``2**bits - 1``
    ascending thresholds per channel (batch norm, scales and sign folded in).
``requantize``
    ``y = clip((acc + bias) >> shift, 0, 2**bits - 1)`` (arithmetic shift = floor).
``argmax``
    last layer only: ``logits = acc (+ bias if present)``, class = first index of the maximum.

Layer ops (schema v3):

``dense`` (default)
    the weight matrix (rows = out_features, cols = in_features) acts on the whole input vector.
``conv2d``
    the input vector is an image ``conv.in_shape = (H, W, C)`` flattened channels-last
    (index ``(y*W + x)*C + c``). Every output position ``(oy, ox)`` applies the weight matrix
    (rows = out channels, cols = kh*kw*C) to the patch starting at
    ``(oy*stride - padding, ox*stride - padding)``, flattened in ``(ky, kx, c)`` order;
    positions outside the image read the input **code 0** (for xnor_popcount that is -1, for
    unsigned activations 0: training pads the same way). The output stage is per channel;
    then an optional max-pool (``conv.pool``: window and stride, no padding, floor size) takes
    the maximum of the integer output levels, which equals pooling before a monotone output stage.
    The output vector is ``(PH, PW, out_channels)`` flattened channels-last.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_json, atomic_write_npz
from .errors import IRError

SCHEMA_VERSION = 4
#: Versions this loader reads: v1 (xnor_popcount, mac) is a subset of v2 (adds four kinds
#: and the ``products`` array), which is a subset of v3 (adds the conv2d op with fused max-pool),
#: which is a subset of v4 (adds the ``truncate`` input quantizer).
READABLE_VERSIONS = (1, 2, 3, 4)
FORMAT = "lowbit-ir"
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"

#: Layer kinds the golden model and the hardware generators implement today.
KINDS = ("xnor_popcount", "mac", "accumulate", "shift_add", "bit_serial", "lut_product")
#: Kinds whose accumulator is the plain integer dot product w . x (they differ in hardware).
DOT_PRODUCT_KINDS = ("mac", "accumulate", "shift_add", "bit_serial")
#: Kinds named by the design but not implemented; refused with a clear message.
RESERVED_KINDS: tuple[str, ...] = ()
OUTPUT_TYPES = ("threshold", "requantize", "argmax")
#: threshold: x >= t -> 1 (bits = 1); identity: the uint8 as is (bits = 8);
#: truncate: the top ``bits`` bits of the uint8, x >> (8 - bits) (bits = 1..8).
INPUT_QUANTIZERS = ("threshold", "identity", "truncate")
OPS = ("dense", "conv2d")
MAX_BITS = 16


@dataclass(frozen=True)
class InputSpec:
    """How raw uint8 samples become the first layer's integer input vector."""

    features: int  #: length of the flattened input vector
    bits: int  #: bits per input element
    quantizer: str  #: one of INPUT_QUANTIZERS: "threshold", "identity" or "truncate"
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
    kind: str  #: one of KINDS
    in_features: int
    out_features: int
    input_bits: int
    weight_bits: int
    output: str  #: one of OUTPUT_TYPES
    weights: np.ndarray  #: (out_features, in_features) integers
    output_bits: int | None = None  #: threshold / requantize only
    shift: int = 0  #: requantize only
    thresholds: np.ndarray | None = None  #: (out_features, 2**output_bits - 1)
    bias: np.ndarray | None = None  #: (out_features,)
    products: np.ndarray | None = None  #: lut_product: (2**weight_bits, 2**input_bits) table
    conv: ConvSpec | None = None  #: conv2d geometry; None for a dense layer

    @property
    def op(self) -> str:
        return "dense" if self.conv is None else "conv2d"

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
        """Inclusive integer range a weight may take."""
        if self.kind == "xnor_popcount":
            return 0, 1
        if self.kind == "accumulate":
            return -1, 1
        if self.kind == "lut_product":
            return 0, (1 << self.weight_bits) - 1
        if self.kind == "shift_add":
            m = 1 << (self.weight_bits - 2) if self.weight_bits >= 2 else 0
            return -m if m else 0, m
        return -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1

    @property
    def max_exponent(self) -> int:
        """shift_add: largest exponent e of a +-2**e weight."""
        return max(0, self.weight_bits - 2)

    def input_range(self) -> tuple[int, int]:
        return 0, (1 << self.input_bits) - 1

    def acc_range(self) -> tuple[int, int]:
        """Inclusive range of the accumulator over all possible inputs (not just these weights)."""
        n = self.cols
        if self.kind == "xnor_popcount":
            return 0, n
        if self.kind == "lut_product":
            p = self.products
            lo, hi = (int(p.min()), int(p.max())) if p is not None and p.size else (0, 0)
            return n * min(lo, 0), n * max(hi, 0)
        wlo, whi = self.weight_range()
        xhi = self.input_range()[1]
        return n * wlo * xhi, n * whi * xhi

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
        _validate_model(self, where)
        return self


# ----------------------------------------------------------------------------------------
# saving / loading


def save_model(model: IRModel, directory: str | Path) -> Path:
    """Validate and write ``model.json`` + ``weights.npz`` atomically into ``directory``."""
    directory = Path(directory)
    model.validate(str(directory))
    arrays: dict[str, np.ndarray] = {}
    for layer in model.layers:
        arrays.update({k: np.ascontiguousarray(v) for k, v in layer.arrays().items()})
    atomic_write_npz(directory / WEIGHTS_FILE, arrays)
    atomic_write_json(directory / MODEL_FILE, model.to_json())
    return directory


def load_model(directory: str | Path) -> IRModel:
    """Load and validate an IR model directory (or a path to its model.json)."""
    directory = Path(directory)
    if directory.name == MODEL_FILE:
        directory = directory.parent
    mpath, wpath = directory / MODEL_FILE, directory / WEIGHTS_FILE
    if not directory.exists():
        raise IRError(f"{directory}: no such model directory")
    if not mpath.is_file():
        raise IRError(f"{mpath}: missing; an IR model directory holds {MODEL_FILE} and {WEIGHTS_FILE}")
    if not wpath.is_file():
        raise IRError(f"{wpath}: missing; an IR model directory holds {MODEL_FILE} and {WEIGHTS_FILE}")
    try:
        doc = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IRError(f"{mpath}: not valid JSON ({e})") from None
    try:
        with np.load(wpath, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise IRError(f"{wpath}: not a readable .npz archive ({type(e).__name__}: {e})") from None
    return model_from_json(doc, arrays, where=str(mpath), wfile=str(wpath))


def _req(d: Any, key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(d, dict):
        raise IRError(f"{where}: expected a JSON object, got {type(d).__name__}")
    if key not in d:
        raise IRError(f"{where}.{key}: missing")
    v = d[key]
    if typ is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise IRError(f"{where}.{key}: {v!r}, expected an integer")
    if not isinstance(v, typ):
        names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise IRError(f"{where}.{key}: {v!r}, expected {names}")
    return v


def model_from_json(doc: Any, arrays: dict[str, np.ndarray], where: str = "model.json",
                    wfile: str = WEIGHTS_FILE) -> IRModel:
    """Build an :class:`IRModel` from parsed JSON and its arrays, validating as it goes."""
    if not isinstance(doc, dict):
        raise IRError(f"{where}: expected a JSON object at top level")
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise IRError(f"{where}: format: {fmt!r}, expected {FORMAT!r}")
    ver = _req(doc, "schema_version", int, where)
    if ver not in READABLE_VERSIONS:
        raise IRError(f"{where}: schema_version: {ver}, expected one of {', '.join(map(str, READABLE_VERSIONS))}")
    inp = _req(doc, "input", dict, where)
    input_spec = InputSpec(
        features=_req(inp, "features", int, f"{where}: input"),
        bits=_req(inp, "bits", int, f"{where}: input"),
        quantizer=_req(inp, "quantizer", str, f"{where}: input"),
        threshold=inp.get("threshold"),
        source_shape=tuple(inp.get("source_shape", ())),
    )
    layers_doc = _req(doc, "layers", list, where)
    layers = []
    for i, ld in enumerate(layers_doc):
        lw = f"{where}: layers[{i}]"
        name = _req(ld, "name", str, lw)
        kind = _req(ld, "kind", str, lw)
        if kind not in KINDS:
            extra = " (reserved, not implemented yet)" if kind in RESERVED_KINDS else ""
            raise IRError(f"{lw}.kind: {kind!r}{extra}, expected one of {', '.join(KINDS)}")
        op = ld.get("op", "dense")
        if op not in OPS:
            raise IRError(f"{lw}.op: {op!r}, expected one of {', '.join(OPS)}")
        conv = None
        if op == "conv2d":
            cd = _req(ld, "conv", dict, lw)
            try:
                conv = ConvSpec(in_shape=tuple(_req(cd, "in_shape", list, f"{lw}.conv")),
                                kernel=tuple(_req(cd, "kernel", list, f"{lw}.conv")),
                                stride=int(cd.get("stride", 1)), padding=int(cd.get("padding", 0)),
                                pool=tuple(cd.get("pool", (1, 1))))
            except (TypeError, ValueError) as e:
                raise IRError(f"{lw}.conv: {cd!r} is malformed ({e})") from None
            except IRError as e:
                raise IRError(f"{lw}.{e}") from None
        out = _req(ld, "output", dict, lw)
        otype = _req(out, "type", str, f"{lw}.output")
        if otype not in OUTPUT_TYPES:
            raise IRError(f"{lw}.output.type: {otype!r}, expected one of {', '.join(OUTPUT_TYPES)}")
        obits = out.get("bits")
        if otype != "argmax" and (not isinstance(obits, int) or isinstance(obits, bool)):
            raise IRError(f"{lw}.output.bits: {obits!r}, expected an integer for output type {otype!r}")

        def arr(suffix: str, required: bool) -> np.ndarray | None:
            key = f"{name}.{suffix}"
            if key not in arrays:
                if required:
                    raise IRError(f"{wfile}: array {key!r} missing (needed by layers[{i}] {name!r})")
                return None
            a = arrays[key]
            if not np.issubdtype(a.dtype, np.integer):
                raise IRError(f"{wfile}: {key}: dtype {a.dtype}, expected integer")
            return a.astype(np.int64)

        layers.append(Layer(
            name=name, kind=kind,
            in_features=_req(ld, "in_features", int, lw),
            out_features=_req(ld, "out_features", int, lw),
            input_bits=_req(ld, "input_bits", int, lw),
            weight_bits=_req(ld, "weight_bits", int, lw),
            output=otype, output_bits=obits,
            shift=int(out.get("shift", 0)),
            weights=arr("weights", True),
            thresholds=arr("thresholds", otype == "threshold"),
            bias=arr("bias", otype == "requantize"),
            products=arr("products", kind == "lut_product"),
            conv=conv,
        ))
    model = IRModel(name=str(doc.get("name", "model")), method=str(doc.get("method", "unknown")),
                    input=input_spec, layers=layers, meta=dict(doc.get("meta", {})))
    _validate_model(model, where, wfile)
    return model


def _validate_model(m: IRModel, where: str, wfile: str = WEIGHTS_FILE) -> None:
    inp = m.input
    if inp.quantizer not in INPUT_QUANTIZERS:
        raise IRError(f"{where}: input.quantizer: {inp.quantizer!r}, expected one of {', '.join(INPUT_QUANTIZERS)}")
    if inp.quantizer == "threshold" and (inp.bits != 1 or not isinstance(inp.threshold, int)):
        raise IRError(f"{where}: input: quantizer 'threshold' needs bits=1 and an integer threshold")
    if inp.quantizer == "identity" and inp.bits != 8:
        raise IRError(f"{where}: input.bits: {inp.bits}, expected 8 for quantizer 'identity' (raw uint8)")
    if inp.quantizer == "truncate" and not 1 <= inp.bits <= 8:
        raise IRError(f"{where}: input.bits: {inp.bits}, expected 1..8 for quantizer 'truncate' (top bits of a uint8)")
    if inp.source_shape and int(np.prod(inp.source_shape)) != inp.features:
        raise IRError(f"{where}: input.source_shape: {list(inp.source_shape)} has "
                      f"{int(np.prod(inp.source_shape))} elements, expected input.features={inp.features}")
    if not m.layers:
        raise IRError(f"{where}: layers: empty, expected at least one layer")
    names = [layer.name for layer in m.layers]
    if len(set(names)) != len(names):
        raise IRError(f"{where}: layers: duplicate layer names {names}")
    prev_features, prev_bits, prev_name = inp.features, inp.bits, "input"
    for i, L in enumerate(m.layers):
        lw = f"{where}: layers[{i}]"
        last = i == len(m.layers) - 1
        if L.kind not in KINDS:
            raise IRError(f"{lw}.kind: {L.kind!r}, expected one of {', '.join(KINDS)}")
        for fld in ("in_features", "out_features", "input_bits", "weight_bits"):
            v = getattr(L, fld)
            if v < 1:
                raise IRError(f"{lw}.{fld}: {v}, expected >= 1")
        for fld in ("input_bits", "weight_bits"):
            if getattr(L, fld) > MAX_BITS:
                raise IRError(f"{lw}.{fld}: {getattr(L, fld)}, expected <= {MAX_BITS}")
        if L.conv is not None:
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
        if L.in_features != prev_features:
            raise IRError(f"{lw}.in_features: {L.in_features}, expected {prev_features} "
                          f"(= {prev_name} {'features' if i == 0 else 'out_features'})")
        if L.input_bits != prev_bits:
            raise IRError(f"{lw}.input_bits: {L.input_bits}, expected {prev_bits} (= {prev_name} output bits)")
        if L.kind == "xnor_popcount" and (L.input_bits != 1 or L.weight_bits != 1):
            raise IRError(f"{lw}: kind 'xnor_popcount' needs input_bits=1 and weight_bits=1, "
                          f"got {L.input_bits} and {L.weight_bits}")
        if L.kind == "accumulate" and L.weight_bits != 2:
            raise IRError(f"{lw}.weight_bits: {L.weight_bits}, expected 2 for kind 'accumulate' (ternary)")
        if L.kind == "shift_add" and L.weight_bits < 2:
            raise IRError(f"{lw}.weight_bits: {L.weight_bits}, expected >= 2 for kind 'shift_add'")
        if L.kind == "lut_product":
            pshape = (1 << L.weight_bits, 1 << L.input_bits)
            got = None if L.products is None else L.products.shape
            if got != pshape:
                raise IRError(f"{wfile}: {L.name}.products: shape {got}, expected {pshape} "
                              f"(2**weight_bits x 2**input_bits)")
            if np.abs(L.products).max(initial=0) >= 1 << 24:
                raise IRError(f"{wfile}: {L.name}.products: values exceed +-2**24")
        if (L.output == "argmax") != last:
            raise IRError(f"{lw}.output.type: {L.output!r}, expected "
                          f"{'argmax' if last else 'threshold or requantize'} for "
                          f"{'the last' if last else 'a hidden'} layer")
        if L.output != "argmax" and not 1 <= (L.output_bits or 0) <= MAX_BITS:
            raise IRError(f"{lw}.output.bits: {L.output_bits}, expected 1..{MAX_BITS}")
        if L.output == "threshold" and (L.output_bits or 0) > 8:
            raise IRError(f"{lw}.output.bits: {L.output_bits}, expected <= 8 for a multi-threshold stage")
        shape = (L.rows, L.cols)
        if L.weights.ndim != 2 or (L.conv is None and L.weights.shape != shape) or L.weights.shape[1] != L.cols:
            raise IRError(f"{wfile}: {L.name}.weights: shape {L.weights.shape}, expected {shape}")
        lo, hi = L.weight_range()
        if L.weights.size and (L.weights.min() < lo or L.weights.max() > hi):
            raise IRError(f"{wfile}: {L.name}.weights: values in [{L.weights.min()}, {L.weights.max()}], "
                          f"expected [{lo}, {hi}] for kind {L.kind!r} with weight_bits={L.weight_bits}")
        if L.kind == "shift_add":
            mag = np.abs(L.weights[L.weights != 0])
            if mag.size and np.any(mag & (mag - 1)):
                bad = int(mag[(mag & (mag - 1)) != 0][0])
                raise IRError(f"{wfile}: {L.name}.weights: magnitude {bad} is not a power of two "
                              f"(kind 'shift_add' takes 0 and +-2**e)")
        if L.output == "threshold":
            tshape = (L.rows, L.n_thresholds)
            if L.thresholds is None or L.thresholds.shape != tshape:
                got = None if L.thresholds is None else L.thresholds.shape
                raise IRError(f"{wfile}: {L.name}.thresholds: shape {got}, expected {tshape}")
            if L.n_thresholds > 1 and np.any(np.diff(L.thresholds, axis=1) < 0):
                raise IRError(f"{wfile}: {L.name}.thresholds: not ascending along each row")
        if L.bias is not None and L.bias.shape != (L.rows,):
            raise IRError(f"{wfile}: {L.name}.bias: shape {L.bias.shape}, expected ({L.rows},)")
        if L.output == "requantize" and not 0 <= L.shift <= 62:
            raise IRError(f"{lw}.output.shift: {L.shift}, expected 0..62")
        prev_features, prev_bits, prev_name = L.out_features, (L.output_bits or 0), f"layers[{i}]"
