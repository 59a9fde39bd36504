"""Power-of-two weights: Lin, Courbariaux et al., "Neural Networks with Few Multiplications"
(ICLR 2016), with multi-level power-of-two weights as in Miyashita et al. (2016).

With ``weight_bits = b``, weights are ``0`` or ``+-2**e`` with ``e`` in ``E - (b-2) .. E``, where
``E = round(log2 max|W|)`` per output channel: ``e = round(log2|W|)`` clipped from above,
and weights whose rounded exponent falls below the range become 0. Codes are
``+-2**(e - E + b - 2)`` (the IR's shift_add range ``0..2**(b-2)``) and alpha ``2**(E - b + 2)``
is folded into the thresholds. Identity STE. Option ``qbackprop``: "quantized back propagation"
rounds each layer's inputs to powers of two (AP2) in the backward pass, so the weight gradient
needs only shifts. Exported to ``shift_add``.
"""
from __future__ import annotations

import numpy as np

from .base import Method, Option, WeightQuantizer


class Pow2Quantizer(WeightQuantizer):
    def quantize(self, W, params, train):
        axis = 1 if self.per_channel else None
        mx = np.maximum(np.abs(W).max(axis=axis, keepdims=True), 1e-30)
        E = np.round(np.log2(mx))
        emin = E - (self.bits - 2)
        with np.errstate(divide="ignore"):
            e = np.round(np.log2(np.abs(W)))
        e = np.minimum(e, E)
        codes = np.where(e >= emin, np.sign(W) * np.exp2(np.maximum(e, emin) - emin), 0.0)
        alpha = np.broadcast_to(np.exp2(emin).reshape(-1), (len(W),))
        return codes.astype(W.dtype), alpha.astype(W.dtype)

    ste_cancel = False  # identity STE


class Pow2(Method):
    name = "pow2"
    doc = "power-of-two weights {0, +-2^e} (few multiplications), k-bit activations -> shift_add"
    kind = "shift_add"
    weight_bits = (4, 2, 3, 5, 6, 7, 8)
    options = (Option("qbackprop", False, "round layer inputs to powers of two in the backward pass"),)
    defaults = {"epochs": 30, "lr": 3e-3, "batch_size": 100, "dropout_in": 0.0, "dropout_hidden": 0.0}
    quantizer_class = Pow2Quantizer
