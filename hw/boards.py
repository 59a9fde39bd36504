"""Boards lowbit builds bitstreams for, from ``amaranth-boards`` (pins, clock, device, package).

Only what amaranth-boards does not say lives here: the FPGA family and the device's resource
budget (for ``lowbit fit``; from the vendors' data sheets). The pins, the board clock and the
nextpnr device options come from the amaranth-boards platform itself, so they exist once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io, wiring

from quantmodels.errors import ConfigError

from .shell import SystemShell


@dataclass(frozen=True)
class Budget:
    """Device resources (data sheet): 4-input LUTs, block RAMs, DSP multipliers."""

    luts: int
    brams: int
    dsps: int


@dataclass(frozen=True)
class Board:
    """One supported board: its amaranth-boards platform, family and resource budget."""

    name: str
    title: str
    family: str  #: "ice40" or "ecp5": the synthesis target and nextpnr flavour
    platform: Callable[[], object]  #: amaranth-boards platform class (instantiated per build)
    budget: Budget

    def make_platform(self):
        """A fresh amaranth-boards platform object."""
        return self.platform()

    @property
    def clock_hz(self) -> float:
        """The board's default clock (from amaranth-boards)."""
        return float(self.make_platform().default_clk_frequency)


def _icebreaker():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    return ICEBreakerPlatform()


def _ulx3s_85f():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    return ULX3S_85F_Platform()


#: iCE40 UP5K: 5,280 LUT4, 30 EBR (4 kbit), 8 SB_MAC16 (iCE40 UltraPlus family data sheet).
#: ECP5 LFE5U-85F: 83,640 LUT4, 208 EBR (18 kbit), 156 MULT18X18 (ECP5 family data sheet).
BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("icebreaker", "iCEBreaker (iCE40 UP5K)", "ice40", _icebreaker, Budget(5280, 30, 8)),
    Board("ulx3s-85f", "ULX3S 85F (ECP5 LFE5U-85F)", "ecp5", _ulx3s_85f, Budget(83640, 208, 156)),
)}


def board(name: str) -> Board:
    """The board called ``name``; a one-line error listing the known ones otherwise."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ConfigError(f"--board: {name[:60]!r}, expected one of {', '.join(BOARDS)}") from None


class BoardTop(Elaboratable):
    """The shell around ``net`` wired to the board's first UART; the clock is the board's default
    clock (amaranth-boards makes the ``sync`` domain from it, with a power-on reset)."""

    def __init__(self, net: wiring.Component, divider: int):
        self.shell = SystemShell(net, divider)

    def elaborate(self, platform):
        m = Module()
        m.submodules.shell = shell = self.shell
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx = io.Buffer("o", uart.tx)
        m.d.comb += [shell.rx.eq(rx.i), tx.o.eq(shell.tx)]
        return m
