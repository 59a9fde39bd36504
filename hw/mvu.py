"""Folded matrix-vector unit for one IR layer, with its integer output stage.

Dataflow per input vector (whole vectors move over valid/ready handshakes):

    accept -> for rf in row folds: for cf in col folds:            (issue, 1 per cycle)
                 S0: weight ROM address = rf*CF + cf; input chunk cf registered
                 S1: ROM word ready -> PE lane products + adder trees (registered)
                 S2: per-PE accumulators (cleared on cf == 0)
                 S3: at cf == CF-1: output stage per PE (threshold / requantize / logit),
                     shifted into the result register
           -> result moves to the output register when it is free (back-pressure safe)

The input register is released as soon as the result is handed over, so consecutive
layers overlap: the initiation interval of a network is its slowest layer's cycles plus
a few cycles of handshake.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from quantmodels.errors import ConfigError
from quantmodels.ir import Layer

from .arith import (POPCOUNT_STYLES, accumulate_lanes, bit_plane_popcount, bits_signed, lut_product_lanes, mac_products,
                    shift_add_lanes, shift_code_width, xnor_popcount)
from .folding import Folding



def acc_width(layer: Layer) -> int:
    """Signed width holding the accumulator, acc + bias, and every threshold."""
    lo, hi = layer.logit_range()
    alo, ahi = layer.acc_range()
    lo, hi = min(lo, alo), max(hi, ahi)
    if layer.thresholds is not None and layer.thresholds.size:
        lo, hi = min(lo, int(layer.thresholds.min())), max(hi, int(layer.thresholds.max()))
    return bits_signed(lo, hi)


def out_width(layer: Layer) -> int:
    """Bits per output element: output_bits for hidden layers, the logit width for the last."""
    return acc_width(layer) if layer.output == "argmax" else layer.output_bits


def _to_bits(v: int, width: int) -> int:
    return int(v) & ((1 << width) - 1)


def weight_code_bits(layer: Layer) -> int:
    """Bits per weight in the ROM: the shift_add code, else the IR's weight_bits."""
    if layer.kind == "shift_add":
        return shift_code_width(layer.max_exponent)[1]
    return layer.weight_bits


def encode_weight(layer: Layer, v: int) -> int:
    """ROM code of one weight (two's complement bits, or {exponent, nonzero, sign} for shift_add)."""
    if layer.kind == "shift_add":
        eb, _ = shift_code_width(layer.max_exponent)
        if v == 0:
            return 0
        return (abs(int(v)).bit_length() - 1) | (1 << eb) | ((1 << (eb + 1)) if v < 0 else 0)
    return _to_bits(v, layer.weight_bits)


class MatrixVectorUnit(wiring.Component):
    """One folded layer: ``in_*`` takes the whole input vector, ``out_*`` gives the whole output."""

    def __init__(self, layer: Layer, fold: Folding, popcount: str = "tree"):
        if popcount not in POPCOUNT_STYLES:
            raise ConfigError(f"popcount: {popcount!r}, expected one of {', '.join(POPCOUNT_STYLES)}")
        self.popcount = popcount
        if layer.conv is not None:  # the sliding-window unit is not built yet
            raise ConfigError(f"{layer.name}: op 'conv2d' has no hardware unit yet (dense layers only)")
        if (fold.rows, fold.cols) != (layer.rows, layer.cols):
            raise ConfigError(f"{layer.name}: folding is for {fold.rows}x{fold.cols}, layer is "
                              f"{layer.rows}x{layer.cols}")
        self.layer, self.fold = layer, fold
        self.acc_w = acc_width(layer)
        self.ob = out_width(layer)
        super().__init__({
            "in_valid": In(1), "in_ready": Out(1), "in_data": In(layer.in_features * layer.input_bits),
            "out_valid": Out(1), "out_ready": In(1), "out_data": Out(layer.out_features * self.ob),
        })

    # ------------------------------------------------------------------ ROM contents
    def weight_rom(self) -> list[int]:
        """Word rf*CF+cf = concat over PE p (LSB first) of concat over lanes of the weights."""
        L, f = self.layer, self.fold
        wb = weight_code_bits(L)
        words = []
        for rf in range(f.row_folds):
            for cf in range(f.col_folds):
                word, pos = 0, 0
                for p in range(f.pe):
                    row = L.weights[rf * f.pe + p, cf * f.simd:(cf + 1) * f.simd]
                    for v in row:
                        word |= encode_weight(L, v) << pos
                        pos += wb
                words.append(word)
        return words

    def param_rom(self) -> tuple[list[int], int]:
        """Per row fold: thresholds (PE x nT) or biases (PE) as acc_w-bit fields."""
        L, f, w = self.layer, self.fold, self.acc_w
        if L.output == "threshold":
            per = L.n_thresholds
            vals = L.thresholds
        elif L.bias is not None:
            per = 1
            vals = L.bias[:, None]
        else:
            return [], 0
        words = []
        for rf in range(f.row_folds):
            word, pos = 0, 0
            for p in range(f.pe):
                for k in range(per):
                    word |= _to_bits(vals[rf * f.pe + p, k], w) << pos
                    pos += w
            words.append(word)
        return words, per

    # ------------------------------------------------------------------ hardware
    def elaborate(self, platform):
        m = Module()
        L, f = self.layer, self.fold
        ib, wb, W = L.input_bits, weight_code_bits(L), self.acc_w
        CF, RF, chunk_w = f.col_folds, f.row_folds, f.simd * ib
        total = f.row_folds * f.col_folds  # ROM words; bit_serial spends f.planes cycles on each
        serial = L.kind == "bit_serial"

        # weight ROM, synchronous read (block RAM friendly)
        m.submodules.wrom = wrom = Memory(shape=unsigned(f.pe * f.simd * wb), depth=total,
                                          init=self.weight_rom())
        rd = wrom.read_port(domain="sync")

        buf = Signal(L.in_features * ib, name="in_buf")
        win = Signal(L.in_features * ib, name="in_work")
        busy = Signal()
        issued_all = Signal()
        addr = Signal(range(max(total, 2)))
        cf = Signal(range(max(CF, 2)))
        res = Signal(L.out_features * self.ob, name="result")
        obuf = Signal(L.out_features * self.ob, name="out_buf")
        ovalid = Signal()
        complete = Signal()
        orf = Signal(range(max(RF, 2)))

        m.d.comb += [self.in_ready.eq(~busy), self.out_valid.eq(ovalid), self.out_data.eq(obuf)]

        accept = self.in_valid & ~busy
        issue = busy & ~issued_all
        src = Mux(cf == 0, buf, win)
        # bit_serial: (activation bit pa, weight bit pb) plane pairs for every ROM word
        pa = Signal(range(max(ib, 2)), name="plane_a")
        pb = Signal(range(max(L.weight_bits, 2)), name="plane_b")
        pb_last = (pb == L.weight_bits - 1) if serial else Const(1, 1)
        plane_last = ((pa == ib - 1) & pb_last) if serial else Const(1, 1)
        plane_first = ((pa == 0) & (pb == 0)) if serial else Const(1, 1)
        with m.If(accept):
            m.d.sync += [buf.eq(self.in_data), busy.eq(1), issued_all.eq(0), addr.eq(0), cf.eq(0),
                         orf.eq(0), complete.eq(0), pa.eq(0), pb.eq(0)]
        with m.Elif(issue):
            if serial:
                m.d.sync += pb.eq(Mux(pb_last, 0, pb + 1))
                with m.If(pb_last):
                    m.d.sync += pa.eq(Mux(pa == ib - 1, 0, pa + 1))
            with m.If(plane_last):
                m.d.sync += [addr.eq(addr + 1), win.eq(src >> chunk_w),
                             cf.eq(Mux(cf == CF - 1, 0, cf + 1))]
                with m.If(addr == total - 1):
                    m.d.sync += issued_all.eq(1)
        m.d.comb += rd.addr.eq(addr)

        # S0 -> S1: chunk and flags travel alongside the ROM read
        v1, first1, last1 = Signal(), Signal(), Signal()
        chunk1 = Signal(chunk_w)
        pa1, pb1 = Signal.like(pa), Signal.like(pb)
        m.d.sync += [v1.eq(issue), first1.eq((cf == 0) & plane_first), last1.eq((cf == CF - 1) & plane_last),
                     chunk1.eq(src[:chunk_w]), pa1.eq(pa), pb1.eq(pb)]

        # S1 -> S2: lane products and adder trees per PE, registered
        v2, first2, last2 = Signal(), Signal(), Signal()
        m.d.sync += [v2.eq(v1), first2.eq(first1), last2.eq(last1)]
        psums = []
        for p in range(f.pe):
            wslice = rd.data[p * f.simd * wb:(p + 1) * f.simd * wb]
            if L.kind == "xnor_popcount":
                s = xnor_popcount(m, chunk1, wslice, f.simd, f"pe{p}", self.popcount)
            elif L.kind == "mac":
                s = mac_products(m, chunk1, wslice, f.simd, ib, wb, f"pe{p}")
            elif L.kind == "accumulate":
                s = accumulate_lanes(m, chunk1, wslice, f.simd, ib, f"pe{p}")
            elif L.kind == "shift_add":
                s = shift_add_lanes(m, chunk1, wslice, f.simd, ib, L.max_exponent, f"pe{p}")
            elif L.kind == "lut_product":
                s = lut_product_lanes(m, chunk1, wslice, f.simd, ib, wb, L.products, f"pe{p}")
            elif serial:
                s = bit_plane_popcount(m, chunk1, wslice, f.simd, ib, wb, pa1, pb1, f"pe{p}", self.popcount)
            else:  # pragma: no cover - the IR refuses unknown kinds earlier
                raise ConfigError(f"{L.name}: kind {L.kind!r} has no hardware unit yet")
            ps = Signal(signed(W), name=f"psum{p}")
            m.d.sync += ps.eq(s)
            psums.append(ps)

        # S2 -> S3: accumulators
        v3 = Signal()
        accs = [Signal(signed(W), name=f"acc{p}") for p in range(f.pe)]
        fins = [Signal(signed(W), name=f"fin{p}") for p in range(f.pe)]
        m.d.sync += v3.eq(v2 & last2)
        for p in range(f.pe):
            nxt = Mux(first2, 0, accs[p]) + psums[p]
            with m.If(v2):
                m.d.sync += accs[p].eq(nxt)
                with m.If(last2):
                    m.d.sync += fins[p].eq(nxt)

        # S3: output stage per PE, parameters from a small ROM indexed by the row fold
        words, per = self.param_rom()
        if words:
            m.submodules.prom = prom = Memory(shape=unsigned(f.pe * per * W), depth=RF, init=words)
            pr = prom.read_port(domain="comb")
            m.d.comb += pr.addr.eq(orf)
            params = pr.data
        outs = []
        for p in range(f.pe):
            acc = fins[p]
            if L.output == "threshold":
                cmps = [acc >= params[(p * per + k) * W:(p * per + k + 1) * W].as_signed() for k in range(per)]
                y = Signal(self.ob, name=f"y{p}")
                m.d.comb += y.eq(sum(c.as_unsigned() for c in cmps) if per > 1 else cmps[0])
            elif L.output == "requantize":
                v = Signal(signed(W + 1), name=f"v{p}")
                m.d.comb += v.eq(acc + params[p * W:(p + 1) * W].as_signed())
                sh = Signal(signed(W + 1), name=f"sh{p}")
                m.d.comb += sh.eq(v >> L.shift)
                top = (1 << L.output_bits) - 1
                y = Signal(self.ob, name=f"y{p}")
                m.d.comb += y.eq(Mux(sh < 0, 0, Mux(sh > top, top, sh[:self.ob])))
            else:  # argmax layer: the logit itself
                y = Signal(signed(self.ob), name=f"logit{p}")
                if words:
                    m.d.comb += y.eq(acc + params[p * W:(p + 1) * W].as_signed())
                else:
                    m.d.comb += y.eq(acc)
            outs.append(y[:self.ob])
        with m.If(v3):
            m.d.sync += [res.eq(Cat(res[f.pe * self.ob:], *outs)), orf.eq(orf + 1)]
            with m.If(orf == RF - 1):
                m.d.sync += complete.eq(1)

        # hand-over to the output register
        give = complete & (~ovalid | self.out_ready)
        with m.If(give):
            m.d.sync += [obuf.eq(res), ovalid.eq(1), complete.eq(0), busy.eq(0)]
        with m.Elif(self.out_ready):
            m.d.sync += ovalid.eq(0)
        return m
