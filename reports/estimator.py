"""Analytic area estimator (a MODEL) for one folded layer, calibrated against real Yosys runs.

``estimate(layer, folding, target)`` predicts LUT / FF / BRAM / DSP counts of the layer's
:class:`hw.mvu.MatrixVectorUnit` without synthesis, so a sweep can pre-screen points.
The model is linear in structural features that follow the unit's datapath (hw/mvu.py):

==========  ==================================================================
``const``   control logic, per kind
``lane``    per-lane work, per kind: XNOR; add/sub mux (ib + 2); shift_add barrel-shifter
            2:1 muxes + negation (term width); bit_serial wb:1 bit-select mux + AND; lut_product:
            one LUT per table bit when ib + wb <= k, else a 2^wb:1 weight mux per table bit;
            multiplier ib x wb (LUT mac); 0 with DSPs
``xdec``    per SIMD column, shared by the PEs that see the same activation (Yosys merges their
            identical logic): lut_product with ib + wb > k, the table's 2^wb functions of the
            activation; accumulate, the negation of the activation; bit_serial, its ib:1 plane select
``post``    per-PE work after the tree: bit_serial's plane shift (barrel shifter) + negation
``csa``     the adder trees as Yosys maps them (alumacc: each combinational piece of a tree between its
            registers is one multi-operand sum): pe x full adders of the carry-save compressors
            (:func:`tree_segments`), per kind (the term width and what merges into the first level)
``cpa``     ... and the bits of the one carry-propagate adder per piece: LUTs on ice40 and xilinx,
            CCU2C carry cells (not LUTs) on ecp5, so a registered tree costs ecp5 fewer LUTs
``fused``   LUT multipliers (mac without DSPs) whose products are not registered: their partial
            products compressed with the tree in one sum, lanes x ``lane`` x simd / 8 (measured to
            grow with the sum); with DSPs on xilinx the unregistered tree is the DSPs' post-adder
            chain, no ``csa`` / ``cpa`` at all
``treereg`` the tree's register stages (``tree_every`` > 0, hw.pipeline): pe x bits of the
            registered levels (odd terms carried past a registered level included)
``stages``  the core's register stages under a target clock (hw.pipeline.core_stages, read off
            the generated unit: the valid/first/last flags travel beside each)
``romdreg`` the weight ROM's data registered (core_stages' ``rom``): stored bits + the chunk beside them
``prodreg`` the lane products registered (core_stages' ``product``): pe x simd x term width
            (bit_serial: the selected plane bits); per kind (what the register splits from the tree)
``prodcomb`` the products not registered (no target clock) on a kind that registers them under one:
            pe x simd x term width, per kind (lanes and the tree's first level mapped together)
``outreg``  the output stage registered (core_stages' ``output``): pe x output bits, and the
            pe x thresholds compares when a multi-threshold registers them first (flip-flops: LUT prior 0)
``outpe``   the same stage per PE (and registered compare): its selection logic
``promreg`` the threshold ROM read synchronously from logic (read a row fold ahead under a target
            clock): its live bits
``acc``     per-PE accumulator and result registers: pe x acc width
``thr``     threshold comparators: pe x thresholds x acc width
``rom``     weight ROM held in LUTs: distinct non-trivial bit columns (not constant, not an
            address bit, not a duplicate) x LUTs of an arbitrary log2(depth)-input function; per
            kind (ABC merges the ROM's functions into the lanes' logic by kind: an XNOR, a mux...)
``romslack`` the same ROM when its depth lies between two powers of two: its columns x (LUTs of a
            column at the next power of two - LUTs at its depth), per kind. ABC's column costs
            nearer the deeper ROM's than the proportional ``rom`` price says, by kind (calibration:
            ecp5 accumulate 15.1 -> 8.8 % max, its 5-fold CV mean 18.1 -> 8.8 %; 0 on ice40, whose
            column price follows the address bits alone)
``romreg``  the ROM's read register in logic: distinct columns (duplicate FFs merge)
``prom``    threshold/bias ROM in LUTs: its distinct non-trivial columns x LUTs of a log2(depth)-input
            function (as ``rom``); 0 in block RAM
``dram``    written memories in LUT-RAM (a dense unit's input banks, ecp5 and xilinx; ROMs are
            never LUT-RAM, hw.memstyle): its primitives (:func:`lutram_cells`); also the metric
            ``lutrams`` is fitted on it
==========  ==================================================================

The unit's stream plumbing around the core (hw.mvu.MatrixVectorUnit) is its own set of terms
(``IO_TERMS``), so a change of how the unit exchanges data is re-fitted by a re-run of the
calibration without code changes, as long as the cost stays linear in them:

================  ================================================================
``chunk``         one SIMD chunk's bits (simd x input bits): the core's chunk register
``bankctl``       1 when the unit has input banks (more than one row fold and column fold): their controller
``bankreg``       the same when the unit has input banks (more than one row fold) outside block
                  RAM: the banks' synchronous read register
``bank``          bits of the two input banks (2 x col_folds x chunk) when they are logic (ice40,
                  which has no LUT-RAM, or ``--mem-style logic``): flip-flops
``bankmux``       their read mux: chunk bits x LUTs of a 2 col_folds : 1 mux
``bankdec``       their write enables: one decoded enable per word (2 x col_folds)
``vecreg``        one column fold and more row folds: no input memory, the vector in two registers
                  (hw.mvu.MatrixVectorUnit.in_registers: ``fill_vec`` and ``step_vec``), 2 x chunk bits
``fifo``          the output FIFO's bits (hw.mvu FIFO depth x pe x output bits: storage + output register)
================  ================================================================

The ``const``, ``lane`` and :data:`PER_KIND` coefficients are per unit kind, the others shared.
The LUT coefficients minimise each kind's largest relative error over a family's points (the target
is a maximum error per kind), plus a share of the mean (:func:`_minimax_fit`, a linear program). LUT counts of an n-input function (``fn_luts``) and an n:1 mux (``mux_luts``) follow the family: k = 4 (6 on xilinx); the wide-function muxes of ecp5
(PFUMX, L6MUX21) and xilinx (MUXF7/8) are not LUTs, ice40 builds every mux level from LUTs.

Coefficients live in one table, ``estimator_constants.json`` beside this module, written
by ``benchmarks/estimator_calibration.py`` (non-negative least squares over real syntheses
of many foldings per kind, every memory style, padded foldings and pipelined trees; its error
table is in benchmarks/results/). DSPs follow a rule (one multiplier block per mac lane when the
product is wide enough, a fitted width). Block RAM is not fitted but derived: which ROMs go to
block RAM (the generator's mark, else a fitted threshold rule for Yosys' own choice), then the
blocks each takes from its live columns and depth and the family's primitive geometry
(:func:`block_rams`, :data:`BLOCK_GEOMETRY`), as Yosys' memory_libmap picks them.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.folding import Folding
from hw.memstyle import BLOCK_SHAPES, MemStyle, placed
from hw.lanes import lane_spec
from hw.mvu import acc_width, out_width, weight_code_bits, weight_codes
from hw.pipeline import CoreStages, tree_stages
from quantmodels.errors import ConfigError
from quantmodels.ir import Layer, kind_spec

from .kind_costs import LUT_INPUTS, cost_spec, fn_luts, free_functions, lane_cost, mux_luts, pe_cost, term_width

CONSTANTS_FILE = Path(__file__).with_name("estimator_constants.json")
#: Targets with DSP multipliers (one per mac lane: measured, see the calibration table).
DSP_TARGETS = ("ice40", "ecp5", "xilinx")
#: Terms of the unit's stream plumbing (see the module docstring): kept apart from the datapath
#: terms so a restructured unit is re-fitted, not re-modelled.
IO_TERMS = ("chunk", "bankctl", "bankreg", "bank", "bankmux", "bankdec", "vecreg", "fifo")
#: Terms with a coefficient per unit kind (besides ``const`` and ``lane``): the adder tree maps
#: differently per term width (1-bit popcount terms vs wide products on carry chains), and what the
#: kind's lane logic absorbs (a ROM in logic, a product register) differs by kind.
PER_KIND = ("xdec", "post", "csa", "cpa", "fused", "prodreg", "prodcomb", "rom", "romslack")
SHARED = ("treereg", "stages", "romdreg", "outreg", "outpe", "promreg", "acc", "thr",
          "romreg", "prom", "dram") + IO_TERMS
#: Fitted metrics: LUTs, FFs and LUT-RAM primitives (TRELLIS_DPR16X4 on ecp5, RAM*X* / RAM*M on xilinx).
METRICS = ("luts", "ffs", "lutrams")


def _family(target: str) -> str:
    return target.split("-")[0]


def tree_register_bits(terms: int, width: int, every: int) -> int:
    """Register bits hw.arith.adder_tree inserts when it registers every ``every`` levels: the
    nodes of each registered level (not the last) and the odd term carried past it (each node one
    bit wider than its widest operand, an odd term passed up a level)."""
    ws, regs, level = [width] * terms, 0, 0
    levels = max(0, (terms - 1).bit_length())
    while len(ws) > 1:
        nxt = [max(ws[i], ws[i + 1]) + 1 for i in range(0, len(ws) - 1, 2)]
        if every > 0 and (level + 1) % every == 0 and level + 1 < levels:
            regs += sum(nxt) + (ws[-1] if len(ws) % 2 else 0)
        ws = nxt + ([ws[-1]] if len(ws) % 2 else [])
        level += 1
    return regs


def compressor_adders(heights: list[int]) -> tuple[int, int]:
    """(full adders, final adder bits) of a carry-save reduction of bit columns of the given
    ``heights`` (LSB first) to two rows, then one carry-propagate adder: how Yosys maps a
    multi-operand sum (alumacc -> $macc -> maccmap: $fa cells, then one $alu)."""
    h, fa, c = list(heights), 0, 0
    while c < len(h):
        while h[c] > 2:
            h[c] -= 2
            if c + 1 == len(h):
                h.append(0)
            h[c + 1] += 1
            fa += 1
        c += 1
    return fa, len(h)


def tree_segments(terms: int, width: int, every: int, signed: bool = False) -> tuple[int, int]:
    """(full adders, carry-propagate adder bits) of hw.arith.adder_tree over ``terms`` terms of ``width``
    bits registered every ``every`` levels (0: never), as Yosys maps it: each combinational piece between
    registers is one multi-operand sum (a node of two operands a plain adder, of more a compressor
    tree, :func:`compressor_adders`). On ECP5 the carry-propagate bits are CCU2C cells, not LUTs; so a
    registered tree costs fewer LUTs than its adder bits say, an unregistered one more."""
    nodes = [(width, [width]) for _ in range(terms)]  # (width, the segment's operand widths under it)
    levels = max(0, (terms - 1).bit_length())
    fa = cpa = level = 0

    def close(w: int, ops: list[int]) -> None:
        nonlocal fa, cpa
        if len(ops) >= 3:
            # signed operands are sign-extended to the piece's width w in the $macc: every column as high as
            # the operand count (unsigned ones stop at their own width)
            fa += compressor_adders([len(ops) if signed else sum(1 for o in ops if o > j)
                                     for j in range(w if signed else max(ops))])[0]
        if len(ops) >= 2:
            cpa += w

    while len(nodes) > 1:
        nxt = [(max(nodes[i][0], nodes[i + 1][0]) + 1, nodes[i][1] + nodes[i + 1][1])
               for i in range(0, len(nodes) - 1, 2)]
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        if every > 0 and (level + 1) % every == 0 and level + 1 < levels:  # registered: the segments end
            for w, ops in nxt:
                close(w, ops)
            nxt = [(w, [w]) for w, _ in nxt]
        nodes = nxt
        level += 1
    if nodes:
        close(*nodes[0])
    return fa, cpa


def rom_column_luts(words: int, fam: str) -> float:
    """LUTs of one bit column of a ``words``-deep ROM in logic inside the unit (its address a register,
    its data the ROM's read register). On ice40, and up to 16 words on ecp5 and xilinx: :func:`fn_luts`
    of the address bits. Deeper, ABC builds the column from 16-word cofactors (a LUT4's
    worth, also on xilinx: the LUT6 inputs and the free PFUMX / L6MUX21 / MUXF7 / MUXF8 not used) joined by
    LUT muxes: 2:1 in a LUT4 on ecp5, 4:1 in a LUT6 on xilinx (a tree over the cofactors); a depth between
    two powers of two costs in proportion (the cofactor of the last, partly filled 16 words is a smaller
    function): ecp5 2 x words / 16 - 1; xilinx words / 16 up to 32 words (a 5-bit column fits a LUT6, ABC
    adds part of a second cofactor), then words / 16 + the 4:1 mux tree.
    Measured (Yosys 0.70): the LUTs whose support is the ROM address alone, per distinct column, in the
    calibration netlists: ecp5 1.0-1.1 at 16 words, 1.6 at 21, 2.2-2.6 at 24, 2.7 at 25-28, 2.5-3.6 at 32,
    11.9 at 96 (model 1, 1.6, 2, 2.1-2.5, 3, 11); xilinx, in mac units (the ROM's register between it and
    the DSP48E1s: no lane logic merged into its LUTs), 0.9 at 8, 1.1-1.2 at 16, 1.3 at 21, 1.2-1.6 at 24-28,
    1.5-2.1 at 32, and in every kind 4.6 at 64, 6.9-9.5 at 96, 45 at 640 (model 0.9 .. 1, 1, 1.3, 1.5-1.75,
    2, 5, 9, 54). (A ROM synthesized as a module of
    its own maps tighter: a 64-word column is one LUT6 on xilinx, 4 LUT4 on ecp5.)"""
    n = (words - 1).bit_length()
    if fam == "ecp5" and words > 16:
        return 2.0 * words / 16 - 1
    if fam == "xilinx" and words > 32:
        leaves, muxes = words / 16, 0
        nodes = math.ceil(leaves)
        while nodes > 1:
            nodes = -(-nodes // 4)
            muxes += nodes
        return leaves + muxes
    if fam == "xilinx" and words > 16:  # one LUT6 over the 5 address bits, ABC's share of a second cofactor
        return words / 16
    return fn_luts(n, fam)


def _live(bits: np.ndarray) -> int:
    """Non-constant rows of a (columns x words) 0/1 array."""
    return int(np.sum(bits.min(axis=1) != bits.max(axis=1))) if bits.size else 0


def rom_bits(layer: Layer, fold: Folding) -> np.ndarray:
    """The weight ROM's contents as a (columns x words) 0/1 array (hw.mvu.weight_codes' layout)."""
    codes = weight_codes(layer, fold)
    bits = (codes[:, :, None] >> np.arange(weight_code_bits(layer))) & 1
    return bits.reshape(len(codes), -1).T.astype(np.uint8)


def rom_live_columns(layer: Layer, fold: Folding) -> int:
    """ROM bit columns that are not constant: Yosys drops constant bits of a ROM before it maps
    the rest to block RAM (checked against synthesis in the calibration: BRAM exact)."""
    return _live(rom_bits(layer, fold))


def rom_columns(layer: Layer, fold: Folding) -> int:
    """Distinct weight-ROM bit columns (functions of the address) that need logic: constant
    columns, columns equal to one address bit or its complement, and duplicates of another
    column cost nothing once Yosys maps the constant ROM to LUTs."""
    return logic_columns(rom_bits(layer, fold))


def logic_columns(bits: np.ndarray) -> int:
    """Distinct columns of a (columns x words) 0/1 ROM that need logic (not constant, not an address
    bit or its complement, not a duplicate)."""
    if not bits.size:
        return 0
    return len({c.tobytes() for c in np.ascontiguousarray(bits)} - free_functions(bits.shape[1]))  # bytes: cheap to hash


def n_params(layer: Layer) -> int:
    """Values per output in the threshold/bias ROM: the thresholds, one bias, or 0 (no ROM)."""
    if layer.output == "threshold":
        return layer.n_thresholds
    return 1 if layer.bias is not None else 0


def param_rom_bits(layer: Layer, fold: Folding) -> np.ndarray:
    """The threshold/bias ROM's contents as a (columns x words) 0/1 array, read from the
    generator's own packing (hw.mvu.MatrixVectorCore.param_rom: one statement of the layout)."""
    from types import SimpleNamespace

    from hw.mvu import MatrixVectorCore

    W = acc_width(layer)
    words, per = MatrixVectorCore.param_rom(SimpleNamespace(layer=layer, fold=fold, acc_w=W))
    width = fold.pe * per * W
    if not words:
        return np.zeros((0, 0), np.uint8)
    return np.array([[(w >> j) & 1 for w in words] for j in range(width)], dtype=np.uint8)


# ----------------------------------------------------------------------------- memories
#: Block RAM primitives per family as Yosys' memory_libmap sees them (share/*/brams*.txt):
#: (primitive, counted blocks, libmap cost, [(depth, width), ...] configurations). A ROM has one
#: read port, so the simple-dual-port widths count (PDPW16KD's x36, RAMB18/36 SDP x36/x72).
#: Counted blocks: SynthResult.brams units (RAMB18 equivalents on xilinx: a RAMB36 is 2).
BLOCK_GEOMETRY: dict[str, tuple[tuple[str, int, int, tuple[tuple[int, int], ...]], ...]] = {
    # the smallest block's shapes are hw.memstyle's (one place); xilinx also pairs two into a RAMB36E1
    "ice40": (("SB_RAM40_4K", 1, 64, BLOCK_SHAPES["ice40"]),),
    "ecp5": (("DP16KD", 1, 128, BLOCK_SHAPES["ecp5"]),),
    "xilinx": (("RAMB18E1", 1, 129, BLOCK_SHAPES["xilinx"]),
               ("RAMB36E1", 2, 257, ((512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2),
                                     (32768, 1)))),
}
#: Families with LUT-RAM, whose written ``distributed`` memories :func:`lutram_cells` counts.
DISTRIBUTED_GEOMETRY = {"ecp5": "TRELLIS_DPR16X4", "xilinx": "RAM32M / RAM64M"}


def block_rams(depth: int, width: int, fam: str) -> int:
    """Blocks (SynthResult.brams units) a ``depth`` x ``width`` ROM takes on ``fam``: the
    configuration of least libmap cost. memory_libmap cuts the ROM into ceil(depth / config depth)
    slices of ``width`` bits and lays the slices side by side on the same address (a mux picks the
    slice), so a configuration takes ceil(slices x width / config width) primitives (ties: fewer
    slices). Checked against Yosys 0.70 on every family (benchmarks/estimator_calibration.py and
    tests/test_estimator.py). 0 for an empty ROM."""
    if depth <= 0 or width <= 0:
        return 0
    best = None
    for _, blocks, cost, configs in BLOCK_GEOMETRY[fam]:
        for d, w in configs:
            n_d = -(-depth // d)
            units = -(-(n_d * width) // w)
            key = (units * cost, n_d)
            if best is None or key < best[0]:
                best = (key, units * blocks)
    return best[1]


def lutram_cells(depth: int, width: int, fam: str) -> int:
    """LUT-RAM primitives Yosys 0.70 maps a ``depth`` x ``width`` RAM with one write and one read
    port to (measured, tests/test_memstyle.py): ecp5 TRELLIS_DPR16X4 cells of 16 x 4; xilinx
    RAM32M (32 deep, 6 bits on its three read ports) up to 32 words, else RAM64M (64 x 3) per 64 words."""
    if depth <= 0 or width <= 0:
        return 0
    if fam == "ecp5":
        return -(-depth // 16) * -(-width // 4)
    if fam == "xilinx":
        return -(-width // 6) if depth <= 32 else -(-depth // 64) * -(-width // 3)
    raise ValueError(f"family {fam!r} has no LUT-RAM")


@dataclass(frozen=True)
class UnitMemory:
    """One memory of a unit as the estimator sees it."""

    name: str  #: "weights", "params" (ROMs) or "inbuf" (the unit's two-bank input memory, written)
    depth: int
    live: int  #: non-constant bit columns (what block RAM / LUT-RAM stores)
    style: str  #: where it ends up: "block", "distributed" (LUT-RAM) or "logic"


def _placed(style: MemStyle | None, fam: str, default: str, written: bool = False) -> str:
    """hw.memstyle.placed, with an unmarked memory at ``default`` and block RAM only where priced."""
    where = placed(style, fam, written)
    if where is None:
        return default
    if where == "block" and fam not in BLOCK_GEOMETRY:
        return "logic"
    return where


def generated_unit(layer: Layer, fold: Folding, mem_style: str = "auto", tree_every: int = 0,
                   family: str | None = None):
    """The hw.mvu.MatrixVectorUnit the generator builds for this layer (constructed, never elaborated):
    the one source of its register stages (hw.pipeline.core_stages), memory styles (hw.memstyle) and
    FIFO depth, so the estimator never restates them. A folding or style the generator refuses is
    refused here with the generator's error. ``family``: the family the generator built for (its
    ``--family``: where a written memory goes on a part without LUT-RAM); None, a unit built without one
    (the calibration's units)."""
    from hw.mvu import MatrixVectorUnit

    u = MatrixVectorUnit(layer, fold, mem_style=mem_style, tree_every=tree_every, family=family)
    u._MustUse__silence = u.core._MustUse__silence = True  # read, never elaborated: no "unused" warning
    return u


def _tool_block(depth: int, bits: int, fam: str) -> bool:
    """Whether Yosys puts an unmarked, synchronously read ROM of ``depth`` words and ``bits`` bits in
    block RAM on ``fam``: the fitted ``bram_rule`` (from a depth and a size on; never without one)."""
    rule = _constants().get("bram_rule", {}).get(fam)
    return bool(rule) and fam in BLOCK_GEOMETRY and depth >= rule["min_depth"] and bits >= rule["min_bits"]


def unit_memories(layer: Layer, fold: Folding, target: str, mem_style: str = "auto",
                  bram: bool | None = None, tree_every: int = 0,
                  family: str | None = None) -> tuple[UnitMemory, ...]:
    """The unit's memories and where each ends up: the generator's mark (the styles the generated unit
    resolved, hw.memstyle, placed per family by hw.memstyle.placed) or, for an unmarked ROM read
    synchronously (the weight ROM always; the threshold ROM under a target clock, ``tree_every`` > 0,
    which reads it a row fold ahead), Yosys' own choice: the fitted ``bram_rule``. An unmarked
    threshold ROM read combinationally stays in logic; a ``distributed`` ROM is logic too (LUTs
    holding the constants). ``bram`` (calibration) overrides where the weight ROM went. A dense unit
    with more than one row fold has its input memory (two banks of col_folds words of SIMD inputs):
    LUT-RAM on ecp5/xilinx, logic on ice40, block RAM when large. (A conv unit's window memories are
    not listed.)"""
    fam = _family(target)
    u = generated_unit(layer, fold, mem_style, tree_every, family)
    words = fold.row_folds * fold.col_folds
    live = rom_live_columns(layer, fold)
    w_style = _placed(u.core.weight_style, fam, "block" if _tool_block(words, words * live, fam) else "logic")
    if bram is not None:
        w_style = "block" if bram else ("logic" if w_style == "block" else w_style)
    out = [UnitMemory("weights", words, live, w_style)]
    if n_params(layer):
        plive = _live(param_rom_bits(layer, fold))
        sync = u.core.stages.output > 0
        out.append(UnitMemory("params", fold.row_folds, plive, _placed(
            u.core.param_style, fam, "block" if sync and _tool_block(fold.row_folds, fold.row_folds * plive, fam)
            else "logic")))
    if u.in_style is not None:
        out.append(UnitMemory("inbuf", 2 * fold.col_folds, fold.simd * layer.input_bits,
                              _placed(u.in_style, fam, "logic", written=True)))
    return tuple(out)


def features(layer: Layer, fold: Folding, target: str, bram: bool | None = None,
             dsp: bool | None = None, mem_style: str = "auto", tree_every: int = 0,
             family: str | None = None) -> dict[str, float]:
    """Structural features of one folded layer on ``target`` (see the module table).

    ``bram`` / ``dsp``: whether the weight ROM sits in block RAM and the multipliers in DSPs
    (default: :func:`unit_memories`, :func:`uses_dsp` for ``mem_style``; the calibration passes
    what synthesis did). ``tree_every``: the target clock's adder-tree spacing (hw.pipeline; 0: no
    target clock, no register stages at all); the stages themselves are the generated unit's."""
    fam = _family(target)
    lanes = fold.lanes
    W = acc_width(layer)
    tw = term_width(layer)
    dsp = uses_dsp(layer, target) if dsp is None else dsp
    lane, shared = lane_cost(layer, fold, fam, dsp)
    unit = generated_unit(layer, fold, mem_style, tree_every, family)
    st: CoreStages = unit.core.stages
    staged = st.tree > 0
    mems = {m.name: m for m in unit_memories(layer, fold, target, mem_style, bram, tree_every, family)}
    wrom, prom, bank = mems["weights"], mems.get("params"), mems.get("inbuf")
    words = wrom.depth
    cols = rom_columns(layer, fold) if wrom.style == "logic" else 0
    rom_col = rom_column_luts(words, fam) if words >= 2 else 0.0  # one column's LUTs at the ROM's depth
    chunk = fold.simd * layer.input_bits
    n_thr = layer.n_thresholds if layer.output == "threshold" else 1
    serial = lane_spec(layer.kind).serial
    # signed products (a multiplier's, a product table's) are summed sign-extended on ecp5: with MULT18X18Ds,
    # whose outputs merge with nothing, the tree's LUT4s are 2.0-2.1 per full adder of the sign-extended sum
    # for 4x4 and 8x8 products (3.1 vs 2.8 counted without the extension); lut_product's datapath less one
    # LUT a table bit, 1.9-2.7 LUT4 per full adder of the extended sum over 6-32 terms (2.7-4.7 without).
    # ice40 and xilinx map the extension away: their lut_product datapaths are 2.3-2.6 LUT4 / 1.6-1.9 LUT6
    # per full adder counted without it (1.3-1.8 / 1.0-1.3 with)
    segs = tree_segments(fold.simd, tw, unit.core.tree_every if staged else 0,
                         signed=cost_spec(layer.kind).signed_products and fam == "ecp5")
    if dsp and fam == "xilinx" and not st.product:
        # unregistered DSP products: Yosys' xilinx_dsp chains the adder tree through the DSP48E1s'
        # post-adders (P = A*B + PCIN), no tree in LUTs (calibration: 32 lanes 106 LUT6, 12 CARRY4)
        segs = (0, 0)
    # the threshold ROM read synchronously (block RAM, or a target clock's read-ahead): a register
    # of its live bits when the ROM itself is logic
    prom_sync = prom is not None and prom.style == "logic" and st.output > 0
    return {
        "const": 1.0,
        "lane": lanes * lane,
        # LUT multipliers whose products are not registered: Yosys merges them and the adder tree into one
        # multi-operand sum ($macc), the partial products compressed with the tree; measured to grow with
        # the sum's size, i.e. per lane with simd (ecp5, 4x4: 29 LUT4 a lane with the products registered,
        # about 58 merged at simd 8, about 100 at simd 16), so lanes x lane x simd / 8
        "fused": lanes * lane * fold.simd / 8 if cost_spec(layer.kind).multiplier and not dsp and not st.product else 0.0,
        "xdec": fold.simd * shared,
        "post": fold.pe * pe_cost(layer, fold),
        # a registered tree maps differently (ecp5: a registered adder level stays a carry chain, not
        # re-mapped by ABC with the next), so its bits are their own terms: the registered levels in
        # treereg, the combinational rest in tree_staged (calibration: ecp5 accumulate 24 -> 15 % max)
        "csa": fold.pe * segs[0],
        "cpa": fold.pe * segs[1],
        "treereg": fold.pe * tree_register_bits(fold.simd, tw, unit.core.tree_every) if staged else 0.0,
        "stages": float(st.total),
        "romdreg": st.rom * ((cols if wrom.style == "logic" else wrom.live) + chunk),
        "prodreg": st.product * fold.pe * fold.simd * (1 if serial else tw),
        # ... and the same products not registered (no target clock, a kind that would register them): ABC maps
        # the lane logic together with the tree's first compressor level, which costs more or fewer LUTs than
        # the two apart by kind (a non-negative prodreg alone cannot say "the register saves LUTs")
        "prodcomb": (fold.pe * fold.simd * (1 if serial else tw)
                     if not st.product and lane_spec(layer.kind).product_stage and not dsp else 0.0),
        "outreg": (fold.pe * out_width(layer) + (fold.pe * n_thr if st.output > 1 else 0)) if st.output else 0.0,
        # the same stage counted per PE (and per registered compare), not per output bit: its logic (the
        # compare result's selection and enable) is per PE, its bits are flip-flops (LUT prior 0 on outreg)
        "outpe": (fold.pe * (1 + (n_thr if st.output > 1 else 0))) if st.output else 0.0,
        "promreg": float(prom.live) if prom_sync else 0.0,
        "acc": fold.pe * W,
        "thr": fold.pe * n_thr * W,
        "rom": cols * rom_col if words >= 2 else 0.0,
        # ... and what a depth between two powers of two costs beyond that proportional price
        "romslack": cols * (rom_column_luts(1 << (words - 1).bit_length(), fam) - rom_col) if words >= 2 else 0.0,
        # the ROM's read register: one FF per distinct column in logic (block RAM holds its own)
        "romreg": float(cols),
        # the threshold ROM in logic: like the weight ROM, its distinct columns x one function each of
        # the row-fold address (a deep one, many row folds, is a Shannon tree per column, not a LUT per 2^k words)
        "prom": (logic_columns(param_rom_bits(layer, fold)) * rom_column_luts(prom.depth, fam)
                 if prom is not None and prom.style == "logic" and prom.depth >= 2 else 0.0),
        "dram": float(sum(lutram_cells(m.depth, m.live, fam) for m in mems.values() if m.style == "distributed")),
        "chunk": float(chunk),
        # the two banks' controller (hw.mvu.MatrixVectorUnit._banks: fill / step counters, the read address, the
        # full flags and the handshake): one per unit with banks, whatever their size (ecp5 xnor: about 40 LUT4
        # of bank-control support in a unit with banks, none in one without)
        "bankctl": 1.0 if bank is not None else 0.0,
        "bankreg": float(chunk) if bank is not None and bank.style != "block" else 0.0,
        "bank": float(bank.depth * chunk) if bank is not None and bank.style == "logic" else 0.0,
        "bankmux": chunk * mux_luts(bank.depth, fam) if bank is not None and bank.style == "logic" else 0.0,
        # ... and their write enables: one decoded enable per word (the fill address and bank)
        "bankdec": float(bank.depth) if bank is not None and bank.style == "logic" else 0.0,
        # the generated unit says whether it keeps the vector in registers (never restated here)
        "vecreg": 2.0 * chunk if unit.in_registers else 0.0,
        "fifo": float(unit.fifo_depth * fold.pe * out_width(layer)),
    }


def uses_dsp(layer: Layer, target: str) -> bool:
    """Whether Yosys maps the layer's multipliers to DSP blocks: a mac layer on a DSP target whose
    product is at least ``dsp_min_product_bits`` wide (fitted; e.g. synth_ice40 -dsp leaves small
    products in LUTs). The product of a zero-extended input and a signed weight has
    input_bits + 1 + weight_bits bits."""
    if not cost_spec(layer.kind).multiplier or _family(target) not in DSP_TARGETS or target.endswith("-nodsp"):
        return False
    rule = _constants().get("dsp_min_product_bits", {}).get(_family(target), 0)
    return layer.input_bits + 1 + layer.weight_bits >= rule


def unit_kind(layer: Layer, target: str, dsp: bool | None = None) -> str:
    """Kind name of the per-kind coefficients: ``<kind>_nodsp`` (``mac_nodsp``) for multipliers built
    from LUTs."""
    if cost_spec(layer.kind).multiplier and not (uses_dsp(layer, target) if dsp is None else dsp):
        return f"{layer.kind}_nodsp"
    return str(layer.kind)


def design_row(layer: Layer, fold: Folding, target: str, bram: bool | None = None,
               dsp: bool | None = None, mem_style: str = "auto", tree_every: int = 0,
               family: str | None = None) -> dict[str, float]:
    """Features keyed by coefficient name (per-kind terms prefixed with the unit kind)."""
    f = features(layer, fold, target, bram, dsp, mem_style, tree_every, family)
    uk = unit_kind(layer, target, dsp)
    row = {f"{uk}:const": f["const"], f"{uk}:lane": f["lane"]}
    for name, v in f.items():
        if name in PER_KIND:
            if v:  # only kinds with the term get its coefficient (e.g. post: bit_serial)
                row[f"{uk}:{name}"] = v
        elif name in SHARED:
            row[name] = v
    return row


def bram_blocks(layer: Layer, fold: Folding, target: str, mem_style: str = "auto",
                bram: bool | None = None, tree_every: int = 0, family: str | None = None) -> int:
    """Block RAMs (SynthResult.brams units) of the unit's memories in block RAM: each one's live
    columns over its depth, in :func:`block_rams`."""
    fam = _family(target)
    return sum(block_rams(m.depth, m.live, fam)
               for m in unit_memories(layer, fold, target, mem_style, bram, tree_every, family) if m.style == "block")


@functools.cache
def _constants() -> dict:
    if not CONSTANTS_FILE.exists():
        return {}
    return json.loads(CONSTANTS_FILE.read_text())


def calibrated_unit_kinds(fam: str) -> set[str]:
    """Unit kinds (``mac_nodsp`` included) with fitted per-kind coefficients on family ``fam``."""
    c = _constants().get("coefficients", {}).get(fam, {})
    return {name.split(":")[0] for metric in METRICS for name in c.get(metric, {}) if ":" in name}


def calibrated_targets() -> tuple[str, ...]:
    """Targets the constants file covers: each calibrated family with and without DSPs."""
    return tuple(t for fam in _constants().get("coefficients", {}) for t in (fam, f"{fam}-nodsp"))


@dataclass(frozen=True)
class AreaEstimate:
    """MODEL: estimated cells of one folded layer on one target."""

    target: str
    kind: str
    luts: float
    ffs: float
    brams: int
    dsps: int
    lutrams: float = 0.0  #: LUT-RAM primitives (``mem_style`` distributed on ecp5 / xilinx)


@dataclass(frozen=True)
class ModelEstimate:
    """MODEL: per-layer estimates of a folded model and their sums (layers only: no argmax)."""

    target: str
    layers: tuple[AreaEstimate, ...]
    luts: float
    ffs: float
    brams: int
    dsps: int
    lutrams: float = 0.0


def estimate(layer: Layer, folding: Folding, target: str, mem_style: str = "auto",
             tree_every: int = 0, family: str | None = None) -> AreaEstimate:
    """MODEL: estimated cells of one folded layer on ``target`` with ROMs placed by ``mem_style``
    (hw.memstyle) and the adder tree registered every ``tree_every`` levels (hw.pipeline; what
    ``--clock-mhz`` asks for: hw.pipeline.levels_per_stage), the unit as the generator builds it for
    ``family`` (:func:`generated_unit`). ``distributed`` on ice40 (no LUT-RAM) is priced as logic."""
    coefs = _constants().get("coefficients", {})
    fam = _family(target)
    if fam not in coefs:
        known = [t for t in calibrated_targets()]
        raise ConfigError(f"estimator target: {target!r}, expected one of {', '.join(known) or '(none calibrated)'}"
                          f" (calibrate with benchmarks/estimator_calibration.py)")
    uk = unit_kind(layer, target)
    if uk not in calibrated_unit_kinds(fam):  # never a silent estimate from the shared terms alone
        raise ConfigError(f"{layer.name}: kind '{uk}' has no {fam} calibration "
                          f"(add its points to benchmarks/estimator_calibration.py and recalibrate)")
    if layer.op != "dense":  # calibrated on the dense matrix-vector unit only
        raise ConfigError(f"{layer.name}: op {layer.op!r}, the area estimator models dense layers only")
    row = design_row(layer, folding, target, mem_style=mem_style, tree_every=tree_every, family=family)
    fitted = {metric: predict(coefs[fam], row, metric) for metric in METRICS}
    return AreaEstimate(target, layer.kind, fitted["luts"], fitted["ffs"], bram_blocks(layer, folding, target, mem_style,
                                                                                 tree_every=tree_every, family=family),
                        dsp_blocks(layer, folding, target), fitted["lutrams"])


def dsp_blocks(layer: Layer, fold: Folding, target: str) -> int:
    """DSP blocks of the unit's multipliers: one per lane (:func:`uses_dsp`). (A registered product on
    iCE40 would be mapped wrongly by Yosys 0.70, half the lanes in SB_MAC16s: the generator never builds
    one there, hw.lanes.UNREGISTERED_DSP_PRODUCT_FAMILIES, and the calibration builds ice40 units as it does.)"""
    return fold.lanes if uses_dsp(layer, target) else 0


def estimate_model(layers: list[Layer], foldings: list[Folding], target: str,
                   mem_style: str = "auto", tree_every: int = 0, family: str | None = None) -> ModelEstimate:
    """MODEL: per-layer estimates and their sums (``family``: the generator's, see :func:`estimate`)."""
    per = tuple(estimate(L, f, target, mem_style, tree_every, family) for L, f in zip(layers, foldings))
    return ModelEstimate(target, per, *(sum(getattr(p, m) for p in per)
                                        for m in ("luts", "ffs", "brams", "dsps", "lutrams")))


def predict(coefs: dict[str, dict[str, float]], row: dict[str, float], metric: str) -> float:
    """A fitted metric of one design row (0 for a metric the family has no coefficients for)."""
    c = coefs.get(metric, {})
    return float(sum(c.get(name, 0.0) * v for name, v in row.items()))


def fit(points: list[dict]) -> dict[str, dict[str, float]]:
    """Non-negative least squares of every metric over calibration points of one family.

    Each point: ``{"row": design_row(...), "luts": measured, "ffs": measured, "lutrams": measured}``.
    Rows are weighted by 1/measured so the fit minimises relative (percent) error. ``lutrams`` is
    fitted on the ``dram`` feature alone (the LUT-RAM cells follow the LUT-RAM geometry)."""
    from scipy.optimize import nnls

    names = sorted({n for p in points for n in p["row"]})
    X = np.array([[p["row"].get(n, 0.0) for n in names] for p in points])
    out = {}
    for metric in METRICS:
        y = np.array([float(p.get(metric, 0) or 0) for p in points])
        if metric == "lutrams":
            x = X[:, names.index("dram")] if "dram" in names else np.zeros(len(points))
            sel = x > 0
            k = float(np.sum(x[sel] * y[sel]) / np.sum(x[sel] ** 2)) if sel.any() else 0.0
            out[metric] = {"dram": k} if k else {}
            continue
        w = 1.0 / np.maximum(y, 1.0)
        A, b = X * w[:, None], y * w
        # weak priors on the structural LUT terms (an accumulator or compare bit is about one LUT): with
        # few points per kind NNLS can zero them and let a kind's constant carry them, which leaves a
        # small unit of that kind at 0 LUTs (ice40 mac with DSPs did)
        # (and on the flip-flop terms: each counts register bits, one FF each, which the calibration's small
        # units alone leave collinear: ice40 had the ROM-data register at 0 FFs a bit)
        priors = {"luts": LUT_PRIORS, "ffs": FF_PRIORS}.get(metric, {})
        prior = [n for n in priors if n in names]
        if prior:
            P = np.zeros((len(prior), len(names)))
            for i, n in enumerate(prior):
                P[i, names.index(n)] = PRIOR_WEIGHT
            A, b = np.vstack([A, P]), np.r_[b, [PRIOR_WEIGHT * priors[n] for n in prior]]
        if metric == "luts":  # the target is a maximum error: minimise it (least squares for FFs)
            coef = _minimax_fit(A, b, len(points), [_point_kind(p["row"]) for p in points])
        else:
            coef, _ = nnls(A, b)
        out[metric] = {n: float(c) for n, c in zip(names, coef) if c != 0.0}
    return out


def _point_kind(row: dict) -> str:
    """The unit kind of a calibration row: the prefix of its kind-specific features (``kind:...``)."""
    return next((n.split(":")[0] for n in sorted(row) if ":" in n), "")


def _minimax_fit(A: np.ndarray, b: np.ndarray, n: int, groups: list[str]) -> np.ndarray:
    """The non-negative ``x`` minimising each group's (unit kind's) largest relative error over the
    first ``n`` rows of ``A x ~ b`` (the points, already scaled by 1/measured), plus
    :data:`MEAN_WEIGHT` x their mean error, with the remaining rows (the priors) as an L1 penalty:
    a linear program (HiGHS).

    The target is a maximum error per kind x family, so the fit minimises those maxima rather than
    least squares, which lets a few points drift far to shave the many. One maximum per kind, each
    priced once plus :data:`HINGE_WEIGHT` x its excess over :data:`HINGE_TARGET`: a kind the shared
    features cannot fit within the target then holds the excess alone, instead of setting one bound
    every kind of its family sits at (a single family maximum left 6 of ecp5's 7 kinds at 12.7 %).
    The mean term keeps the typical point close. Variables: x (k), e (n: |point residuals|),
    s (priors: |residuals|), t (one maximum per group), u (their excess over the target)."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    m, k = A.shape
    npr = m - n
    names = sorted(set(groups))
    ng = len(names)
    G = sp.csr_matrix((np.ones(n), (np.arange(n), [names.index(g) for g in groups])), shape=(n, ng))
    widths = {"x": k, "e": n, "s": npr, "t": ng, "u": ng}

    def row(height: int, **blocks) -> sp.spmatrix:
        """One block row of the constraint matrix: the given variables' blocks, zeros elsewhere."""
        return sp.hstack([blocks.get(v, sp.csr_matrix((height, w))) for v, w in widths.items()])

    Ap, In, Ip, Ig = sp.csr_matrix(A), sp.identity(n), sp.identity(npr), sp.identity(ng)
    rows = [row(n, x=Ap[:n], e=-In),  # A x - b <= e
            row(n, x=-Ap[:n], e=-In),  # b - A x <= e
            row(n, e=In, t=-G)]  # e <= t of the point's group
    rhs = [b[:n], -b[:n], np.zeros(n)]
    if npr:
        rows += [row(npr, x=Ap[n:], s=-Ip), row(npr, x=-Ap[n:], s=-Ip)]  # |prior residual| <= s
        rhs += [b[n:], -b[n:]]
    # hinge: u >= t - TARGET, weighed HINGE_WEIGHT times a maximum, so every kind that can is pushed
    # under the target and the excess gathers on the kinds that cannot
    rows.append(row(ng, t=Ig, u=-Ig))
    rhs.append(np.full(ng, HINGE_TARGET))
    cost = np.r_[np.zeros(k), np.full(n, MEAN_WEIGHT / n), np.full(npr, 1.0 / n), np.ones(ng), np.full(ng, HINGE_WEIGHT)]
    res = linprog(cost, A_ub=sp.vstack(rows).tocsr(), b_ub=np.concatenate(rhs), bounds=(0, None),
                  method="highs")
    if res.status != 0:
        raise RuntimeError(f"reports.estimator: the minimax LUT fit failed: {res.message}")
    return res.x[:k]


#: Prior LUTs per feature unit for the structural terms (see :func:`fit`), and the prior's weight (one
#: prior row weighs as much as a point missed by this fraction).
LUT_PRIORS = {"acc": 1.0, "thr": 1.0, "outreg": 0.0}
#: Prior FFs per feature unit of the register terms: one per bit (``acc``: the partial sum, the
#: accumulator and the result register of each PE, three per bit).
FF_PRIORS = {"acc": 3.0, "romdreg": 1.0, "treereg": 1.0, "outreg": 1.0, "promreg": 1.0, "romreg": 1.0,
             "chunk": 1.0, "bankreg": 1.0, "bank": 1.0, "vecreg": 1.0}
PRIOR_WEIGHT = 0.3
#: The LUT fit's weight of the points' mean relative error beside their maximum (:func:`_minimax_fit`):
#: 2 chosen on the calibration with a single maximum per family (maxima 5.7 / 12.7 / 9.7 %, mean 3.9 %;
#: 0.25 .. 4 moved them by < 1.5 points, 8 past those of the former L4 fit, whose ecp5 maximum was 15.9 %).
MEAN_WEIGHT = 2.0
#: Per-kind maxima above this relative error cost HINGE_WEIGHT times more (:func:`_minimax_fit`): a
#: half-point margin under issue 18's 10 %; weights 10 and 30 give the same fit, 3 lets one more kind
#: (ecp5 xnor_popcount) sit at 10.0 %.
HINGE_TARGET = 0.095
HINGE_WEIGHT = 10.0


def probe_layer(kind: str, n_in: int, n_out: int, input_bits: int, weight_bits: int,
                rng: np.random.Generator, name: str = "probe", output_bits: int = 1) -> Layer:
    """A random hidden layer of ``kind`` (threshold output, ``output_bits`` wide: 2^b - 1 sorted
    thresholds per neuron) for calibration and tests."""
    w = kind_spec(kind).random_weights(rng, (n_out, n_in), weight_bits)
    products = rng.integers(-40, 41, (1 << weight_bits, 1 << input_bits)) if kind_spec(kind).needs_products else None
    L = Layer(name, kind, n_in, n_out, input_bits, weight_bits, "threshold", w, output_bits=output_bits,
              products=products)
    lo, hi = L.acc_range()
    L.thresholds = np.sort(rng.integers(lo // 4, hi // 4 + 1, (n_out, (1 << output_bits) - 1)), axis=1)
    return L


def mvu_verilog(layer: Layer, fold: Folding, top: str = "mvu", mem_style: str = "auto", tree_every: int = 0,
                family: str | None = None) -> str:
    """Verilog of one layer's matrix-vector unit (what the estimator models), built for ``family``."""
    from amaranth.back import verilog

    from hw.mvu import MatrixVectorUnit

    return verilog.convert(MatrixVectorUnit(layer, fold, mem_style=mem_style, tree_every=tree_every, family=family),
                           name=top, emit_src=False)
