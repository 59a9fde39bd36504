"""Convolution unit: a line buffer and sliding-window generator feeding the shared
matrix-vector datapath, with the IR's fused max-pool, over row streams (hw.stream).

Dataflow (one input chunk = one image row of W*C elements, channels-last; one output chunk =
one output row of the pooled output, PW*OC elements):

    rows in -> ``lines``: the last kh zero-padded rows (a row shifts in when no window still to
               be loaded needs the row it pushes out; top/bottom padding rows are zeros, rows no
               window reaches are dropped)
            -> ``row_window``: a copy of ``lines`` for the output row being computed, loaded the
               cycle its previous row issues its last step; it shifts by stride*C elements per
               position, so every patch bit is a fixed wire (kh runs of kw*C elements), fed to
               the core SIMD elements at a time through a shift register (``patch_work``)
            -> RF*CF*planes core steps per position, positions back to back
            -> max-pooled into pool-row buffers (or, without pooling, gathered into one output
               row); a finished output row goes to a small FIFO -> ``out_*``

Registers: 2*kh padded rows plus the pool rows, instead of the whole image (the line buffer is
kh rows, not kh-1 rows + k pixels: the row window is a register copy so that patches stay fixed
wires). The core cannot stall: an output row that will emit reserves its FIFO entry when its
window loads (``used`` counts entries and rows in flight), so back-pressure drops nothing.

Max-pool: output levels are unsigned, so a buffer cleared to 0 and updated with max() gives
the window maximum (OR for 1-bit levels). Overlapping windows (window > stride) need
ceil(window/stride) pool-row buffers in rotation; each conv output updates every buffer
element whose window contains its position (constant tables by output row / column).
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from quantmodels.ir import ConvSpec, Layer

from .folding import Folding
from .mvu import CORE_DEPTH, FIFO_LATENCY, make_core, refuse
from .stream import ChunkShape


def pool_tables(conv: ConvSpec) -> tuple[int, list[int], list[int]]:
    """(buffers, per conv row: mask of buffers it updates, mask of buffers it completes).
    Pool row py lives in buffer py % buffers; its window is conv rows [py*s, py*s + k)."""
    k, s = conv.pool
    oh, _ = conv.conv_hw
    ph, _ = conv.out_hw
    nb = -(-k // s)
    upd, done = [0] * oh, [0] * oh
    for py in range(ph):
        for oy in range(py * s, py * s + k):
            upd[oy] |= 1 << (py % nb)
        done[py * s + k - 1] |= 1 << (py % nb)
    return nb, upd, done


#: Output rows the output FIFO holds.
OUT_FIFO_ROWS = 2


class ConvolutionUnit(wiring.Component):
    """One folded conv2d layer (+ fused max-pool) over row streams: ``in_*`` takes the (H, W, C)
    image a row (W*C elements) at a time, ``out_*`` gives the (PH, PW, OC) output a row
    (PW*OC elements) at a time, both channels-last."""

    def __init__(self, layer: Layer, fold: Folding, popcount: str = "tree", mem_style: str = "auto",
                 tree_every: int = 0):
        if layer.conv is None:
            raise refuse(self, f"{layer.name}: op 'dense' has no windows; use hw.mvu.MatrixVectorUnit")
        if fold.positions != layer.positions:
            raise refuse(self, f"{layer.name}: folding is for {fold.positions} positions, layer has "
                               f"{layer.positions}")
        if fold.rows_padded != fold.rows and layer.conv.pool == (1, 1):
            # without pooling every PE output is shifted straight into the output row: padded rows
            # would interleave with real ones (the pooled path selects its channels and handles padding)
            raise refuse(self, f"{layer.name}: pe={fold.pe} does not divide out_channels={fold.rows}; "
                               f"a conv layer without pooling needs a dividing pe")
        self.core = make_core(self, layer, fold, popcount, mem_style, tree_every)  # validates popcount and folding
        self.layer, self.fold, self.conv = layer, fold, layer.conv
        self.ob = self.core.ob
        h, w, ch = self.conv.in_shape
        _, pw = self.conv.out_hw
        super().__init__({"in_valid": In(1), "in_ready": Out(1), "in_data": In(w * ch * layer.input_bits),
                          "out_valid": Out(1), "out_ready": In(1), "out_data": Out(pw * layer.rows * self.ob)})

    @property
    def pipeline_cycles(self) -> int:
        """Cycles from the last step of an output row to that row on ``out_*``: the core's stages
        and the tree's, then the output FIFO."""
        return CORE_DEPTH + self.core.extra_stages + FIFO_LATENCY

    @property
    def in_chunks(self) -> ChunkShape:
        """Input stream: image rows."""
        h, w, ch = self.conv.in_shape
        return ChunkShape(self.layer.in_features, w * ch)

    @property
    def out_chunks(self) -> ChunkShape:
        """Output stream: rows of the pooled output."""
        _, pw = self.conv.out_hw
        return ChunkShape(self.layer.out_features, pw * self.layer.rows)

    # ------------------------------------------------------------------ cycle model
    def _geometry(self) -> tuple[int, int, int, int, list[bool]]:
        c = self.conv
        h, _, _ = c.in_shape
        kh, _ = c.kernel
        oh, _ = c.conv_hw
        used = (oh - 1) * c.stride + kh  # padded rows any window reaches
        if c.pool == (1, 1):
            emits = [True] * oh
        else:
            _, _, done = pool_tables(c)
            emits = [bool(d) for d in done]
        return used, max(used, c.padding + h), kh, oh, emits

    def _run(self, images: int, arrive: list[int] | None) -> tuple[list[int], list[list[int]]]:
        """Cycle model: ``images`` images back to back, image rows ready at ``arrive`` (first
        image; later ones: always ready). Returns (cycle each input row of the first image is
        taken, per image the cycle each output row is first valid)."""
        c, f = self.conv, self.fold
        used, Q, kh, oh, emits = self._geometry()
        s, p = c.stride, c.padding
        h = c.in_shape[0]
        _, ow = c.conv_hw
        row_steps = ow * f.row_folds * f.col_folds * f.planes
        move, taken, outs = -1, [], []
        last_end = -10**9  # last step of the previous output row (any image)
        prev_load = -1
        loads_prev_image: list[int] = []
        for img in range(images):
            loads, ends = [], []
            mt = {}
            for q in range(Q):
                t = move + 1
                if p <= q < p + h and img == 0 and arrive is not None:
                    t = max(t, arrive[q - p])
                if q < used:
                    if q >= kh:  # room once the window that frees row q - kh has loaded
                        need = (q - kh) // s
                        # loads happen in order; computed lazily below
                        mt[q] = ("room", need, t)
                    else:
                        if img > 0:  # the next image's rows wait for the last window of this one
                            t = max(t, loads_prev_image[-1] + 1)
                        mt[q] = ("free", None, t)
                else:
                    mt[q] = ("free", None, t)
                # resolve row q's move time, interleaved with the loads it waits for
                kind, need, t = mt[q]
                while kind == "room" and len(loads) <= need:
                    i = len(loads)
                    ready = move + 1  # rows up to i*s + kh - 1 moved (the last move was row q - 1)
                    load = max(ready, last_end if loads or img else prev_load + 1, prev_load + 1)
                    loads.append(load)
                    prev_load = load
                    last_end = load + row_steps
                    ends.append(last_end)
                if kind == "room":
                    t = max(t, loads[need] + 1)
                move = t
                if q == used - 1:
                    kept = t  # the last row any window needs
                if p <= q < p + h and img == 0:
                    taken.append(t)
            while len(loads) < oh:  # the windows after the last row moved
                load = max(kept + 1, last_end if (loads or img) else prev_load + 1, prev_load + 1)
                loads.append(load)
                prev_load = load
                last_end = load + row_steps
                ends.append(last_end)
            loads_prev_image = loads
            outs.append([e + self.pipeline_cycles for e, em in zip(ends, emits) if em])
        return taken, outs

    def timing(self, arrive: list[int]) -> tuple[list[int], list[int]]:
        """Cycle model of one image through an idle unit (see MatrixVectorUnit.timing)."""
        taken, outs = self._run(1, arrive)
        return taken, outs[0]

    @property
    def interval(self) -> int:
        """Cycles per image when fed and drained fast enough: the positions' steps back to back,
        plus any cycles a row window waits for its rows (from the cycle model, images in a row)."""
        _, outs = self._run(4, None)
        return outs[3][-1] - outs[2][-1]

    # ------------------------------------------------------------------ hardware
    def elaborate(self, platform):
        m = Module()
        L, f, c, core = self.layer, self.fold, self.conv, self.core
        m.submodules.core = core
        h, w, ch = c.in_shape
        kh, kw = c.kernel
        s, p = c.stride, c.padding
        oh, ow = c.conv_hw
        ib, ob = L.input_bits, self.ob
        chunk_w = f.simd * ib
        row_w = (w + 2 * p) * ch * ib  # bits per padded image row
        used, Q, _, _, emits = self._geometry()

        # ---- row sequencer: padded row q of the image being read
        q = Signal(range(max(Q, 2)), name="row_q")
        seq_img, load_img = Signal(name="seq_img"), Signal(name="load_img")  # image parity of each side
        liy = Signal(range(max(oh, 2)), name="load_row")  # next output row whose window loads
        lim = Signal(range(used + s + 1), init=kh, name="row_limit")  # = liy*s + kh: rows the next window needs
        lines = Signal(kh * row_w, name="lines")
        is_img = (q >= p) & (q < p + h)
        keep = q < used
        room = (seq_img == load_img) & (q < lim)
        moves = (~is_img | self.in_valid) & (~keep | room)
        m.d.comb += self.in_ready.eq(is_img & (~keep | room))
        padded_row = Mux(is_img, Cat(Const(0, p * ch * ib), self.in_data, Const(0, p * ch * ib)), 0)
        with m.If(moves):
            m.d.sync += q.eq(Mux(q == Q - 1, 0, q + 1))
            with m.If(q == Q - 1):
                m.d.sync += seq_img.eq(~seq_img)
            with m.If(keep):
                m.d.sync += lines.eq(Cat(lines[row_w:], padded_row[:row_w]))

        # ---- window: loaded from lines when its rows are in and the previous row has issued
        rowwin = Signal(kh * row_w, name="row_window")
        pwin = Signal(f.cols_padded * ib, name="patch_work")  # zero-extended to the padded columns
        patch = Cat(*[rowwin[ky * row_w:ky * row_w + kw * ch * ib] for ky in range(kh)])  # (ky, kx, c) order
        active = Signal()
        ix = Signal(range(max(ow, 2)))
        src = Mux(core.chunk_first, patch, pwin)
        m.d.comb += [core.step.eq(active), core.chunk.eq(src[:chunk_w])]
        row_done = active & core.chunk_done & core.pass_done & (ix == ow - 1)

        used_q = Signal(range(OUT_FIFO_ROWS + 1), name="out_used")  # FIFO rows + rows reserved
        emit_now = Array([Const(e, 1) for e in emits])[liy]
        lines_ok = (seq_img != load_img) | (q >= lim)
        load = lines_ok & (~active | row_done) & (~emit_now | (used_q < OUT_FIFO_ROWS))

        with m.If(active & core.chunk_done):
            m.d.sync += pwin.eq(src >> chunk_w)
            with m.If(core.pass_done):  # position done: slide the window
                m.d.sync += ix.eq(Mux(ix == ow - 1, 0, ix + 1))
                with m.If(ix == ow - 1):
                    m.d.sync += active.eq(0)
                with m.Else():
                    m.d.sync += rowwin.eq(rowwin >> (s * ch * ib))
        with m.If(load):
            m.d.sync += [rowwin.eq(lines), active.eq(1)]
            with m.If(liy == oh - 1):
                m.d.sync += [liy.eq(0), lim.eq(kh), load_img.eq(~load_img)]
            with m.Else():
                m.d.sync += [liy.eq(liy + 1), lim.eq(lim + s)]
        # ---- output side: conv position of the core's current output group
        ox = Signal(range(max(ow, 2)))
        oy = Signal(range(max(oh, 2)))
        pos_end = core.out_valid & core.out_last
        row_end = pos_end & (ox == ow - 1)
        with m.If(pos_end):
            m.d.sync += ox.eq(Mux(ox == ow - 1, 0, ox + 1))
            with m.If(ox == ow - 1):
                m.d.sync += oy.eq(Mux(oy == oh - 1, 0, oy + 1))

        m.submodules.fifo = fifo = SyncFIFOBuffered(width=len(self.out_data), depth=OUT_FIFO_ROWS)
        if c.pool == (1, 1):
            row = Signal(ow * L.rows * ob, name="out_row")
            shifted = Cat(row[f.pe * ob:], core.out_data)
            with m.If(core.out_valid):
                m.d.sync += row.eq(shifted)
            m.d.comb += [fifo.w_en.eq(row_end), fifo.w_data.eq(shifted)]
        else:
            self._max_pool(m, fifo, ox, oy, row_end)
        m.d.comb += [self.out_valid.eq(fifo.r_rdy), self.out_data.eq(fifo.r_data), fifo.r_en.eq(self.out_ready)]
        m.d.sync += used_q.eq(used_q + (load & emit_now) - (fifo.r_rdy & self.out_ready))
        return m

    def _max_pool(self, m: Module, fifo, ox: Signal, oy: Signal, row_end) -> None:
        L, f, c, core, ob = self.layer, self.fold, self.conv, self.core, self.ob
        k, s = c.pool
        _, pw = c.out_hw
        oc = L.rows
        nb, upd, done = pool_tables(c)
        upd_now = Array([Const(v, nb) for v in upd])[oy]
        done_now = Array([Const(v, nb) for v in done])[oy]
        col_hit = [(ox >= px * s) & (ox < px * s + k) for px in range(pw)]
        rf_hit = [core.out_rf == j for j in range(f.row_folds)]
        ys = [core.out_data[q * ob:(q + 1) * ob] for q in range(f.pe)]
        emit = []
        for b in range(nb):
            buf = Signal(pw * oc * ob, name=f"pool_row{b}")
            row_hit = core.out_valid & upd_now[b]
            new = []
            for px in range(pw):
                hit = row_hit & col_hit[px]
                for o in range(oc):
                    e = px * oc + o
                    old, y = buf[e * ob:(e + 1) * ob], ys[o % f.pe]
                    new.append(Mux(hit & rf_hit[o // f.pe] & (y > old), y, old))
            nxt = Signal.like(buf, name=f"pool_next{b}")
            m.d.comb += nxt.eq(Cat(*new))
            fin = row_end & done_now[b]
            emit.append((fin, nxt))
            with m.If(fin):  # last conv row of this pool row: emit, clear
                m.d.sync += buf.eq(0)
            with m.Else():
                m.d.sync += buf.eq(nxt)
        m.d.comb += fifo.w_en.eq(row_end & (done_now != 0))
        data = emit[0][1]
        for fin, nxt in emit[1:]:
            data = Mux(fin, nxt, data)
        m.d.comb += fifo.w_data.eq(data)
