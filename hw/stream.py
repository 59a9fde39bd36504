"""Chunk streams between layers, and the gearbox that re-chunks them.

Convention: a vector of ``n`` elements of ``bits`` bits travels as a stream of chunks over
``valid/ready/data``; a chunk of ``k`` elements holds element ``i`` of the chunk at
``data[i*bits +: bits]`` and the chunks come in natural element order (chunk 0 = elements
0..k-1). The last chunk of a vector may be padded: a producer whose PE does not divide its rows
sends garbage in the padded places, a consumer whose SIMD does not divide its columns expects
zeros there. :class:`WidthConverter` turns one into the other.

Timing (what :mod:`hw.network`'s cycle model relies on): every converter except the
pass-through registers its buffer, so an output chunk is valid the cycle after the last input
chunk holding one of its elements was taken; a pass-through is wires (a masking counter at most).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from quantmodels.errors import ConfigError


@dataclass(frozen=True)
class ChunkShape:
    """A vector of ``n`` real elements sent as ceil(n / chunk) chunks of ``chunk`` elements."""

    n: int  #: real elements per vector
    chunk: int  #: elements per chunk (the last chunk is padded up to it)

    def __post_init__(self) -> None:
        if self.n < 1 or self.chunk < 1:
            raise ConfigError(f"chunk stream: n={self.n}, chunk={self.chunk}, expected both >= 1")

    @property
    def chunks(self) -> int:
        """Chunks per vector."""
        return -(-self.n // self.chunk)

    @property
    def last(self) -> int:
        """Real elements in the last chunk."""
        return self.n - (self.chunks - 1) * self.chunk


def stream_ports(in_elems: int, out_elems: int, in_bits: int, out_bits: int) -> dict:
    """Signature members of a stream block: ``in_*`` chunks of ``in_elems``, ``out_*`` of ``out_elems``."""
    return {"in_valid": In(1), "in_ready": Out(1), "in_data": In(in_elems * in_bits),
            "out_valid": Out(1), "out_ready": In(1), "out_data": Out(out_elems * out_bits)}


class WidthConverter(wiring.Component):
    """Gearbox from chunks of ``a`` elements to chunks of ``b`` elements of a vector of ``n``
    elements of ``bits`` bits: drops the padded places of the producer's last chunk and zero-pads
    the consumer's last chunk. Four shapes, chosen by the sizes:

    - ``pass``: same chunking; wires, plus a counter masking the padded places if ``a`` does not divide ``n``;
    - ``split``: one input chunk (a whole vector), registered and shifted out ``b`` elements at a time;
    - ``collect``: one output chunk, the input chunks shifted into a register until the vector is whole;
    - ``down``: ``b`` divides ``a``: each input chunk registered and shifted out ``b`` elements at a
      time (a wide producer, e.g. a conv layer's output rows, into a narrow SIMD);
    - ``up``: ``a`` divides ``b``: input chunks written into fixed slots picked by a one-hot
      pointer, the output chunk registered as its last slot arrives (a narrow PE into a wide SIMD);
    - ``gear``: anything else, a buffer of ``cap`` elements filled at a moving position.
    """

    def __init__(self, n: int, a: int, b: int, bits: int):
        try:
            self.src, self.dst = ChunkShape(n, a), ChunkShape(n, b)
        except ConfigError:
            self._MustUse__silence = True
            raise
        self.n, self.a, self.b, self.bits = n, a, b, bits
        if a == b:
            self.kind = "pass"
        elif self.src.chunks == 1:
            self.kind = "split"
        elif self.dst.chunks == 1:
            self.kind = "collect"
        elif a % b == 0:
            self.kind = "down"
        elif b % a == 0:
            self.kind = "up"
        else:
            self.kind = "gear"
        #: gear buffer: room for an input chunk beside two output chunks, so it never starves a
        #: consumer that takes a chunk every cycle (and rarely blocks a producer)
        self.cap = 2 * (a + b)
        super().__init__(stream_ports(a, b, bits, bits))

    @property
    def interval(self) -> int:
        """Fewest cycles per vector when both sides are always ready (split and collect spend one
        cycle between vectors: they take a new vector only when empty)."""
        if self.kind == "pass":
            return self.src.chunks
        if self.kind == "split":
            return self.dst.chunks + 1
        if self.kind == "collect":
            return self.src.chunks + 1
        if self.kind == "down":
            return self.dst.chunks
        if self.kind == "up":
            return self.src.chunks
        return max(self.src.chunks, self.dst.chunks)

    def elaborate(self, platform):
        m = Module()
        getattr(self, f"_{self.kind}")(m)
        return m

    def _mask_last(self, data, r: int):
        """``data`` with every place from ``r`` on zeroed (constant slices: no logic but the mux)."""
        keep = r * self.bits
        return Cat(data[:keep], Const(0, len(data) - keep))

    def _pass(self, m: Module) -> None:
        m.d.comb += [self.out_valid.eq(self.in_valid), self.in_ready.eq(self.out_ready)]
        if self.src.last == self.a:
            m.d.comb += self.out_data.eq(self.in_data)
            return
        idx = Signal(range(max(self.src.chunks, 2)))
        last = idx == self.src.chunks - 1
        m.d.comb += self.out_data.eq(Mux(last, self._mask_last(self.in_data, self.src.last), self.in_data))
        with m.If(self.in_valid & self.out_ready):
            m.d.sync += idx.eq(Mux(last, 0, idx + 1))

    def _split(self, m: Module) -> None:
        nb, bw = self.bits, self.b * self.bits
        k = self.dst.chunks
        # the vector is registered once and its chunks picked by a counter through a binary mux tree
        # (about k/3 LUT6 per output bit) instead of a shift register, which costs a load-or-shift mux
        # on every stored bit (795 LUT6 for a 784-pixel image); the flip-flops load with an enable.
        # (An Array index would become a one-hot pmux: about twice the LUTs of the tree.)
        # A deep tree is cut in two by a register: groups of g chunks, the current group held in
        # ``split_grp`` (loaded straight from the input, then from the group tree as its last chunk
        # leaves) and its chunks picked by a shallow tree. About the same LUTs and flip-flops as one
        # tree, half its depth: the whole tree was the SFC's worst ECP5 path (49 chunks, 5 LUT levels
        # into fc0's LUT-RAM, 120 MHz).
        levels = (k - 1).bit_length()
        g = 1 << (levels // 2) if levels > 2 else k  # chunks per group (all of them: one group)
        ng = -(-k // g)
        gw = g * bw
        data = Cat(self.in_data[:self.n * nb], Const(0, ng * gw - self.n * nb))  # zero above n: padded
        grp = Signal(gw, name="split_grp")  # the current group; the chunk on out_data is in it
        rest = Signal(max((ng - 1) * gw, 1), name="split_buf")  # groups 1..ng-1
        left = Signal(range(k + 1))  # chunks still to send
        sub = Signal(range(max(g, 2)), name="split_idx")  # chunk of grp on out_data
        gsel = Signal(range(max(ng, 2)), name="split_gsel")  # next group to load into grp, minus one

        def tree(items: list, sel: Signal):
            for bit in range(len(sel)):  # pair neighbours on sel bit `bit`; an odd one out passes on
                items = [Mux(sel[bit], items[j + 1], items[j]) if j + 1 < len(items) else items[j]
                         for j in range(0, len(items), 2)]
            return items[0]

        m.d.comb += [self.in_ready.eq(left == 0), self.out_valid.eq(left != 0),
                     self.out_data.eq(tree([grp[j * bw:(j + 1) * bw] for j in range(g)], sub))]
        with m.If(self.in_valid & (left == 0)):
            m.d.sync += [grp.eq(data[:gw]), left.eq(k), sub.eq(0), gsel.eq(0)]
            if ng > 1:
                m.d.sync += rest.eq(data[gw:])
        with m.Elif(self.out_valid & self.out_ready):
            m.d.sync += left.eq(left - 1)
            if ng > 1:
                with m.If(sub == g - 1):  # the group's last chunk leaves: the next group comes in
                    m.d.sync += [grp.eq(tree([rest[j * gw:(j + 1) * gw] for j in range(ng - 1)], gsel)),
                                 sub.eq(0), gsel.eq(gsel + 1)]
                with m.Else():
                    m.d.sync += sub.eq(sub + 1)
            else:
                m.d.sync += sub.eq(sub + 1)

    def _collect(self, m: Module) -> None:
        aw, k = self.a * self.bits, self.src.chunks
        buf = Signal(k * aw, name="collect_buf")  # chunk 0 ends at the bottom after k shifts
        got = Signal(range(k + 1))
        full = got == k
        m.d.comb += [self.in_ready.eq(~full), self.out_valid.eq(full),
                     self.out_data.eq(buf[:self.n * self.bits])]  # drops the producer's padded places
        with m.If(self.in_valid & ~full):
            m.d.sync += [buf.eq(Cat(buf[aw:], self.in_data)), got.eq(got + 1)]
        with m.Elif(full & self.out_ready):
            m.d.sync += got.eq(0)

    def out_per_chunk(self, i: int) -> int:
        """``down``: output chunks made from input chunk ``i``."""
        r = self.src.last if i == self.src.chunks - 1 else self.a
        return -(-r // self.b)

    def _down(self, m: Module) -> None:
        a, b, nb = self.a, self.b, self.bits
        src, dst = self.src, self.dst
        k_full, k_last = a // b, self.out_per_chunk(src.chunks - 1)
        buf = Signal(a * nb, name="down_buf")
        left = Signal(range(k_full + 1))  # output chunks still to send from buf
        iidx = Signal(range(max(src.chunks, 2)))  # input chunk held in buf (or next to come)
        held_last = Signal()  # buf holds the vector's last input chunk
        final = held_last & (left == 1)  # the vector's last output chunk: zero-padded
        give = self.out_valid & self.out_ready
        # take the next chunk as the last one from buf leaves: full rate, one cycle per output chunk
        m.d.comb += [self.out_valid.eq(left != 0), self.in_ready.eq((left == 0) | ((left == 1) & self.out_ready)),
                     self.out_data.eq(Mux(final, self._mask_last(buf[:b * nb], dst.last), buf[:b * nb]))]
        ilast = iidx == src.chunks - 1
        with m.If(self.in_valid & self.in_ready):
            m.d.sync += [buf.eq(self.in_data), left.eq(Mux(ilast, k_last, k_full)), held_last.eq(ilast),
                         iidx.eq(Mux(ilast, 0, iidx + 1))]
        with m.Elif(give):
            m.d.sync += [buf.eq(buf >> (b * nb)), left.eq(left - 1)]

    def _up(self, m: Module) -> None:
        # Why not the gear: its buffer takes a chunk at any of cap/g positions, a barrel shifter of
        # depth log2(cap/g) whose select is a subtraction (nextpnr: the SFC's worst path, 7 LUT
        # levels at 105 MHz on ECP5, and ~200 LUT6 per converter). Here every slot has one source:
        # a one-hot pointer enables one slot's flip-flops, and the chunk that completes an output
        # chunk goes straight into the output register beside the slots filled before it, so the
        # next vector's chunks keep coming while the consumer takes this one.
        a, nb, src, dst = self.a, self.bits, self.src, self.dst
        per, aw = self.b // a, self.a * self.bits
        q = src.chunks - (dst.chunks - 1) * per  # input chunks of the last output chunk (1..per)
        fill = Signal((per - 1) * aw, name="up_fill")  # slots 0..per-2 (the last goes straight out)
        out = Signal(self.b * nb, name="up_out")
        hot = Signal(per, init=1, name="up_slot")  # one-hot: the slot the next input chunk fills
        fidx = Signal(range(dst.chunks), name="up_fidx")  # output chunk being filled
        flast = fidx == dst.chunks - 1
        full, held_last = Signal(name="up_full"), Signal(name="up_held_last")
        ends = Mux(flast, hot[q - 1], hot[per - 1])  # the next chunk completes an output chunk
        # the last output chunk: its places from dst.last on are the producer's padding or slots
        # never written for this vector (stale): zeroed, as the consumer's padding must be
        m.d.comb += [self.in_ready.eq(~ends | ~full | self.out_ready), self.out_valid.eq(full),
                     self.out_data.eq(Mux(held_last, self._mask_last(out, dst.last), out))]
        take = self.in_valid & self.in_ready
        slot = [fill[s * aw:(s + 1) * aw] for s in range(per - 1)]
        with m.If(take):
            for s in range(per - 1):
                with m.If(hot[s]):
                    m.d.sync += slot[s].eq(self.in_data)
            m.d.sync += hot.eq(Mux(ends, 1, Cat(hot[-1], hot[:-1])))
        done = [self.in_data if s == per - 1 else slot[s] for s in range(per)]
        if q < per:  # the last output chunk ends at slot q-1
            done[q - 1] = Mux(flast, self.in_data, slot[q - 1])
        with m.If(take & ends):
            m.d.sync += [out.eq(Cat(*done)), full.eq(1), held_last.eq(flast),
                         fidx.eq(Mux(flast, 0, fidx + 1))]
        with m.Elif(full & self.out_ready):
            m.d.sync += full.eq(0)

    def _gear(self, m: Module) -> None:
        a, b, nb, cap = self.a, self.b, self.bits, self.cap
        src, dst = self.src, self.dst
        g = math.gcd(a, b, src.last, dst.last)  # every fill level is a multiple of g elements
        gb = g * nb
        buf = Signal(cap * nb, name="gear_buf")  # elements 0..fill*g-1 valid, zero above
        fill = Signal(range(cap // g + 1))  # in units of g elements
        iidx = Signal(range(max(src.chunks, 2)))
        oidx = Signal(range(max(dst.chunks, 2)))
        ilast, olast = iidx == src.chunks - 1, oidx == dst.chunks - 1
        need = Mux(olast, dst.last // g, b // g)  # real elements of the current output chunk
        m.d.comb += [self.in_ready.eq(fill <= (cap - a) // g), self.out_valid.eq(fill >= need),
                     self.out_data.eq(Mux(olast, self._mask_last(buf[:b * nb], dst.last), buf[:b * nb]))]
        take = self.in_valid & self.in_ready
        give = self.out_valid & self.out_ready
        ra = Mux(ilast, src.last // g, a // g)
        chunk = Mux(ilast, self._mask_last(self.in_data, src.last), self.in_data)
        rest = Mux(give, Mux(olast, buf >> (dst.last * nb), buf >> (b * nb)), buf)
        pos = Signal.like(fill, name="gear_pos")  # where the new chunk goes, after this cycle's output left
        m.d.comb += pos.eq(fill - Mux(give, need, 0))
        slots = Array([Cat(Const(0, s * gb), chunk)[:cap * nb] for s in range((cap - a) // g + 1)])
        m.d.sync += [buf.eq(rest | Mux(take, slots[pos], 0)),
                     fill.eq(pos + Mux(take, ra, 0))]
        with m.If(take):
            m.d.sync += iidx.eq(Mux(ilast, 0, iidx + 1))
        with m.If(give):
            m.d.sync += oidx.eq(Mux(olast, 0, oidx + 1))
