"""QONNX -> lowbit IR, streamlined exactly.

The graph after qonnx's cleanup must be one data path: an input prefix (flatten plumbing,
elementwise constants, the input quantizer), then per layer a linear op (MatMul / Gemm, or Conv
with one stride and padding) with a constant quantized weight, elementwise ops
(BatchNormalization, Relu, Trunc, Add/Sub/Mul/Div by constants) and the next activation quantizer
(BipolarQuant, Quant/IntQuant, MultiThreshold), then optionally MaxPool (after a Conv: the IR's
fused pool over output codes, exact because code values rise with the code) and a Flatten
(NCHW; the next dense layer's columns are permuted to the IR's channels-last order); after the
last linear op a scalar tail (Brevitas' TensorNorm: Sub/Div/Mul/Add).

Input quantizer
    The prefix is evaluated by the executor on the 256 constant images ``p / 255``: the value
    table ``v(p)`` it feeds the first layer. Two values split at one pixel ``t`` -> IR input
    quantizer ``threshold`` t; otherwise the fewest bits ``b`` such that ``v`` depends only on
    ``p >> (8 - b)`` -> ``truncate`` b (``identity`` for b = 8). A non-uniform value table (the
    1W2A / 2W2A inputs {-1, 0, +1} at pixels 64 and 192) makes the first layer ``lut_product``:
    the product table holds ``w * v(code)`` in integer units, so no value is approximated.
Weights
    Integer codes from the weight quantizer (BipolarQuant -> +-1, Quant -> its rounded clipped
    integers, a per-output scale kept apart; zero point must be 0) or integer-valued
    initializers. +-1 weights with 1-bit inputs -> ``xnor_popcount``; +-1 / ternary ->
    ``accumulate``; 0 and +-2**e -> ``shift_add``; other wider codes -> ``bit_serial`` (<= 4 bits)
    or ``mac``.
Thresholds
    Per layer, the real MatMul output is ``y_o = s_o (a acc + b_o)`` (``a``, ``b_o`` from the
    input code values and the kind's accumulator). The level function ``f(acc)`` = code of the
    next quantizer's output when the executor runs the layer's own elementwise nodes on
    ``float32(y)``; :func:`quantmodels.thresholds.exact_thresholds` binary-searches it per
    channel (decreasing channels flipped: inverted bits / negated weights).
Last layer
    logits ``A acc + B_o`` through the tail; a common ``A`` is required (argmax is invariant
    under it), ``B_o / A`` becomes the integer bias.
Where IR and graph can differ: the graph's float32 MatMul rounds when the scales are not powers
of two (the summary says so), and float logits ties; :func:`quantmodels.qonnx.check.agreement`
measures it.
"""
from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..bitwidth import signed_bits
from ..errors import IRError
from ..ir import ConvSpec, InputSpec, IRModel, Layer, kind_spec
from ..ir.kinds import pow2_weight_bits
from ..thresholds import exact_thresholds
from .graph import (ELEMENTWISE, LAYOUT, LINEAR, QUANTIZERS, attr, const_value, dynamic_inputs, is_const, load_qonnx,
                    node_label, pixels_to_graph, run_nodes)


@dataclass
class LayerNote:
    name: str  #: IR layer name
    node: str  #: the QONNX linear node it came from
    kind: str
    shape: tuple[int, int]  #: (out, in)
    weight_bits: int
    input_bits: int
    output: str  #: threshold bits or argmax


@dataclass
class ImportSummary:
    """What the importer did and where the IR may differ from the graph."""

    source: str
    input: str  #: the derived input quantizer, in words
    layers: list[LayerNote] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  #: possible graph/IR differences

    def render(self) -> str:
        lines = [f"imported {self.source}", f"  input: {self.input}"]
        for L in self.layers:
            lines.append(f"  {L.name:6s} <- {L.node:24s} {L.kind:14s} {L.shape[0]}x{L.shape[1]}  "
                         f"W{L.weight_bits} A{L.input_bits} -> {L.output}")
        lines += [f"  note: {n}" for n in self.notes] or ["  exact: no float rounding or ties expected beyond float32 logits"]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"source": self.source, "input": self.input, "notes": self.notes,
                "layers": [vars(L) | {"shape": list(L.shape)} for L in self.layers]}


# ----------------------------------------------------------------------------- graph walk


def _data_path(m) -> list:
    """The nodes from the graph input to its output, checked to form one chain."""
    t, out, path = m.graph.input[0].name, m.graph.output[0].name, []
    for n in m.graph.node:
        if n.op_type in LINEAR and len(n.input) > 1 and not is_const(m, n.input[1]):
            raise IRError(f"{node_label(n)}: weight {n.input[1]!r} is not constant, expected a constant weight "
                          f"(an initializer, possibly through Quant/BipolarQuant/Transpose)")
    while t != out:
        cons = m.find_consumers(t)
        for c in cons:
            if c.op_type in LINEAR and c.input[0] != t:
                raise IRError(f"{node_label(c)}: weight {t!r} is not constant, expected a constant weight "
                              f"(an initializer, possibly through Quant/BipolarQuant/Transpose)")
        if len(cons) != 1:
            what = ", ".join(node_label(c) for c in cons) or "nothing"
            raise IRError(f"tensor {t!r} feeds {what}, expected exactly one node (lowbit maps a chain of layers)")
        n = cons[0]
        dyn = dynamic_inputs(m, n)
        if n.op_type in LINEAR:
            if n.input[0] != t:
                raise IRError(f"{node_label(n)}: data must be input 0, found it at another input")
            if len(dyn) != 1:
                raise IRError(f"{node_label(n)}: weight {n.input[1]!r} is not constant, expected a constant "
                              f"weight (an initializer, possibly through Quant/BipolarQuant/Transpose)")
        elif len(dyn) != 1:
            raise IRError(f"{node_label(n)}: {len(dyn)} non-constant inputs, expected one (elementwise ops "
                          f"take constants)")
        path.append(n)
        t = n.output[0]
    return path


def _split(path: list) -> tuple[list, list[tuple[object, list]]]:
    """(prefix nodes, [(linear node, nodes after it up to the next linear node)])."""
    idx = [i for i, n in enumerate(path) if n.op_type in LINEAR]
    if not idx:
        raise IRError("graph has no MatMul, Gemm or Conv node, expected at least one layer")
    segs = []
    for k, i in enumerate(idx):
        end = idx[k + 1] if k + 1 < len(idx) else len(path)
        segs.append((path[i], path[i + 1:end]))
    return path[:idx[0]], segs


# ----------------------------------------------------------------------------- quantizers


def _scalar(m, node, i: int, what: str) -> float:
    v = const_value(m, node.input[i])
    if v.size != 1:
        raise IRError(f"{node_label(node)}: {what} has shape {list(v.shape)}, expected a scalar "
                      f"(per-tensor activation quantization)")
    return float(v.reshape(()))


def quant_grid(m, node) -> np.ndarray:
    """Real values (float64 of the executor's float32) of a quantizer's integer codes 0..L-1."""
    op = node.op_type
    if op == "BipolarQuant":
        s = np.float32(_scalar(m, node, 1, "scale"))
        return np.array([-1, 1], np.float32).astype(np.float64) * float(s)
    if op in ("Quant", "IntQuant"):
        from qonnx.custom_op.general.quant import max_int, min_int

        s, z = np.float32(_scalar(m, node, 1, "scale")), np.float32(_scalar(m, node, 2, "zero point"))
        b = _scalar(m, node, 3, "bit width")
        signed, narrow = int(attr(node, "signed", 1)), int(attr(node, "narrow", 0))
        if b != int(b) or not 1 <= b <= 16:
            raise IRError(f"{node_label(node)}: bit width {b}, expected an integer in 1..16")
        if b == 1 and signed:
            q = np.array([-1.0, 1.0], np.float32)
        else:
            q = np.arange(min_int(signed, narrow, int(b)), max_int(signed, narrow, int(b)) + 1).astype(np.float32)
        return ((q - z) * s).astype(np.float64)
    if op == "MultiThreshold":
        T = const_value(m, node.input[1])
        if T.ndim != 2:
            raise IRError(f"{node_label(node)}: thresholds of shape {list(T.shape)}, expected (channels, steps)")
        c = np.arange(T.shape[1] + 1, dtype=np.float32)
        return (float(attr(node, "out_scale", 1.0)) * c + float(attr(node, "out_bias", 0.0))).astype(np.float64)
    raise IRError(f"{node_label(node)}: not a quantizer")


def _codes_of(y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Nearest grid code of each quantizer output value."""
    return np.abs(np.asarray(y, np.float64)[..., None] - grid).argmin(-1).astype(np.int64)


def _threshold_counter(m, node, out: int):
    """``x -> count(x >= T[c])`` per channel: qonnx's MultiThreshold count, as a sorted search."""
    T = np.sort(const_value(m, node.input[1]).astype(np.float32), axis=1)
    if T.shape[0] not in (1, out):
        raise IRError(f"{node_label(node)}: thresholds for {T.shape[0]} channels, expected 1 or {out}")
    T = np.broadcast_to(T, (out, T.shape[1]))

    def count(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return np.stack([np.searchsorted(T[c], x[:, c], side="right") for c in range(out)], axis=1).astype(np.int64)
    return count


def _bits(levels: int) -> int:
    return max(1, math.ceil(math.log2(levels)))


# ----------------------------------------------------------------------------- weights


def weight_codes(m, tensor: str, user) -> tuple[np.ndarray, np.ndarray]:
    """(integer codes, scale broadcastable to them) of a constant weight tensor."""
    init = m.get_initializer(tensor)
    if init is not None:
        w = np.asarray(init, np.float64)
        if np.all(w == np.round(w)):
            return w, np.ones(1)
        s = np.where(w != 0, np.abs(w), np.inf).min(axis=tuple(range(w.ndim - 1)), keepdims=True)
        s = np.where(np.isfinite(s), s, 1.0)
        q = w / s
        if np.all(np.abs(q - np.round(q)) < 1e-4) and np.abs(q).max() < 2 ** 15:
            return np.round(q), s
        raise IRError(f"{node_label(user)}: weight {tensor!r} holds non-integer values, expected integer codes "
                      f"times a per-output scale (or a Quant/BipolarQuant node on the weight)")
    prod = m.find_producer(tensor)
    if prod.op_type == "Transpose":
        c, s = weight_codes(m, prod.input[0], user)
        perm = attr(prod, "perm") or list(range(c.ndim))[::-1]
        return c.transpose(perm), np.broadcast_to(s, c.shape).transpose(perm)
    if prod.op_type == "BipolarQuant":
        w, s = const_value(m, prod.input[0]), const_value(m, prod.input[1])
        return np.where(w >= 0, 1.0, -1.0), np.asarray(s, np.float64)
    if prod.op_type in ("Quant", "IntQuant"):
        from qonnx.custom_op.general.quant import quant

        w, s, z, b = (const_value(m, prod.input[i]) for i in range(4))
        if np.any(z != 0):
            raise IRError(f"{node_label(prod)}: weight zero point {z.ravel()[:3].tolist()}, expected 0 "
                          f"(lowbit weights are signed integer codes)")
        y = quant(w, s, z, b, int(attr(prod, "signed", 1)), int(attr(prod, "narrow", 0)),
                  attr(prod, "rounding_mode", "ROUND"))
        return np.rint(np.asarray(y, np.float64) / np.asarray(s, np.float64)), np.asarray(s, np.float64)
    raise IRError(f"{node_label(prod)}: produces the weight of {node_label(user)}, expected an initializer, "
                  f"Quant, BipolarQuant or Transpose")


def _dense_weights(m, node) -> tuple[np.ndarray, np.ndarray]:
    """MatMul weight (in, out) -> (codes (out, in) int64, per-output scale (out,))."""
    shape = m.get_tensor_shape(node.input[0])
    if shape is None or len(shape) != 2:
        raise IRError(f"{node_label(node)}: input shape {shape}, expected (batch, features) for a dense layer")
    c, s = weight_codes(m, node.input[1], node)
    if c.ndim != 2 or c.shape[0] != shape[1]:
        raise IRError(f"{node_label(node)}: weight shape {list(c.shape)}, expected ({shape[1]}, out)")
    s = np.broadcast_to(s, c.shape)
    if np.any(s != s[:1]):
        raise IRError(f"{node_label(node)}: weight scale varies along the input axis, expected one scale per output")
    return c.T.astype(np.int64), s[0].astype(np.float64)


def _conv_weights(m, node) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int], tuple[int, int], int, int]:
    """Conv -> (codes (O, kh*kw*C) in (ky, kx, c) order, scale (O,), in (H, W, C), kernel, stride, padding)."""
    shape = m.get_tensor_shape(node.input[0])
    if shape is None or len(shape) != 4:
        raise IRError(f"{node_label(node)}: input shape {shape}, expected (batch, C, H, W)")
    if len(node.input) > 2 and node.input[2]:
        raise IRError(f"{node_label(node)}: conv bias left after ExtractBiasFromConv")  # pragma: no cover
    group, dil = attr(node, "group", 1), attr(node, "dilations", [1, 1])
    strides, pads = attr(node, "strides", [1, 1]), attr(node, "pads", [0, 0, 0, 0])
    if group != 1 or list(dil) != [1, 1] or len(set(strides)) != 1 or len(set(pads)) != 1 \
            or attr(node, "auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise IRError(f"{node_label(node)}: group={group}, dilations={list(dil)}, strides={list(strides)}, "
                      f"pads={list(pads)}, expected group 1, dilation 1, one stride and one padding for every side")
    c, s = weight_codes(m, node.input[1], node)
    _, C, H, Wd = shape
    if c.ndim != 4 or c.shape[1] != C:
        raise IRError(f"{node_label(node)}: weight shape {list(c.shape)}, expected (out, {C}, kh, kw)")
    s = np.broadcast_to(s, c.shape).reshape(c.shape[0], -1)
    if np.any(s != s[:, :1]):
        raise IRError(f"{node_label(node)}: weight scale varies inside a filter, expected one scale per output channel")
    W = c.transpose(0, 2, 3, 1).reshape(c.shape[0], -1).astype(np.int64)
    return W, s[:, 0].astype(np.float64), (H, Wd, C), (c.shape[2], c.shape[3]), int(strides[0]), int(pads[0])


# ----------------------------------------------------------------------------- input prefix


def _layout_perm(m, nodes, in_shape) -> np.ndarray:
    """Flat index of the raw input feeding each position of the prefix's output."""
    idx = np.arange(int(np.prod(in_shape[1:]))).reshape([1] + list(in_shape[1:]))
    if len(in_shape) == 4 and in_shape[1] > 1:  # raw samples are channels-last (H, W, C), the graph NCHW
        _, C, H, W = in_shape
        idx = np.arange(C * H * W).reshape(1, H, W, C).transpose(0, 3, 1, 2)
    for n in nodes:
        if n.op_type == "Transpose":
            idx = idx.transpose(attr(n, "perm") or list(range(idx.ndim))[::-1])
        elif n.op_type in LAYOUT:
            shape = m.get_tensor_shape(n.output[0])
            idx = idx.reshape([1] + list(shape[1:]))
    return idx.reshape(-1)


def _input_quantizer(m, prefix, summary: ImportSummary):
    """(InputSpec fields, code values) from the prefix's value table over the 256 pixels."""
    iname = m.graph.input[0].name
    shape = m.get_tensor_shape(iname)
    feats = int(np.prod(shape[1:]))
    for n in prefix:
        if n.op_type not in LAYOUT | ELEMENTWISE | QUANTIZERS:
            raise IRError(f"{node_label(n)}: not supported before the first layer, expected layout, "
                          f"elementwise or quantizer ops")
        if n.op_type in ELEMENTWISE and n.op_type != "BatchNormalization":
            for t in n.input[1:]:
                if t and const_value(m, t).size != 1:
                    raise IRError(f"{node_label(n)}: constant of shape {list(const_value(m, t).shape)} before the "
                                  f"first layer, expected a scalar (one quantizer for every pixel)")
    pix = np.repeat(np.arange(256, dtype=np.uint8)[:, None], feats, axis=1)
    x = pixels_to_graph(pix).reshape([256] + list(shape[1:]))
    if prefix:
        out = run_nodes(m, prefix, {iname: x}, prefix[-1].output[0]).reshape(256, -1).astype(np.float64)
    else:
        out = x.reshape(256, -1).astype(np.float64)
    if np.any(out != out[:, :1]):
        raise IRError(f"{node_label(prefix[-1]) if prefix else 'input'}: the input prefix maps pixels differently "
                      f"per feature, expected one per-pixel quantizer")
    v = out[:, 0]
    perm = _layout_perm(m, prefix, shape)
    src = tuple(shape[1:])
    if len(src) == 3:  # NCHW graph input; lowbit's raw samples are (H, W) or (H, W, C)
        src = src[1:] if src[0] == 1 else (src[1], src[2], src[0])
    steps = np.flatnonzero(v[1:] != v[:-1]) + 1
    if len(steps) == 1:
        t = int(steps[0])
        vals = np.array([v[0], v[255]])
        summary.input = f"threshold: pixel >= {t} -> code 1 (graph value {v[255]:g}), else 0 ({v[0]:g})"
        return dict(features=feats, bits=1, quantizer="threshold", threshold=t, source_shape=src), vals, perm
    for b in range(1, 9):
        blocks = v.reshape(1 << b, -1)
        if np.all(blocks == blocks[:, :1]):
            break
    vals = v.reshape(1 << b, -1)[:, 0]
    q = "identity" if b == 8 else "truncate"
    shown = ", ".join(f"{u + 0.0:g}" for u in vals[:8]) + (" ..." if len(vals) > 8 else "")
    summary.input = f"{q}: code = pixel >> {8 - b} ({b} bits), graph values {shown}"
    return dict(features=feats, bits=b, quantizer=q, threshold=None, source_shape=src), vals, perm


# ----------------------------------------------------------------------------- per layer


@dataclass
class _Acc:
    """How a layer's accumulator relates to the real MatMul output: y_o = s_o (a acc + b_o)."""

    kind: str
    weights: np.ndarray  #: IR weights before flipping (bits, ints or values for lut)
    a: float
    b: np.ndarray  #: (out,)
    lo: np.ndarray
    hi: np.ndarray
    reflect: np.ndarray | int
    unit_codes: np.ndarray | None = None  #: lut: integer input values per code


def _affine(vals: np.ndarray) -> bool:
    if len(vals) < 2:
        return True
    a = vals[1] - vals[0]
    ref = vals[0] + a * np.arange(len(vals))
    return bool(np.all(np.abs(vals - ref) <= 1e-6 * max(1e-30, np.abs(vals).max())))


def _accumulator(W: np.ndarray, vals: np.ndarray, in_bits: int, name: str, summary: ImportSummary) -> _Acc:
    out, n = W.shape
    pm1 = bool(np.all(np.abs(W) == 1))
    tern = bool(np.all(np.abs(W) <= 1))
    rows = W.sum(1).astype(np.float64)
    if len(vals) <= 2 and in_bits == 1 and pm1:
        a = float(vals[1] - vals[0])
        nneg = (W < 0).sum(1)
        return _Acc("xnor_popcount", W, a, vals[0] * rows - a * nneg, np.zeros(out, np.int64), np.full(out, n, np.int64), n)
    if not _affine(vals):
        unit = float(np.abs(vals[vals != 0]).min())
        u = vals / unit
        if np.any(np.abs(u - np.round(u)) > 1e-6) or np.abs(u).max() > 2 ** 15:
            raise IRError(f"{name}: input code values {vals.tolist()[:6]} are neither evenly spaced nor integer "
                          f"multiples of one unit, expected a uniform or integer-valued quantizer")
        u = np.round(u).astype(np.int64)
        pmin = (W[..., None] * u).min(-1)
        pmax = (W[..., None] * u).max(-1)
        return _Acc("lut_product", W, unit, np.zeros(out), pmin.sum(1), pmax.sum(1), 0, unit_codes=u)
    a, cmax = float(vals[1] - vals[0]) if len(vals) > 1 else 1.0, len(vals) - 1
    kind = "accumulate" if tern else "bit_serial"
    return _Acc(kind, W, a, vals[0] * rows, np.minimum(W, 0).sum(1) * cmax, np.maximum(W, 0).sum(1) * cmax, 0)


def _real(acc: np.ndarray, A: _Acc, s: np.ndarray) -> np.ndarray:
    """float32 real MatMul output for integer accumulators (M, out)."""
    return (s * (A.a * acc.astype(np.float64) + A.b)).astype(np.float32)


def _flip(A: _Acc, flip: np.ndarray) -> np.ndarray:
    return np.where(flip[:, None], -A.weights, A.weights)


def _ir_weights(kind: str, W: np.ndarray, in_bits: int, A: _Acc):
    """(IR weight array, weight_bits, products or None, final kind) for signed codes W."""
    spec = kind_spec(kind)
    if spec.fixed_weight_bits is not None:  # +-1 bits, ternary: the kind fixes width and storage
        return spec.store_codes(W), spec.fixed_weight_bits, None, kind
    if spec.needs_products:
        book = np.unique(W)
        wb = _bits(len(book))
        idx = np.searchsorted(book, W)
        P = np.zeros((1 << wb, 1 << in_bits), np.int64)
        P[:len(book), :len(A.unit_codes)] = book[:, None] * A.unit_codes[None, :]
        return idx, wb, P, kind
    pow2_bits = pow2_weight_bits(W)
    if pow2_bits is not None and 2 < pow2_bits <= 16:
        # 0 and +-2**e only, some |w| > 1 (a power-of-two quantizer, e.g. Brevitas' po2 weights):
        # shifts, no multiplier
        return W, pow2_bits, None, "shift_add"
    wb = signed_bits(int(W.min()), int(W.max()))
    if wb > 16:
        raise IRError(f"weights need {wb} bits, expected at most 16")
    return W, wb, None, "bit_serial" if wb <= 4 else "mac"


def _is_pow2(x: np.ndarray) -> bool:
    x = np.abs(np.asarray(x, np.float64).ravel())
    x = x[x != 0]
    return bool(np.all(np.frexp(x)[0] == 0.5))


def _dyadic(x: np.ndarray) -> bool:
    """Every value an integer multiple of 2**-12 (float32 sums of such products stay exact)."""
    y = np.asarray(x, np.float64) * 4096.0
    return bool(np.all(y == np.round(y)))


def _argmax_layer(m, lin, after, A: _Acc, s: np.ndarray, lname: str, in_features: int, in_bits: int,
                  summary: ImportSummary) -> Layer:
    """The last layer: logits ``A acc + B_o`` through the tail; integer logits acc + round(B_o / A)."""
    feed, out = lin.output[0], A.weights.shape[0]
    for n in after:
        if n.op_type not in ELEMENTWISE - {"Relu", "Trunc"}:
            raise IRError(f"{node_label(n)}: after the last layer, expected only affine elementwise "
                          f"ops (Brevitas' TensorNorm tail: Sub/Div/Mul/Add, BatchNormalization)")
    if after:
        g = run_nodes(m, after, {feed: np.stack([np.zeros(out, np.float32), np.ones(out, np.float32)])},
                      after[-1].output[0]).reshape(2, out).astype(np.float64)
        alpha, beta = g[1] - g[0], g[0]
    else:
        alpha, beta = np.ones(out), np.zeros(out)
    Acoef = alpha * s * A.a
    B = alpha * s * A.b + beta
    if np.any(Acoef == 0) or np.any(np.sign(Acoef) != np.sign(Acoef[0])) or \
            np.abs(Acoef - Acoef[0]).max() > 1e-5 * abs(Acoef[0]):
        raise IRError(f"{node_label(lin)}: per-class logit scales {np.round(Acoef[:4], 6).tolist()}..., expected one "
                      f"common scale (lowbit's argmax compares integer logits)")
    Ac = float(Acoef.mean())
    flip = np.full(out, Ac < 0)
    if Ac < 0:
        B = B + Ac * np.broadcast_to(np.asarray(A.reflect, np.float64), (out,))
        Ac = -Ac
    bf = (B - B.min()) / Ac
    bias = np.round(bf).astype(np.int64)
    if np.abs(bf - bias).max() > 1e-6:
        summary.notes.append(f"{lname}: per-class logit offsets rounded to integers (max error "
                             f"{np.abs(bf - bias).max():.3g} logit units): near-ties may differ")
    summary.notes.append(f"{lname}: argmax of integer logits; the graph's float32 logits may tie or round "
                         f"differently where two classes are within float32 precision")
    Wf = _flip(A, flip)
    wir, wb, P, kind = _ir_weights(A.kind, Wf, in_bits, A)
    summary.layers.append(LayerNote(lname, node_label(lin), kind, Wf.shape, wb, in_bits, "argmax"))
    return Layer(lname, kind, in_features, out, in_bits, wb, "argmax", wir, products=P,
                 bias=bias if np.any(bias) else None)


def _after_quantizer(m, post: list, grid: np.ndarray, is_conv: bool) -> tuple[np.ndarray, tuple[int, int], bool]:
    """The nodes between a quantizer and the next layer: (values of the codes, max-pool (k, s), flattened)."""
    vals, pool, flat = grid, (1, 1), not is_conv
    for n in post:
        if n.op_type == "MaxPool" and not flat and pool == (1, 1):
            k, st = attr(n, "kernel_shape"), attr(n, "strides", None) or attr(n, "kernel_shape")
            pads = attr(n, "pads", [0, 0, 0, 0])
            if len(set(k)) != 1 or len(set(st)) != 1 or any(pads) or attr(n, "ceil_mode", 0):
                raise IRError(f"{node_label(n)}: kernel {list(k)}, strides {list(st)}, pads {list(pads)}, expected a "
                              f"square window, one stride, no padding, floor mode")
            if np.any(np.diff(vals) <= 0):
                raise IRError(f"{node_label(n)}: max-pool of codes whose values do not rise with the code")
            pool = (int(k[0]), int(st[0]))
        elif n.op_type in LAYOUT:
            shp = m.get_tensor_shape(n.output[0])
            if n.op_type == "Transpose" or shp is None or len(shp) != 2:
                raise IRError(f"{node_label(n)}: output shape {shp} between layers, expected a flatten to (batch, features)")
            flat = True
        elif n.op_type in ELEMENTWISE - {"BatchNormalization"}:
            for t in n.input[1:]:
                if t and const_value(m, t).size != 1:
                    raise IRError(f"{node_label(n)}: per-channel constant after a quantizer, expected a scalar")
            v32 = vals.astype(np.float32).reshape((1, -1) if flat else (1, -1, 1, 1))
            vals = run_nodes(m, [n], {dynamic_inputs(m, n)[0]: v32}, n.output[0]).ravel().astype(np.float64)
        else:
            raise IRError(f"{node_label(n)}: between a quantizer and the next layer, expected layout, MaxPool "
                          f"(after a Conv) or scalar elementwise ops")
    return vals, pool, flat


def import_qonnx(path: str | Path, name: str | None = None) -> tuple[IRModel, ImportSummary]:
    """Read a QONNX file and return the equivalent lowbit IR model and an import summary."""
    path = Path(path)
    m = load_qonnx(path)
    summary = ImportSummary(source=path.name, input="")
    prefix, segs = _split(_data_path(m))
    inp, vals, perm = _input_quantizer(m, prefix, summary)
    in_bits, in_features = inp["bits"], inp["features"]
    layers: list[Layer] = []
    nchw = None  #: (C, H, W) of the last conv output: the next dense layer reads it flattened NCHW
    for i, (lin, after) in enumerate(segs):
        last = i == len(segs) - 1
        conv = None
        if lin.op_type == "Conv":
            lname = f"conv{i}"
            if last:
                raise IRError(f"{node_label(lin)}: the last layer is a Conv, expected a dense (MatMul/Gemm) classifier")
            if i == 0 and any(n.op_type in LAYOUT for n in prefix):
                raise IRError(f"{node_label(lin)}: layout ops before the first Conv, expected the image as is")
            W, s, in_shape, kernel, stride, pad = _conv_weights(m, lin)
            if int(np.prod(in_shape)) != in_features:
                raise IRError(f"{node_label(lin)}: input {list(in_shape)}, expected {in_features} features")
            if pad and vals[0] != 0:
                raise IRError(f"{node_label(lin)}: padding {pad} reads the real value 0, but input code 0 stands for "
                              f"{vals[0]:g} (lowbit pads with code 0), expected padding 0 or a quantizer with 0 at code 0")
        else:
            lname = f"fc{i}"
            W, s = _dense_weights(m, lin)
            if nchw is not None:  # graph flattens (C, H, W); the IR's vector is (H, W, C)
                C_, H_, W_ = nchw
                W = W.reshape(-1, C_, H_, W_).transpose(0, 2, 3, 1).reshape(W.shape[0], -1)
        if lin.op_type != "Conv" and W.shape[1] != in_features:
            raise IRError(f"{node_label(lin)}: {W.shape[1]} inputs, expected {in_features} (the previous layer's outputs)")
        if i == 0 and lin.op_type != "Conv" and np.any(perm != np.arange(len(perm))):
            Wp = np.zeros_like(W)
            Wp[:, perm] = W
            W = Wp
        A = _accumulator(W, vals, in_bits, node_label(lin), summary)
        if not (_is_pow2(s) and _dyadic(vals)):
            summary.notes.append(f"{lname}: scales are not powers of two, the graph's float32 MatMul may round "
                                 f"differently from the exact integer sum near a threshold (measure with --check)")
        feed = lin.output[0]
        out = W.shape[0]
        fshape = (lambda M: (M, out, 1, 1)) if lin.op_type == "Conv" else (lambda M: (M, out))
        if last:
            layers.append(_argmax_layer(m, lin, after, A, s, lname, in_features, in_bits, summary))
            break
        qi = [k for k, n in enumerate(after) if n.op_type in QUANTIZERS]
        if not qi:
            raise IRError(f"{node_label(lin)}: no activation quantizer before the next layer, expected "
                          f"BipolarQuant, Quant or MultiThreshold (lowbit layers exchange integer codes)")
        pre, q, post = after[:qi[0]], after[qi[0]], after[qi[0] + 1:]
        for n in pre:
            if n.op_type not in ELEMENTWISE:
                raise IRError(f"{node_label(n)}: between {node_label(lin)} and its quantizer, expected elementwise ops")
        grid = quant_grid(m, q)
        out_bits = _bits(len(grid))
        chain = pre + [q]
        count = _threshold_counter(m, q, out) if q.op_type == "MultiThreshold" else None

        def level(acc: np.ndarray, A=A, s=s, pre=pre, chain=chain, feed=feed, grid=grid, out=out,
                  count=count, fshape=fshape) -> np.ndarray:
            y = _real(acc, A, s).reshape(fshape(len(acc)))
            if count is not None:  # MultiThreshold: count(x >= T), computed by sorted search (no arithmetic)
                if pre:
                    y = run_nodes(m, pre, {feed: y}, pre[-1].output[0])
                return count(y.reshape(len(acc), out))
            y = run_nodes(m, chain, {feed: y}, chain[-1].output[0])
            return _codes_of(y.reshape(len(acc), out), grid)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            T, flip = exact_thresholds(level, A.lo, A.hi, 1 << out_bits, A.reflect, lname)
        summary.notes += [str(w.message) for w in caught]
        vals, pool, flat = _after_quantizer(m, post, grid, lin.op_type == "Conv")
        Wf = _flip(A, flip)
        wir, wb, P, kind = _ir_weights(A.kind, Wf, in_bits, A)
        if lin.op_type == "Conv":
            conv = ConvSpec(in_shape, kernel, stride, pad, pool)
            ph, pw = conv.out_hw
            nxt = ph * pw * out
            nchw = (out, ph, pw) if flat else None
        else:
            nxt, nchw = out, None
        layers.append(Layer(lname, kind, in_features, nxt, in_bits, wb, "threshold", wir, output_bits=out_bits,
                            thresholds=T, products=P, conv=conv))
        summary.layers.append(LayerNote(lname, node_label(lin), kind, Wf.shape, wb, in_bits,
                                        f"threshold {out_bits} bit ({len(grid)} levels)"
                                        + (f", max-pool {pool[0]}/{pool[1]}" if pool != (1, 1) else "")))
        in_bits, in_features = out_bits, nxt
    model = IRModel(name or path.stem, "qonnx", InputSpec(**inp), layers,
                    meta={"source": path.name, "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                          "import": summary.to_json()})
    return model.validate(), summary
