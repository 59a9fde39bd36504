"""Arithmetic building blocks: balanced adder trees and per-kind lane products.

Trees are generated level by level with an intermediate signal per node: Amaranth converts
this quickly, whereas a Python ``sum()`` over hundreds of terms builds a deep chain that
takes minutes to convert (and Yosys re-balances it anyway).
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned


def adder_tree(m: Module, terms: list[Value], name: str) -> Value:
    """Sum of ``terms`` as a balanced binary tree of comb adders (width grows one bit per level)."""
    if not terms:
        return Const(0, 1)
    level = 0
    while len(terms) > 1:
        nxt = []
        for i in range(0, len(terms) - 1, 2):
            a, b = terms[i], terms[i + 1]
            s = Signal((a + b).shape(), name=f"{name}_l{level}_{i // 2}")
            m.d.comb += s.eq(a + b)
            nxt.append(s)
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
        level += 1
    return terms[0]


def xnor_popcount(m: Module, x: Value, w: Value, lanes: int, name: str) -> Value:
    """popcount(~(x ^ w)) over ``lanes`` bits: the +-1 dot product's agreement count."""
    agree = Signal(lanes, name=f"{name}_xnor")
    m.d.comb += agree.eq(~(x ^ w))
    return adder_tree(m, [agree[i] for i in range(lanes)], name)


def mac_products(m: Module, x: Value, w: Value, lanes: int, in_bits: int, w_bits: int, name: str) -> Value:
    """sum_i w_i * x_i with unsigned ``in_bits`` inputs and signed ``w_bits`` weights."""
    prods = []
    for i in range(lanes):
        xi = Cat(x[i * in_bits:(i + 1) * in_bits], Const(0, 1)).as_signed()  # zero-extend, then signed
        wi = w[i * w_bits:(i + 1) * w_bits].as_signed()
        p = Signal(signed(in_bits + w_bits + 1), name=f"{name}_p{i}")
        m.d.comb += p.eq(xi * wi)
        prods.append(p)
    return adder_tree(m, prods, name)


def _zext_signed(v: Value) -> Value:
    """Unsigned value -> signed one bit wider with the same numeric value."""
    return Cat(v, Const(0, 1)).as_signed()


def accumulate_lanes(m: Module, x: Value, w: Value, lanes: int, in_bits: int, name: str) -> Value:
    """Ternary weights (2-bit two's complement: 01 = +1, 11 = -1, 00 = 0): add, subtract or skip."""
    terms = []
    for i in range(lanes):
        xi = _zext_signed(x[i * in_bits:(i + 1) * in_bits])
        wi = w[i * 2:(i + 1) * 2]
        t = Signal(signed(in_bits + 2), name=f"{name}_t{i}")
        m.d.comb += t.eq(Mux(wi[0], Mux(wi[1], -xi, xi), 0))
        terms.append(t)
    return adder_tree(m, terms, name)


def shift_code_width(max_exp: int) -> tuple[int, int]:
    """(exponent bits, code bits) of the shift_add weight code {exponent, nonzero, sign}."""
    eb = max(1, max_exp.bit_length())
    return eb, eb + 2


def shift_add_lanes(m: Module, x: Value, w: Value, lanes: int, in_bits: int, max_exp: int, name: str) -> Value:
    """Power-of-two weights: code = Cat(exponent, nonzero, sign); term = +-(x << exponent) or 0."""
    eb, cb = shift_code_width(max_exp)
    terms = []
    for i in range(lanes):
        xi = x[i * in_bits:(i + 1) * in_bits]
        code = w[i * cb:(i + 1) * cb]
        sh = Signal(in_bits + max_exp, name=f"{name}_sh{i}")
        m.d.comb += sh.eq(xi << code[:eb])  # barrel shift
        t = Signal(signed(in_bits + max_exp + 1), name=f"{name}_t{i}")
        m.d.comb += t.eq(Mux(code[eb], Mux(code[eb + 1], -_zext_signed(sh), _zext_signed(sh)), 0))
        terms.append(t)
    return adder_tree(m, terms, name)


def lut_product_lanes(m: Module, x: Value, w: Value, lanes: int, in_bits: int, w_bits: int,
                      table, name: str) -> Value:
    """Product lookup: term = P[w_i, x_i] from a constant table (a LUT per lane), then adds."""
    flat = [int(table[c, a]) for c in range(1 << w_bits) for a in range(1 << in_bits)]
    lo, hi = min(flat + [0]), max(flat + [0])
    width = bits_signed(lo, hi)
    rom = Array([Const(v, signed(width)) for v in flat])
    terms = []
    for i in range(lanes):
        idx = Cat(x[i * in_bits:(i + 1) * in_bits], w[i * w_bits:(i + 1) * w_bits])  # c * 2**in_bits + a
        t = Signal(signed(width), name=f"{name}_t{i}")
        m.d.comb += t.eq(rom[idx])
        terms.append(t)
    return adder_tree(m, terms, name)


def bit_plane_popcount(m: Module, x: Value, w: Value, lanes: int, in_bits: int, w_bits: int,
                       a_bit: Value, w_bit: Value, name: str) -> Value:
    """One bit-serial step: +-popcount(x[:, a_bit] & w[:, w_bit]) << (a_bit + w_bit); the weight's
    MSB plane is negative (two's complement)."""
    xs = Signal(lanes, name=f"{name}_xp")
    ws = Signal(lanes, name=f"{name}_wp")
    m.d.comb += [xs[i].eq(x[i * in_bits:(i + 1) * in_bits].bit_select(a_bit, 1)) for i in range(lanes)]
    m.d.comb += [ws[i].eq(w[i * w_bits:(i + 1) * w_bits].bit_select(w_bit, 1)) for i in range(lanes)]
    both = Signal(lanes, name=f"{name}_and")
    m.d.comb += both.eq(xs & ws)
    pc = adder_tree(m, [both[i] for i in range(lanes)], name)
    width = len(pc) + in_bits + w_bits + 1
    sh = Signal(width, name=f"{name}_shl")
    m.d.comb += sh.eq(pc << (a_bit + w_bit))
    t = Signal(signed(width + 1), name=f"{name}_term")
    m.d.comb += t.eq(Mux(w_bit == w_bits - 1, -_zext_signed(sh), _zext_signed(sh)))
    return t


def bits_signed(lo: int, hi: int) -> int:
    """Width of a signed signal holding every integer in [lo, hi]."""
    return max(int(hi).bit_length(), int(-min(lo, 0) - 1).bit_length() if lo < 0 else 0) + 1


__all__ = ["adder_tree", "xnor_popcount", "mac_products", "accumulate_lanes", "shift_add_lanes",
           "lut_product_lanes", "bit_plane_popcount", "bits_signed", "shift_code_width"]
