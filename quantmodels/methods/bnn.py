"""BNN: Hubara, Courbariaux et al., "Binarized Neural Networks" (NIPS 2016).

Weights and activations ``sign(x)`` (sign(0) = +1), STE with gradient cancelled where |x| > 1,
batch norm after every hidden layer, latent weights clipped to [-1, 1]; optional shift-based
batch norm (``shift_bn``: AP2 of gamma and of 1/std) and shift-based AdaMax
(``--optimizer shift_adamax``). Exported to ``xnor_popcount`` with one threshold per neuron.
"""
from __future__ import annotations

from .base import Method, Option


class BNN(Method):
    name = "bnn"
    doc = "BNN: binary weights and activations, batch norm, STE -> xnor_popcount"
    kind = "xnor_popcount"
    input = "threshold"
    weight_bits = (1,)
    act_bits = (1,)
    default_act_bits = 1
    options = (Option("shift_bn", False, "shift-based batch norm (power-of-two gamma and 1/std)"),)
    #: chosen on MNIST SFC; see benchmarks/results
    defaults = {"epochs": 60, "lr": 3e-3, "batch_size": 100, "dropout_in": 0.1, "dropout_hidden": 0.1}
    clip_weights = True
