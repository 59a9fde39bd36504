"""Folded matrix-vector unit for one IR layer, with its integer output stage.

:class:`MatrixVectorCore` is the datapath shared by the dense unit here and the
convolution unit (:mod:`hw.conv`): it takes one SIMD chunk per ``step`` and walks the weight
matrix pass after pass (row folds outer, column folds inner, bit planes innermost):

    step -> S0: weight ROM address = rf*CF + cf; input chunk registered (a banked dense unit
                reads it from its input memory instead, on the port at S1: ``chunk_late``)
            S1: ROM word ready -> PE lane products + adder trees (registered)
            S2: per-PE accumulators (cleared on cf == 0)
            S3: at cf == CF-1: output stage per PE (threshold / requantize / logit) on ``out_*``

:class:`MatrixVectorUnit` (dense) streams (hw.stream): SIMD-element chunks in, PE-element chunks out:

    chunk -> (one row fold) a step on it at once | (more) a bank of the input memory, the
             passes step on the other bank back to back, each step reading its chunk with a
             registered address (no handshake logic before the memory)
          -> row fold results -> small output FIFO (credit-checked) -> ``out_*``

Vectors follow each other without a gap, so a dense layer's initiation interval is exactly
Folding.cycles; the network's is its slowest stage's (hw.network).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from quantmodels.errors import ConfigError
from quantmodels.ir import Layer, kind_spec

from quantmodels.bitwidth import signed_bits

from .arith import POPCOUNT_STYLES, adder_tree
from .folding import Folding
from .lanes import LaneContext, lane_spec
from .memstyle import MemStyle, attrs, parse_mem_style, resolve
from .pipeline import core_stages
from .stream import ChunkShape


def acc_width(layer: Layer) -> int:
    """Signed width holding the accumulator, acc + bias, and every threshold."""
    lo, hi = layer.logit_range()
    alo, ahi = layer.acc_range()
    lo, hi = min(lo, alo), max(hi, ahi)
    if layer.thresholds is not None and layer.thresholds.size:
        lo, hi = min(lo, int(layer.thresholds.min())), max(hi, int(layer.thresholds.max()))
    return signed_bits(lo, hi)


def out_width(layer: Layer) -> int:
    """Bits per output element: output_bits for hidden layers, the logit width for the last."""
    return acc_width(layer) if layer.output == "argmax" else layer.output_bits


def _to_bits(v: int, width: int) -> int:
    return int(v) & ((1 << width) - 1)


def weight_code_bits(layer: Layer) -> int:
    """Bits per weight in the ROM (the kind's code; the IR's weight_bits for two's complement)."""
    return lane_spec(layer.kind).code_bits(layer)


def encode_weight(layer: Layer, v: int) -> int:
    """ROM code of one weight (two's complement bits, or the kind's own code, e.g. shift_add's)."""
    return lane_spec(layer.kind).encode(layer, v)


def weight_codes(layer: Layer, fold: Folding) -> np.ndarray:
    """The weight ROM as a (words x lanes) array of codes: word rf*CF + cf holds, for PE p and
    lane i (PE-major), the code of weight (rf*pe + p, cf*simd + i). The one statement of the
    ROM layout: the hardware packs it, the area estimator reads its bit columns."""
    rf, cf, pe, simd = fold.row_folds, fold.col_folds, fold.pe, fold.simd
    w = np.asarray(layer.weights)
    if (fold.rows_padded, fold.cols_padded) != w.shape:  # padded: neutral weights on zero inputs
        pad = kind_spec(layer.kind).pad_weight(layer)
        if pad is None:
            raise ConfigError(f"{layer.name}: pe={fold.pe}, simd={fold.simd} pad the weights to "
                              f"{fold.rows_padded}x{fold.cols_padded}, but kind '{layer.kind}' has no weight "
                              f"whose term with input 0 is 0; expected pe dividing {fold.rows}, simd dividing {fold.cols}")
        w = np.pad(w, ((0, fold.rows_padded - w.shape[0]), (0, fold.cols_padded - w.shape[1])), constant_values=pad)
    enc = np.vectorize(lambda v: encode_weight(layer, int(v)), otypes=[np.int64])(w)
    return enc.reshape(rf, pe, cf, simd).transpose(0, 2, 1, 3).reshape(rf * cf, pe * simd)


def refuse(unit: wiring.Component, message: str) -> ConfigError:
    """The error for a unit refused in its constructor (never to be elaborated: no "unused" warning)."""
    unit._MustUse__silence = True
    return ConfigError(message)


def make_core(unit: wiring.Component, layer: Layer, fold: Folding, popcount: str,
              mem_style: str = "auto", tree_every: int = 0, chunk_late: bool = False,
              family: str | None = None) -> "MatrixVectorCore":
    """The datapath of ``unit``; a refused folding, popcount or memory style refuses the unit too."""
    try:
        return MatrixVectorCore(layer, fold, popcount, mem_style, tree_every, chunk_late, family)
    except ConfigError as e:
        raise refuse(unit, str(e)) from None


class MatrixVectorCore(wiring.Component):
    """Lane arithmetic, accumulators and output stage of one folded layer, fed a chunk per step.

    ``step`` issues the chunk for the current (row fold, col fold, plane); ``chunk_first`` says
    the core is at column fold 0 (the caller presents a fresh input vector's first chunk),
    ``chunk_done`` that this step consumes the chunk (the caller moves to the next one) and
    ``pass_done`` that it ends a pass over the whole weight matrix. Counters wrap, so passes
    follow each other without a gap. ``out_valid`` marks the PE outputs of row fold ``out_rf``
    (``out_last``: the last row fold of a pass), 4 + ``extra_stages`` cycles after the pass's last step.

    ``mem_style`` (:mod:`hw.memstyle`) says where the weight and threshold ROMs go; the cycle
    behaviour is the same for every style (both ROMs read synchronously where block RAM needs it).
    ``tree_every`` > 0 (a target clock, hw.pipeline) registers the lanes' adder tree every that many
    levels and the core's boundaries: the weight ROM's read data, the products of a multi-level kind
    and the output stage, whose parameters are then read synchronously a row fold ahead (as block RAM
    needs anyway): ``stages`` by place, ``extra_stages`` more cycles between a step and its result.
    Bit-serial kinds and the lut6/xilinx popcounts keep a combinational tree (their planes / counters
    are not staged).

    ``chunk_late``: the caller presents a step's chunk one cycle after the step, at S1 beside the
    weight ROM word, from a register of its own (a synchronous memory read addressed by the step's
    own counters), and the core uses it as it is; otherwise the chunk comes with the step and the
    core registers it. The cycle behaviour is the same.

    ``family``: the FPGA family the core is built for; it only matters where a family must not register
    a DSP multiplier's product (hw.lanes.UNREGISTERED_DSP_PRODUCT_FAMILIES). None: no family rule.
    """

    def __init__(self, layer: Layer, fold: Folding, popcount: str = "tree", mem_style: str = "auto",
                 tree_every: int = 0, chunk_late: bool = False, family: str | None = None):
        if popcount not in POPCOUNT_STYLES:
            raise refuse(self, f"popcount: {popcount!r}, expected one of {', '.join(POPCOUNT_STYLES)}")
        try:
            self.mem_style = parse_mem_style(mem_style)
        except ConfigError as e:
            raise refuse(self, str(e)) from None
        if (fold.rows, fold.cols) != (layer.rows, layer.cols):
            raise refuse(self, f"{layer.name}: folding is for {fold.rows}x{fold.cols}, layer is "
                               f"{layer.rows}x{layer.cols}")
        self.layer, self.fold, self.popcount, self.chunk_late = layer, fold, popcount, chunk_late
        if (fold.rows_padded, fold.cols_padded) != (fold.rows, fold.cols):
            try:  # a padded folding the kind cannot pad is refused here, not at elaboration
                weight_codes(layer, fold)
            except ConfigError as e:
                raise refuse(self, str(e)) from None
        self.acc_w = acc_width(layer)
        self.ob = out_width(layer)
        spec = lane_spec(layer.kind)
        staged = not spec.serial and (layer.kind != "xnor_popcount" or popcount == "tree")
        self.tree_every = tree_every if staged else 0
        #: register stages for the target clock, by place (hw.pipeline.core_stages; none without one)
        self.stages = core_stages(fold.simd, tree_every, spec.product_stages(layer, self.mem_style, family), staged,
                                  layer.n_thresholds if layer.output == "threshold" else 1)
        #: cycles those stages add to the unit's pipeline
        self.extra_stages = self.stages.total
        words, per = self.param_rom()
        #: resolved styles of the weight ROM and the threshold/bias ROM (None: the tool's choice)
        self.weight_style = resolve(self.mem_style, fold.row_folds * fold.col_folds,
                                    fold.lanes * weight_code_bits(layer))
        self.param_style = resolve(self.mem_style, len(words), fold.pe * per * self.acc_w) if words else None
        super().__init__({
            "step": In(1), "chunk": In(fold.simd * layer.input_bits),
            "chunk_first": Out(1), "chunk_done": Out(1), "pass_done": Out(1),
            "out_valid": Out(1), "out_last": Out(1), "out_rf": Out(range(max(fold.row_folds, 2))),
            "out_data": Out(fold.pe * self.ob),
        })

    # ------------------------------------------------------------------ ROM contents
    def weight_rom(self) -> list[int]:
        """The ROM words of :func:`weight_codes`, each word's codes packed LSB first."""
        wb = weight_code_bits(self.layer)
        return [sum(int(c) << (i * wb) for i, c in enumerate(word)) for word in weight_codes(self.layer, self.fold)]

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
        never = (1 << (w - 1)) - 1  # padded rows: their outputs are dropped; a threshold that never fires
        words = []
        for rf in range(f.row_folds):
            word, pos = 0, 0
            for p in range(f.pe):
                r = rf * f.pe + p
                for k in range(per):
                    v = vals[r, k] if r < f.rows else (never if L.output == "threshold" else 0)
                    word |= _to_bits(v, w) << pos
                    pos += w
            words.append(word)
        return words, per

    # ------------------------------------------------------------------ hardware
    def elaborate(self, platform):
        m = Module()
        L, f = self.layer, self.fold
        ib, wb, W = L.input_bits, weight_code_bits(L), self.acc_w
        CF, RF = f.col_folds, f.row_folds
        total = f.row_folds * f.col_folds  # ROM words; a serial kind spends f.planes cycles on each
        lanes = lane_spec(L.kind)
        serial = lanes.serial

        # weight ROM, synchronous read (block RAM friendly)
        m.submodules.wrom = wrom = Memory(shape=unsigned(f.pe * f.simd * wb), depth=total,
                                          init=self.weight_rom(), attrs=attrs(self.weight_style))
        rd = wrom.read_port(domain="sync")

        addr = Signal(range(max(total, 2)))
        cf = Signal(range(max(CF, 2)))
        orf = Signal(range(max(RF, 2)))
        step = self.step
        # serial kinds: (activation bit pa, weight bit pb) plane pairs for every ROM word
        pa = Signal(range(max(ib, 2)), name="plane_a")
        pb = Signal(range(max(L.weight_bits, 2)), name="plane_b")
        pb_last = (pb == L.weight_bits - 1) if serial else Const(1, 1)
        plane_last = ((pa == ib - 1) & pb_last) if serial else Const(1, 1)
        plane_first = ((pa == 0) & (pb == 0)) if serial else Const(1, 1)
        m.d.comb += [self.chunk_first.eq(cf == 0), self.chunk_done.eq(plane_last),
                     self.pass_done.eq(plane_last & (addr == total - 1))]
        with m.If(step):
            if serial:
                m.d.sync += pb.eq(Mux(pb_last, 0, pb + 1))
                with m.If(pb_last):
                    m.d.sync += pa.eq(Mux(pa == ib - 1, 0, pa + 1))
            with m.If(plane_last):
                m.d.sync += [addr.eq(Mux(addr == total - 1, 0, addr + 1)),
                             cf.eq(Mux(cf == CF - 1, 0, cf + 1))]
        m.d.comb += rd.addr.eq(addr)

        # S0 -> S1: chunk and flags travel alongside the ROM read
        v1, first1, last1 = Signal(), Signal(), Signal()
        chunk1 = Signal(len(self.chunk))
        pa1, pb1 = Signal.like(pa), Signal.like(pb)
        m.d.sync += [v1.eq(step), first1.eq((cf == 0) & plane_first), last1.eq((cf == CF - 1) & plane_last),
                     pa1.eq(pa), pb1.eq(pb)]
        if self.chunk_late:  # already registered by the caller's synchronous read
            m.d.comb += chunk1.eq(self.chunk)
        else:
            m.d.sync += chunk1.eq(self.chunk)

        wdata = rd.data
        if self.stages.rom:  # the ROM word registered (block RAM clock-to-out), the chunk beside it
            # data registers carry no reset (only the valid flags do): a reset-free register right
            # after a block RAM read can become the block's own output register (reports.ecp5_outreg)
            wdata = Signal.like(rd.data, name="wrom_q", reset_less=True)
            d = [Signal.like(x, name=f"{n}_q", reset_less=n == "chunk1")
                 for x, n in zip((v1, first1, last1, chunk1, pa1, pb1),
                                 ("v1", "first1", "last1", "chunk1", "plane_a1", "plane_b1"))]
            m.d.sync += [wdata.eq(rd.data)] + [a.eq(b) for a, b in zip(d, (v1, first1, last1, chunk1, pa1, pb1))]
            v1, first1, last1, chunk1, pa1, pb1 = d

        # S1 -> S2: lane products and adder trees per PE, registered
        v2, first2, last2 = Signal(), Signal(), Signal()
        fv, ff, fl = v1, first1, last1
        for k in range(self.stages.product + self.stages.tree):  # the flags travel beside the lanes' stages
            dv, df, dl = Signal(name=f"v1_d{k}"), Signal(name=f"first1_d{k}"), Signal(name=f"last1_d{k}")
            m.d.sync += [dv.eq(fv), df.eq(ff), dl.eq(fl)]
            fv, ff, fl = dv, df, dl
        m.d.sync += [v2.eq(fv), first2.eq(ff), last2.eq(fl)]
        psums = []
        ctx = LaneContext(self.popcount, pa1, pb1, self.tree_every, bool(self.stages.product), self.mem_style)
        for p in range(f.pe):
            wslice = wdata[p * f.simd * wb:(p + 1) * f.simd * wb]
            s = lanes.build(m, chunk1, wslice, L, f.simd, wb, ctx, f"pe{p}")
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
            m.submodules.prom = prom = Memory(shape=unsigned(f.pe * per * W), depth=RF, init=words,
                                              attrs=attrs(self.param_style))
            if self.param_style is MemStyle.BLOCK or self.stages.output:
                # block RAM reads synchronously (and a target clock keeps the ROM read out of the
                # compare's path): address the row fold orf will hold next cycle, so the word for
                # the current orf is on the port exactly when S3 needs it (no extra cycle). That
                # address is a register of its own, orf a cycle early: it moves when S2 ends a row
                # fold (v3 next cycle), so no adder or mux sits before the ROM
                pr = prom.read_port(domain="sync")
                orf_next = Signal.like(orf, name="out_rf_next")
                with m.If(v2 & last2):
                    m.d.sync += orf_next.eq(Mux(orf_next == RF - 1, 0, orf_next + 1))
                m.d.comb += pr.addr.eq(orf_next)
            else:
                pr = prom.read_port(domain="comb")
                m.d.comb += pr.addr.eq(orf)
            params = pr.data
        outs = []
        for p in range(f.pe):
            acc = fins[p]
            if L.output == "threshold":
                cmps = [acc >= params[(p * per + k) * W:(p * per + k + 1) * W].as_signed() for k in range(per)]
                if self.stages.output > 1:  # the compares registered, counted the next cycle
                    cq = Signal(per, name=f"cmp{p}_q")
                    m.d.sync += cq.eq(Cat(*cmps))
                    cmps = [cq[k] for k in range(per)]
                y = Signal(self.ob, name=f"y{p}")
                # a balanced tree, not Python's sum(): a chain of 2^k - 1 adders whose width grows one
                # bit per term (127 deep at 7-bit outputs) is slow logic and a C++ file gcc needs minutes for
                m.d.comb += y.eq(adder_tree(m, [c.as_unsigned() for c in cmps], f"cnt{p}") if per > 1 else cmps[0])
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
        if self.stages.output:  # the compare / requantize / bias add registered, with its flags
            ov, orf_q, od = Signal(name="out_v_q"), Signal.like(orf, name="out_rf_q"), Signal(len(self.out_data), name="out_q")
            v, r = v3, orf
            for k in range(self.stages.output - 1):  # the flags beside the registered compares
                vd, rd_ = Signal(name=f"out_v_d{k}"), Signal.like(orf, name=f"out_rf_d{k}")
                m.d.sync += [vd.eq(v), rd_.eq(r)]
                v, r = vd, rd_
            m.d.sync += [ov.eq(v), orf_q.eq(r), od.eq(Cat(*outs))]
            m.d.comb += [self.out_valid.eq(ov), self.out_rf.eq(orf_q), self.out_last.eq(orf_q == RF - 1),
                         self.out_data.eq(od)]
        else:
            m.d.comb += [self.out_valid.eq(v3), self.out_rf.eq(orf), self.out_last.eq(orf == RF - 1),
                         self.out_data.eq(Cat(*outs))]
        with m.If(v3):
            m.d.sync += orf.eq(Mux(orf == RF - 1, 0, orf + 1))
        return m


def vector_stream_ports(layer: Layer, out_bits: int) -> dict:
    """Signature members of a whole-vector unit (the conv unit): the whole input vector in, the whole
    output vector out, each over a valid/ready handshake."""
    return {"in_valid": In(1), "in_ready": Out(1), "in_data": In(layer.in_features * layer.input_bits),
            "out_valid": Out(1), "out_ready": In(1), "out_data": Out(layer.out_features * out_bits)}


#: Cycles from a core step to its result on the core's ``out_*`` (S0 -> S1 -> S2 -> S3), before
#: the register stages of a target clock (MatrixVectorCore.extra_stages).
CORE_DEPTH = 3
#: Cycles from a result on the core's ``out_*`` to the same result on the unit's ``out_*``
#: (amaranth.lib.fifo.SyncFIFOBuffered: its memory, then its output register).
FIFO_LATENCY = 2
#: Cycles of results beyond the pipeline delay the output FIFO holds (covers the converter after it).
FIFO_SLACK = 4


class MatrixVectorUnit(wiring.Component):
    """One folded dense layer over chunk streams (hw.stream): ``in_*`` takes SIMD-element chunks
    of the input vector (col_folds per vector, the last zero-padded), ``out_*`` gives PE-element
    chunks of the output (row_folds per vector; the padded places of the last one are garbage,
    the next converter drops them).

    One row fold (a single pass over the weights): the steps consume the chunks as they arrive, no
    input buffer. More row folds: every pass re-reads the vector, so the chunks go to an input
    memory (hw.memstyle picks its style by size) of two banks of col_folds words: one bank fills
    from the stream while the passes read the other, so a producer never waits for this unit's
    later passes and a vector's interval is exactly its steps (Folding.cycles).

    The core cannot stall, so a step that ends a row fold is issued only when the output FIFO has
    room for it and for every result still in flight (``used`` counts both): back-pressure never
    drops a result. The FIFO is small: the results of the pipeline's delay plus two, which lets
    the unit run that far ahead of its consumer so a chain of units keeps its slowest unit's pace.
    """

    def __init__(self, layer: Layer, fold: Folding, popcount: str = "tree", mem_style: str = "auto",
                 tree_every: int = 0, family: str | None = None):
        if layer.conv is not None:  # hw.conv.ConvolutionUnit walks the windows of a conv2d layer
            raise refuse(self, f"{layer.name}: op 'conv2d' needs hw.conv.ConvolutionUnit, not a dense unit")
        # more row folds: the chunks come from the input memory, read with the step's own address,
        # so the chunk reaches the core at S1 (MatrixVectorCore.chunk_late)
        self.core = make_core(self, layer, fold, popcount, mem_style, tree_every,
                              chunk_late=fold.row_folds > 1, family=family)  # validates popcount and folding
        self.layer, self.fold = layer, fold
        self.ob = self.core.ob
        per_fold = fold.col_folds * fold.planes  # cycles between two row-fold results
        #: output FIFO entries (PE results each): what the pipeline delivers over its delay, plus slack
        self.fifo_depth = max(2, -(-(self.result_delay + FIFO_SLACK) // per_fold) + 1)
        #: resolved style of the input memory (None: no memory, a single row fold reads the stream only);
        #: a written memory: hw.memstyle puts it in LUT-RAM where the family has it, block RAM when large
        #: (or, on a ``family`` without LUT-RAM, when its flip-flops would cost more than its blocks)
        #: (a forced ``block`` is for the parameter ROMs: the input buffer goes to block RAM by size only)
        in_rule = MemStyle.AUTO if self.core.mem_style is MemStyle.BLOCK else self.core.mem_style
        in_style = (resolve(in_rule, 2 * fold.col_folds, fold.simd * layer.input_bits, written=True, family=family)
                    if fold.row_folds > 1 else None)
        #: the whole vector is one chunk (one column fold) and no block RAM is asked: no memory at all, but a
        #: fill register and the stepped vector's register (:meth:`_vector_registers`): flip-flops only, where
        #: a 2-word memory would cost a LUT-RAM slice per few bits or a read mux per bit
        self.in_registers = in_style is not None and fold.col_folds == 1 and in_style is not MemStyle.BLOCK
        self.in_style = None if self.in_registers else in_style
        super().__init__({"in_valid": In(1), "in_ready": Out(1), "in_data": In(fold.simd * layer.input_bits),
                          "out_valid": Out(1), "out_ready": In(1), "out_data": Out(fold.pe * self.ob)})

    @property
    def result_delay(self) -> int:
        """Cycles from the step ending a row fold to that row fold's chunk on ``out_*``."""
        return CORE_DEPTH + self.core.extra_stages + FIFO_LATENCY

    @property
    def in_chunks(self) -> ChunkShape:
        """Input stream: the layer's inputs in SIMD-element chunks."""
        return ChunkShape(self.fold.cols, self.fold.simd)

    @property
    def out_chunks(self) -> ChunkShape:
        """Output stream: the layer's outputs in PE-element chunks."""
        return ChunkShape(self.fold.rows, self.fold.pe)

    @property
    def interval(self) -> int:
        """Cycles per vector when fed and drained fast enough: the steps alone (passes follow each
        other, and vectors too, without a gap)."""
        return self.fold.cycles

    def timing(self, arrive: list[int]) -> tuple[list[int], list[int]]:
        """Cycle model of one vector through an idle unit: ``arrive[j]``, the first cycle input
        chunk j could be taken; returns (cycle each input chunk is taken, first cycle each output
        chunk is valid). One row fold: each step waits for its chunk. More: the chunks fill a bank
        one a cycle and the steps start the cycle after the last one was taken."""
        f = self.fold
        taken, t = [], -1
        for j in range(f.col_folds):
            # streamed: the chunk is taken at its last plane's step; banked: as it comes
            t = max(t + 1, arrive[j]) + (f.planes - 1 if f.row_folds == 1 else 0)
            taken.append(t)
        per_fold = f.col_folds * f.planes
        end0 = t if f.row_folds == 1 else t + per_fold  # the step ending row fold 0
        return taken, [end0 + r * per_fold + self.result_delay for r in range(f.row_folds)]

    def elaborate(self, platform):
        m = Module()
        L, f, core = self.layer, self.fold, self.core
        m.submodules.core = core
        CF, RF = f.col_folds, f.row_folds
        # our own row/column fold counters walk in step with the core's (both move on chunk_done)
        cf = Signal(range(max(CF, 2)), name="step_cf")
        rf = Signal(range(max(RF, 2)), name="step_rf")
        ends_fold = (cf == CF - 1) & core.chunk_done  # this step ends a row fold: one result
        used = Signal(range(self.fifo_depth + 1))  # FIFO entries + results in flight
        go = ~ends_fold | (used < self.fifo_depth)
        step = Signal()
        advance = step & core.chunk_done
        with m.If(advance):
            m.d.sync += cf.eq(Mux(cf == CF - 1, 0, cf + 1))
            with m.If(cf == CF - 1):
                m.d.sync += rf.eq(Mux(rf == RF - 1, 0, rf + 1))

        if RF == 1:  # one pass: step on the stream's chunks as they come
            m.d.comb += [step.eq(self.in_valid & go), self.in_ready.eq(core.chunk_done & go),
                         core.chunk.eq(self.in_data)]
        elif self.in_registers:
            self._vector_registers(m, rf, step, go, advance)
        else:
            self._banks(m, cf, rf, step, go, advance)
        m.d.comb += core.step.eq(step)

        m.submodules.fifo = fifo = SyncFIFOBuffered(width=len(self.out_data), depth=self.fifo_depth)
        m.d.comb += [fifo.w_en.eq(core.out_valid), fifo.w_data.eq(core.out_data),
                     self.out_valid.eq(fifo.r_rdy), self.out_data.eq(fifo.r_data), fifo.r_en.eq(self.out_ready)]
        m.d.sync += used.eq(used + (step & ends_fold) - (fifo.r_rdy & self.out_ready))
        return m

    def _vector_registers(self, m: Module, rf: Signal, step: Signal, go, advance) -> None:
        """One column fold: the vector arrives as one chunk into ``fill_vec``; a vector's first step
        copies it into ``step_vec``, which the core reads at S1 (core.chunk_late) for every row fold.
        Same cycles as the two banks: a chunk taken at t is stepped on from t+1, and the next vector's
        first step follows the last one without a gap. ``fill_vec`` frees the cycle after that copy
        (one cycle later than a bank would: it keeps the handshake off the copy's enable)."""
        RF = self.fold.row_folds
        fill = Signal(len(self.in_data), name="fill_vec")
        cur = Signal(len(self.in_data), name="step_vec")
        fill_full, busy = Signal(name="fill_full"), Signal(name="step_busy")  # busy: step_vec has steps left
        take = self.in_valid & self.in_ready
        first = step & ~busy  # a vector's first step (its fill is full: the step needs it)
        vec_end = advance & (rf == RF - 1)  # one column fold: every advance ends a row fold
        m.d.comb += [self.in_ready.eq(~fill_full), step.eq((busy | fill_full) & go), self.core.chunk.eq(cur)]
        with m.If(take):
            m.d.sync += [fill.eq(self.in_data), fill_full.eq(1)]
        with m.Elif(first):  # never with take: a first step needs fill_full, take needs it clear
            m.d.sync += fill_full.eq(0)
        with m.If(first):
            m.d.sync += [cur.eq(fill), busy.eq(1)]
        with m.Elif(vec_end):  # never with first: RF > 1, so a first step is not a last one
            m.d.sync += busy.eq(0)

    def _banks(self, m: Module, cf: Signal, rf: Signal, step: Signal, go, advance) -> None:
        """Two-bank input memory: the stream fills bank ``wbank`` while the steps read ``cbank``."""
        f, core = self.fold, self.core
        CF, RF = f.col_folds, f.row_folds
        m.submodules.inmem = mem = Memory(shape=unsigned(len(self.in_data)), depth=2 * CF, init=[],
                                          attrs=attrs(self.in_style, written=True))
        wp = mem.write_port()
        # read with the current step's address, held in a register (nothing combinational from the
        # handshake before the memory): the chunk is on the port the cycle after its step, at S1
        # beside the weight ROM word (core.chunk_late). A step needs its bank full, and a bank is
        # written only while not full, so the word read was written at least a cycle before: plain
        # read-before-write is exact and needs no bypass mux beside the LUT-RAM
        rp = mem.read_port(domain="sync")
        full = Signal(2, name="bank_full")
        wbank, cbank = Signal(name="fill_bank"), Signal(name="step_bank")
        wcf = Signal(range(max(CF, 2)), name="fill_cf")
        raddr = Signal(range(2 * CF), name="step_addr")  # = cbank * CF + cf, kept beside them
        take = self.in_valid & self.in_ready
        wlast = take & (wcf == CF - 1)
        vec_end = advance & (cf == CF - 1) & (rf == RF - 1)

        m.d.comb += [self.in_ready.eq(~full.bit_select(wbank, 1)),
                     wp.addr.eq(Mux(wbank, CF + wcf, wcf)), wp.data.eq(self.in_data), wp.en.eq(take),
                     step.eq(full.bit_select(cbank, 1) & go),
                     rp.addr.eq(raddr), core.chunk.eq(rp.data)]
        with m.If(advance):  # the next address from registers only; the handshake just selects it
            with m.If(cf != CF - 1):
                m.d.sync += raddr.eq(raddr + 1)
            with m.Elif(rf != RF - 1):  # the next row fold re-reads this bank
                m.d.sync += raddr.eq(Mux(cbank, CF, 0))
            with m.Else():  # the vector's last step: the other bank
                m.d.sync += raddr.eq(Mux(cbank, 0, CF))
        with m.If(take):
            m.d.sync += wcf.eq(Mux(wcf == CF - 1, 0, wcf + 1))
        with m.If(wlast):
            m.d.sync += wbank.eq(~wbank)
        with m.If(vec_end):
            m.d.sync += cbank.eq(~cbank)
        # a bank turns full with its last chunk and empty with its vector's last step
        set_ = Mux(wlast, Mux(wbank, 0b10, 0b01), 0)
        clr = Mux(vec_end, Mux(cbank, 0b10, 0b01), 0)
        m.d.sync += full.eq((full | set_) & ~clr)
