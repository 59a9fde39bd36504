"""Convolution unit: a line buffer in memory and a sliding-window generator feeding the shared
matrix-vector datapath, with the IR's fused max-pool, over row streams (hw.stream).

Dataflow (one input chunk = one image row of W*C elements, channels-last; one output chunk =
one output row of the pooled output, PW*OC elements):

    rows in -> ``row_in``: one image row, written into the line buffer a pixel (C elements) a cycle
            -> ``linebuf``: a memory of W words (image columns), each word NS row slots of one pixel
               (a row writes its slot's lane of every word, a column read gives all slots at once);
               NS = max(kh + stride, 2*kh) rows, so the rows of the next window (and of the next
               image's first window) are written while the current one is read
            -> reader: one window column (kh pixels, rotated out of the slots, zero in the padding)
               a cycle into ``col_queue`` (kw + stride columns), running ahead of the compute
            -> ``window``: the kh x kw x C patch of the position being computed (a position takes
               kw columns from the queue at a row start, stride columns after), fed to the core
               SIMD elements at a time through a shift register (``patch_work``)
            -> RF*CF*planes core steps per position, positions back to back when the queue keeps up
            -> max-pooled into pool-row buffers (or, without pooling, gathered into one output
               row); a finished output row goes to a small FIFO -> ``out_*``

Registers: one image row, the window and the column queue, plus the pool rows; the line buffer
is a ``Memory`` whose style follows ``mem_style`` by its size (hw.memstyle: block RAM when large,
``logic`` forces registers). Rows leave no gaps in the buffer: padding rows set a slot's zero
flag instead of being written; rows no window reaches are dropped. The core cannot stall: an
output row that will emit reserves its FIFO entry when its first position starts (``used``
counts entries and rows in flight), so back-pressure drops nothing.

Max-pool: output levels are unsigned, so a buffer cleared to 0 and updated with max() gives
the window maximum (OR for 1-bit levels). Overlapping windows (window > stride) need
ceil(window/stride) pool-row buffers in rotation; each conv output updates every buffer
element whose window contains its position (constant tables by output row / column).

The cycle model (:meth:`ConvolutionUnit._run`) steps the same counters cycle by cycle as the
hardware, so it is exact by construction; the tests compare it with Verilator.
"""
from __future__ import annotations

import functools

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from quantmodels.ir import ConvSpec, Layer

from .folding import Folding
from .memstyle import attrs, line_style
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


def line_slots(kernel_h: int, stride: int) -> int:
    """Row slots of the line buffer: the kh rows being read plus the stride rows of the next
    window, and at least 2*kh so the next image's first window fills while the last one is read."""
    return max(kernel_h + stride, 2 * kernel_h)


class ConvolutionUnit(wiring.Component):
    """One folded conv2d layer (+ fused max-pool) over row streams: ``in_*`` takes the (H, W, C)
    image a row (W*C elements) at a time, ``out_*`` gives the (PH, PW, OC) output a row
    (PW*OC elements) at a time, both channels-last."""

    def __init__(self, layer: Layer, fold: Folding, popcount: str = "tree", mem_style: str = "auto",
                 tree_every: int = 0, family: str | None = None):
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
        self.core = make_core(self, layer, fold, popcount, mem_style, tree_every,
                              family=family)  # validates popcount and folding
        self.layer, self.fold, self.conv = layer, fold, layer.conv
        self.ob = self.core.ob
        h, w, ch = self.conv.in_shape
        kh, kw = self.conv.kernel
        _, pw = self.conv.out_hw
        #: line buffer geometry: row slots, and columns the window queue holds
        self.slots = line_slots(kh, self.conv.stride)
        self.queue_cols = kw + self.conv.stride
        #: resolved style of the line buffer memory (W words x slots pixels)
        depth, width = w, self.slots * ch * layer.input_bits
        self.line_style = line_style(self.core.mem_style, depth, width)  # hw.memstyle: tiny -> registers
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
        image; later ones, and all when None: always ready), output always drained. Returns (cycle
        each input row of the first image is taken, per image the cycle each output row is first
        valid). It steps the hardware's counters (see elaborate: same names) a cycle at a time."""
        return _run_cached(self._model_key(), images, None if arrive is None else tuple(arrive))

    def _model_key(self) -> tuple:
        c, f = self.conv, self.fold
        used, Q, kh, oh, emits = self._geometry()
        h, w, _ = c.in_shape
        _, kw = c.kernel
        _, ow = c.conv_hw
        return (used, Q, kh, kw, oh, ow, h, w, c.stride, c.padding, tuple(emits), self.slots, self.queue_cols,
                f.row_folds * f.col_folds * f.planes, self.pipeline_cycles)

    def timing(self, arrive: list[int]) -> tuple[list[int], list[int]]:
        """Cycle model of one image through an idle unit (see MatrixVectorUnit.timing)."""
        taken, outs = self._run(1, arrive)
        return taken, outs[0]

    @property
    def interval(self) -> int:
        """Cycles per image when fed and drained fast enough: the positions' steps back to back,
        plus any cycles a position waits for its columns (from the cycle model, images in a row)."""
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
        pix = ch * ib  # bits per pixel
        chunk_w = f.simd * ib
        NS, QS = self.slots, self.queue_cols
        RC = (ow - 1) * s + kw  # padded columns a window row reaches
        used, Q, _, _, emits = self._geometry()

        # ---- line buffer: W words (columns) x NS slots of one pixel; a row writes its slot's lane
        m.submodules.linebuf = mem = Memory(shape=unsigned(NS * pix), depth=w, init=[],
                                            attrs=attrs(self.line_style))
        wp = mem.write_port(granularity=pix)
        rp = mem.read_port(domain="sync")

        # ---- row sequencer (padded row q) and writer (one pixel of ``row_in`` a cycle)
        q = Signal(range(max(Q, 2)), name="row_q")
        row_in = Signal(w * pix, name="row_in")
        full = Signal(name="row_in_full")  # row_in holds a row still being written
        wx = Signal(range(max(w, 2)), name="write_x")
        wslot = Signal(range(NS), name="write_slot")  # slot the next kept row takes
        rslot = Signal(range(NS), name="row_in_slot")  # slot of the row in row_in
        zero = Signal(NS, name="slot_zero")  # slot holds a padding row
        ahead = Signal(range(NS + 1), name="rows_ahead")  # kept rows moved, from the reader's window
        dahead = Signal(range(NS + 1), name="rows_done")  # ... and of them, written
        is_img = (q >= p) & (q < p + h)
        keep = q < used
        wlast = full & (wx == w - 1)
        room = ahead < NS
        img_move = ~keep | (room & (~full | wlast))
        moves = Mux(is_img, self.in_valid & img_move, ~keep | (room & ~full))
        m.d.comb += self.in_ready.eq(is_img & img_move)
        kept = moves & keep
        complete = wlast | (kept & ~is_img)
        m.d.comb += [wp.addr.eq(wx), wp.data.eq(Cat(*[row_in.word_select(wx, pix)] * NS)),
                     wp.en.eq(Mux(full, Cat(*[rslot == k for k in range(NS)]), 0))]
        with m.If(full):
            m.d.sync += wx.eq(Mux(wlast, 0, wx + 1))
            with m.If(wlast):
                m.d.sync += full.eq(0)
        with m.If(moves):
            m.d.sync += q.eq(Mux(q == Q - 1, 0, q + 1))
            with m.If(keep):
                m.d.sync += [wslot.eq(Mux(wslot == NS - 1, 0, wslot + 1)), zero.bit_select(wslot, 1).eq(~is_img)]
                with m.If(is_img):
                    m.d.sync += [row_in.eq(self.in_data), full.eq(1), wx.eq(0), rslot.eq(wslot)]

        # ---- reader: window rwin's columns 0..RC-1, a column a cycle, into the column queue
        col_w = kh * pix
        rwin = Signal(range(max(oh, 2)), name="read_win")
        rc = Signal(range(max(RC, 2)), name="read_col")
        rbase = Signal(range(NS), name="read_slot")  # slot of the window's first row
        rv = Signal(name="read_valid")  # a read issued last cycle: its column lands now
        rv_base, rv_ok, rv_zero = Signal.like(rbase), Signal(), Signal(NS)
        cnt = Signal(range(QS + 1), name="queue_count")
        queue = [Signal(col_w, name=f"col_queue{j}") for j in range(QS)]

        # ---- compute side: position tx of output row liy
        tx = Signal(range(max(ow, 2)), name="pos_x")
        liy = Signal(range(max(oh, 2)), name="pos_row")
        active = Signal()
        window = [Signal(col_w, name=f"window{j}") for j in range(kw)]  # columns, each kh pixels
        pwin = Signal(f.cols_padded * ib, name="patch_work")  # zero-extended to the padded columns
        patch = Cat(*[window[kx][ky * pix:(ky + 1) * pix] for ky in range(kh) for kx in range(kw)])  # (ky, kx, c)
        src = Mux(core.chunk_first, patch, pwin)
        m.d.comb += [core.step.eq(active), core.chunk.eq(src[:chunk_w])]
        free = ~active | (core.chunk_done & core.pass_done)  # no position, or its last step now

        used_q = Signal(range(OUT_FIFO_ROWS + 1), name="out_used")  # FIFO rows + rows reserved
        emit_now = Array([Const(e, 1) for e in emits])[liy]
        first = tx == 0
        need = Mux(first, kw, s)
        take = free & (cnt >= need) & (~first | ~emit_now | (used_q < OUT_FIFO_ROWS))
        cons = Mux(take, need, 0)
        rd = (dahead >= kh) & (cnt + rv < QS + cons)
        rlast = rd & (rc == RC - 1)
        dec = Mux(rlast, Mux(rwin == oh - 1, kh, s), 0)  # rows the reader no longer needs
        m.d.sync += [ahead.eq(ahead + kept - dec), dahead.eq(dahead + complete - dec)]

        col = Signal(range(max(RC, 2)))
        m.d.comb += [col.eq(rc - p), rp.addr.eq(col)]
        m.d.sync += [rv.eq(rd), rv_base.eq(rbase), rv_ok.eq((rc >= p) & (rc < p + w)), rv_zero.eq(zero)]
        with m.If(rd):
            m.d.sync += rc.eq(Mux(rlast, 0, rc + 1))
            with m.If(rlast):
                nb = rbase + dec  # < 2*NS
                m.d.sync += [rwin.eq(Mux(rwin == oh - 1, 0, rwin + 1)), rbase.eq(Mux(nb >= NS, nb - NS, nb))]
        # the landing column: window row ky from slot (base + ky) mod NS, zero in the padding
        pixels = []
        for ky in range(kh):
            sum_ = rv_base + ky  # < 2*NS
            sl = Signal(range(NS), name=f"land_slot{ky}")
            m.d.comb += sl.eq(Mux(sum_ >= NS, sum_ - NS, sum_))
            pixels.append(Mux(rv_ok & ~rv_zero.bit_select(sl, 1), rp.data.word_select(sl, pix), 0))
        landing = Cat(*pixels)
        # queue: drop the consumed columns, append the landing one after the rest
        at = Signal(range(QS + 1), name="queue_append")
        m.d.comb += at.eq(cnt - cons)
        for j in range(QS):
            def shifted(k, j=j):
                return queue[j + k] if j + k < QS else Const(0, col_w)
            moved = Mux(cons == kw, shifted(kw), Mux(cons == s, shifted(s), queue[j]))
            m.d.sync += queue[j].eq(Mux(rv & (at == j), landing, moved))
        m.d.sync += cnt.eq(cnt - cons + rv)

        with m.If(take):
            m.d.sync += [active.eq(1), tx.eq(Mux(tx == ow - 1, 0, tx + 1))]
            with m.If(first):
                m.d.sync += [wv.eq(queue[j]) for j, wv in enumerate(window)]
                m.d.sync += liy.eq(Mux(liy == oh - 1, 0, liy + 1))
            with m.Else():  # the last kw columns of (window, the stride columns from the queue)
                cols = window + queue[:s]
                m.d.sync += [wv.eq(cols[s + j]) for j, wv in enumerate(window)]
        with m.Elif(free):
            m.d.sync += active.eq(0)
        with m.If(active & core.chunk_done):
            m.d.sync += pwin.eq(src >> chunk_w)

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
            shifted_row = Cat(row[f.pe * ob:], core.out_data)
            with m.If(core.out_valid):
                m.d.sync += row.eq(shifted_row)
            m.d.comb += [fifo.w_en.eq(row_end), fifo.w_data.eq(shifted_row)]
        else:
            self._max_pool(m, fifo, ox, oy, row_end)
        m.d.comb += [self.out_valid.eq(fifo.r_rdy), self.out_data.eq(fifo.r_data), fifo.r_en.eq(self.out_ready)]
        m.d.sync += used_q.eq(used_q + (take & first & emit_now) - (fifo.r_rdy & self.out_ready))
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


@functools.lru_cache(maxsize=256)
def _run_cached(key: tuple, images: int, arrive: tuple[int, ...] | None) -> tuple[list[int], list[list[int]]]:
    """ConvolutionUnit._run on the unit's geometry ``key`` (cached: a network asks several times)."""
    used, Q, kh, kw, oh, ow, h, w, s, p, emits, NS, QS, T, pc = key
    RC = (ow - 1) * s + kw
    q = img_in = 0  # sequencer: padded row, image
    full, wx = False, 0
    ahead = dahead = 0
    rwin = rc = rimg = cnt = 0
    rv = False
    active, pend, tx, liy, cimg, row = False, -1, 0, 0, 0, 0
    used_q, release = 0, {}
    taken: list[int] = []
    outs: list[list[int]] = [[] for _ in range(images)]
    t = 0
    limit = 50 * images * (Q * (w + 2) + oh * ow * (T + kw + s)) + 1000
    while cimg < images:
        if t > limit:
            raise RuntimeError(f"conv cycle model: no progress after {t} cycles (geometry {key})")
        # combinational signals, from this cycle's registers
        is_img, keep = p <= q < p + h, q < used
        wlast = full and wx == w - 1
        room = ahead < NS
        img_move = (not keep) or (room and (not full or wlast))
        if img_in >= images:
            moves = False  # no more images in the model
        elif is_img:
            valid = img_in > 0 or arrive is None or t >= arrive[q - p]
            moves = valid and img_move
        else:
            moves = (not keep) or (room and not full)
        kept = moves and keep
        complete = wlast or (kept and not is_img)
        free = not active or t == pend
        first = tx == 0
        need = kw if first else s
        take = free and cnt >= need and (not first or not emits[liy] or used_q < OUT_FIFO_ROWS)
        cons = need if take else 0
        rd = dahead >= kh and rimg < images and cnt + rv < QS + cons
        rlast = rd and rc == RC - 1
        dec = (kh if rwin == oh - 1 else s) if rlast else 0
        # register updates
        ahead += kept - dec
        dahead += complete - dec
        if full:
            wx = 0 if wlast else wx + 1
            full = not wlast
        if moves:
            if is_img and img_in == 0:
                taken.append(t)
            if kept and is_img:
                full, wx = True, 0
            q += 1
            if q == Q:
                q, img_in = 0, img_in + 1
        cnt = cnt - cons + rv
        rv = rd
        if rd:
            rc = 0 if rlast else rc + 1
            if rlast:
                rwin += 1
                if rwin == oh:
                    rwin, rimg = 0, rimg + 1
        if take:
            if first:
                row = liy
                used_q += emits[row]
            active, pend = True, t + T
            if tx == ow - 1 and emits[row]:  # the row's last step at t + T, on out_* pc later
                outs[cimg].append(t + T + pc)
                release[t + T + pc] = release.get(t + T + pc, 0) + 1
            if first:
                liy += 1
            tx += 1
            if tx == ow:
                tx = 0
                if liy == oh:
                    liy, cimg = 0, cimg + 1
        elif free:
            active = False
        used_q -= release.pop(t, 0)
        t += 1
    return taken, outs
