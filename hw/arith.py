"""Arithmetic building blocks: balanced adder trees and per-kind lane products.

Trees are generated level by level with an intermediate signal per node: Amaranth converts
this quickly, whereas a Python ``sum()`` over hundreds of terms builds a deep chain that
takes minutes to convert (and Yosys re-balances it anyway).
"""
from __future__ import annotations

from enum import StrEnum

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib.memory import Memory

from quantmodels.bitwidth import signed_bits

from .memstyle import MemStyle, attrs, resolve
from .xilinx_popcount import xilinx_popcount, xilinx_xnor_popcount


def adder_tree(m: Module, terms: list[Value], name: str, every: int = 0) -> Value:
    """Sum of ``terms`` as a balanced binary tree of adders (width grows one bit per level).
    ``every`` > 0: the nodes of every ``every``-th level are registers (not the last level), i.e.
    hw.pipeline.tree_stages(len(terms), every) cycles of latency; odd terms carried past a
    registered level are registered too, so all paths have the same depth."""
    if not terms:
        return Const(0, 1)
    levels = (len(terms) - 1).bit_length()
    level = 0
    while len(terms) > 1:
        reg = every > 0 and (level + 1) % every == 0 and level + 1 < levels
        dom = m.d.sync if reg else m.d.comb
        nxt = []
        for i in range(0, len(terms) - 1, 2):
            a, b = terms[i], terms[i + 1]
            s = Signal((a + b).shape(), name=f"{name}_l{level}_{i // 2}")
            dom += s.eq(a + b)
            nxt.append(s)
        if len(terms) % 2:
            if reg:
                odd = Signal.like(terms[-1], name=f"{name}_l{level}_odd")
                dom += odd.eq(terms[-1])
                nxt.append(odd)
            else:
                nxt.append(terms[-1])
        terms = nxt
        level += 1
    return terms[0]


def register_terms(m: Module, terms: list[Value], name: str) -> list[Value]:
    """``terms`` through one register each: the pipeline stage between a kind's lane products and its
    adder tree (hw.pipeline.core_stages' ``product``)."""
    out = []
    for i, t in enumerate(terms):  # data only, so no reset: a block RAM read's register can move into the block
        r = (Signal.like(t, name=f"{name}_r{i}", reset_less=True) if isinstance(t, Signal)
             else Signal(t.shape(), name=f"{name}_r{i}", reset_less=True))
        m.d.sync += r.eq(t)
        out.append(r)
    return out


#: Popcount styles. "tree": balanced adder tree (portable; best on 4-input-LUT devices such as
#: iCE40). "lut6": compressor tree of 6:3 counters written as 6-input truth tables, so each
#: counter output bit is one LUT6 (measured 1.21 LUT6/input vs 1.62 for "tree" at 256 inputs
#: on synth_xilinx, but 3.6 vs 2.0 LUT4/input on iCE40: pick it for 6-input-LUT devices).
#: "xilinx": carry-chain counters from explicitly instantiated LUT6_2 + CARRY4 cells
#: (hw/xilinx_popcount.py); Xilinx 7-series only in practice: other targets synthesize the
#: cells from lowbit's behavioural models as plain logic (correct but larger).
class PopcountStyle(StrEnum):
    """How a popcount is built (see above)."""

    TREE = "tree"
    LUT6 = "lut6"
    XILINX = "xilinx"


POPCOUNT_STYLES = tuple(PopcountStyle)


def _truth_table_counter(m: Module, inputs: list[Value], fn, n_out: int, name: str) -> Signal:
    """``n_out``-bit function ``fn(v)`` of <= 6 input bits (v = their value, inputs[0] = LSB) as
    truth tables: each output bit is a single 6-input function, i.e. one LUT6."""
    c = Signal(n_out, name=name)
    idx = Cat(*inputs)
    for j in range(n_out):
        table = sum(((fn(v) >> j) & 1) << v for v in range(1 << len(inputs)))
        m.d.comb += c[j].eq(Const(table, 1 << len(inputs)).bit_select(idx, 1))
    return c


def compressor_popcount(m: Module, bits: list[Value], name: str,
                        cols: dict[int, list[Value]] | None = None) -> Value:
    """Popcount by column compression with <=6-input counters, each output bit a truth table,
    until every weight column holds at most two bits; then one carry-propagate add.
    ``cols`` (weight -> bits) continues a compression that an earlier stage started."""
    cols = {0: list(bits)} if cols is None else cols
    k = 0
    while max(len(v) for v in cols.values()) > 2:
        nxt: dict[int, list[Value]] = {}
        for w in sorted(cols):
            col, i = cols[w], 0
            while len(col) - i >= 3:  # groups of 3..6 bits -> a counter of 2..3 output bits
                g = col[i:i + 6]
                i += len(g)
                ob = len(g).bit_length()
                c = _truth_table_counter(m, g, lambda v: bin(v).count("1"), ob, f"{name}_c{k}")
                k += 1
                for j in range(ob):
                    nxt.setdefault(w + j, []).append(c[j])
            nxt.setdefault(w, []).extend(col[i:])
        cols = nxt
    width = max(cols) + 1
    zero = Const(0, 1)
    r0 = Cat(*[(cols.get(w, []) + [zero])[0] for w in range(width)])
    r1 = Cat(*[(cols.get(w, []) + [zero, zero])[1] for w in range(width)])
    total = Signal(width + 1, name=f"{name}_sum")
    m.d.comb += total.eq(r0 + r1)
    return total


def popcount(m: Module, bits: list[Value], name: str, style: str = "tree", every: int = 0) -> Value:
    """Number of ones among ``bits`` in the given style (see POPCOUNT_STYLES); ``every``: register
    stages of the "tree" style (adder_tree), ignored by the others (see tree_every)."""
    if style == "lut6" and len(bits) >= 3:
        return compressor_popcount(m, bits, name)
    if style == "xilinx" and bits:
        return xilinx_popcount(m, bits, name)
    return adder_tree(m, bits, name, every)


def xnor_popcount(m: Module, x: Value, w: Value, lanes: int, name: str, style: str = "tree",
                  every: int = 0) -> Value:
    """popcount(~(x ^ w)) over ``lanes`` bits: the +-1 dot product's agreement count."""
    if style == "xilinx":
        return xilinx_xnor_popcount(m, x, w, lanes, name)
    if style == "lut6" and lanes >= 3:
        # first stage absorbs the XNORs: 3 lanes (x, w pairs: 6 inputs) -> a 2-bit count
        cols: dict[int, list[Value]] = {0: [], 1: []}
        for g in range(0, lanes - lanes % 3, 3):
            ins = [b for i in range(g, g + 3) for b in (x[i], w[i])]
            c = _truth_table_counter(m, ins, lambda v: sum(((v >> (2 * i)) & 1) == ((v >> (2 * i + 1)) & 1)
                                                           for i in range(3)), 2, f"{name}_x{g // 3}")
            cols[0].append(c[0])
            cols[1].append(c[1])
        for i in range(lanes - lanes % 3, lanes):
            cols[0].append(~(x[i] ^ w[i]))
        return compressor_popcount(m, [], name, cols)
    agree = Signal(lanes, name=f"{name}_xnor")
    m.d.comb += agree.eq(~(x ^ w))
    return popcount(m, [agree[i] for i in range(lanes)], name, style, every)


def mac_products(m: Module, x: Value, w: Value, lanes: int, in_bits: int, w_bits: int, name: str,
                 every: int = 0, reg_terms: bool = False) -> Value:
    """sum_i w_i * x_i with unsigned ``in_bits`` inputs and signed ``w_bits`` weights; ``reg_terms``:
    the products are registered before the tree (one cycle; a multiplier is several levels deep)."""
    prods = []
    for i in range(lanes):
        xi = Cat(x[i * in_bits:(i + 1) * in_bits], Const(0, 1)).as_signed()  # zero-extend, then signed
        wi = w[i * w_bits:(i + 1) * w_bits].as_signed()
        p = Signal(signed(in_bits + w_bits + 1), name=f"{name}_p{i}")
        m.d.comb += p.eq(xi * wi)
        prods.append(p)
    if reg_terms:
        prods = register_terms(m, prods, f"{name}_p")
    return adder_tree(m, prods, name, every)


def _zext_signed(v: Value) -> Value:
    """Unsigned value -> signed one bit wider with the same numeric value."""
    return Cat(v, Const(0, 1)).as_signed()


def accumulate_lanes(m: Module, x: Value, w: Value, lanes: int, in_bits: int, name: str,
                     code_bits: int = 2, every: int = 0, reg_terms: bool = False) -> Value:
    """Ternary weights (2-bit two's complement: 01 = +1, 11 = -1, 00 = 0): add, subtract or skip.
    ``code_bits=1`` (a layer without zero weights): the code is the sign alone (1 = -1).
    ``reg_terms``: the terms (a negation: a carry chain) are registered before the tree."""
    terms = []
    for i in range(lanes):
        xi = _zext_signed(x[i * in_bits:(i + 1) * in_bits])
        wi = w[i * code_bits:(i + 1) * code_bits]
        t = Signal(signed(in_bits + 2), name=f"{name}_t{i}")
        if code_bits == 1:
            m.d.comb += t.eq(Mux(wi[0], -xi, xi))
        else:
            m.d.comb += t.eq(Mux(wi[0], Mux(wi[1], -xi, xi), 0))
        terms.append(t)
    if reg_terms:
        terms = register_terms(m, terms, f"{name}_t")
    return adder_tree(m, terms, name, every)


def shift_code_width(max_exp: int) -> tuple[int, int]:
    """(exponent bits, code bits) of the shift_add weight code {exponent, nonzero, sign}."""
    eb = max(1, max_exp.bit_length())
    return eb, eb + 2


def shift_add_lanes(m: Module, x: Value, w: Value, lanes: int, in_bits: int, max_exp: int, name: str,
                    every: int = 0, reg_terms: bool = False) -> Value:
    """Power-of-two weights: code = Cat(exponent, nonzero, sign); term = +-(x << exponent) or 0.
    ``reg_terms``: the terms (barrel shift + negation) are registered before the tree."""
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
    if reg_terms:
        terms = register_terms(m, terms, f"{name}_t")
    return adder_tree(m, terms, name, every)


#: Lanes that share one block-RAM product ROM: its two read ports (ECP5 DP16KD and xilinx RAMB are true
#: dual-port; on iCE40, whose SB_RAM40_4K has one read port, Yosys gives each port its own copy).
PRODUCT_ROM_LANES = 2


def product_rom(table, w_bits: int, in_bits: int) -> tuple[list[int], int]:
    """The product table as ROM words P[c, a] at address c * 2**in_bits + a, and their signed width."""
    flat = [int(table[c, a]) for c in range(1 << w_bits) for a in range(1 << in_bits)]
    return flat, signed_bits(min(flat + [0]), max(flat + [0]))


def product_rom_style(mem_style: str, w_bits: int, in_bits: int, width: int, registered: bool) -> MemStyle | None:
    """Where a lane's product table goes (hw.memstyle's rule on its 2**(w_bits + in_bits) x ``width``
    bits): block RAM only when the lookup is ``registered`` (a block RAM reads synchronously; that
    read is then the product register stage), else logic."""
    style = resolve(mem_style, 1 << (w_bits + in_bits), width)
    return style if registered and style is MemStyle.BLOCK else None


def lut_product_stages(table, w_bits: int, in_bits: int, mem_style: str = "auto") -> int:
    """Product register stages of a lut_product lane under a target clock: 2 for a block-RAM product
    ROM (its synchronous read, then a register: a DP16KD's clock-to-out alone, 5.8 ns, left no room for
    the first adder level at ECP5's 125 MHz), else 1 (the looked-up term registered)."""
    _, width = product_rom(table, w_bits, in_bits)
    return 2 if product_rom_style(mem_style, w_bits, in_bits, width, True) is not None else 1


def lut_product_lanes(m: Module, x: Value, w: Value, lanes: int, in_bits: int, w_bits: int,
                      table, name: str, every: int = 0, reg_terms: bool = False, mem_style: str = "auto") -> Value:
    """Product lookup: term = P[w_i, x_i] from a constant table, then adds.

    Small tables are logic: one truth table per term bit over the lane's w_bits + in_bits inputs. A
    large one (hw.memstyle's block-RAM rule on the table's size; the trained digits lut net's are
    64 codes x 16-32 levels x 16 bits, about 1,700 LUT4 per lane as logic: 106,946 LUT4 at 16 lanes a
    layer) is a product ROM in block RAM when ``reg_terms`` (a target clock) registers the lookup
    anyway: the ROM's synchronous read is that register, :data:`PRODUCT_ROM_LANES` lanes per ROM.
    ``reg_terms``: the looked-up terms (a table of w_bits + in_bits inputs: several LUT4 levels) are
    registered before the tree."""
    flat, width = product_rom(table, w_bits, in_bits)
    style = product_rom_style(mem_style, w_bits, in_bits, width, reg_terms)
    idxs = [Cat(x[i * in_bits:(i + 1) * in_bits], w[i * w_bits:(i + 1) * w_bits]) for i in range(lanes)]
    terms = []
    if style is not None:  # block RAM: the synchronous read is the product register
        for g in range(0, lanes, PRODUCT_ROM_LANES):
            rom = Memory(shape=signed(width), depth=len(flat), init=flat, attrs=attrs(style))
            m.submodules[f"{name}_prom{g // PRODUCT_ROM_LANES}"] = rom
            for i in range(g, min(g + PRODUCT_ROM_LANES, lanes)):
                rp = rom.read_port(domain="sync")
                m.d.comb += rp.addr.eq(idxs[i])
                terms.append(rp.data)
        # the read data registered again (lut_product_stages: 2), so the tree starts from a flip-flop
        return adder_tree(m, register_terms(m, terms, f"{name}_t"), name, every)
    # as logic, one truth table per term bit (registered, an Array read would be a synchronous ROM
    # that Yosys may put in block RAM per lane unasked)
    rom = Array([Const(v, signed(width)) for v in flat])
    bits = [Const(sum(((v >> j) & 1) << k for k, v in enumerate(flat)), len(flat)) for j in range(width)]
    for i, idx in enumerate(idxs):  # idx = c * 2**in_bits + a
        t = Signal(signed(width), name=f"{name}_t{i}")
        if reg_terms:
            m.d.comb += t.eq(Cat(*[b.bit_select(idx, 1) for b in bits]))
        else:
            m.d.comb += t.eq(rom[idx])
        terms.append(t)
    if reg_terms:
        terms = register_terms(m, terms, f"{name}_t")
    return adder_tree(m, terms, name, every)


def bit_plane_popcount(m: Module, x: Value, w: Value, lanes: int, in_bits: int, w_bits: int,
                       a_bit: Value, w_bit: Value, name: str, style: str = "tree", reg_terms: bool = False) -> Value:
    """One bit-serial step: +-popcount(x[:, a_bit] & w[:, w_bit]) << (a_bit + w_bit); the weight's
    MSB plane is negative (two's complement). ``reg_terms``: the selected plane bits (and the plane
    numbers beside them) are registered before the popcount, shift and sign."""
    xs = Signal(lanes, name=f"{name}_xp")
    ws = Signal(lanes, name=f"{name}_wp")
    m.d.comb += [xs[i].eq(x[i * in_bits:(i + 1) * in_bits].bit_select(a_bit, 1)) for i in range(lanes)]
    m.d.comb += [ws[i].eq(w[i * w_bits:(i + 1) * w_bits].bit_select(w_bit, 1)) for i in range(lanes)]
    both = Signal(lanes, name=f"{name}_and")
    m.d.comb += both.eq(xs & ws)
    if reg_terms:
        bq, aq, wq = Signal(lanes, name=f"{name}_and_q"), Signal.like(a_bit, name=f"{name}_pa_q"), \
            Signal.like(w_bit, name=f"{name}_pb_q")
        m.d.sync += [bq.eq(both), aq.eq(a_bit), wq.eq(w_bit)]
        both, a_bit, w_bit = bq, aq, wq
    pc = popcount(m, [both[i] for i in range(lanes)], name, style)
    width = len(pc) + in_bits + w_bits + 1
    sh = Signal(width, name=f"{name}_shl")
    m.d.comb += sh.eq(pc << (a_bit + w_bit))
    t = Signal(signed(width + 1), name=f"{name}_term")
    m.d.comb += t.eq(Mux(w_bit == w_bits - 1, -_zext_signed(sh), _zext_signed(sh)))
    return t


__all__ = ["adder_tree", "register_terms", "compressor_popcount", "popcount", "POPCOUNT_STYLES", "PopcountStyle", "xnor_popcount", "mac_products", "accumulate_lanes", "shift_add_lanes",
           "lut_product_lanes", "lut_product_stages", "product_rom", "product_rom_style", "PRODUCT_ROM_LANES", "bit_plane_popcount",
           "shift_code_width"]
