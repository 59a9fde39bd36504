"""Small QONNX graphs built with the onnx.helper API, mimicking Brevitas exports (tests only)."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

QDOM = "onnx.brevitas"  # the domain Brevitas wrote; qonnx's cleanup renames it


class Builder:
    def __init__(self, seed: int = 0):
        self.nodes, self.inits, self.rng, self.k = [], [], np.random.default_rng(seed), 0

    def const(self, v, dtype=np.float32) -> str:
        self.k += 1
        name = f"c{self.k}"
        self.inits.append(numpy_helper.from_array(np.asarray(v, dtype), name))
        return name

    def node(self, op, inputs, name=None, domain="", **attrs) -> str:
        self.k += 1
        out = f"t{self.k}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name or f"{op}_{self.k}", domain=domain, **attrs))
        return out

    def bipolar(self, x, scale=1.0) -> str:
        return self.node("BipolarQuant", [x, self.const(scale)], domain=QDOM)

    def quant(self, x, scale, bits, signed=1, narrow=0, zp=0.0, rounding="ROUND", name=None) -> str:
        return self.node("Quant", [x, self.const(scale), self.const(zp), self.const(float(bits))], name=name,
                         domain=QDOM, signed=signed, narrow=narrow, rounding_mode=rounding)

    def model(self, x_in: str, out: str, in_shape, n_out: int):
        g = helper.make_graph(self.nodes, "test", [helper.make_tensor_value_info(x_in, TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, n_out])], initializer=self.inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def brevitas_tfc(sizes=(16, 12, 8, 4), seed=0, act="bipolar", w="bipolar", in_hw=(4, 4), tail=True):
    """TFC-style graph: Reshape, 2x-1, input quantizer, then per layer Transpose(quantized W) -> MatMul
    -> BatchNormalization -> activation quantizer; last MatMul -> scalar TensorNorm tail."""
    b = Builder(seed)
    r = b.rng
    x = b.node("Reshape", ["x", b.const([1, -1], np.int64)], name="flatten")
    x = b.node("Sub", [b.node("Mul", [x, b.const(2.0)]), b.const(1.0)])
    q = (lambda t: b.bipolar(t)) if act == "bipolar" else (lambda t: b.quant(t, 1.0, 2, narrow=1))
    x = q(x)
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        W = r.normal(size=(n_out, n_in)).astype(np.float32)
        wq = b.bipolar(b.const(W)) if w == "bipolar" else b.quant(b.const(W), 0.5, 2, narrow=1)
        x = b.node("MatMul", [x, b.node("Transpose", [wq], perm=[1, 0])], name=f"fc{i}")
        if i < len(sizes) - 2:
            x = b.node("BatchNormalization", [x, b.const(r.uniform(-1, 1, n_out)), b.const(r.normal(size=n_out)),
                                              b.const(r.normal(size=n_out) * 2), b.const(r.uniform(0.5, 4, n_out))],
                       epsilon=1e-5)
            x = q(x)
    if tail:
        x = b.node("Add", [b.node("Mul", [b.node("Div", [b.node("Sub", [x, b.const([0.3])]), b.const([4.2])]),
                                          b.const([0.7])]), b.const([-1.1])])
    return b.model("x", x, (1, 1) + tuple(in_hw), sizes[-1])


def wide_mlp(seed=0, in_hw=(4, 4)):
    """Wider integers: 8-bit unsigned input Quant, Gemm (bias) with 4-bit per-channel-scaled weights,
    Relu + unsigned 3-bit activation Quant with zero point 2, a MultiThreshold activation, MatMul logits."""
    b = Builder(seed)
    r = b.rng
    n = in_hw[0] * in_hw[1]
    x = b.node("Flatten", ["x"], axis=1)
    x = b.quant(x, 1 / 255, 8, signed=0)
    W0 = r.normal(size=(8, n)).astype(np.float32)
    w0 = b.quant(b.const(W0), r.uniform(0.1, 0.3, (8, 1)), 4, narrow=1)
    x = b.node("Gemm", [x, w0, b.const(r.normal(size=8))], transB=1)
    x = b.quant(b.node("Relu", [x]), 0.25, 3, signed=0, zp=2.0)  # a zero point: codes 0, 1 unused
    W1 = r.normal(size=(6, 8)).astype(np.float32)
    x = b.node("MatMul", [x, b.node("Transpose", [b.quant(b.const(W1), 0.125, 3)], perm=[1, 0])])
    T = np.sort(r.normal(size=(6, 3)), axis=1)
    x = b.node("MultiThreshold", [x, b.const(T)], domain="qonnx.custom_op.general", out_dtype="UINT2")
    W2 = r.integers(-3, 4, (6, 3)).astype(np.float32)
    x = b.node("MatMul", [x, b.const(W2)])
    return b.model("x", x, (1, 1) + tuple(in_hw), 3)


def brevitas_cnv(seed=0, act="bipolar", in_hw=(8, 8), channels=(4, 6), pad=0):
    """CNV-style graph: per conv layer quantized OIHW weights -> Conv -> BatchNormalization ->
    activation quantizer (-> MaxPool 2 after the first); Flatten; MatMul logits.
    act="bipolar": BipolarQuant inputs/activations (2x-1 on the pixels); act="uint": unsigned
    2-bit Quant activations and an 8-bit unsigned input Quant (code 0 = value 0, so padding is exact)."""
    b = Builder(seed)
    r = b.rng
    if act == "bipolar":
        x = b.bipolar(b.node("Sub", [b.node("Mul", ["x", b.const(2.0)]), b.const(1.0)]))
        qa = b.bipolar
    else:
        x = b.quant("x", 1 / 255, 8, signed=0)
        qa = (lambda t: b.quant(b.node("Relu", [t]), 0.5, 2, signed=0))
    c_in = 1
    for i, c in enumerate(channels):
        W = r.normal(size=(c, c_in, 3, 3)).astype(np.float32)
        wq = b.bipolar(b.const(W)) if act == "bipolar" else b.quant(b.const(W), 0.25, 3, narrow=1)
        x = b.node("Conv", [x, wq], name=f"conv{i}", kernel_shape=[3, 3], pads=[pad] * 4)
        x = b.node("BatchNormalization", [x, b.const(r.uniform(-1, 1, c)), b.const(r.normal(size=c)),
                                          b.const(r.normal(size=c) * 3), b.const(r.uniform(0.5, 4, c))], epsilon=1e-5)
        x = qa(x)
        if i == 0:
            x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
        c_in = c
    x = b.node("Flatten", [x], axis=1)
    h = in_hw[0]
    for i in range(len(channels)):
        h = h + 2 * pad - 2
        if i == 0:
            h //= 2
    W = r.normal(size=(3, channels[-1] * h * h)).astype(np.float32)
    wq = b.bipolar(b.const(W)) if act == "bipolar" else b.quant(b.const(W), 0.25, 3, narrow=1)
    x = b.node("MatMul", [x, b.node("Transpose", [wq], perm=[1, 0])], name="fc")
    x = b.node("Mul", [x, b.const([0.5])])
    return b.model("x", x, (1, 1) + tuple(in_hw), 3)


def trunc_mlp(seed=0, in_hw=(4, 4)):
    """Brevitas-style Trunc after an 8-bit activation Quant (floor to 4 bits): the next layer's input
    values are not evenly spaced in the 8-bit code, so it becomes a lut_product layer."""
    b = Builder(seed)
    r = b.rng
    n = in_hw[0] * in_hw[1]
    x = b.quant(b.node("Flatten", ["x"], axis=1), 1 / 255, 8, signed=0)
    w = b.quant(b.const(r.normal(size=(8, n))), 0.25, 3, narrow=1)
    x = b.node("MatMul", [x, b.node("Transpose", [w], perm=[1, 0])])
    x = b.quant(b.node("Relu", [x]), 1 / 16, 8, signed=0)
    x = b.node("Trunc", [x, b.const(1 / 16), b.const(0.0), b.const(8.0), b.const(4.0)], domain=QDOM,
               rounding_mode="FLOOR")
    x = b.node("MatMul", [x, b.const(r.integers(-3, 4, (8, 3)))])
    return b.model("x", x, (1, 1) + tuple(in_hw), 3)
