"""Whole-network area estimate (a MODEL): the calibrated layer units plus the stream plumbing
between them, as hw.network.NetworkTop builds it.

:func:`reports.estimator.estimate_model` prices the layers' matrix-vector units only. A generated
network also has a width converter in front of every layer and of the argmax
(:class:`hw.stream.WidthConverter`) and the argmax compare tree (:class:`hw.network.Argmax`); on
the SFC these are about a tenth of the design. Their cost here is structural, not fitted: the
flip-flops are the registers the generator declares, the LUTs the muxes and compares that drive
them in the family's LUTs (:func:`reports.kind_costs.mux_luts`). Checked against a real synthesis
of the SFC in benchmarks/estimator_calibration.py's network check (``--network``).

The network is read off the generator itself (a NetworkTop constructed, never elaborated), so the
converter kinds, the argmax width and split, and each unit's register stages are the ones it builds.
"""
from __future__ import annotations

from dataclasses import dataclass

from hw.folding import Folding
from quantmodels.ir import IRModel

from .estimator import AreaEstimate, ModelEstimate, estimate
from .kind_costs import LUT_INPUTS, mux_luts


def _mux(n: int, fam: str) -> float:
    """LUTs of an n:1 mux in a converter: :func:`reports.kind_costs.mux_luts`, except on xilinx, where
    the SFC's 49:1 split mux measured n/2 LUT6 per bit (407 LUT6 for 16 bits: ABC builds it from
    LUT6s, not the free MUXF7/F8 the unit's lane model assumes)."""
    return mux_luts(n, "ecp5" if fam == "xilinx" else fam)


def _bits(n: int) -> int:
    """Bits of a counter over ``n`` values."""
    return max(1, (max(n, 2) - 1).bit_length())


@dataclass(frozen=True)
class PlumbingCost:
    """MODEL: LUTs and flip-flops of one converter or of the argmax."""

    luts: float
    ffs: float


def converter_cost(c, fam: str) -> PlumbingCost:
    """A :class:`hw.stream.WidthConverter`'s registers and the logic in front of them, by its kind
    (the shapes its docstring lists). A masked place is one LUT per bit (an AND with the last-chunk flag)."""
    a, b, nb = c.a, c.b, c.bits
    src, dst = c.src, c.dst
    if c.kind == "pass":
        if src.last == a:
            return PlumbingCost(0.0, 0.0)
        return PlumbingCost((a - src.last) * nb + _bits(src.chunks), float(_bits(src.chunks)))
    if c.kind == "split":  # the vector loaded once, chunks picked by a binary mux tree per output bit
        k = dst.chunks
        return PlumbingCost(b * nb * _mux(k, fam) + 2 * _bits(k + 1), c.n * nb + 2 * _bits(k + 1))
    if c.kind == "collect":  # a shift register with an enable: FFs, a counter
        return PlumbingCost(float(2 * _bits(src.chunks + 1)), src.chunks * a * nb + _bits(src.chunks + 1))
    if c.kind == "down":  # load-or-shift mux per bit, the last chunk masked
        return PlumbingCost(a * nb + (b - dst.last) * nb + 2 * _bits(src.chunks),
                            a * nb + 2 * _bits(src.chunks) + 1)
    if c.kind == "up":  # per slot: its enable and its one-hot pointer bit's rotate-or-reset (SFC, xilinx:
        per = b // a     # 258 LUT6 for 128 slots); the completing chunk muxed only into the last output chunk
        q = src.chunks - (dst.chunks - 1) * per
        return PlumbingCost(2 * per + (a * nb if q < per else 0) + (b - dst.last) * nb + _bits(dst.chunks) + 2,
                            (per - 1) * a * nb + b * nb + per + _bits(dst.chunks) + 2)
    # gear: a buffer written at any of cap/g positions (a barrel shifter) and shifted out
    cap = c.cap
    return PlumbingCost(cap * nb * (1 + _mux(cap // max(1, min(a, b)) + 1, fam) / max(1, LUT_INPUTS[fam] - 2)),
                        cap * nb + 2 * _bits(cap) + _bits(src.chunks) + _bits(dst.chunks))


def argmax_cost(am, fam: str) -> PlumbingCost:
    """:class:`hw.network.Argmax`: the held logits, per tree node a compare (a carry chain of the
    logit width) and a registered mux of value + index (one LUT per bit), the compare itself
    registered when ``split``; the odd one out of a level is registered unchanged."""
    w, n = am.width, am.n
    iw = max(1, (n - 1).bit_length())
    nodes, regs, left = 0, 0, n
    while left > 1:
        nodes += left // 2
        regs += (left + 1) // 2
        left = (left + 1) // 2
    cmp_luts = w if fam == "ice40" else w / 2  # ecp5 / xilinx: two compare bits per LUT beside the carry
    return PlumbingCost(nodes * (cmp_luts + w + iw) + _bits(am.depth) + 2,
                        n * w + regs * (w + iw) + (nodes if am.split else 0) + _bits(am.depth) + 2)


@dataclass(frozen=True)
class NetworkEstimate:
    """MODEL: a whole generated network: per stage (a layer with the converter feeding it, then the
    argmax with its converter, hw.network.stage_of's grouping) and the totals."""

    estimate: ModelEstimate  #: totals over every stage; ``layers`` holds the layer stages
    layer_units: tuple[AreaEstimate, ...]  #: the layers' units alone (the calibrated part)
    converters: tuple[PlumbingCost, ...]  #: per converter, in hw.network order (the last feeds the argmax)
    argmax: PlumbingCost


def estimate_network(model: IRModel, foldings: list[Folding], target: str, mem_style: str = "auto",
                     clock_mhz: float | None = None, family: str = "ice40", popcount: str = "tree") -> NetworkEstimate:
    """MODEL: the whole network ``lowbit verilog`` builds with these options (``clock_mhz`` on ``family``'s
    delay model sets the register stages, hw.pipeline), estimated for ``target``."""
    from hw.network import NetworkTop

    top = NetworkTop(model, foldings, popcount, mem_style, clock_mhz, family)
    top._MustUse__silence = True  # read, never elaborated
    for x in [*top.units, *(u.core for u in top.units), *top.converters, top.argmax]:
        x._MustUse__silence = True
    fam = target.split("-")[0]
    # each unit as NetworkTop built it for ``family`` (e.g. iCE40 input banks in block RAM)
    units = tuple(estimate(L, f, target, mem_style, top.tree_every, family) for L, f in zip(model.layers, foldings))
    convs = tuple(converter_cost(c, fam) for c in top.converters)
    am = argmax_cost(top.argmax, fam)
    stages = tuple(AreaEstimate(u.target, u.kind, u.luts + c.luts, u.ffs + c.ffs, u.brams, u.dsps, u.lutrams)
                   for u, c in zip(units, convs))
    tail = PlumbingCost(am.luts + convs[-1].luts, am.ffs + convs[-1].ffs)
    total = ModelEstimate(target, stages, sum(s.luts for s in stages) + tail.luts,
                          sum(s.ffs for s in stages) + tail.ffs, sum(s.brams for s in stages),
                          sum(s.dsps for s in stages), sum(s.lutrams for s in stages))
    return NetworkEstimate(total, units, convs, am)
