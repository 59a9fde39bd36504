"""Ternary weights: Li & Liu, "Ternary Weight Networks" (2016).

``codes = sign(W) * 1{|W| > delta}``, ``delta = t * mean|W|`` per output channel with a fixed
``t`` (option ``delta``, default 0.7 as in TWN) or a learned per-layer ``t`` (``learned=1``,
initialised to ``delta``; its gradient treats the step at ``|W| = delta`` as a box of width
``delta / 2``); ``alpha = mean |W|`` over the kept weights. Identity STE for W. Hidden activations
k-bit (``act_bits``). Exported to ``accumulate`` (zero weights are skipped); the sparsity
reached is recorded in model.json meta.
"""
from __future__ import annotations

import numpy as np

from .base import Method, Option, WeightQuantizer


class TernaryQuantizer(WeightQuantizer):
    def init_params(self, W, params):
        if self.opts["learned"]:
            params[f"{self.name}.t"] = np.array([self.opts["delta"]], np.float32)

    def _t(self, params) -> float:
        return float(params[f"{self.name}.t"][0]) if self.opts["learned"] else self.opts["delta"]

    def _stats(self, W, params):
        axis = 1 if self.per_channel else None
        m = np.abs(W).mean(axis=axis, keepdims=True)
        delta = max(self._t(params), 0.0) * m
        keep = np.abs(W) > delta
        alpha = (np.abs(W) * keep).sum(axis=axis, keepdims=True) / np.maximum(keep.sum(axis=axis, keepdims=True), 1)
        alpha = np.where(alpha > 0, alpha, m)  # an all-zero row still gets a positive scale
        return m, delta, keep, np.broadcast_to(alpha.reshape(-1), (len(W),)) if not self.per_channel \
            else alpha[:, 0]

    def quantize(self, W, params, train):
        _, _, keep, alpha = self._stats(W, params)
        return (np.sign(W) * keep).astype(W.dtype), alpha.astype(W.dtype)

    def grad(self, W, dWq, params):
        g = {f"{self.name}.W": dWq}
        if self.opts["learned"]:
            m, delta, _, alpha = self._stats(W, params)
            h = np.maximum(delta / 4, 1e-8)
            box = (np.abs(np.abs(W) - delta) < h) / (2 * h)  # d 1{|W| > t m} / dt ~ -m * box
            g[f"{self.name}.t"] = np.array([np.sum(dWq * alpha[:, None] * np.sign(W) * (-m) * box)], np.float32)
        return g


class Ternary(Method):
    name = "ternary"
    doc = "ternary weights {-1,0,+1} (TWN, fixed or learned threshold), k-bit activations -> accumulate"
    weight_bits = (2,)
    options = (Option("delta", 0.7, "sparsity threshold factor t: delta = t * mean|W|", lo=0.0, hi=3.0),
               Option("learned", False, "learn t per layer by gradient descent"))
    defaults = {"epochs": 30, "lr": 3e-3, "batch_size": 100, "dropout_in": 0.0, "dropout_hidden": 0.0}
    quantizer_class = TernaryQuantizer

    def extra_meta(self, net):
        per_layer = {}
        zeros = total = 0
        for b in net.blocks:
            c, _ = b.wq.codes(net.params[f"{b.name}.W"], net.params)
            per_layer[b.name] = round(float(np.mean(c == 0)), 4)
            zeros, total = zeros + int((c == 0).sum()), total + c.size
        return {"sparsity": round(zeros / total, 4), "sparsity_per_layer": per_layer}
