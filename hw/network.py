"""Network top generated from the IR: layers chained by valid/ready, argmax at the end.

Top-level ports (flat, as they appear in the Verilog):
``in_valid, in_ready, in_data`` (element i at [i*bits +: bits]) and
``out_valid, out_ready, out_class, out_logits`` (logit j at [j*LW +: LW], two's complement).
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from quantmodels.errors import ConfigError
from quantmodels.ir import IRModel

from .arith import POPCOUNT_STYLES
from .folding import PIPELINE_CYCLES, Folding
from .conv import ConvolutionUnit
from .mvu import MatrixVectorUnit


class Argmax(wiring.Component):
    """Registered argmax over ``n`` signed logits; first index wins ties (strict >)."""

    def __init__(self, n: int, width: int):
        self.n, self.width = n, width
        super().__init__({
            "in_valid": In(1), "in_ready": Out(1), "in_data": In(n * width),
            "out_valid": Out(1), "out_ready": In(1),
            "out_class": Out(max(1, (n - 1).bit_length())), "out_logits": Out(n * width),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        vals = [self.in_data[j * w:(j + 1) * w].as_signed() for j in range(self.n)]
        best_v, best_i = vals[0], 0
        for j in range(1, self.n):  # linear scan: n is the class count, small
            bv = Signal(signed(w), name=f"best_v{j}")
            bi = Signal(len(self.out_class), name=f"best_i{j}")
            m.d.comb += [bv.eq(best_v), bi.eq(best_i)]
            with m.If(vals[j] > best_v):
                m.d.comb += [bv.eq(vals[j]), bi.eq(j)]
            best_v, best_i = bv, bi
        valid = Signal()
        m.d.comb += [self.in_ready.eq(~valid | self.out_ready), self.out_valid.eq(valid)]
        with m.If(self.in_ready):
            m.d.sync += valid.eq(self.in_valid)
            with m.If(self.in_valid):
                m.d.sync += [self.out_class.eq(best_i), self.out_logits.eq(self.in_data)]
        return m


class NetworkTop(wiring.Component):
    """The whole network: one unit per layer (ConvolutionUnit for conv2d, MatrixVectorUnit for
    dense; both add PIPELINE_CYCLES to their Folding.cycles), then Argmax."""

    def __init__(self, model: IRModel, foldings: list[Folding], popcount: str = "tree"):
        if popcount not in POPCOUNT_STYLES:  # checked before any unit exists
            self._MustUse__silence = True  # refused, never to be elaborated: no "unused" warning
            raise ConfigError(f"popcount: {popcount!r}, expected one of {', '.join(POPCOUNT_STYLES)}")
        if len(foldings) != len(model.layers):
            raise ConfigError(f"folding: {len(foldings)} entries for {len(model.layers)} layers")
        self.model = model
        self.units = [(ConvolutionUnit if L.conv is not None else MatrixVectorUnit)(L, f, popcount)
                      for L, f in zip(model.layers, foldings)]
        self.logit_width = self.units[-1].ob
        n = model.n_classes
        super().__init__({
            "in_valid": In(1), "in_ready": Out(1), "in_data": In(model.input.features * model.input.bits),
            "out_valid": Out(1), "out_ready": In(1),
            "out_class": Out(max(1, (n - 1).bit_length())), "out_logits": Out(n * self.logit_width),
        })

    @property
    def cycles_per_image(self) -> int:
        """Initiation interval: the slowest layer's compute cycles plus its pipeline/hand-over."""
        return max(u.fold.cycles for u in self.units) + PIPELINE_CYCLES

    @property
    def latency_cycles(self) -> int:
        return sum(u.fold.cycles + PIPELINE_CYCLES for u in self.units) + 1

    def elaborate(self, platform):
        m = Module()
        for i, u in enumerate(self.units):
            m.submodules[self.model.layers[i].name] = u
        m.submodules.argmax = am = Argmax(self.model.n_classes, self.logit_width)
        first = self.units[0]
        m.d.comb += [first.in_valid.eq(self.in_valid), first.in_data.eq(self.in_data),
                     self.in_ready.eq(first.in_ready)]
        for a, b in zip(self.units, self.units[1:] + [am]):
            m.d.comb += [b.in_valid.eq(a.out_valid), b.in_data.eq(a.out_data), a.out_ready.eq(b.in_ready)]
        m.d.comb += [self.out_valid.eq(am.out_valid), am.out_ready.eq(self.out_ready),
                     self.out_class.eq(am.out_class), self.out_logits.eq(am.out_logits)]
        return m
