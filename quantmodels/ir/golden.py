"""Golden integer inference: the executable definition of the IR's arithmetic.

Everything here is integer NumPy (int64); the RTL must match it bit for bit and the
float quantized training models are measured against it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .kinds import kind_spec
from .schema import ConvSpec, IRModel, Layer


def quantize_input(model: IRModel, samples: np.ndarray) -> np.ndarray:
    """Turn raw uint8 samples (N, *source_shape) or (N, features) into the first layer's integer input."""
    x = np.asarray(samples)
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != model.input.features:
        raise DataError(f"samples: shape {x.shape}, expected (N, {model.input.features}) "
                        f"or (N, {', '.join(map(str, model.input.source_shape))})")
    x = x.reshape(len(x), -1)
    if model.input.quantizer == "threshold":
        return (x >= model.input.threshold).astype(np.int64)
    if model.input.quantizer == "truncate":
        return x.astype(np.int64) >> (8 - model.input.bits)  # the top ``bits`` bits of each uint8
    return x.astype(np.int64)


def accumulate(layer: Layer, x: np.ndarray) -> np.ndarray:
    """The kind-specific accumulator: (N, cols) integer inputs -> (N, rows) int64."""
    return kind_spec(layer.kind).accumulate(layer, x)


def im2col(conv: ConvSpec, x: np.ndarray) -> np.ndarray:
    """(N, H*W*C) channels-last codes -> (N, OH*OW, kh*kw*C) patches in (ky, kx, c) order,
    positions outside the image read code 0 (see the IR's conv2d rule)."""
    h, w, c = conv.in_shape
    kh, kw = conv.kernel
    p, s = conv.padding, conv.stride
    oh, ow = conv.conv_hw
    img = np.asarray(x).reshape(len(x), h, w, c)
    if p:
        img = np.pad(img, ((0, 0), (p, p), (p, p), (0, 0)))  # code 0
    # strided view (N, OH, OW, kh, kw, C) without copying, then one copy into patch rows
    sn, sh, sw, sc = img.strides
    view = np.lib.stride_tricks.as_strided(img, (len(img), oh, ow, kh, kw, c),
                                           (sn, sh * s, sw * s, sh, sw, sc), writeable=False)
    return view.reshape(len(img), oh * ow, kh * kw * c)


def max_pool(conv: ConvSpec, y: np.ndarray, channels: int) -> np.ndarray:
    """(N, OH*OW*channels) levels -> (N, PH*PW*channels): max over each pool window."""
    k, s = conv.pool
    oh, ow = conv.conv_hw
    if (k, s) == (1, 1):
        return y
    ph, pw = conv.out_hw
    img = y.reshape(len(y), oh, ow, channels)
    out = np.full((len(y), ph, pw, channels), np.iinfo(np.int64).min, dtype=np.int64)
    for dy in range(k):  # k*k strided slices: vectorised over images, positions and channels
        for dx in range(k):
            np.maximum(out, img[:, dy:dy + s * (ph - 1) + 1:s, dx:dx + s * (pw - 1) + 1:s, :], out=out)
    return out.reshape(len(y), -1)


def layer_forward(layer: Layer, x: np.ndarray) -> np.ndarray:
    """One layer of integer inference: (N, in_features) -> (N, out_features)."""
    if layer.conv is None:
        return output_stage(layer, accumulate(layer, x))
    n = len(x)
    patches = im2col(layer.conv, x).reshape(-1, layer.cols)
    y = output_stage(layer, accumulate(layer, patches)).reshape(n, -1)
    return max_pool(layer.conv, y, layer.rows)


def output_stage(layer: Layer, acc: np.ndarray) -> np.ndarray:
    """Apply the layer's integer output stage to the accumulator (N, out)."""
    if layer.output == "threshold":
        t = layer.thresholds.astype(np.int64)
        return (acc[:, :, None] >= t[None, :, :]).sum(axis=2).astype(np.int64)
    v = acc + (layer.bias.astype(np.int64)[None, :] if layer.bias is not None else 0)
    if layer.output == "requantize":
        return np.clip(v >> layer.shift, 0, (1 << layer.output_bits) - 1)
    return v  # argmax: logits


@dataclass
class GoldenResult:
    """Per-sample classes, final logits and every layer's integer output."""

    classes: np.ndarray  #: (N,) int64
    logits: np.ndarray  #: (N, n_classes) int64
    activations: list[np.ndarray]  #: per layer output (N, out)


#: Largest patch matrix (elements) one chunk of samples may make: a conv net's im2col is positions x
#: fan-in per sample (the 4-conv MNIST CNN: 784 x 288 = 225,792), so 10,000 images at once would be
#: 18 GB of int64; chunks bound it to about 256 MB.
GOLDEN_BUDGET = 1 << 25


def golden_forward(model: IRModel, samples: np.ndarray, *, quantized: bool = False) -> GoldenResult:
    """Run the integer model. ``samples`` are raw uint8 unless ``quantized`` is True. Samples go through
    in chunks whose largest patch matrix stays within GOLDEN_BUDGET elements (the results are the same)."""
    x = samples.astype(np.int64) if quantized else quantize_input(model, samples)
    step = max(1, GOLDEN_BUDGET // max(L.positions * L.cols for L in model.layers))
    parts = []
    for s in range(0, max(len(x), 1), step):
        xs, acts = x[s:s + step], []
        for layer in model.layers:
            xs = layer_forward(layer, xs)
            acts.append(xs)
        parts.append(acts)
    acts = parts[0] if len(parts) == 1 else [np.concatenate(a) for a in zip(*parts)]
    # np.argmax returns the first maximum: the hardware's tie rule too
    return GoldenResult(classes=np.argmax(acts[-1], axis=1).astype(np.int64), logits=acts[-1], activations=acts)


def golden_predict(model: IRModel, samples: np.ndarray) -> np.ndarray:
    """Predicted classes (N,) for raw uint8 samples."""
    return golden_forward(model, samples).classes
