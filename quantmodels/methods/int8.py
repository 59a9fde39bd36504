"""int8 baseline: a float32 ReLU network with biases (dense, conv + max-pool; He-normal initial
weights, zero biases) trained as a plug-in of the generic :class:`~quantmodels.net.QuantNet`
(identity weight quantizer, :class:`~quantmodels.layers.Bias` instead of batch norm, ReLU),
then post-training quantization to 8-bit ``mac`` layers (see
:func:`quantmodels.export.export_int8`). Its float accuracy is the float32 baseline; its golden
model is checked against the fake-quantized float simulation of the PTQ model."""
from __future__ import annotations

import numpy as np

from ..layers import Bias
from ..quantizers import IdentityAct, ReLUAct
from .base import IdentityQuantizer, Method


class Int8(Method):
    name = "int8"
    doc = "float32 training + int8 post-training quantization -> mac (the baseline)"
    kind = "mac"
    weight_bits = (8,)
    act_bits = (8,)
    default_act_bits = 8
    defaults = {"epochs": 15, "lr": 1e-3, "batch_size": 100, "dropout_in": 0.0, "dropout_hidden": 0.0}
    quantizer_class = IdentityQuantizer

    def init_weights(self, rng, out, fan_in):
        """He normal (ReLU network)."""
        return (rng.standard_normal((out, fan_in)) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    def act(self, cfg, last):
        return IdentityAct() if last else ReLUAct()

    def norm(self, name, out, fan_in, params, state, cfg, last):
        return Bias(name, out, params, 0.0)

    def quantized_predict(self, net, samples, calib):
        from ..export import int8_fake_quant, int8_plan

        # float32 is the baseline's float accuracy; the PTQ model's float simulation is what the
        # integer export must reproduce
        return np.argmax(int8_fake_quant(int8_plan(net, calib), samples)[-1], axis=1)

    def export(self, net, cfg, name, image_shape, meta, calib):
        from ..export import export_int8

        return export_int8(net, name, image_shape, calib, meta)
