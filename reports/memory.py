"""Parameter memory per layer and in total, against float32 and int8 storage of the same shapes."""
from __future__ import annotations

from dataclasses import dataclass

from quantmodels.bitwidth import range_bits
from quantmodels.ir import IRModel, Layer, kind_spec


@dataclass(frozen=True)
class LayerMemory:
    """Stored bits of one layer."""

    name: str
    weight_bits: int
    threshold_bits: int
    bias_bits: int
    table_bits: int  #: lut_product's product table
    float32_bits: int  #: same layer in float32: weights + one bias/affine per neuron
    int8_bits: int  #: same layer in int8 with int32 biases

    @property
    def total_bits(self) -> int:
        return self.weight_bits + self.threshold_bits + self.bias_bits + self.table_bits


def layer_memory(layer: Layer) -> LayerMemory:
    n_w = layer.rows * layer.cols
    lo, hi = layer.acc_range()
    thr = 0
    if layer.output == "threshold":
        t = layer.thresholds
        thr = layer.rows * layer.n_thresholds * range_bits(min(lo, int(t.min())), max(hi, int(t.max())))
    bias = 0
    if layer.bias is not None:
        bias = layer.rows * range_bits(int(layer.bias.min()), int(layer.bias.max()))
    table = 0
    if layer.products is not None:
        p = layer.products
        table = p.size * range_bits(int(p.min()), int(p.max()))
    # the kind's storage code: the fewest bits the layer's actual weights need (1 for +-1 only)
    return LayerMemory(layer.name, n_w * kind_spec(layer.kind).stored_bits(layer), thr, bias, table,
                       float32_bits=32 * (n_w + layer.rows),
                       int8_bits=8 * n_w + 32 * layer.rows)


@dataclass(frozen=True)
class ModelMemory:
    """Stored bits of every layer of a model."""

    layers: list[LayerMemory]

    @property
    def total_bits(self) -> int:
        return sum(m.total_bits for m in self.layers)

    @property
    def float32_bits(self) -> int:
        return sum(m.float32_bits for m in self.layers)

    @property
    def int8_bits(self) -> int:
        return sum(m.int8_bits for m in self.layers)


def model_memory(model: IRModel) -> ModelMemory:
    return ModelMemory([layer_memory(L) for L in model.layers])
