"""Memory styles: where a weight or threshold ROM goes (block RAM, distributed LUT-RAM or logic).

The choice is written as the synthesis attributes Yosys' ``memory_libmap`` honours
(``rom_style`` and ``ram_style``), so one Verilog file carries it to every family: SB_RAM40_4K on
ice40, DP16KD on ecp5, RAMB18/RAMB36 on xilinx for ``block``; LUT-RAM where the family has it
(ecp5 TRELLIS_DPR16X4, xilinx RAM64X1S/RAM32M...) for ``distributed``; plain LUTs and FFs for
``logic``. ``auto`` picks per memory by its size (see :func:`resolve`).
"""
from __future__ import annotations

from enum import StrEnum

from quantmodels.errors import ConfigError, clip


class MemStyle(StrEnum):
    """Where a ROM goes (``auto``: chosen per memory by :func:`resolve`)."""

    AUTO = "auto"
    BLOCK = "block"
    DISTRIBUTED = "distributed"
    LOGIC = "logic"


MEM_STYLES = tuple(MemStyle)
#: auto puts a ROM in block RAM from this depth on: the smallest block (SB_RAM40_4K) is 256
#: deep at 16 bits, so a shallower ROM wastes most of each block it occupies.
AUTO_BLOCK_MIN_DEPTH = 64
#: ... and from this many stored bits on: one SB_RAM40_4K (the smallest block of the three families).
AUTO_BLOCK_MIN_BITS = 4096


def parse_mem_style(value: object, where: str = "--mem-style") -> MemStyle:
    """The :class:`MemStyle` named ``value``; a one-line ConfigError naming ``where`` otherwise."""
    try:
        return MemStyle(value)
    except ValueError:
        raise ConfigError(f"{where}: {clip(value)}, expected one of {', '.join(MEM_STYLES)}") from None


def resolve(style: MemStyle | str, depth: int, width: int) -> MemStyle | None:
    """The style one ROM of ``depth`` words x ``width`` bits gets: an explicit style as asked;
    ``auto``: block RAM when the ROM is deep and large enough to fill blocks (the thresholds above),
    else None -- no attribute, the synthesis tool's own choice (LUTs for small ROMs)."""
    style = parse_mem_style(style)
    if style is not MemStyle.AUTO:
        return style
    if depth >= AUTO_BLOCK_MIN_DEPTH and depth * width >= AUTO_BLOCK_MIN_BITS:
        return MemStyle.BLOCK
    return None


def attrs(style: MemStyle | None) -> dict[str, str]:
    """Yosys attributes of a ROM in ``style`` (empty: no preference). ``logic`` is spelled
    ``logic`` for rom_style and ram_style alike (memory_libmap maps both to soft logic)."""
    if style is None:
        return {}
    return {"rom_style": str(style), "ram_style": str(style)}
