"""DoReFa-Net: Zhou et al., "DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks with
Low Bitwidth Gradients" (arXiv:1606.06160), as a plug-in of the generic :class:`QuantNet`
(dense and conv layers, batch norm after every hidden layer, generic exact export).

The quantizer functions and their exact rounding rules are in :mod:`quantmodels.dorefa`:

* weights, k > 1: ``w_q = 2 quantize_k(tanh(W) / (2 max|tanh W|) + 1/2) - 1 = c / (2**k - 1)``
  with odd integer codes ``c`` in ``-(2**k - 1) .. 2**k - 1`` (max over the whole layer),
  ``alpha = 1 / (2**k - 1)``; IR ``weight_bits`` = k + 1 (signed). STE through quantize_k,
  exact gradient of the tanh normalisation;
* weights, k = 1: ``w_q = mean|W| sign(W)`` (one scale per layer), identity STE;
* activations: ``quantize_k(clip(y, 0, 1))`` = the framework's
  :class:`~quantmodels.quantizers.UniformAct` (exact ties round half up), unsigned also for
  k = 1 (levels {0, 1}: ``bipolar_1bit = False``); batch norm shifts start at 0.5 and the
  output logit scale at 1;
* option ``grad_bits`` (k > 0): every layer's pre-activation gradient is replaced by the noisy
  k-bit quantization :func:`quantmodels.dorefa.quantize_grad` (hook
  :meth:`~quantmodels.methods.base.Method.grad_quantizer`).

Kinds: ``bit_serial`` on raw 8-bit pixels (input "identity"); W1A1 -> ``xnor_popcount`` on
thresholded pixels (input bits {0, 1}, so the export adds the count of -1 weights per neuron
to the thresholds and as the last layer's bias).
"""
from __future__ import annotations

import numpy as np

from .. import dorefa as dq
from .base import Method, Option, WeightQuantizer


class DoReFaQuantizer(WeightQuantizer):
    def quantize(self, W, params, train):
        codes, scale = dq.weight_codes(W.astype(np.float64), self.bits)
        return codes.astype(W.dtype), np.full(len(W), scale, np.float64)

    def grad(self, W, dWq, params):
        return {f"{self.name}.W": dq.quantize_weights_grad(W, self.bits, dWq.astype(np.float32))}


class DoReFa(Method):
    name = "dorefa"
    doc = ("DoReFa-Net: tanh-normalised k-bit weights (odd codes, k+1 signed bits), k-bit clipped [0,1] "
           "activations, optional noisy k-bit gradients -> bit_serial (W1A1: xnor_popcount)")
    kind = "bit_serial"
    weight_bits = tuple(range(2, 9)) + (1,)
    act_bits = tuple(range(1, 9))
    default_act_bits = 2
    options = (Option("grad_bits", 0, "k-bit gradients with noise (0 = full precision)", lo=0, hi=8),)
    defaults = {"epochs": 20, "lr": 3e-3, "batch_size": 100, "dropout_in": 0.0, "dropout_hidden": 0.0}
    bipolar_1bit = False
    bn_beta_init = 0.5  # the centre of the [0, 1] activation range
    out_scale_init = 1.0  # w_q already carries its scale (1/(2**k - 1) or mean|W|)
    quantizer_class = DoReFaQuantizer

    @staticmethod
    def _binary(cfg) -> bool:
        return cfg.weight_bits == 1 and cfg.act_bits == 1

    def kind_for(self, cfg):
        return "xnor_popcount" if self._binary(cfg) else "bit_serial"

    def input_for(self, cfg):
        return "threshold" if self._binary(cfg) else "identity"

    def ir_weight_bits(self, cfg):
        """Odd codes in [-(2**k - 1), 2**k - 1] (k = 1: +-1) need k + 1 signed bits."""
        return 1 if self._binary(cfg) else cfg.weight_bits + 1

    def grad_quantizer(self, cfg, rng):
        k = cfg.options["grad_bits"]
        return None if not k else (lambda g: dq.quantize_grad(g, k, rng))
