"""BitNet: Raghavan et al., "BitNet: Bit-Regularized Deep Neural Networks" (arXiv:1708.04788),
as a plug-in of the generic :class:`~quantmodels.net.QuantNet` (dense and conv layers, batch
norm after every hidden layer, generic exact export).

The quantizer, its STE, the MDL regulariser and the bit-width step are the pure functions of
:mod:`quantmodels.bitnet` (exact rules there). Per layer (dense or conv):

* trainable ``<layer>.log_s`` (scale ``s = exp(log_s)``, one per layer) and ``<layer>.t``
  (translation), initialised so that the ``weight_bits``-bit grid spans the initial weights;
* the bit width ``b`` in the network's ``state`` (``<layer>.bits``), so the best-epoch
  checkpoint restores it together with the weights and scale it belongs to;
* ``Wq = s * c`` with signed integer codes ``c = q - z``; the gradient of ``Wq`` goes through
  the LSQ STE, plus ``lam_q`` times the exact gradient of the layer's relative quantization
  error (the regulariser is a sum over layers, so each layer adds its own term);
* after every optimizer step (hook :meth:`BitNet.post_step`) ``t`` is clipped to the range where
  it moves the window (:func:`quantmodels.bitnet.live_translation`), and every ``bits_every``
  steps each layer moves to the best of ``b - 1, b, b + 1`` under
  ``lam_q * relerr + lam_b * bits/weight``.

Activations: k-bit clipped [0, 1] levels (unsigned also for k = 1), raw 8-bit pixels in.
Export: ``bit_serial`` with ``s`` folded into the integer thresholds; each layer's
``weight_bits`` is the signed width of its code window (:func:`quantmodels.bitnet.code_width`).

Option ``quantize=False`` is the unregularised float twin: the same network with the latent
float weights used as they are (identity gradient, no regulariser, no bit widths); it trains
and predicts (its eval pass multiplies by the float weights) but has no integer export.
"""
from __future__ import annotations

import numpy as np

from .. import bitnet
from ..errors import ConfigError
from .base import IdentityQuantizer, Method, Option, WeightQuantizer


class BitNetQuantizer(WeightQuantizer):
    """Per-layer scale, translation and bit width of :mod:`quantmodels.bitnet`."""

    def init_params(self, W, params):
        lo, hi = float(W.min()), float(W.max())
        params[f"{self.name}.log_s"] = np.array([np.log((hi - lo) / ((1 << self.bits) - 1))], np.float32)
        params[f"{self.name}.t"] = np.array([lo], np.float32)

    def init_state(self, W, state):
        self.state = state  # the network's dict: restoring the best epoch writes into it in place
        state[f"{self.name}.bits"] = np.array([self.bits], np.int64)

    @property
    def b(self) -> int:
        """The layer's current bit width (``self.bits`` is the initial one)."""
        return int(self.state[f"{self.name}.bits"][0])

    def _scale(self, params: dict) -> float:
        return float(np.exp(np.float64(params[f"{self.name}.log_s"][0])))

    def _quantized(self, W: np.ndarray, params: dict) -> bitnet.Quantized:
        return bitnet.quantize(W.astype(np.float64), self._scale(params), float(params[f"{self.name}.t"][0]), self.b)

    def quantize(self, W, params, train):
        qz = self._quantized(W, params)
        if train:  # the codes and window of this forward pass, for grad() in the backward pass
            self._qz = qz
        return qz.codes.astype(W.dtype), np.full(len(W), self._scale(params))

    def grad(self, W, dWq, params):
        s, w = self._scale(params), W.astype(np.float64)
        dw, ds, dt = bitnet.ste_grads(w, s, self._qz, dWq.astype(np.float64))
        lam = self.opts["lam_q"]
        if lam:
            rw, rs, rt = bitnet.relerr_grads(w, s, self._qz)
            dw, ds, dt = dw + lam * rw, ds + lam * rs, dt + lam * rt
        return {f"{self.name}.W": dw.astype(np.float32),
                f"{self.name}.log_s": np.array([ds * s], np.float32),  # d/d log_s = s d/ds
                f"{self.name}.t": np.array([dt], np.float32)}

    def keep_translation_live(self, params: dict) -> None:
        """Clip ``t`` back to where it moves the window (:func:`quantmodels.bitnet.live_translation`)."""
        t = params[f"{self.name}.t"]
        t[0] = np.float32(bitnet.live_translation(float(t[0]), self._scale(params), self.b))

    def choose_bits(self, W: np.ndarray, params: dict, n_total: int) -> None:
        """One MDL step on the bit width (``n_total``: weights in the whole network)."""
        nb, ns = bitnet.choose_bits(W.astype(np.float64), self._scale(params), float(params[f"{self.name}.t"][0]),
                                    self.b, n_total, self.opts["lam_q"], self.opts["lam_b"])
        self.state[f"{self.name}.bits"][0] = nb
        params[f"{self.name}.log_s"][0] = np.float32(np.log(ns))

    def ir_weight_bits(self, W, params, negated):
        return bitnet.code_width(self._quantized(W, params).z, self.b, negated)


class BitNet(Method):
    name = "bitnet"
    doc = ("BitNet: per-layer learnable scale + translation (integer zero point folded into the codes), "
           "per-layer bit widths chosen by an MDL regulariser -> bit_serial")
    kind = "bit_serial"
    weight_bits = tuple(range(8, 0, -1))  #: the initial bit width of every layer (training may change it)
    act_bits = tuple(range(1, 9))
    default_act_bits = 4
    options = (Option("lam_q", 1.0, "weight of the relative quantization error", lo=0.0, hi=1e6),
               Option("lam_b", 0.01, "weight of the bits/weight term", lo=0.0, hi=1e6),
               Option("bits_every", 500, "steps between MDL bit-width updates", lo=1, hi=10 ** 9),
               Option("quantize", True, "False: the unregularised float twin (trains, no IR export)"))
    defaults = {"epochs": 20, "lr": 3e-3, "batch_size": 100, "dropout_in": 0.0, "dropout_hidden": 0.0}
    bipolar_1bit = False  # 1-bit activations are clipped [0, 1] levels {0, 1}, as for k bits
    bn_beta_init = 0.5  # the centre of the [0, 1] activation range
    out_scale_init = 1.0  # Wq = s c already carries the weights' scale

    def quantizer(self, name, cfg, per_channel, rng):
        cls = BitNetQuantizer if cfg.options["quantize"] else IdentityQuantizer
        return cls(name, cfg.options, per_channel, cfg.weight_bits, rng)

    def post_step(self, net) -> None:
        """Every step: keep each layer's translation live; each ``bits_every`` optimizer steps:
        the MDL step on every layer's bit width."""
        if not net.opts["quantize"]:
            return
        for b in net.blocks:
            b.wq.keep_translation_live(net.params)
        if net.steps % net.opts["bits_every"]:
            return
        n_total = sum(net.params[k].size for k in net.latent_weights())
        for b in net.blocks:
            b.wq.choose_bits(net.params[f"{b.name}.W"], net.params, n_total)

    def export(self, net, cfg, name, image_shape, meta, calib):
        if not cfg.options["quantize"]:
            raise ConfigError("bitnet: the unregularised float twin (quantize=False) has no integer export")
        return super().export(net, cfg, name, image_shape, meta, calib)

    def extra_meta(self, net):
        if not net.opts["quantize"]:
            return {}
        bits = [b.wq.b for b in net.blocks]
        sizes = [net.params[k].size for k in net.latent_weights()]
        return {"bits_per_layer": bits, "bits_per_weight": bitnet.bits_penalty(bits, sizes)}
