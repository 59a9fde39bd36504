"""Small probe designs around one datapath unit, for bit-exact unit tests and area benchmarks."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .arith import popcount, xnor_popcount


class PopcountBank(wiring.Component):
    """Independent popcounts of ``sizes`` input bits side by side: ``x`` holds their inputs
    (an xnor unit, ``xnor=True`` or ``xnor[k]`` true, takes n activation bits then n weight
    bits and counts agreements), ``y`` their counts, unit k in ``n_k.bit_length()`` bits, LSB first.
    ``registered=True`` puts flip-flops on both sides so only the tree is combinational."""

    def __init__(self, sizes: list[int], style: str = "tree", xnor: bool | list[bool] = False,
                 registered: bool = False):
        if not sizes or min(sizes) < 1:
            raise ValueError(f"sizes: {sizes!r}, expected positive input counts")
        self.xnor = list(xnor) if isinstance(xnor, (list, tuple)) else [xnor] * len(sizes)
        if len(self.xnor) != len(sizes):
            raise ValueError(f"xnor: {len(self.xnor)} flags for {len(sizes)} units")
        self.sizes, self.style, self.registered = list(sizes), style, registered
        self.in_widths = [2 * n if xn else n for n, xn in zip(sizes, self.xnor)]
        self.in_width = sum(self.in_widths)
        self.out_widths = [n.bit_length() for n in sizes]
        super().__init__({"x": In(self.in_width), "y": Out(sum(self.out_widths))})

    def elaborate(self, platform):
        m = Module()
        x = Signal(self.in_width, name="xr")
        dom = m.d.sync if self.registered else m.d.comb
        dom += x.eq(self.x)
        outs, pos = [], 0
        for k, n in enumerate(self.sizes):
            if self.xnor[k]:
                c = xnor_popcount(m, x[pos:pos + n], x[pos + n:pos + 2 * n], n, f"pc{k}", self.style)
                pos += 2 * n
            else:
                c = popcount(m, [x[pos + i] for i in range(n)], f"pc{k}", self.style)
                pos += n
            outs.append(c[:n.bit_length()])
        y = Signal(len(self.y), name="yc")
        m.d.comb += y.eq(Cat(*outs))
        dom += self.y.eq(y)
        return m

