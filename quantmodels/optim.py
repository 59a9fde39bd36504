"""Optimizers over dicts of NumPy parameters: SGD with momentum, Adam and AdaMax (Kingma & Ba,
ICLR 2015), and shift-based AdaMax (Hubara et al. 2016)."""
from __future__ import annotations

import numpy as np

from .quantizers import ap2


class Adam:
    """Adam; ``step(params, grads, lr)`` updates ``params`` in place."""

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.b1, self.b2, self.eps = beta1, beta2, eps
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for k, g in grads.items():
            m = self.m.setdefault(k, np.zeros_like(g))
            v = self.v.setdefault(k, np.zeros_like(g))
            # in place, with the same operations in the same order as the textbook
            # m, v update and step (identical results): the weight-sized temporaries
            # were a fifth of an LFC training step
            m *= self.b1
            t = np.multiply(g, 1 - self.b1)
            m += t
            v *= self.b2
            np.multiply(g, 1 - self.b2, out=t)
            t *= g
            v += t
            np.divide(v, c2, out=t)
            np.sqrt(t, out=t)
            t += self.eps
            step = np.multiply(m, lr / c1)
            step /= t
            params[k] -= step


class AdaMax(Adam):
    """AdaMax: Adam with the infinity norm, u = max(b2*u, |g|) (used by the BNN paper)."""

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        self.t += 1
        c1 = 1 - self.b1 ** self.t
        for k, g in grads.items():
            m = self.m.setdefault(k, np.zeros_like(g))
            u = self.v.setdefault(k, np.zeros_like(g))
            m *= self.b1
            m += (1 - self.b1) * g
            np.maximum(self.b2 * u, np.abs(g), out=u)
            params[k] -= (lr / c1) * self._direction(m, u)

    def _direction(self, m: np.ndarray, u: np.ndarray) -> np.ndarray:
        return m / (u + self.eps)


class SGD:
    """SGD with heavy-ball momentum, ``v = mu v + g; p -= lr v`` (``mu = 0``: plain SGD); the
    plainer recipe some papers compare under (e.g. BitNet against its unregularised twin)."""

    def __init__(self, momentum: float = 0.9):
        self.mu = momentum
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        for k, g in grads.items():
            v = self.v.setdefault(k, np.zeros_like(g))
            v *= self.mu
            v += g
            params[k] -= lr * v


OPTIMIZERS = {"adam": Adam, "adamax": AdaMax, "sgd": SGD}


class ShiftAdaMax(AdaMax):
    """Shift-based AdaMax (Hubara et al. 2016, Alg. 4): AdaMax with the division by u replaced
    by a multiplication with AP2(1/u), i.e. a binary shift."""

    def _direction(self, m: np.ndarray, u: np.ndarray) -> np.ndarray:
        return m * ap2(1.0 / (u + self.eps)).astype(m.dtype)


OPTIMIZERS["shift_adamax"] = ShiftAdaMax
