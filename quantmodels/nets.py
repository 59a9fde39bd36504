"""The float32 ReLU network (dense and conv; int8 post-training-quantization baseline) and the
plain BN formula.

Quantized networks of every method are :class:`quantmodels.net.QuantNet`.
"""
from __future__ import annotations

import numpy as np

from .arch import ArchItem
from .layers import BN_EPS, arch_layers, eval_batches


def bn_eval(a: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Eval-mode batch norm in float64 with explicit parameters (used by
    :func:`quantmodels.export.fold_bn_thresholds`)."""
    a = np.asarray(a, dtype=np.float64)
    return gamma.astype(np.float64) * (a - mean.astype(np.float64)) / np.sqrt(var.astype(np.float64) + BN_EPS) \
        + beta.astype(np.float64)


class FloatNet:
    """Float32 ReLU network with biases (dense and conv layers); the int8 PTQ baseline.

    Inputs are pixels x/255, dense-only nets see them flattened, conv nets as (N, H, W, C)
    images (:func:`~quantmodels.layers.arch_layers`). Hidden layer i: ``z = P . W_i + b_i``
    over the input vector or its :func:`~quantmodels.layers.im2col` patches (zero padding),
    ReLU, then the fused max-pool of a conv; the last layer's ``z`` are the logits.
    Weights ``W_i`` (out, fan_in) are He-normal, biases zero, drawn layer by layer."""

    def __init__(self, items: list[ArchItem], image_shape: tuple[int, ...], n_classes: int,
                 rng: np.random.Generator):
        self.layers = arch_layers(items, image_shape, n_classes)
        self.in_shape = self.layers[0].in_shape
        self.n_layers = len(self.layers)
        self.params: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        for i, L in enumerate(self.layers):
            W = rng.standard_normal((L.out, L.fan_in)) * np.sqrt(2.0 / L.fan_in)
            self.params[f"W{i}"] = W.astype(np.float32)
            self.params[f"b{i}"] = np.zeros(L.out, np.float32)

    def prepare(self, samples: np.ndarray) -> np.ndarray:
        """Raw uint8 samples -> float32 x/255 in the input shape."""
        return (samples.reshape(len(samples), *self.in_shape) / np.float32(255.0)).astype(np.float32)

    def latent_weights(self) -> list[str]:
        return []

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.cache = []
        for i, L in enumerate(self.layers):
            P = L.patches(x)
            z = P @ self.params[f"W{i}"].T + self.params[f"b{i}"]
            self.cache.append((P, z, x.shape))
            if i == self.n_layers - 1:
                return z
            x = L.outputs(np.maximum(z, 0), len(x), train=train)  # train: the pool keeps its argmax
        raise AssertionError("unreachable")

    def backward(self, dout: np.ndarray) -> dict[str, np.ndarray]:
        grads = {}
        for i in range(self.n_layers - 1, -1, -1):
            L = self.layers[i]
            P, z, xshape = self.cache[i]
            if L.pool:
                dout = L.pool.backward(dout)
            dout = dout.reshape(z.shape)
            dz = dout if i == self.n_layers - 1 else dout * (z > 0)
            grads[f"W{i}"] = dz.T @ P
            grads[f"b{i}"] = dz.sum(0)
            if i:
                dout = L.input_grad(dz @ self.params[f"W{i}"], xshape)
        return grads

    def hidden_activations(self, samples: np.ndarray) -> list[np.ndarray]:
        """Every layer's output on raw ``samples``: hidden ReLU (after the pool, i.e. what the
        next layer reads), then the logits."""
        parts = [self._activations(b) for b in eval_batches(samples, self.layers)]
        return [np.concatenate(p) for p in zip(*parts)]

    def _activations(self, samples: np.ndarray) -> list[np.ndarray]:
        x = self.prepare(samples)
        acts = []
        for i, L in enumerate(self.layers):
            x = L.patches(x) @ self.params[f"W{i}"].T + self.params[f"b{i}"]
            if i < self.n_layers - 1:
                x = L.outputs(np.maximum(x, 0), len(samples))
            acts.append(x)
        return acts

    def logits(self, samples: np.ndarray) -> np.ndarray:
        return self.hidden_activations(samples)[-1]

    def predict(self, samples: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(samples), axis=1)

    def post_step(self) -> None:
        pass
