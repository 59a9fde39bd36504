"""Golden integer inference: the executable definition of the IR's arithmetic.

Everything here is integer NumPy (int64); the RTL must match it bit for bit and the
float quantized training models are measured against it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DataError
from .ir import DOT_PRODUCT_KINDS, IRModel, Layer


def quantize_input(model: IRModel, samples: np.ndarray) -> np.ndarray:
    """Turn raw uint8 samples (N, *source_shape) or (N, features) into the first layer's integer input."""
    x = np.asarray(samples)
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != model.input.features:
        raise DataError(f"samples: shape {x.shape}, expected (N, {model.input.features}) "
                        f"or (N, {', '.join(map(str, model.input.source_shape))})")
    x = x.reshape(len(x), -1)
    if model.input.quantizer == "threshold":
        return (x >= model.input.threshold).astype(np.int64)
    return x.astype(np.int64)


def accumulate(layer: Layer, x: np.ndarray) -> np.ndarray:
    """The kind-specific accumulator: (N, in) integer inputs -> (N, out) int64."""
    w = layer.weights.astype(np.int64)
    if layer.kind == "xnor_popcount":
        # popcount(xnor(x, w)) = #agreeing bits = x.w + (1-x).(1-w)
        return x @ w.T + (1 - x) @ (1 - w).T
    if layer.kind in DOT_PRODUCT_KINDS:
        return x @ w.T
    if layer.kind == "lut_product":
        table = layer.products.astype(np.int64)
        acc = np.zeros((len(x), layer.out_features), dtype=np.int64)
        for c in np.unique(w):  # one pass per codebook entry actually used
            acc += table[c][x] @ (w == c).T.astype(np.int64)
        return acc
    raise NotImplementedError(layer.kind)


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


def golden_forward(model: IRModel, samples: np.ndarray, *, quantized: bool = False) -> GoldenResult:
    """Run the integer model. ``samples`` are raw uint8 unless ``quantized`` is True."""
    x = samples.astype(np.int64) if quantized else quantize_input(model, samples)
    acts = []
    for layer in model.layers:
        x = output_stage(layer, accumulate(layer, x))
        acts.append(x)
    # np.argmax returns the first maximum: the hardware's tie rule too
    return GoldenResult(classes=np.argmax(x, axis=1).astype(np.int64), logits=x, activations=acts)


def golden_predict(model: IRModel, samples: np.ndarray) -> np.ndarray:
    """Predicted classes (N,) for raw uint8 samples."""
    return golden_forward(model, samples).classes
