"""Export trained NumPy networks to the integer IR.

Generic exact export (every method but int8, lut included)
----------------------------------------------------------
Per hidden block the integer weight codes and scales come from the method's quantizer
(``Wq = alpha * codes``; lut: codebook indices, with the layer's product table as an extra IR
field). The IR accumulator ``acc`` relates to the integer accumulator ``D`` of the eval pass
(:meth:`~quantmodels.methods.base.WeightQuantizer.integer_dot`: ``u . codes``, or the lut
table sums) by ``D = 2 acc - n`` (xnor_popcount, n = fan-in; inputs and
weights are bits encoding +-1), ``D = acc - n_neg`` (xnor_popcount with unsigned {0, 1}
inputs, the methods with ``bipolar_1bit = False``: popcount(xnor(x, w)) counts the agreeing
bits, i.e. ``x . codes`` plus the row's number ``n_neg`` of -1 weights) or ``D = acc``
(dot-product and lut kinds, unsigned input levels).
Each channel's output level ``f(acc) = block.level_of_D(D(acc))`` is THE function the float
model's eval pass applies (float64: per-channel scale, XNOR-Net K, batch norm, activation
rounding). :func:`quantmodels.thresholds.exact_thresholds` finds the integer thresholds by
binary search over the channel's accumulator range (``[0, n]`` for xnor, ``[sum(min(c, 0)),
sum(max(c, 0))] * (2**input_bits - 1)`` for dot products, the sums of the table rows' minima
and maxima for lut) and flips decreasing channels (inverted bits / negated weights). The last
layer's ``D`` is a common positive affine map of ``acc`` for every class, so ``argmax(acc) ==
argmax(D)`` with the same first-index tie rule (for unsigned xnor inputs the per-class offset
goes into the layer's bias, logits = ``D``; a bias norm adds its integer bias ``round(b / scale)``,
exact for the lut tables' power-of-two scale). Hence golden == float eval on every input, by
construction.

BN threshold folding for explicit parameters: :func:`fold_bn_thresholds` (same search).

int8 post-training quantization
-------------------------------
Weights: per-layer symmetric ``round(W / s_w)``, ``s_w = max|W| / 127``. Inputs: raw uint8
pixels (scale 1/255). Hidden outputs: ``y = clip((acc + B) >> shift, 0, 255)`` with a power
of two scale chosen from the 99.99th percentile of the float activations on training data
(a conv layer's after its pool: the values the next layer reads);
``B = round(b / s_acc) + 2**(shift-1)`` folds the float bias and round-to-nearest.
Conv layers (int8's float :class:`~quantmodels.net.QuantNet`) become ``conv2d`` layers of the same kind
with the pool fused: the IR pads with input code 0, which stands for the real value 0 here
(pixel 0, activation level 0), as the float net's zero padding; and requantization
``clip(round(z / s), 0, 255)`` is non-decreasing in ``z``, so max-pooling the requantized
levels (IR, hardware) equals requantizing the max-pooled ReLU output (float net).
:func:`int8_plan` holds these integers with their real scales; :func:`int8_fake_quant`
is the same model simulated in floating point (the int8 method's quantized float forward pass,
which its golden model is checked against; its ``grid_snap`` rounding rule makes the two agree
on every input, ties included).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import InputSpec, IRModel, Layer, kind_spec
from .layers import ArchLayer, bn_eval, eval_batches
from .net import QuantNet
from .thresholds import exact_thresholds


def fold_bn_thresholds(w_bits: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                       var: np.ndarray, name: str = "layer") -> tuple[np.ndarray, np.ndarray]:
    """Fold eval-mode BN + sign (``bn_eval(2p - n) >= 0``) into (possibly row-flipped) weight
    bits and popcount thresholds (out, 1)."""
    n_out, n = w_bits.shape

    def f(p: np.ndarray) -> np.ndarray:
        return (bn_eval(2 * p - n, gamma, beta, mean, var) >= 0).astype(np.int64)

    t, flip = exact_thresholds(f, np.zeros(n_out, np.int64), np.full(n_out, n, np.int64), 2, n, name)
    wb = np.where(flip[:, None], 1 - w_bits, w_bits)
    return wb.astype(np.uint8), t.astype(np.int32)


def _wbits(block, W: np.ndarray, net, negated: bool, kind: str) -> int:
    """The layer's IR weight width: its quantizer's own (per-layer widths), the one its kind fixes
    when it differs from the method's (a K-bit first layer), or the method's."""
    w = block.wq.ir_weight_bits(W, net.params, negated)
    if w is not None:
        return w
    return (kind != net.kind and kind_spec(kind).fixed_weight_bits) or net.ir_weight_bits


def export_quantnet(net: QuantNet, name: str, image_shape: tuple[int, ...], meta: dict) -> IRModel:
    """QuantNet -> IR (see the module docstring), validated."""
    method = net.method
    layers = []
    in_bits, in_features = net.input_q.bits, int(np.prod(net.in_shape))
    for i, b in enumerate(net.blocks):
        last = i == len(net.blocks) - 1
        kind = net.first_kind if i == 0 else net.kind
        W = net.params[f"{b.name}.W"]
        codes, _ = b.wq.codes(W, net.params)
        extra = b.wq.ir_fields(W, net.params, b.in_act)
        n = b.fan_in
        xor = kind_spec(kind).bipolar  # bits standing for +-1: acc counts agreements
        if b.in_act.bipolar and not xor:
            raise ValueError(f"{b.name}: kind {kind!r} with bipolar inputs")
        if xor and not b.in_act.bipolar:  # unsigned {0, 1} inputs: D = acc - n_neg
            if b.in_act.bits != 1:
                raise ValueError(f"{b.name}: kind {kind!r} with {b.in_act.bits}-bit inputs")
            offset = (codes < 0).sum(1).astype(np.int64)
        else:  # bipolar: D = 2 acc - n
            offset = None
        conv = b.layer.conv_spec()
        out_features = int(np.prod(b.out_shape))
        ps = b.pre_scale()
        if last:
            bias = b.norm.integer_bias(ps)
            if offset is not None:
                bias = -offset if bias is None else bias - offset
            layers.append(Layer(b.name, kind, in_features, out_features, in_bits, _wbits(b, W, net, False, kind),
                                "argmax", method.ir_weights(codes, kind), conv=conv, bias=bias, **extra))
            break
        if xor:
            lo, hi, reflect = np.zeros(b.out, np.int64), np.full(b.out, n, np.int64), n
        else:
            lo, hi = b.wq.acc_range(W, net.params, b.in_act)
            reflect = 0

        def f(acc: np.ndarray, b=b, ps=ps, xor=xor, n=n, offset=offset) -> np.ndarray:
            if xor:
                return b.level_of_D(2 * acc - n if offset is None else acc - offset, ps)
            return b.level_of_D(acc, ps)

        T, flip = exact_thresholds(f, lo, hi, 1 << b.act.bits, reflect, b.name)
        if flip.any() and not b.wq.negatable:
            raise ValueError(f"{b.name}: output level decreasing in the accumulator, and the weight codes "
                             "cannot be negated")
        w = np.where(flip[:, None], -codes, codes)
        layers.append(Layer(b.name, kind, in_features, out_features, in_bits, _wbits(b, W, net, bool(flip.any()), kind),
                            "threshold", method.ir_weights(w, kind), output_bits=b.act.bits, thresholds=T,
                            conv=conv, **extra))
        in_bits, in_features = b.act.bits, out_features
    q = net.input_q
    inp = InputSpec(int(np.prod(net.in_shape)), q.bits, q.kind, q.threshold if q.kind == "threshold" else None,
                    tuple(image_shape))
    return IRModel(name, method.name, inp, layers, meta).validate()


@dataclass(frozen=True)
class Int8Layer:
    """One layer of the int8 PTQ plan: the integers the IR stores and the real scales they stand for."""

    layer: ArchLayer  #: geometry: dense, or conv with its fused pool
    wq: np.ndarray  #: int8 (out, fan_in) = round(W / s_w)
    bias: np.ndarray  #: int64 round(b / s_acc), without the requantize rounding half
    shift: int | None  #: requantize shift (None: the last layer, argmax)
    s_in: float  #: scale of the layer's input grid (1/(2**K - 1) for K-bit pixels: 1/255 raw)
    s_w: float  #: weight scale max|W| / 127
    in_bits: int = 8  #: bits of the layer's input levels (the first layer: the pixel bits it reads)

    @property
    def s_acc(self) -> float:
        return self.s_w * self.s_in


def int8_plan(net: QuantNet, calib: np.ndarray, percentile: float = 99.99) -> list[Int8Layer]:
    """The int8 post-training quantization of the float network ``net`` (see the module
    docstring), calibrated on ``calib``."""
    acts = net.block_outputs(calib)
    s_x, in_bits = net.input_q.scale, net.input_q.bits  # pixel levels (raw, or the top K bits)
    plan = []
    n_layers = len(net.blocks)
    for i, blk in enumerate(net.blocks):
        lay = blk.layer
        W, b = net.params[f"{lay.name}.W"].astype(np.float64), net.params[f"{lay.name}.b"].astype(np.float64)
        s_w = max(float(np.abs(W).max()), 1e-12) / 127.0
        wq = np.clip(np.round(W / s_w), -127, 127).astype(np.int8)
        s_acc = s_w * s_x
        bias = np.round(b / s_acc).astype(np.int64)
        if i == n_layers - 1:
            plan.append(Int8Layer(lay, wq, bias, None, s_x, s_w, in_bits))
            break
        amax = max(float(np.percentile(acts[i], percentile)), 1e-12)
        shift = max(0, int(np.ceil(np.log2(amax / (255.0 * s_acc)))))
        plan.append(Int8Layer(lay, wq, bias, shift, s_x, s_w, in_bits))
        s_x, in_bits = s_acc * (1 << shift), 8
    return plan


def export_int8(net: QuantNet, name: str, image_shape: tuple[int, ...], calib: np.ndarray,
                meta: dict, percentile: float = 99.99) -> IRModel:
    """The int8 method's float network -> int8 IR (mac dense / conv2d layers, power-of-two requantize, argmax),
    calibrated on ``calib``."""
    layers = []
    for L in int8_plan(net, calib, percentile):
        g = L.layer
        n_in, n_out = int(np.prod(g.in_shape)), int(np.prod(g.out_shape))
        if L.shift is None:
            layers.append(Layer(g.name, "mac", n_in, n_out, L.in_bits, 8, "argmax", L.wq, bias=L.bias,
                                conv=g.conv_spec()))
        else:
            layers.append(Layer(g.name, "mac", n_in, n_out, L.in_bits, 8, "requantize", L.wq, output_bits=8,
                                shift=L.shift, bias=L.bias + ((1 << L.shift) >> 1), conv=g.conv_spec()))
    q = net.input_q
    inp = InputSpec(int(np.prod(net.in_shape)), q.bits, q.kind, None, tuple(image_shape))
    return IRModel(name, "int8", inp, layers, meta).validate()


def int8_fake_quant(plan: list[Int8Layer], samples: np.ndarray, grid_snap: bool = True) -> list[np.ndarray]:
    """The PTQ model simulated the way a float framework evaluates it (fake quantization):
    every tensor a real value on its quantization grid (weights ``s_w * wq``, bias
    ``s_acc * bias``, activations ``s * level``), float64 products and sums with the real
    scales, round-half-up and clip to 0..255 at each requantization, then a conv layer's
    max-pool (zero padding, as the float net). Returns every layer's output (hidden: real
    activations on their grids, after the pool; last: the logits).

    It is independent of the IR's integer shift arithmetic (no IR, no shifts: real scales), so
    agreeing with the golden model checks the export. The rounding rule that makes the two
    agree exactly is ``grid_snap``: every exact pre-activation is an integer multiple of the
    accumulator scale ``s_acc = s_in * s_w`` (grid inputs times grid weights plus a bias on
    that grid), so the float64 sum is snapped to that grid (``rint(z / s_acc) * s_acc``, its
    float error being far below ``s_acc / 2``) before round-half-up; a fixed-point accumulator
    holds exactly that value. Without the snap (``grid_snap=False``, plain float evaluation)
    the scales are not powers of two (1/255, max|W|/127), so a pre-activation exactly
    half-way between two levels can land a rounding error below the tie and round down where
    the integer model rounds up (0.01-0.02 % of LFC test predictions flip)."""
    layers = [L.layer for L in plan]
    parts = [_fake_quant(plan, b, grid_snap) for b in eval_batches(samples, layers)]
    return [np.concatenate(p) for p in zip(*parts)]


def _fake_quant(plan: list[Int8Layer], samples: np.ndarray, grid_snap: bool) -> list[np.ndarray]:
    k = plan[0].in_bits  # the first layer reads the top k bits of each pixel, on the grid s_in
    x = (samples.astype(np.int64) >> (8 - k)).reshape(len(samples), *plan[0].layer.in_shape) / ((1 << k) - 1)
    outs = []
    for L in plan:
        z = L.layer.patches(x) @ (L.s_w * L.wq.astype(np.float64)).T + L.s_acc * L.bias
        if L.shift is None:
            outs.append(np.rint(z / L.s_acc) * L.s_acc if grid_snap else z)
            break
        s_out = L.s_acc * (1 << L.shift)
        # z in units of the output grid; snapped, the exact accumulator over a power of two (an
        # exact float division, so a tie stays a tie)
        u = np.rint(z / L.s_acc) / (1 << L.shift) if grid_snap else z / s_out
        x = L.layer.outputs(np.clip(np.floor(u + 0.5), 0, 255) * s_out, len(samples))
        outs.append(x)
    return outs
