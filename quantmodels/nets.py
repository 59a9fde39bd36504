"""The float32 ReLU MLP (int8 post-training-quantization baseline) and the plain BN formula.

Quantized networks of every method are :class:`quantmodels.net.QuantNet`.
"""
from __future__ import annotations

import numpy as np

from .layers import BN_EPS


def bn_eval(a: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Eval-mode batch norm in float64 with explicit parameters (used by
    :func:`quantmodels.export.fold_bn_thresholds`)."""
    a = np.asarray(a, dtype=np.float64)
    return gamma.astype(np.float64) * (a - mean.astype(np.float64)) / np.sqrt(var.astype(np.float64) + BN_EPS) \
        + beta.astype(np.float64)


class FloatMLP:
    """Float32 ReLU MLP with biases; inputs scaled x/255. Baseline for int8 PTQ."""

    def __init__(self, sizes: tuple[int, ...], rng: np.random.Generator):
        self.sizes = sizes
        self.params = {}
        self.state: dict[str, np.ndarray] = {}
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            self.params[f"W{i}"] = (rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(np.float32)
            self.params[f"b{i}"] = np.zeros(n_out, np.float32)
        self.n_layers = len(sizes) - 1

    @staticmethod
    def prepare(samples: np.ndarray) -> np.ndarray:
        return (samples.reshape(len(samples), -1) / np.float32(255.0)).astype(np.float32)

    def latent_weights(self) -> list[str]:
        return []

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.cache = []
        for i in range(self.n_layers):
            z = x @ self.params[f"W{i}"].T + self.params[f"b{i}"]
            self.cache.append((x, z))
            x = z if i == self.n_layers - 1 else np.maximum(z, 0)
        return x

    def backward(self, dout: np.ndarray) -> dict[str, np.ndarray]:
        grads = {}
        for i in range(self.n_layers - 1, -1, -1):
            x, z = self.cache[i]
            dz = dout if i == self.n_layers - 1 else dout * (z > 0)
            grads[f"W{i}"] = dz.T @ x
            grads[f"b{i}"] = dz.sum(0)
            dout = dz @ self.params[f"W{i}"]
        return grads

    def hidden_activations(self, samples: np.ndarray) -> list[np.ndarray]:
        x = self.prepare(samples)
        acts = []
        for i in range(self.n_layers):
            x = x @ self.params[f"W{i}"].T + self.params[f"b{i}"]
            if i < self.n_layers - 1:
                x = np.maximum(x, 0)
            acts.append(x)
        return acts

    def logits(self, samples: np.ndarray) -> np.ndarray:
        return self.hidden_activations(samples)[-1]

    def predict(self, samples: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(samples), axis=1)

    def post_step(self) -> None:
        pass
