"""The lut method as a plug-in of the registry.

It overrides :meth:`Method.build` / :meth:`Method.export` (like ``int8``): the network is its own
class (dense and conv layers, product tables instead of the generic quantizer + batch norm)
with its own exact export (:mod:`quantmodels.lut_net`); arithmetic and rounding rules are
documented there and in :mod:`quantmodels.discretize`. (``dorefa`` and ``bitnet`` are
plug-ins of the generic network, MLPs and CNNs: :mod:`quantmodels.methods.dorefa`,
:mod:`quantmodels.methods.bitnet`.)
"""
from __future__ import annotations

from ..errors import ConfigError
from .base import Method, Option


class Lut(Method):
    name = "lut"
    doc = ("Baluja et al. 2018: codebook weights (periodic k-means), level activations, integer product "
           "tables; inference = lookups + adds -> lut_product")
    weight_bits = (6, 4, 5, 7, 8)  #: codebook index bits (2**bits entries)
    act_bits = (5, 2, 3, 4, 6)  #: level bits (2**bits activation levels)
    default_act_bits = 5
    options = (Option("table_bits", 16, "signed bits per product-table entry", lo=4, hi=24),
               Option("cluster_every", 100, "steps between codebook re-clusterings", lo=1, hi=10 ** 9),
               Option("input_bits", 4, "bits kept per input pixel (pixel >> (8 - k)); 8 = raw pixels, "
                      "whose 256 levels make the first layer's product table 16x larger", lo=1, hi=8),
               Option("quantize", True, "False: the float twin (trains, no IR export)"))
    defaults = {"epochs": 20, "lr": 2e-3, "batch_size": 100, "dropout_in": 0.0, "dropout_hidden": 0.0}

    def configure(self, cfg) -> None:
        super().configure(cfg)
        for k in ("dropout_in", "dropout_hidden"):  # LutNet has no dropout: refuse rather than ignore
            if getattr(cfg, k):
                raise ConfigError(f"{k}: {getattr(cfg, k)}, expected 0 for method 'lut' (it has no dropout)")

    def build(self, cfg, image_shape, n_classes, rng):
        from ..arch import parse_arch
        from ..lut_net import LutNet

        return LutNet(parse_arch(cfg.arch, image_shape), image_shape, n_classes, rng, codebook_bits=cfg.weight_bits,
                      level_bits=cfg.act_bits, table_bits=cfg.options["table_bits"],
                      cluster_every=cfg.options["cluster_every"], quantize=cfg.options["quantize"],
                      input_bits=cfg.options["input_bits"])

    def export(self, net, cfg, name, image_shape, meta, calib):
        return net.export(name, image_shape, meta)

    def extra_meta(self, net):
        return {"codebook_size": 1 << net.cb_bits, "levels": net.n_levels}
