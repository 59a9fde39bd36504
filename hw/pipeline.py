"""Pipeline depth from a target clock: how many adder-tree levels one register stage may hold, and
which boundaries of a matrix-vector core get a register.

A MODEL, not a timing analysis: one adder-tree level costs about two LUT levels plus their routing;
``NS_PER_LEVEL`` is that delay per family, read off nextpnr's critical paths (reports.pnr records
them): iCE40 HX8K, the digits W1A1 net's 64-lane XNOR + popcount stage, 8 LUT4 levels, limited the
argmax-free design to about 70 MHz, i.e. ~1.8 ns per level. ECP5: the streaming SFC W1A1 at 125 MHz
(tree registered every 3 levels) placed at 73.6 MHz on a 25k, its worst path a block RAM read
(DP16KD clock-to-out 5.61 ns) then the XNOR and 3 adder levels of fc0's popcount: 7 LUT4 levels in
7.98 ns, i.e. ~2.0 ns per adder level (the first model, 1.5 ns, came from the pre-streaming design
and was optimistic). Two levels of each period are kept for clock-to-out, setup and the fan-out of
the stage's first register. The generator registers the tree every ``levels_per_stage`` levels
(hw.arith.adder_tree), and every unit adds those stages to its cycle formulas.

With a target clock the core also registers its boundaries (:func:`core_stages`): the weight ROM's
read data (a block RAM's clock-to-out alone, 5.6 ns on ECP5, is most of an 8 ns period; that register
carries no reset, so on ECP5 reports.ecp5_outreg moves it into the DP16KD as its output register,
which Yosys's own mapping never uses), the lane products of kinds whose product is more than one
LUT level (negation, barrel shift, product table, multiplier: hw.lanes.LaneSpec.product_stage),
and the output stage (threshold compare, requantize, logit + bias) after a synchronous read of the
parameter ROM. Each is one cycle of latency, none changes the initiation interval.
"""
from __future__ import annotations

from dataclasses import dataclass

from quantmodels.errors import ConfigError

from .folding import MAX_CLOCK_MHZ

#: ns per adder-tree level (LUTs + routing + carry) per family (measured paths: module docstring);
#: xilinx 7-series from its datasheet LUT6 delay plus typical routing (not measured here).
NS_PER_LEVEL = {"ice40": 1.8, "ecp5": 2.0, "xilinx": 0.8}
#: Issue 18's fmax targets: the clock a design aims at when none is given.
DEFAULT_CLOCK_MHZ = {"ice40": 80.0, "ecp5": 125.0, "xilinx": 200.0}
#: LUT levels of a period kept for clock-to-out, setup and the accumulate stage.
RESERVED_LEVELS = 2


def levels_per_stage(clock_mhz: float | None, family: str = "ice40") -> int:
    """Adder-tree levels per register stage at ``clock_mhz`` on ``family`` (0: no tree
    registers, the design as before; ``clock_mhz`` None means no target)."""
    if clock_mhz is None:
        return 0
    if family not in NS_PER_LEVEL:
        raise ConfigError(f"--family: {family!r}, expected one of {', '.join(NS_PER_LEVEL)}")
    if not 0 < clock_mhz <= MAX_CLOCK_MHZ:  # nan and inf fail too: the same bound as --fold's clock_mhz
        raise ConfigError(f"--clock-mhz: {clock_mhz!r}, expected a clock in MHz > 0 and <= {MAX_CLOCK_MHZ:g}")
    return max(1, int(1000.0 / clock_mhz / NS_PER_LEVEL[family]) - RESERVED_LEVELS)


def tree_levels(n_terms: int) -> int:
    """Levels of a balanced binary adder tree over ``n_terms`` terms."""
    return max(0, (n_terms - 1).bit_length())


def tree_stages(n_terms: int, every: int) -> int:
    """Register stages hw.arith.adder_tree inserts over ``n_terms`` terms when it registers every
    ``every`` levels: after levels every, 2*every, ... except the last (the unit registers the
    tree's output anyway)."""
    if every <= 0:
        return 0
    return (tree_levels(n_terms) - 1) // every if tree_levels(n_terms) else 0


@dataclass(frozen=True)
class CoreStages:
    """Register stages a matrix-vector core adds to its base pipeline (hw.mvu.CORE_DEPTH), by place."""

    rom: int = 0  #: the weight ROM's read data (and the chunk beside it) registered
    product: int = 0  #: the lane products registered before the adder tree
    tree: int = 0  #: registers inside the adder tree (:func:`tree_stages`)
    output: int = 0  #: the output stage's result registered (2: a multi-threshold's compares, then their count)

    @property
    def total(self) -> int:
        """Cycles these stages add between a step and its result."""
        return self.rom + self.product + self.tree + self.output


def core_stages(simd: int, tree_every: int, product_stages: int, tree_staged: bool = True,
                thresholds: int = 1) -> CoreStages:
    """The core's register stages for adder-tree spacing ``tree_every`` (:func:`levels_per_stage`;
    0: no target clock, no stages at all): the boundaries (ROM data, output; the kind's
    ``product_stages``, hw.lanes.LaneSpec.product_stages) and the tree's own stages over ``simd`` terms
    (none when not ``tree_staged``: a bit-serial kind or a lut6/xilinx popcount keeps its tree combinational).
    A multi-threshold output stage (``thresholds`` > 1 compares per output) registers its compares
    before counting them: measured on ECP5, 15 compares and their count in one cycle were 14 LUT4
    levels + 13 carry hops (11.8 ns, the accumulate kind's worst path at 125 MHz)."""
    if tree_every <= 0:
        return CoreStages()
    return CoreStages(rom=1, product=int(product_stages),
                      tree=tree_stages(simd, tree_every) if tree_staged else 0, output=2 if thresholds > 1 else 1)
