"""XNOR-Net and BWN: Rastegari et al., "XNOR-Net" (ECCV 2016).

Weights ``W ~ alpha * sign(W)`` with ``alpha = mean|W|`` per output channel (one shared alpha in
the classifier layer, so its integer argmax stays exact); gradient
``dW = alpha * 1{|W| <= 1} * dWq + sign(W) * mean_row(dWq * sign(W))`` (the paper's
``1/n + alpha * d sign`` rule). Variants (option ``variant``):

* ``xnor``: binary activations too, scaled by K = mean |pre-sign input| per sample during
  training; eval (and export) use the running mean of K (a constant per layer, like the BN
  statistics) so the level is a function of the accumulator alone -> ``xnor_popcount``;
* ``bwn``: binary weights only, k-bit activations -> ``accumulate``.

alpha and K are folded into the integer thresholds at export.
"""
from __future__ import annotations

import numpy as np

from ..quantizers import sign
from .base import Method, Option, WeightQuantizer


class XnorQuantizer(WeightQuantizer):
    def quantize(self, W, params, train):
        return sign(W), self.layer_alpha(np.abs(W).mean(1))

    def grad(self, W, dWq, params):
        s = sign(W)
        alpha = self.layer_alpha(np.abs(W).mean(1))
        if self.per_channel:
            dalpha = (dWq * s).sum(1, keepdims=True) / W.shape[1]
        else:
            dalpha = (dWq * s).sum() / W.size
        return {f"{self.name}.W": alpha[:, None] * dWq * (np.abs(W) <= 1) + s * dalpha}


class XNOR(Method):
    name = "xnor"
    doc = "XNOR-Net (variant=xnor -> xnor_popcount) / BWN (variant=bwn, k-bit acts -> accumulate)"
    weight_bits = (1,)
    options = (Option("variant", "xnor", "xnor: binary weights and activations; bwn: binary weights only",
                      choices=("xnor", "bwn")),)
    defaults = {"epochs": 30, "lr": 3e-3, "batch_size": 100, "dropout_in": 0.0, "dropout_hidden": 0.0}
    quantizer_class = XnorQuantizer

    def kind_for(self, cfg):
        return "xnor_popcount" if cfg.options.get("variant", "xnor") == "xnor" else "accumulate"

    def input_for(self, cfg):
        return "threshold" if cfg.options.get("variant", "xnor") == "xnor" else "identity"

    def input_scale_for(self, opts):
        return opts.get("variant", "xnor") == "xnor"

    def act_bits_for(self, opts):
        return ((1,), 1) if opts.get("variant", "xnor") == "xnor" else (tuple(range(2, 9)), 4)
