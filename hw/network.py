"""Network top generated from the IR: layers chained by chunk streams (hw.stream), argmax at the end.

The image is split into the first layer's SIMD chunks; every layer's PE chunks are re-chunked
to the next layer's SIMD by a :class:`hw.stream.WidthConverter` (wires where they agree); the
last layer's logits are gathered for the :class:`Argmax`.

Top-level ports (flat, as they appear in the Verilog):
``in_valid, in_ready, in_data`` (element i at [i*bits +: bits]) and
``out_valid, out_ready, out_class, out_logits`` (logit j at [j*LW +: LW], two's complement).
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from quantmodels.errors import ConfigError
from quantmodels.ir import IRModel

from .arith import POPCOUNT_STYLES
from .folding import Folding
from .conv import ConvolutionUnit
from .memstyle import parse_mem_style
from .pipeline import levels_per_stage
from .mvu import MatrixVectorUnit
from .stream import WidthConverter


#: Instance-name suffix of the stream converter feeding a stage (``fc1__stream`` feeds layer fc1,
#: ``argmax__stream`` the argmax), so reports can fold its area and toggles into that stage.
STREAM_SUFFIX = "__stream"


def stage_of(instance: str) -> str:
    """The network stage (layer name or ``argmax``) a NetworkTop instance belongs to: a converter
    counts towards the stage it feeds."""
    return instance.removesuffix(STREAM_SUFFIX)


class Argmax(wiring.Component):
    """Argmax over ``n`` signed logits as a balanced compare tree with one register level per tree
    level, so the critical path is one compare + mux, not a chain of ``n - 1`` of them (the old
    linear scan limited the whole design's fmax). First index wins ties: at every node the right
    operand (higher indices) wins only if strictly greater.

    One image is in the tree at a time: it is accepted, ``depth`` cycles later its class is on
    ``out_*``; the next image can enter as the result leaves, so the initiation interval is
    ``depth + 1`` cycles (5 for 10 classes), below any layer's (its compute cycles + 5).

    ``split`` (a target clock, hw.pipeline): every level registers its compares, then the mux a
    cycle later (``depth`` = 2 x levels). The inputs of a level are held while the image is in the
    tree, so the registered compare still matches them. Measured on the digits W1A1 net on ECP5 at
    125 MHz: compare + mux in one cycle was the worst path (7.99 ns, 5 LUT4 levels + 9 carry hops).
    """

    def __init__(self, n: int, width: int, split: bool = False):
        self.n, self.width, self.split = n, width, split
        super().__init__({
            "in_valid": In(1), "in_ready": Out(1), "in_data": In(n * width),
            "out_valid": Out(1), "out_ready": In(1),
            "out_class": Out(max(1, (n - 1).bit_length())), "out_logits": Out(n * width),
        })

    @property
    def levels(self) -> int:
        """Register levels of the compare tree: ceil(log2(n))."""
        return (self.n - 1).bit_length()

    @property
    def depth(self) -> int:
        """Cycles from taking the logits to the class on ``out_*``: a register per level, two when split."""
        return self.levels * (2 if self.split else 1)

    @property
    def interval(self) -> int:
        """Cycles between two accepted images when the output is always ready."""
        return self.depth + 1

    def elaborate(self, platform):
        m = Module()
        w, levels, iw = self.width, self.levels, len(self.out_class)
        depth = self.depth
        logits = Signal(self.n * w, name="logits")
        vals = [logits[j * w:(j + 1) * w].as_signed() for j in range(self.n)]
        idxs: list = [Const(j, iw) for j in range(self.n)]
        for k in range(levels):  # free-running: the held logits settle level by level
            nv, ni = [], []
            for a in range(0, len(vals), 2):
                v = Signal(signed(w), name=f"max_v{k}_{a // 2}")
                i = Signal(iw, name=f"max_i{k}_{a // 2}")
                if a + 1 < len(vals):
                    right = vals[a + 1] > vals[a]
                    if self.split:  # the compare registered; its inputs are held, so it still applies
                        r = Signal(name=f"max_gt{k}_{a // 2}")
                        m.d.sync += r.eq(right)
                        right = r
                    m.d.sync += [v.eq(Mux(right, vals[a + 1], vals[a])), i.eq(Mux(right, idxs[a + 1], idxs[a]))]
                else:  # odd one out: registered unchanged, so every path has the same depth
                    m.d.sync += [v.eq(vals[a]), i.eq(idxs[a])]
                nv.append(v)
                ni.append(i)
            vals, idxs = nv, ni

        busy, valid = Signal(), Signal()
        count = Signal(range(max(depth, 2)))
        m.d.comb += [self.in_ready.eq(~busy & (~valid | self.out_ready)), self.out_valid.eq(valid),
                     self.out_class.eq(idxs[0]), self.out_logits.eq(logits)]
        with m.If(valid & self.out_ready):
            m.d.sync += valid.eq(0)
        with m.If(self.in_valid & self.in_ready):
            m.d.sync += logits.eq(self.in_data)
            if depth:
                m.d.sync += [busy.eq(1), count.eq(0)]
            else:
                m.d.sync += valid.eq(1)
        with m.Elif(busy):
            m.d.sync += count.eq(count + 1)
            with m.If(count == depth - 1):  # the last level registers at this edge
                m.d.sync += [busy.eq(0), valid.eq(1)]
        return m


class NetworkTop(wiring.Component):
    """The whole network: one unit per layer (ConvolutionUnit for conv2d, MatrixVectorUnit for
    dense), chained by WidthConverters, then Argmax. The adder-tree stages that ``clock_mhz`` on
    ``family`` asks for (hw.pipeline) lengthen every unit's result delay, not its interval.
    ``mem_style`` (hw.memstyle: auto, block, distributed, logic) places every layer's ROMs."""

    def __init__(self, model: IRModel, foldings: list[Folding], popcount: str = "tree", mem_style: str = "auto",
                 clock_mhz: float | None = None, family: str = "ice40"):
        if popcount not in POPCOUNT_STYLES:  # checked before any unit exists
            self._MustUse__silence = True  # refused, never to be elaborated: no "unused" warning
            raise ConfigError(f"popcount: {popcount!r}, expected one of {', '.join(POPCOUNT_STYLES)}")
        if len(foldings) != len(model.layers):
            raise ConfigError(f"folding: {len(foldings)} entries for {len(model.layers)} layers")
        self.model = model
        try:  # checked once, before any unit exists
            mem_style = parse_mem_style(mem_style)
            #: adder-tree levels per register stage for the target clock (0: no target, no stages)
            self.tree_every = levels_per_stage(clock_mhz, family)
        except ConfigError:
            self._MustUse__silence = True
            raise
        self.mem_style = mem_style
        try:
            self.units = [ConvolutionUnit(L, f, popcount, mem_style, self.tree_every, family=family) if L.conv is not None
                          else MatrixVectorUnit(L, f, popcount, mem_style, self.tree_every, family=family)
                          for L, f in zip(model.layers, foldings)]
        except ConfigError:  # a refused layer refuses the network: never elaborated, no "unused" warning
            self._MustUse__silence = True
            raise
        self.logit_width = self.units[-1].ob
        self.argmax = Argmax(model.n_classes, self.logit_width, split=self.tree_every > 0)
        n = model.n_classes
        first, last = self.units[0], self.units[-1]
        #: the stream converters: image -> first layer, between layers, last layer -> argmax
        self.converters = (
            [WidthConverter(model.input.features, model.input.features, first.in_chunks.chunk, model.input.bits)]
            + [WidthConverter(a.out_chunks.n, a.out_chunks.chunk, b.in_chunks.chunk, a.ob)
               for a, b in zip(self.units, self.units[1:])]
            + [WidthConverter(n, last.out_chunks.chunk, n, self.logit_width)])
        super().__init__({
            "in_valid": In(1), "in_ready": Out(1), "in_data": In(model.input.features * model.input.bits),
            "out_valid": Out(1), "out_ready": In(1),
            "out_class": Out(max(1, (n - 1).bit_length())), "out_logits": Out(n * self.logit_width),
        })

    @property
    def cycles_per_image(self) -> int:
        """Initiation interval: the slowest stage -- a layer's compute cycles (a dense layer's
        vectors follow each other without a gap; a conv layer adds its pipeline/hand-over), a
        converter's chunk count, or the argmax tree (levels + 1). Exact when every FIFO keeps its
        layer a vector ahead (hw.mvu sizes them so); checked against Verilator by the tests."""
        return max([u.interval for u in self.units] + [c.interval for c in self.converters]
                   + [self.argmax.interval])

    @property
    def latency_cycles(self) -> int:
        """First-result latency: cycles from taking the first image to its class on ``out_*``, from
        the cycle model of every stage (:meth:`schedule`): layers overlap, a layer starts on the
        first chunks of its input while its producer still computes the rest."""
        return self.schedule()[-1]

    def schedule(self) -> list[int]:
        """Per stage, the cycle its last output of the first image is first valid (units, then the
        argmax last), with the image taken at cycle 0 and every stage idle before."""
        ready, marks = [0], []  # ready[i]: first cycle chunk i of the current stream could be taken

        def convert(c: WidthConverter, ready: list[int]) -> list[int]:
            if c.kind == "pass":
                return ready
            if c.kind == "down":  # a chunk is taken as the last output of the one before leaves
                out, t = [], -1
                for i, r in enumerate(ready):
                    t = max(r, t)
                    k = c.out_per_chunk(i)
                    out += [t + 1 + j for j in range(k)]
                    t = t + k
                return out
            taken, t = [], -1
            for r in ready:  # a converter takes a chunk a cycle as they come
                t = max(t + 1, r)
                taken.append(t)
            # an output chunk is valid the cycle after its last element's input chunk was taken
            return [taken[min(((k + 1) * c.b - 1) // c.a, len(taken) - 1) if k < c.dst.chunks - 1
                          else len(taken) - 1] + 1 for k in range(c.dst.chunks)]

        for c, u in zip(self.converters, self.units):
            ready = convert(c, ready)
            _, ready = u.timing(ready)
            marks.append(ready[-1])
        ready = convert(self.converters[-1], ready)
        marks.append(ready[-1] + self.argmax.depth + 1)  # the argmax takes the logits when idle
        return marks

    @property
    def pipeline_stages(self) -> list[int]:
        """Per layer: register stages inside its adder trees (from the target clock)."""
        return [u.core.extra_stages for u in self.units]

    def elaborate(self, platform):
        m = Module()
        for i, u in enumerate(self.units):
            m.submodules[self.model.layers[i].name] = u
        for i, c in enumerate(self.converters):  # converter i feeds layer i (the last one: the argmax)
            m.submodules[(self.model.layers[i].name if i < len(self.units) else "argmax") + STREAM_SUFFIX] = c
        m.submodules.argmax = am = self.argmax
        # stages in order: converter, unit, converter, unit, ..., converter, argmax
        stages = [x for pair in zip(self.converters, self.units) for x in pair] + [self.converters[-1], am]
        first = stages[0]
        m.d.comb += [first.in_valid.eq(self.in_valid), first.in_data.eq(self.in_data),
                     self.in_ready.eq(first.in_ready)]
        for a, b in zip(stages, stages[1:]):
            m.d.comb += [b.in_valid.eq(a.out_valid), b.in_data.eq(a.out_data), a.out_ready.eq(b.in_ready)]
        m.d.comb += [self.out_valid.eq(am.out_valid), am.out_ready.eq(self.out_ready),
                     self.out_class.eq(am.out_class), self.out_logits.eq(am.out_logits)]
        return m
