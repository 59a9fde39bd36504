"""Pipeline depth from a target clock: how many adder-tree levels one register stage may hold.

A MODEL, not a timing analysis: one adder-tree level costs about one LUT level plus its routing
and carry; ``NS_PER_LEVEL`` is that delay per family, read off nextpnr's critical paths of the
digits W1A1 net (iCE40 HX8K: the 64-lane XNOR + popcount stage, 8 LUT4 levels, limited the
argmax-free design to about 70 MHz, i.e. ~1.8 ns per level; ECP5 83 MHz, ~1.5 ns). Two levels of
each period are kept for the clock-to-out, setup and the accumulator's carry chain. The generator
registers the tree every ``levels_per_stage`` levels (hw.arith.adder_tree), and every unit adds
those stages to its cycle formulas.
"""
from __future__ import annotations

from quantmodels.errors import ConfigError

from .folding import MAX_CLOCK_MHZ

#: ns per adder-tree level (LUT + routing + carry) per family; xilinx 7-series from its datasheet
#: LUT6 delay plus typical routing (not measured here).
NS_PER_LEVEL = {"ice40": 1.8, "ecp5": 1.5, "xilinx": 0.8}
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
