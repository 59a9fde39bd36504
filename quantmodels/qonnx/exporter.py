"""lowbit IR -> QONNX: MultiThreshold + MatMul with integer weight initializers.

The graph takes the raw samples as ``float32(p) / 255`` (:func:`.graph.pixels_to_graph`), shape
``(1, *source_shape)``, and computes every IR integer exactly in float32 (all values are integers
below 2**24, checked):

* input quantizer: one MultiThreshold with global thresholds ``(k - 0.5) / 255`` at the pixels
  where the code steps (threshold t; truncate / identity: every ``2**(8 - bits)`` pixels);
* per layer, ``acc`` = MatMul of the input codes with the integer weights (+-1 for
  ``xnor_popcount``, plus a constant Add of each row's -1 count, since popcount(xnor) =
  ``c . w + #(w = -1)``); ``lut_product``: if the product table is ``book[k] * u[c]`` (rank one)
  and the layer is the first, the input MultiThreshold emits ``u`` directly and the MatMul
  weights are ``book[w]``; otherwise a thermometer code (one MultiThreshold per input level,
  Concat, MatMul with the table's differences; up to 16 input levels; export only: import
  expects a chain);
* output stage: MultiThreshold on ``acc`` with the IR thresholds (requantize:
  ``T_k = k * 2**shift - bias``), last layer: Add bias -> logits.
``conv2d`` layers become Conv (OIHW weights, zero padding = code 0, as the IR pads) + MultiThreshold
(NCHW) + MaxPool; a dense layer after them reads the NCHW Flatten through permuted weight columns.
Not expressible here: ``lut_product`` conv layers and hidden ``lut_product`` layers with more than
16 input levels.
"""
from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..ir import IRModel, Layer, kind_spec

DOMAIN = "qonnx.custom_op.general"
EXACT = 1 << 24  #: float32 holds every integer below this exactly


class _G:
    """Graph under construction: nodes, initializers, unique names."""

    def __init__(self) -> None:
        self.nodes, self.inits, self.dtypes, self._n = [], [], {}, 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, base: str, value: np.ndarray, dtype: str | None = None) -> str:
        from onnx import numpy_helper

        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), n))
        if dtype:
            self.dtypes[n] = dtype
        return n

    def node(self, op: str, inputs: list[str], base: str, custom: bool = False, **attrs) -> str:
        from onnx import helper

        out = self.name(base + "_out")
        kw = {"domain": DOMAIN} if custom else {}
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(op), **kw, **attrs))
        return out

    def threshold(self, x: str, T: np.ndarray, base: str, out_bits: int, out_bias: float = 0.0, layout: str = "NC") -> str:
        T = np.asarray(T, np.float64)
        if np.abs(T).max(initial=0) >= EXACT:
            raise ConfigError(f"{base}: thresholds beyond 2**24, float32 MultiThreshold would round them")
        return self.node("MultiThreshold", [x, self.const(base + "_T", T.astype(np.float32))], base, custom=True,
                         out_dtype=_int_dtype(out_bias, out_bits), out_bias=float(out_bias), data_layout=layout)


def _int_dtype(bias: float, bits: int) -> str:
    return f"UINT{bits}" if bias >= 0 else f"INT{bits + 1}"


def _check_exact(layer: Layer) -> None:
    lo, hi = layer.logit_range()
    if max(abs(lo), abs(hi)) >= EXACT:
        raise ConfigError(f"{layer.name}: accumulator range [{lo}, {hi}] exceeds 2**24, float32 QONNX cannot "
                          f"hold it exactly")


def _rank_one(P: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(book (rows,), u (cols,)) integers with P = outer(book, u), u's first nonzero positive; else None."""
    r = int(np.abs(P).max(1).argmax())
    row = P[r]
    if not row.any():
        return None
    g = 0
    for v in row:
        g = gcd(g, int(abs(v)))
    u = row // g
    if u[np.flatnonzero(u)[0]] < 0:
        u = -u
    j = int(np.abs(u).argmax())
    book = P[:, j] // u[j]
    return (book, u) if np.array_equal(np.outer(book, u), P) else None


def _input_pixels(model: IRModel) -> np.ndarray:
    """Code of every pixel value 0..255 under the IR's input quantizer."""
    p = np.arange(256)
    q = model.input
    if q.quantizer == "threshold":
        return (p >= q.threshold).astype(np.int64)
    if q.quantizer == "truncate":
        return p >> (8 - q.bits)
    return p


def _pixel_thresholds(values: np.ndarray) -> np.ndarray:
    """Global MultiThreshold thresholds on p/255 reproducing a non-decreasing integer table values[p]."""
    steps = np.diff(values)
    T = [(t + 0.5) / 255.0 for t in range(255) for _ in range(int(steps[t]))]
    return np.array(T, np.float64)[None, :] if T else np.full((1, 1), 2.0)  # 2.0: never reached


def export_qonnx(model: IRModel, path: str | Path) -> Path:
    """Write ``model`` as a QONNX file (see the module docstring); returns the path."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    model.validate()
    for L in model.layers:
        _check_exact(L)
    g = _G()
    first = model.layers[0]
    x_in = "global_in"
    if first.conv is not None:  # NCHW image input
        H, W_, C = first.conv.in_shape
        in_shape, x, layout = [1, C, H, W_], x_in, "NCHW"
    else:
        src = list(model.input.source_shape)
        in_shape = [1] + (src if 0 < len(src) <= 2 else [model.input.features])
        x = g.node("Reshape", [x_in, g.const("flat", np.array([-1, model.input.features], np.int64))], "flatten")
        layout = "NC"
    codes = _input_pixels(model)
    fac = _rank_one(first.products) if kind_spec(first.kind).needs_products else None
    if fac is not None and np.all(np.diff(fac[1][codes]) <= 0):
        fac = (-fac[0], -fac[1])  # the input values must rise with the pixel
    if fac is not None and np.all(np.diff(fac[1][codes]) >= 0):
        book, u = fac
        vals = u[codes]
        x = g.threshold(x, _pixel_thresholds(vals - vals[0]), "input_q", max(1, int(vals.max() - vals.min()).bit_length()),
                        out_bias=float(vals[0]), layout=layout)
        folded_first = book  # weights become book[index]
    else:
        x = g.threshold(x, _pixel_thresholds(codes), "input_q", model.input.bits, layout=layout)
        folded_first = None
    nchw = None  #: (C, PH, PW) when x is a conv output image
    for i, L in enumerate(model.layers):
        w = L.weights.astype(np.int64)
        add = None
        if i == 0 and folded_first is not None:
            W, dt = folded_first[w], f"INT{max(2, int(np.abs(folded_first).max()).bit_length() + 1)}"
        elif kind_spec(L.kind).bipolar:
            W, dt = 2 * w - 1, "BIPOLAR"
            add = (w == 0).sum(1)
        elif kind_spec(L.kind).needs_products:
            if L.conv is not None or nchw is not None:
                raise ConfigError(f"{L.name}: lut_product next to conv2d layers is not exported (only as a dense "
                                  f"layer, or a first layer with a rank-one product table)")
            x, W, add = _thermometer(g, x, L)
            dt = None
        else:
            W, dt = w, f"INT{L.weight_bits}"
        if L.conv is not None:
            cv = L.conv
            kh, kw = cv.kernel
            Wc = W.reshape(L.rows, kh, kw, cv.in_shape[2]).transpose(0, 3, 1, 2)
            acc = g.node("Conv", [x, g.const(L.name + "_W", Wc.astype(np.float32), dt)], L.name, kernel_shape=[kh, kw],
                         strides=[cv.stride] * 2, pads=[cv.padding] * 4)
            if add is not None and np.any(add):
                acc = g.node("Add", [acc, g.const(L.name + "_n", np.asarray(add, np.float32).reshape(1, -1, 1, 1))],
                             L.name + "_add")
            x = g.threshold(acc, _stage_thresholds(L), L.name + "_q", L.output_bits, layout="NCHW")
            if cv.pool != (1, 1):
                x = g.node("MaxPool", [x], L.name + "_pool", kernel_shape=[cv.pool[0]] * 2, strides=[cv.pool[1]] * 2)
            ph, pw = cv.out_hw
            nchw = (L.rows, ph, pw)
            continue
        if nchw is not None:  # flatten the conv image NCHW; the IR's vector is (H, W, C): permute columns
            c, ph, pw = nchw
            x = g.node("Flatten", [x], "flatten", axis=1)
            W = W.reshape(L.rows, ph, pw, c).transpose(0, 3, 1, 2).reshape(L.rows, -1)
            nchw = None
        acc = g.node("MatMul", [x, g.const(L.name + "_W", W.T.astype(np.float32), dt)], L.name)
        if add is not None and np.any(add):
            acc = g.node("Add", [acc, g.const(L.name + "_n", np.asarray(add, np.float32))], L.name + "_add")
        if L.output == "argmax":
            if L.bias is not None:
                acc = g.node("Add", [acc, g.const(L.name + "_b", L.bias.astype(np.float32))], L.name + "_bias")
            x = acc
            break
        x = g.threshold(acc, _stage_thresholds(L), L.name + "_q", L.output_bits)
    graph = helper.make_graph(g.nodes, model.name, [helper.make_tensor_value_info(x_in, TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, model.n_classes])],
                              initializer=g.inits)
    mw = ModelWrapper(qonnx_make_model(graph, producer_name="lowbit", opset_imports=[helper.make_opsetid("", 13)]))
    for t, dt in g.dtypes.items():
        mw.set_tensor_datatype(t, DataType[dt])
    mw = mw.transform(InferShapes())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mw.save(str(path))
    return path


def _stage_thresholds(L: Layer) -> np.ndarray:
    """The output stage as MultiThreshold thresholds on acc (out, 2**bits - 1)."""
    if L.output == "threshold":
        return L.thresholds
    # requantize: clip((acc + bias) >> shift, 0, 2**b - 1) = #{k: acc >= k 2**shift - bias}
    k = np.arange(1, 1 << L.output_bits, dtype=np.int64)
    b = L.bias if L.bias is not None else np.zeros(L.rows, np.int64)
    return (k[None, :] << L.shift) - b.astype(np.int64)[:, None]


def _thermometer(g: _G, x: str, L: Layer):
    """lut_product as ``sum_l [c >= l] * dP_l[w]`` + ``P[w, 0]``: (concat tensor, weights (out, (K)*in), add)."""
    levels = 1 << L.input_bits
    if levels > 16:
        raise ConfigError(f"{L.name}: lut_product with {levels} input levels, export supports at most 16 "
                          f"(thermometer code) unless it is the first layer with a rank-one product table")
    P = L.products.astype(np.int64)
    w = L.weights.astype(np.int64)
    parts, blocks = [], []
    for lvl in range(1, levels):
        parts.append(g.threshold(x, np.full((1, 1), lvl - 0.5), f"{L.name}_ge{lvl}", 1))
        blocks.append(P[w, lvl] - P[w, lvl - 1])
    cat = g.node("Concat", parts, L.name + "_thermo", axis=1)
    return cat, np.concatenate(blocks, axis=1), P[w, 0].sum(1)
