"""BinaryConnect: Courbariaux, Bengio, David, "BinaryConnect" (NIPS 2015).

Forward: ``w_b = sign(w)`` (deterministic) or ``w_b = +1`` with probability
``hard_sigmoid(w) = clip((w + 1) / 2, 0, 1)`` (stochastic, training only; eval uses sign).
Backward: the gradient w.r.t. ``w_b`` updates the real ``w`` (identity STE); ``w`` is clipped to
[-1, 1] after each update. Hidden activations are k-bit unsigned (``act_bits``, default 4),
folded into multi-thresholds. Exported to ``accumulate`` (add / subtract, no multiplier).
Stochastic mode learns only once the latent weights approach +-1: use ``lr`` about 3e-2 and
30+ epochs (digits: 91% after 30 epochs with batch 50, 9% with the default lr 3e-3).
"""
from __future__ import annotations

import numpy as np

from ..quantizers import hard_sigmoid, sign
from .base import Method, Option, WeightQuantizer


class BinaryConnectQuantizer(WeightQuantizer):
    def quantize(self, W, params, train):
        if train and self.opts["stochastic"]:
            codes = np.where(self.rng.random(W.shape, dtype=np.float32) < hard_sigmoid(W), 1.0, -1.0)
        else:
            codes = sign(W)
        return codes.astype(W.dtype, copy=False), np.ones(len(W), W.dtype)

    ste_cancel = False  # identity STE


class BinaryConnect(Method):
    name = "binaryconnect"
    doc = "BinaryConnect: binary weights (det./stochastic), k-bit activations -> accumulate"
    kind = "accumulate"
    weight_bits = (1,)
    default_act_bits = 4
    options = (Option("stochastic", False, "sample +1 with probability hard_sigmoid(w) during training"),)
    defaults = {"epochs": 30, "lr": 3e-3, "batch_size": 100, "dropout_in": 0.0, "dropout_hidden": 0.0}
    clip_weights = True
    quantizer_class = BinaryConnectQuantizer
