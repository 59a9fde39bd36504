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

On a family without LUT-RAM (iCE40) a written memory below those thresholds would be flip-flops and a
read mux, about one logic cell per stored bit; given the ``family``, ``auto`` weighs that against the
block RAMs the memory would occupy (:func:`blocks`, a block counted as :data:`LOGIC_CELLS_PER_BLOCK`
cells) and takes block RAM when it saves cells (:func:`block_saves_logic`). The digits nets' input banks
(16 words x 32-64 bits) were 2,800 of an HX8K's 7,680 cells in flip-flops; they are 10 of its 32 blocks.

A line buffer (hw.conv) below :data:`LINE_LOGIC_BELOW_BITS` stays in registers (:func:`line_style`).
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
#: Block RAM aspect ratios (depth, width) per family, the smallest block of each: a memory occupies the
#: fewest blocks over these shapes (:func:`blocks`). iCE40 SB_RAM40_4K; ECP5 DP16KD; xilinx RAMB18E1.
BLOCK_SHAPES = {"ice40": ((256, 16), (512, 8), (1024, 4), (2048, 2)),
                "ecp5": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)),
                "xilinx": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))}
#: What one block RAM is worth in logic cells: iCE40 HX8K's 7,680 cells over its 32 SB_RAM40_4K (the
#: part the issue targets); a written memory moves to block RAM when it would take more cells than that
#: per block it occupies.
LOGIC_CELLS_PER_BLOCK = 7680 // 32
#: A line buffer (hw.conv) below this many bits stays in registers under ``auto``: smaller than one
#: LUT-RAM column (16 x 16 bits), its address decoders and read mux would cost more than its flip-flops.
LINE_LOGIC_BELOW_BITS = 256


def parse_mem_style(value: object, where: str = "--mem-style") -> MemStyle:
    """The :class:`MemStyle` named ``value``; a one-line ConfigError naming ``where`` otherwise."""
    try:
        return MemStyle(value)
    except ValueError:
        raise ConfigError(f"{where}: {clip(value)}, expected one of {', '.join(MEM_STYLES)}") from None


def blocks(depth: int, width: int, family: str) -> int:
    """Block RAMs of ``family`` a ``depth`` x ``width`` memory occupies (its best aspect ratio)."""
    return min(-(-depth // d) * -(-width // w) for d, w in BLOCK_SHAPES[family])


def block_saves_logic(depth: int, width: int, family: str | None) -> bool:
    """Whether a written memory belongs in block RAM on ``family`` although it is below the ``auto``
    thresholds: the family has no LUT-RAM (so it would be about one logic cell per bit) and those
    cells outweigh the blocks it takes (:data:`LOGIC_CELLS_PER_BLOCK` each)."""
    if family is None or family in LUTRAM_FAMILIES or family not in BLOCK_SHAPES:
        return False
    return depth * width >= LOGIC_CELLS_PER_BLOCK * blocks(depth, width, family)


def resolve(style: MemStyle | str, depth: int, width: int, written: bool = False,
            family: str | None = None) -> MemStyle | None:
    """The style one memory of ``depth`` words x ``width`` bits gets: an explicit style as asked;
    ``auto``: block RAM when the memory is deep and large enough to fill blocks (the thresholds
    above), else for a ROM None -- no attribute, the synthesis tool's choice (LUTs for small ROMs)
    -- and for a ``written`` memory (a RAM) ``distributed``, LUT-RAM where the family has it, or block
    RAM where ``family`` (when given) has no LUT-RAM and the blocks cost less (:func:`block_saves_logic`)."""
    style = parse_mem_style(style)
    if style is not MemStyle.AUTO:
        return style
    if depth >= AUTO_BLOCK_MIN_DEPTH and depth * width >= AUTO_BLOCK_MIN_BITS:
        return MemStyle.BLOCK
    if written and block_saves_logic(depth, width, family):
        return MemStyle.BLOCK
    return MemStyle.DISTRIBUTED if written else None


def line_style(style: MemStyle | str, depth: int, width: int) -> MemStyle | None:
    """The style of a convolution line buffer (hw.conv): :func:`resolve`'s, except that ``auto`` keeps a
    tiny one (below :data:`LINE_LOGIC_BELOW_BITS`) in registers rather than leaving it to the tool."""
    got = resolve(style, depth, width)
    return MemStyle.LOGIC if got is None and depth * width < LINE_LOGIC_BELOW_BITS else got


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
