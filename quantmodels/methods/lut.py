"""Baluja et al. 2018 ("No Multiplication? No Floating Point? No Problem!") as a plug-in of the
generic :class:`~quantmodels.net.QuantNet` (dense and conv layers; classification and, with
``TrainConfig(task="autoencode")``, autoencoding of dense nets).

Every layer (dense, or conv over im2col patches, optionally max-pooled):

* weights: :class:`CodebookQuantizer`: latent float ``W`` snapped to the nearest of the
  ``2**weight_bits`` entries of the layer codebook ``C`` (STE: the gradient reaches ``W``
  unchanged); every ``cluster_every`` steps the codebook is re-fitted to the latent weights by
  warm-started 1-D k-means (the periodic adaptive clustering, :meth:`Lut.post_step`);
  initial ``W`` uniform in ``+-sqrt(6 / fan_in)``;
* norm: a per-channel bias (initialised to 0.1), no batch norm;
* activation: ``level_index(z) / (L - 1)`` with ``L = 2**act_bits`` levels
  (:class:`~quantmodels.quantizers.LevelAct`; STE: gradient where 0 <= z <= 1); the output layer
  emits raw logits (classify) or levels too (autoencode: reconstruction = level / (L - 1));
* input: codes ``c = pixel >> (8 - input_bits)`` standing for ``c / (2**k - 1)`` (the IR's
  ``truncate`` input; 8 bits = the raw pixel).

Exact eval and export (identical arithmetic, the IR's ``lut_product``)::

    acc   = sum_j P_i[idx_ij, x_j]                 integer table lookups + adds
    level = level_index(acc / S_i + b_i, L)        hidden: folded into integer thresholds
    logit = acc + round(S_i b_i)                   last layer: integer bias, argmax

``P_i = round(S_i C_i (x) levels)`` (:func:`quantmodels.discretize.product_table`), ``S_i`` a
power of two (so ``acc / S_i`` is exact). Conv padding reads code 0, whose value (and every
product ``P[:, 0]``) is 0: the IR's conv2d rule. ``level_index`` is non-decreasing, so
max-pooling levels (IR, hardware) equals max-pooling activations (training).
An autoencoder is not exported (the IR ends in argmax): it runs in NumPy with the same integer
tables (:meth:`~quantmodels.net.QuantNet.reconstruct`).
``quantize=False`` gives the float twin (float weights, continuous clip(z, 0, 1) activations).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import discretize as dz
from ..errors import ConfigError
from ..layers import Bias
from ..quantizers import ClipAct, IdentityAct, InputQuant, LevelAct
from .base import IdentityQuantizer, Method, Option, WeightQuantizer


class CodebookQuantizer(WeightQuantizer):
    """Nearest-codebook-entry weights; codes are codebook indices, the layer's product table
    (codebook x input level values, :attr:`opts` ``table_bits``) gives the integer accumulator."""

    negatable = False  # indices cannot be negated; the level function is non-decreasing anyway

    def init_state(self, W, state):
        self.state, self.key = state, f"{self.name}.codebook"
        self.recluster(W)

    def recluster(self, W: np.ndarray) -> None:
        """Re-fit the codebook to the latent weights (warm start from the last one)."""
        old = self.state.get(self.key)
        self.state[self.key] = dz.kmeans_1d(W, 1 << self.bits, init=old, iters=30 if old is None else 5)

    def index(self, W: np.ndarray) -> np.ndarray:
        return dz.nearest_index(W, self.state[self.key])

    def forward(self, W, params, train):
        return self.state[self.key][self.index(W)].astype(np.float32)

    def grad(self, W, dWq, params):
        return {f"{self.name}.W": dWq}

    def codes(self, W, params):
        return self.index(W), np.ones(len(W))

    def table(self, in_act) -> tuple[np.ndarray, float]:
        """The integer product table over ``in_act``'s level values and its power-of-two scale S."""
        cb, lv = self.state[self.key], in_act.values()
        s = dz.table_scale(cb, lv, self.opts["table_bits"])
        return dz.product_table(cb, lv, s), s

    def dot_scale(self, W, params, in_act):
        return np.full(len(W), 1.0 / self.table(in_act)[1])

    def integer_dot(self, W, params, in_act, P):
        return dz.table_accumulate(self.table(in_act)[0], self.index(W), P)

    def acc_range(self, W, params, in_act):
        # every patch element is some input code: code 0 (padding too) included, P[:, 0] = 0
        table, idx = self.table(in_act)[0], self.index(W)
        return table.min(1)[idx].sum(1), table.max(1)[idx].sum(1)

    def ir_fields(self, W, params, in_act) -> dict[str, Any]:
        return {"products": self.table(in_act)[0]}


class Lut(Method):
    name = "lut"
    doc = ("Baluja et al. 2018: codebook weights (periodic k-means), level activations, integer product "
           "tables; inference = lookups + adds -> lut_product")
    kind = "lut_product"
    weight_bits = (6, 4, 5, 7, 8)  #: codebook index bits (2**bits entries)
    act_bits = (5, 2, 3, 4, 6)  #: level bits (2**bits activation levels)
    default_act_bits = 5
    options = (Option("table_bits", 16, "signed bits per product-table entry", lo=4, hi=24),
               Option("cluster_every", 100, "steps between codebook re-clusterings", lo=1, hi=10 ** 9),
               Option("input_bits", 4, "bits kept per input pixel (pixel >> (8 - k)); 8 = raw pixels, "
                      "whose 256 levels make the first layer's product table 16x larger", lo=1, hi=8),
               Option("quantize", True, "False: the float twin (trains, no IR export)"))
    defaults = {"epochs": 20, "lr": 2e-3, "batch_size": 100, "dropout_in": 0.0, "dropout_hidden": 0.0}
    tasks = ("classify", "autoencode")

    def init_weights(self, rng, out, fan_in):
        lim = np.sqrt(6.0 / fan_in)
        return rng.uniform(-lim, lim, (out, fan_in)).astype(np.float32)

    def configure(self, cfg) -> None:
        """``input_bits`` (``--input-bits``) and the ``input_bits`` option are one setting."""
        opt = cfg.options.get("input_bits")
        if cfg.input_bits is not None:
            if opt is not None and next(o for o in self.options if o.name == "input_bits").parse(opt, self.name) != cfg.input_bits:
                raise ConfigError(f"input_bits: {cfg.input_bits}, but option input_bits={opt}; expected one "
                                  "setting (--input-bits K sets the lut option too)")
            cfg.options = {**cfg.options, "input_bits": cfg.input_bits}
        super().configure(cfg)

    def native_input_bits(self, cfg) -> int:
        return cfg.options["input_bits"]

    def input_quant(self, cfg):
        return InputQuant("truncate", bits=cfg.options["input_bits"])

    def act(self, cfg, last):
        if last and cfg.task == "classify":
            return IdentityAct()
        return LevelAct(cfg.act_bits) if cfg.options["quantize"] else ClipAct(cfg.act_bits)

    def norm(self, name, out, fan_in, params, state, cfg, last):
        return Bias(name, out, params, 0.1)

    def quantizer(self, name, cfg, per_channel, rng):
        cls = CodebookQuantizer if cfg.options["quantize"] else IdentityQuantizer
        return cls(name, cfg.options, per_channel, cfg.weight_bits, rng)

    def post_step(self, net) -> None:
        """Every ``cluster_every`` optimizer steps: re-fit each layer's codebook."""
        if net.opts["quantize"] and net.steps % net.opts["cluster_every"] == 0:
            for b in net.blocks:
                b.wq.recluster(b.W)

    def export(self, net, cfg, name, image_shape, meta, calib):
        if not cfg.options["quantize"]:
            raise ConfigError("lut: the float twin (quantize=False) has no integer export")
        return super().export(net, cfg, name, image_shape, meta, calib)

    def extra_meta(self, net):
        return {"codebook_size": 1 << net.blocks[0].wq.bits, "levels": 1 << net.blocks[0].act.bits,
                "table_bits": net.opts["table_bits"]}
