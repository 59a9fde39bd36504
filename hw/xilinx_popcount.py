"""Popcount compressor tree built from explicit LUT6_2 + CARRY4 cells (popcount style "xilinx").

The workhorse is a carry-chain counter: two chain positions and two LUT6_2 count a column
of up to 6 bits, the chain's carry-in (CYINIT) takes a 7th for free, so 7 bits -> 3 bits
cost 2 LUTs (vs 3 LUTs for a truth-table 6:3 counter). Writing s = a0+..+a4:

    position 0: O6 = parity(a0..a5) -> S0, O5 = parity(a0..a4) -> DI0   (X0 = parity5, Y0 = a5)
    position 1: O6 = [2 <= s <= 3]  -> S1, O5 = [s >= 4]        -> DI1   (X1 = [s>=2], Y1 = [s>=4])

so the chain adds X + Y + cin = a0 + .. + a5 + cin. A second segment (up to 6 bits of the
column two weights up) fills positions 2-3 of the same CARRY4 and absorbs the first
segment's top bit: a (6,0,7;5) generalized parallel counter, 13 bits -> 5 with 4 LUTs.
Columns are compressed stage by stage until every weight holds at most three bits; a
ternary carry-chain adder (one LUT6_2 per bit) then gives the count. Column remainders of
3-4 bits use a full adder in one LUT6_2 (O6 = sum, O5 = carry).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value

from .xilinx_cells import carry4, init6, init_dual5, lut6_2

Cols = dict[int, list[Value]]


def _pc(v: int) -> int:
    return bin(v).count("1")


class _Namer:
    """Unique cell names within one popcount."""

    def __init__(self, prefix: str):
        self.prefix, self.n = prefix, 0

    def __call__(self, kind: str) -> str:
        self.n += 1
        return f"{self.prefix}_{kind}{self.n}"


def _segment(m: Module, nm: _Namer, bits: list[Value]) -> tuple[tuple[Value, Value], tuple[Value, Value]]:
    """The two chain positions counting ``bits`` (<= 6): returns ((S0, DI0), (S1, DI1))."""
    if len(bits) == 6:
        p0 = lut6_2(m, nm("l"), bits, init6(lambda v: _pc(v) & 1))  # O5 = parity of a0..a4
    else:
        p0 = lut6_2(m, nm("l"), bits, init_dual5(lambda v: _pc(v) & 1, lambda v: _pc(v) & 1))
    lo5 = bits[:5]
    p1 = lut6_2(m, nm("l"), lo5, init_dual5(lambda v: 2 <= _pc(v) <= 3, lambda v: _pc(v) >= 4))
    return p0, p1


def chain_counter(m: Module, nm: _Namer, first: list[Value], second: list[Value] | None) -> list[Value]:
    """One CARRY4 counting ``first`` (<= 7 bits, weight 0; the 7th enters as carry-in) plus
    ``second`` (<= 6 bits, weight 2). Returns the sum's bits, LSB first (weight 0, 1, ...)."""
    cin = first[6] if len(first) == 7 else Const(0, 1)
    (s0, d0), (s1, d1) = _segment(m, nm, first[:6])
    s, di = [s0, s1], [d0, d1]
    if second:
        (s2, d2), (s3, d3) = _segment(m, nm, second)
        s += [s2, s3]
        di += [d2, d3]
    o, co = carry4(m, nm("c"), s, di, cin)
    top = len(s) - 1
    return [o[i] for i in range(len(s))] + [co[top]]


def full_adder(m: Module, nm: _Namer, bits: list[Value]) -> tuple[Value, Value]:
    """3 bits -> (sum, carry) in one LUT6_2."""
    return lut6_2(m, nm("fa"), bits, init_dual5(lambda v: _pc(v & 7) & 1, lambda v: _pc(v & 7) >= 2))


def ternary_add(m: Module, nm: _Namer, cols: Cols, name: str) -> Value:
    """Sum of columns holding <= 3 bits each, on one carry chain: per weight i one LUT6_2
    gives O6 = a^b^c^y[i-1] (-> S) and O5 = maj(a, b, c) = y[i] (the next position's input
    and DI), i.e. a carry-save adder folded into the ripple adder."""
    zero = Const(0, 1)
    width = max(cols) + 1
    s, di, y_prev = [], [], zero
    for w in range(width + 1):
        col = (cols.get(w, []) + [zero] * 3)[:3]
        if w == width:
            col = [zero] * 3
        o6, o5 = lut6_2(m, nm("t"), col + [y_prev],
                        init_dual5(lambda v: _pc(v & 15) & 1, lambda v: _pc(v & 7) >= 2))
        s.append(o6)
        di.append(y_prev)
        y_prev = o5
    bits: list[Value] = []
    ci: Value = zero
    for k in range(0, len(s), 4):
        o, co = carry4(m, nm("c"), s[k:k + 4], di[k:k + 4], zero, ci=ci)
        n = len(s[k:k + 4])
        bits += [o[i] for i in range(n)]
        ci = co[3] if n == 4 else co[n - 1]
    total = Signal(len(bits) + 1, name=f"{name}_sum")
    m.d.comb += total.eq(Cat(*bits, ci))
    return total


def compress_stage(m: Module, nm: _Namer, cols: Cols) -> Cols:
    """One stage: chain counters over groups of 5..7 bits (paired two weights apart into one
    CARRY4), full adders over 3-4 bit remainders; everything else passes through."""
    groups: list[tuple[int, list[Value]]] = []
    nxt: Cols = {}
    for w in sorted(cols):
        col, i = cols[w], 0
        while len(col) - i >= 5:
            g = col[i:i + 7]
            groups.append((w, g))
            i += len(g)
        rest = col[i:]
        if len(rest) >= 3:
            s, c = full_adder(m, nm, rest[:3])
            nxt.setdefault(w, []).append(s)
            nxt.setdefault(w + 1, []).append(c)
            rest = rest[3:]
        nxt.setdefault(w, []).extend(rest)
    used = [False] * len(groups)
    by_w: dict[int, list[int]] = {}
    for k, (w, _) in enumerate(groups):
        by_w.setdefault(w, []).append(k)
    for k, (w, g) in enumerate(groups):
        if used[k]:
            continue
        used[k] = True
        partner = next((j for j in by_w.get(w + 2, []) if not used[j]), None)
        second = None
        if partner is not None:
            used[partner] = True
            second = groups[partner][1]
            if len(second) == 7:  # a second segment has no carry-in: its 7th bit waits a stage
                nxt.setdefault(w + 2, []).append(second[6])
                second = second[:6]
        for j, b in enumerate(chain_counter(m, nm, g, second)):
            nxt.setdefault(w + j, []).append(b)
    return {w: v for w, v in nxt.items() if v}


def xilinx_compress(m: Module, cols: Cols, name: str) -> Value:
    """Popcount of weighted bit columns: compress to <= 3 bits per weight, then a ternary add."""
    nm = _Namer(name)
    if sum(len(v) for v in cols.values()) == 1:
        (w, (b,)), = cols.items()
        return b if w == 0 else Cat(Const(0, w), b)
    while max(len(v) for v in cols.values()) > 3:
        cols = compress_stage(m, nm, cols)
    return ternary_add(m, nm, cols, name)


def xilinx_popcount(m: Module, bits: list[Value], name: str) -> Value:
    """Number of ones among ``bits`` (>= 1) from LUT6_2 + CARRY4 cells."""
    return xilinx_compress(m, {0: list(bits)}, name)


def xilinx_xnor_popcount(m: Module, x: Value, w: Value, lanes: int, name: str) -> Value:
    """popcount(~(x ^ w)): two XNORs per LUT6_2 (O6, O5 with I5 = 1), then the compressor."""
    nm = _Namer(f"{name}_x")
    agree: list[Value] = []
    for i in range(0, lanes, 2):
        if i + 1 < lanes:
            o6, o5 = lut6_2(m, nm("xn"), [x[i], w[i], x[i + 1], w[i + 1]],
                            init_dual5(lambda v: ((v >> 2) ^ (v >> 3) ^ 1) & 1, lambda v: (v ^ (v >> 1) ^ 1) & 1))
            agree += [o5, o6]
        else:
            o6, _ = lut6_2(m, nm("xn"), [x[i], w[i]], init_dual5(lambda v: (v ^ (v >> 1) ^ 1) & 1, lambda v: 0))
            agree.append(o6)
    return xilinx_compress(m, {0: agree}, name)
