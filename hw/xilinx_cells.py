"""Explicit Xilinx 7-series primitives (LUT6_2, CARRY4) as Amaranth ``Instance``s.

Instantiated cells are kept as they are by ``synth_xilinx``: ABC cannot re-map them, so a
hand-built compressor tree survives synthesis. Simulation needs behavioural models of
exactly these cells: lowbit's own ones live in ``sim/primitives/<NAME>.v`` (see
:mod:`sim.primitives`); Amaranth's own simulator cannot run Instances.

LUT6_2 semantics (as in the vendor library): ``O6 = INIT[{I5..I0}]``, ``O5 = INIT[{I4..I0}]``
(the lower half). With I5 tied to 1, O6 and O5 are two independent 5-input functions of one
physical LUT6; with I5 a signal, O5 is O6 restricted to I5 = 0.
CARRY4: ``O = S ^ {CO[2:0], CI|CYINIT}``, ``CO[i] = S[i] ? carry_in[i] : DI[i]``.
"""
from __future__ import annotations

from typing import Callable

from amaranth.hdl import Const, Instance, Module, Signal, Value

#: The primitive cells lowbit instantiates; each has a model in sim/primitives/<name>.v.
PRIMITIVES = ("LUT6_2", "CARRY4")


def init_dual5(f_o6: Callable[[int], int], f_o5: Callable[[int], int]) -> int:
    """INIT for a LUT6_2 with I5 tied to 1: O6 = f_o6(I4..I0), O5 = f_o5(I4..I0)."""
    hi = sum((f_o6(v) & 1) << v for v in range(32))
    lo = sum((f_o5(v) & 1) << v for v in range(32))
    return (hi << 32) | lo


def init6(f: Callable[[int], int]) -> int:
    """INIT for a 6-input function f(I5..I0) on O6 (O5 then gives f with I5 = 0)."""
    return sum((f(v) & 1) << v for v in range(64))


def lut6_2(m: Module, name: str, inputs: list[Value], init: int) -> tuple[Signal, Signal]:
    """One LUT6_2 cell; ``inputs`` (<= 6, I0 first) are padded with 0 except I5, padded with 1
    (so a <= 5-input LUT is in dual-output mode). Returns (O6, O5)."""
    if len(inputs) > 6:
        raise ValueError(f"{name}: {len(inputs)} inputs, a LUT6_2 has 6")
    ins = list(inputs) + [Const(0, 1)] * (5 - len(inputs)) + ([] if len(inputs) == 6 else [Const(1, 1)])
    o6, o5 = Signal(name=f"{name}_o6"), Signal(name=f"{name}_o5")
    m.submodules[name] = Instance("LUT6_2", p_INIT=Const(init, 64),
                                  **{f"i_I{k}": v for k, v in enumerate(ins)}, o_O6=o6, o_O5=o5)
    return o6, o5


def carry4(m: Module, name: str, s: list[Value], di: list[Value], cyinit: Value,
           ci: Value | None = None) -> tuple[Signal, Signal]:
    """One CARRY4 cell fed by up to 4 (S, DI) positions (unused ones tied to 0), CYINIT (a
    free input bit at the chain's start) and CI (the previous CARRY4's CO[3], else 0).
    Returns (O[3:0], CO[3:0])."""
    zero = Const(0, 1)
    s = list(s) + [zero] * (4 - len(s))
    di = list(di) + [zero] * (4 - len(di))
    o, co = Signal(4, name=f"{name}_o"), Signal(4, name=f"{name}_co")
    sv, dv = Signal(4, name=f"{name}_s"), Signal(4, name=f"{name}_di")
    m.d.comb += [sv[i].eq(s[i]) for i in range(4)]
    m.d.comb += [dv[i].eq(di[i]) for i in range(4)]
    m.submodules[name] = Instance("CARRY4", i_CI=zero if ci is None else ci, i_CYINIT=cyinit, i_DI=dv, i_S=sv, o_O=o, o_CO=co)
    return o, co
