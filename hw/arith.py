"""Arithmetic building blocks: balanced adder trees and per-kind lane products.

Trees are generated level by level with an intermediate signal per node: Amaranth converts
this quickly, whereas a Python ``sum()`` over hundreds of terms builds a deep chain that
takes minutes to convert (and Yosys re-balances it anyway).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value, signed, unsigned


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


def bits_signed(lo: int, hi: int) -> int:
    """Width of a signed signal holding every integer in [lo, hi]."""
    return max(int(hi).bit_length(), int(-min(lo, 0) - 1).bit_length() if lo < 0 else 0) + 1


__all__ = ["adder_tree", "xnor_popcount", "mac_products", "bits_signed", "unsigned"]
