"""Memory styles: where a memory goes (block RAM, distributed LUT-RAM or logic), and the one rule
that picks it.

The choice is written as the synthesis attributes Yosys' ``memory_libmap`` honours (``rom_style`` /
``ram_style``), so one Verilog file carries it to every family. A memory is either a ROM (the
weight and threshold ROMs: no write port) or a RAM (written: a unit's input banks):

==============  ==============================  ===============================================
style           ROM                             RAM (written)
==============  ==============================  ===============================================
``block``       SB_RAM40_4K / DP16KD / RAMB18-36  the same
``distributed`` LUTs holding the constants      LUT-RAM: RAM32M/RAM64X1D... on xilinx,
                (``rom_style = "logic"``)       TRELLIS_DPR16X4 on ecp5; ice40 has none: logic
``logic``       LUTs                            flip-flops and a read mux
==============  ==============================  ===============================================

Why a distributed ROM is logic: LUT-RAM only matters for memories that are written; a ROM in LUTs
*is* a distributed ROM (Vivado's ``rom_style = "distributed"``), and Yosys 0.70 has no LUT-RAM
mapping for a ROM at all (``rom_style = "distributed"`` stops synth_ecp5 / synth_xilinx / synth_ice40
with "no valid mapping found"). Why a RAM on ice40 is logic: the family has no LUT-RAM, so
``ram_style = "distributed"`` has no mapping there either; the Verilog stays family-neutral and
lowbit's ice40 recipe (:data:`reports.synth.SYNTH_COMMANDS`) says "logic" for it before mapping.

``auto`` (:func:`resolve`): block RAM for a memory deep and large enough to fill blocks; below that
a ROM is left to the tool (no attribute: LUTs) and a RAM goes to LUT-RAM (``distributed``): even a
4-word bank would otherwise take a whole iCE40 SB_RAM40_4K, and on xilinx/ecp5 a bank in LUT-RAM is
a few LUTs where flip-flops need a read mux of about one LUT per stored word and bit.
"""
from __future__ import annotations

from enum import StrEnum

from quantmodels.errors import ConfigError, clip


class MemStyle(StrEnum):
    """Where a memory goes (``auto``: chosen per memory by :func:`resolve`)."""

    AUTO = "auto"
    BLOCK = "block"
    DISTRIBUTED = "distributed"
    LOGIC = "logic"


MEM_STYLES = tuple(MemStyle)
#: auto puts a memory in block RAM from this depth on: the smallest block (SB_RAM40_4K) is 256
#: deep at 16 bits, so a shallower memory wastes most of each block it occupies.
AUTO_BLOCK_MIN_DEPTH = 64
#: ... and from this many stored bits on: one SB_RAM40_4K (the smallest block of the three families).
AUTO_BLOCK_MIN_BITS = 4096
#: Families with LUT-RAM (a written ``distributed`` memory is LUT-RAM there, logic elsewhere).
LUTRAM_FAMILIES = ("ecp5", "xilinx")


def parse_mem_style(value: object, where: str = "--mem-style") -> MemStyle:
    """The :class:`MemStyle` named ``value``; a one-line ConfigError naming ``where`` otherwise."""
    try:
        return MemStyle(value)
    except ValueError:
        raise ConfigError(f"{where}: {clip(value)}, expected one of {', '.join(MEM_STYLES)}") from None


def resolve(style: MemStyle | str, depth: int, width: int, written: bool = False) -> MemStyle | None:
    """The style one memory of ``depth`` words x ``width`` bits gets: an explicit style as asked;
    ``auto``: block RAM when the memory is deep and large enough to fill blocks (the thresholds
    above), else for a ROM None -- no attribute, the synthesis tool's choice (LUTs for small ROMs)
    -- and for a ``written`` memory (a RAM) ``distributed``, LUT-RAM where the family has it."""
    style = parse_mem_style(style)
    if style is not MemStyle.AUTO:
        return style
    if depth >= AUTO_BLOCK_MIN_DEPTH and depth * width >= AUTO_BLOCK_MIN_BITS:
        return MemStyle.BLOCK
    return MemStyle.DISTRIBUTED if written else None


def placed(style: MemStyle | None, family: str, written: bool = False) -> str | None:
    """Where a memory of resolved ``style`` ends up on ``family``: "block", "distributed" (LUT-RAM),
    "logic", or None (unmarked: the tool's choice). The table in the module docstring."""
    if style is None:
        return None
    if style is MemStyle.DISTRIBUTED:
        return "distributed" if written and family in LUTRAM_FAMILIES else "logic"
    return str(style)


def attrs(style: MemStyle | None, written: bool = False) -> dict[str, str]:
    """Yosys attributes of a memory in ``style`` (empty: no preference). A ROM's ``distributed`` is
    spelled ``logic`` (see the module docstring); ``logic`` is ``logic`` for ROM and RAM alike."""
    if style is None:
        return {}
    value = "logic" if style is MemStyle.DISTRIBUTED and not written else str(style)
    return {"rom_style": value, "ram_style": value}
