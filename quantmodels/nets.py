"""NumPy networks with hand-written backward passes: a binarized MLP (BNN) and a float MLP.

Both keep their parameters in one dict (``params``) so optimizers and checkpoints treat
them uniformly; forward passes cache what backward needs.
"""
from __future__ import annotations

import numpy as np

from .quantizers import binarize_input, sign, ste_sign_grad

BN_EPS = 1e-4
BN_MOMENTUM = 0.1
INPUT_THRESHOLD = 128  #: MNIST/digits pixels >= 128 are +1 for the binarized input


def bn_eval(a: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Eval-mode batch norm in float64: THE formula both the float model and the threshold
    folding evaluate, so that float and integer inference agree exactly (see export.py)."""
    a = np.asarray(a, dtype=np.float64)
    return gamma.astype(np.float64) * (a - mean.astype(np.float64)) / np.sqrt(var.astype(np.float64) + BN_EPS) \
        + beta.astype(np.float64)


class BinaryMLP:
    """BNN MLP (Hubara et al. 2016): sign(W) and sign(activations), batch norm after every
    hidden layer, STE with gradient cancelling; last layer ``alpha * (x . sign(W))`` with one
    positive scalar alpha (no per-class bias, so the integer argmax is exact)."""

    def __init__(self, sizes: tuple[int, ...], rng: np.random.Generator, dropout_in: float = 0.0,
                 dropout_hidden: float = 0.0):
        self.sizes = sizes
        self.rng = rng
        self.dropout = (dropout_in, dropout_hidden)  #: training only; inverted dropout
        self.params: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            lim = np.sqrt(6.0 / (n_in + n_out))
            self.params[f"W{i}"] = rng.uniform(-lim, lim, (n_out, n_in)).astype(np.float32)
            if i < len(sizes) - 2:
                self.params[f"gamma{i}"] = np.ones(n_out, np.float32)
                self.params[f"beta{i}"] = np.zeros(n_out, np.float32)
                self.state[f"mean{i}"] = np.zeros(n_out, np.float32)
                self.state[f"var{i}"] = np.ones(n_out, np.float32)
        self.params["log_alpha"] = np.array([np.log(1.0 / np.sqrt(sizes[-2]))], np.float32)
        self.n_layers = len(sizes) - 1

    @staticmethod
    def prepare(samples: np.ndarray) -> np.ndarray:
        return binarize_input(samples, INPUT_THRESHOLD)

    def latent_weights(self) -> list[str]:
        return [f"W{i}" for i in range(self.n_layers)]

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """Training forward pass (batch statistics); x in {-1,+1}."""
        self.cache = []
        self.masks = []
        for i in range(self.n_layers):
            p = self.dropout[0 if i == 0 else 1] if train else 0.0
            if p > 0:
                mask = (self.rng.random(x.shape, dtype=np.float32) >= p).astype(np.float32) / np.float32(1 - p)
                x = x * mask
            else:
                mask = None
            self.masks.append(mask)
            wb = sign(self.params[f"W{i}"])
            a = x @ wb.T
            if i == self.n_layers - 1:
                alpha = np.exp(self.params["log_alpha"][0])
                self.cache.append((x, wb, a, alpha))
                return alpha * a
            mu, var = a.mean(0), a.var(0)
            inv = 1.0 / np.sqrt(var + BN_EPS)
            ahat = (a - mu) * inv
            y = self.params[f"gamma{i}"] * ahat + self.params[f"beta{i}"]
            if train:
                m = BN_MOMENTUM
                n = len(a)
                self.state[f"mean{i}"] = ((1 - m) * self.state[f"mean{i}"] + m * mu).astype(np.float32)
                self.state[f"var{i}"] = ((1 - m) * self.state[f"var{i}"] + m * var * n / max(n - 1, 1)).astype(np.float32)
            self.cache.append((x, wb, ahat, inv, y))
            x = sign(y)
        raise AssertionError("unreachable")

    def backward(self, dlogits: np.ndarray) -> dict[str, np.ndarray]:
        grads: dict[str, np.ndarray] = {}
        x, wb, a, alpha = self.cache[-1]
        L = self.n_layers - 1
        grads["log_alpha"] = np.array([np.sum(dlogits * a) * alpha], np.float32)
        da = dlogits * alpha
        grads[f"W{L}"] = da.T @ x
        dx = da @ wb
        for i in range(L - 1, -1, -1):
            x, wb, ahat, inv, y = self.cache[i]
            if self.masks[i + 1] is not None:
                dx = dx * self.masks[i + 1]
            dy = ste_sign_grad(y, dx)
            g = self.params[f"gamma{i}"]
            grads[f"gamma{i}"] = np.sum(dy * ahat, 0)
            grads[f"beta{i}"] = np.sum(dy, 0)
            dah = dy * g
            n = len(dah)
            da = inv / n * (n * dah - dah.sum(0) - ahat * np.sum(dah * ahat, 0))
            grads[f"W{i}"] = da.T @ x
            if i > 0:
                dx = da @ wb
        return grads

    # ------------------------------------------------------------- eval (quantized) pass
    def eval_layers(self, samples: np.ndarray):
        """Yield per-layer integer pre-activations and output bits of the eval-mode pass."""
        x = self.prepare(samples).astype(np.float64)
        for i in range(self.n_layers):
            a = x @ sign(self.params[f"W{i}"]).astype(np.float64).T  # exact: small integers
            if i == self.n_layers - 1:
                return a
            y = bn_eval(a, self.params[f"gamma{i}"], self.params[f"beta{i}"],
                        self.state[f"mean{i}"], self.state[f"var{i}"])
            x = np.where(y >= 0, 1.0, -1.0)
        raise AssertionError("unreachable")

    def logits(self, samples: np.ndarray) -> np.ndarray:
        return np.exp(np.float64(self.params["log_alpha"][0])) * self.eval_layers(samples)

    def predict(self, samples: np.ndarray) -> np.ndarray:
        """Classes from the float binarized model in eval mode (first index on ties)."""
        return np.argmax(self.logits(samples), axis=1)

    def post_step(self) -> None:
        """BinaryConnect/BNN: keep latent weights in [-1, 1]."""
        for k in self.latent_weights():
            np.clip(self.params[k], -1.0, 1.0, out=self.params[k])


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
