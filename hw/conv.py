"""Convolution unit: a sliding-window generator feeding the shared matrix-vector datapath,
with the IR's fused max-pool.

Dataflow per input image (whole vectors over valid/ready, like the dense unit):

    accept -> image register  <- the zero-padded image (only the rows the kernel reaches)
              row window      <- its first kh rows
           -> for each output position in raster order: RF*CF*planes core steps, back to back;
              the patch is a fixed set of slices of the row window (kh runs of kw*C elements)
              and is fed to the core SIMD elements at a time through a shift register;
              after a position the row window shifts by stride*C elements; after an output
              row it reloads from the image register, which shifts by stride padded rows
           -> output levels: max-pooled into row buffers, finished pool rows shifted into the
              result register (or, without pooling, every output shifted straight in)
           -> result to the output register when it is free (back-pressure safe)

Why shift registers rather than a line buffer or a random-access patch mux: the image
arrives as one vector in one cycle, so a register copy is needed anyway; shifting it by a
constant (stride*C elements per position, stride rows per output row) makes every patch bit
a fixed wire, so each image/window bit costs one 3:1 mux (load / shift / hold) instead of a
positions:1 mux per patch bit. Measured (benchmarks/datapath_area.py, 16x16x8 W1A1 input,
16 channels 3x3, pool 2): the whole conv unit is 3,048 LUT6 / 3,413 iCE40 LUT4 (of which the
shared datapath is 431 / 488); the image register + patch mux alone would be 3,814 LUT6 /
19,009 LUT4. A true line buffer would need the previous layer to stream pixels, not whole
vectors.
Positions stream back to back, so a layer's initiation interval is Folding.cycles
(= positions*RF*CF*planes) + PIPELINE_CYCLES, the same overhead as a dense layer.

Max-pool: output levels are unsigned, so a buffer cleared to 0 and updated with max() gives
the window maximum (OR for 1-bit levels). Overlapping windows (window > stride) need
ceil(window/stride) pool-row buffers in rotation; each conv output updates every buffer
element whose window contains its position (constant tables by output row / column).
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring

from quantmodels.ir import ConvSpec, Layer

from .folding import PIPELINE_CYCLES, Folding
from .mvu import make_core, refuse, vector_stream_ports
from .stream import ChunkShape


def hand_over(m: Module, complete: Signal, res: Signal, obuf: Signal, ovalid: Signal, busy: Signal,
              out_ready) -> None:
    """Move a finished result into the output register once it is free (back-pressure safe) and
    release the unit for the next input vector."""
    give = complete & (~ovalid | out_ready)
    with m.If(give):
        m.d.sync += [obuf.eq(res), ovalid.eq(1), complete.eq(0), busy.eq(0)]
    with m.Elif(out_ready):
        m.d.sync += ovalid.eq(0)


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


class ConvolutionUnit(wiring.Component):
    """One folded conv2d layer (+ fused max-pool): ``in_*`` takes the whole (H, W, C) image,
    ``out_*`` gives the whole (PH, PW, OC) output, both channels-last."""

    def __init__(self, layer: Layer, fold: Folding, popcount: str = "tree", mem_style: str = "auto",
                 tree_every: int = 0):
        if layer.conv is None:
            raise refuse(self, f"{layer.name}: op 'dense' has no windows; use hw.mvu.MatrixVectorUnit")
        if fold.positions != layer.positions:
            raise refuse(self, f"{layer.name}: folding is for {fold.positions} positions, layer has "
                               f"{layer.positions}")
        if fold.rows_padded != fold.rows and layer.conv.pool == (1, 1):
            # without pooling every PE output is shifted straight into the result: padded rows would
            # interleave with real ones (the pooled path selects its channels and handles padding)
            raise refuse(self, f"{layer.name}: pe={fold.pe} does not divide out_channels={fold.rows}; "
                               f"a conv layer without pooling needs a dividing pe")
        self.core = make_core(self, layer, fold, popcount, mem_style, tree_every)  # validates popcount and folding
        self.layer, self.fold, self.conv = layer, fold, layer.conv
        self.ob = self.core.ob
        super().__init__(vector_stream_ports(layer, self.ob))

    @property
    def pipeline_cycles(self) -> int:
        """Cycles the unit adds to Folding.cycles per image: PIPELINE_CYCLES + the tree's stages
        (positions stream back to back, so the stages are paid once per image)."""
        return PIPELINE_CYCLES + self.core.extra_stages

    @property
    def in_chunks(self) -> ChunkShape:
        """Input stream: the whole image as one chunk (the network's converters gather it)."""
        return ChunkShape(self.layer.in_features, self.layer.in_features)

    @property
    def out_chunks(self) -> ChunkShape:
        """Output stream: the whole pooled output as one chunk."""
        return ChunkShape(self.layer.out_features, self.layer.out_features)

    @property
    def interval(self) -> int:
        """Cycles per image: the unit is busy from accepting an image to handing its result over."""
        return self.fold.cycles + self.pipeline_cycles

    def timing(self, arrive: list[int]) -> tuple[list[int], list[int]]:
        """Cycle model of one image through an idle unit (see MatrixVectorUnit.timing): taken at
        once, the result valid Folding.cycles + pipeline_cycles later."""
        return [arrive[0]], [arrive[0] + self.interval]

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
        used_rows = (oh - 1) * s + kh  # padded rows any window reaches

        # zero-padded image (code 0 outside the image) as wiring: no logic
        rows = []
        for yp in range(used_rows):
            y = yp - p
            if 0 <= y < h:
                rows.append(Cat(Const(0, p * ch * ib), self.in_data[y * w * ch * ib:(y + 1) * w * ch * ib],
                                Const(0, p * ch * ib)))
            else:
                rows.append(Const(0, row_w))
        padded = Cat(*rows)

        img = Signal(used_rows * row_w, name="image")
        rowwin = Signal(kh * row_w, name="row_window")
        pwin = Signal(f.cols_padded * ib, name="patch_work")  # zero-extended to the padded columns
        patch = Cat(*[rowwin[ky * row_w:ky * row_w + kw * ch * ib] for ky in range(kh)])  # (ky, kx, c) order
        busy, issued_all, complete = Signal(), Signal(), Signal()
        ix = Signal(range(max(ow, 2)))
        iy = Signal(range(max(oh, 2)))

        m.d.comb += self.in_ready.eq(~busy)
        accept = self.in_valid & ~busy
        issue = busy & ~issued_all
        src = Mux(core.chunk_first, patch, pwin)
        m.d.comb += [core.step.eq(issue), core.chunk.eq(src[:chunk_w])]
        with m.If(accept):
            m.d.sync += [img.eq(padded), rowwin.eq(padded[:kh * row_w]), busy.eq(1), issued_all.eq(0),
                         complete.eq(0), ix.eq(0), iy.eq(0)]
        with m.Elif(issue & core.chunk_done):
            m.d.sync += pwin.eq(src >> chunk_w)
            with m.If(core.pass_done):  # position done: slide the window
                with m.If(ix == ow - 1):
                    m.d.sync += [ix.eq(0), iy.eq(iy + 1), img.eq(img >> (s * row_w)),
                                 rowwin.eq(img[s * row_w:(s + kh) * row_w])]
                    with m.If(iy == oh - 1):
                        m.d.sync += issued_all.eq(1)
                with m.Else():
                    m.d.sync += [ix.eq(ix + 1), rowwin.eq(rowwin >> (s * ch * ib))]

        # output side: conv position of the core's current output group
        ox = Signal(range(max(ow, 2)))
        oy = Signal(range(max(oh, 2)))
        pos_end = core.out_valid & core.out_last
        row_end = pos_end & (ox == ow - 1)
        with m.If(pos_end):
            m.d.sync += ox.eq(Mux(ox == ow - 1, 0, ox + 1))
            with m.If(ox == ow - 1):
                m.d.sync += oy.eq(Mux(oy == oh - 1, 0, oy + 1))
                with m.If(oy == oh - 1):
                    m.d.sync += complete.eq(1)

        res = Signal(L.out_features * ob, name="result")
        if c.pool == (1, 1):
            with m.If(core.out_valid):
                m.d.sync += res.eq(Cat(res[f.pe * ob:], core.out_data))
        else:
            self._max_pool(m, res, ox, oy, row_end)

        obuf = Signal(L.out_features * ob, name="out_buf")
        ovalid = Signal()
        m.d.comb += [self.out_valid.eq(ovalid), self.out_data.eq(obuf)]
        hand_over(m, complete, res, obuf, ovalid, busy, self.out_ready)
        return m

    def _max_pool(self, m: Module, res: Signal, ox: Signal, oy: Signal, row_end) -> None:
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
            with m.If(row_end & done_now[b]):  # last conv row of this pool row: emit, clear
                m.d.sync += [res.eq(Cat(res[pw * oc * ob:], nxt)), buf.eq(0)]
            with m.Else():
                m.d.sync += buf.eq(nxt)
