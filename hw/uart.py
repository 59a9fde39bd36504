"""Bit-level UART receiver and transmitter: 8 data bits, no parity, 1 stop bit, LSB first.

The bit time is ``divider`` clock cycles (:func:`hw.protocol.baud_divider` picks it from the
board clock and the baud rate). The receiver synchronises the line with two flip-flops, checks
the start bit at half a bit time and samples every data bit in its middle; a byte whose stop bit
is low (framing error) is dropped, and the framed protocol above notices the missing byte.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def _check_divider(divider: int) -> None:
    if not isinstance(divider, int) or divider < 4:
        raise ValueError(f"uart divider: {divider!r}, expected an integer >= 4 clock cycles per bit")


class UARTRx(wiring.Component):
    """Receiver: ``data`` is valid for the one cycle ``valid`` is high (no back-pressure: a UART
    cannot be stopped, the consumer must take every byte)."""

    def __init__(self, divider: int):
        _check_divider(divider)
        self.divider = divider
        super().__init__({"rx": In(1, init=1), "data": Out(8), "valid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        div = self.divider
        s0, line = Signal(init=1), Signal(init=1)  # two-flop synchroniser of the asynchronous pin
        m.d.sync += [s0.eq(self.rx), line.eq(s0)]
        count = Signal(range(div))
        bit = Signal(range(8))
        shift = Signal(8)
        m.d.sync += self.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += count.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):  # re-check the start bit in its middle: a glitch is no byte
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Elif(~line):
                    m.d.sync += [count.eq(div - 1), bit.eq(0)]
                    m.next = "DATA"
                with m.Else():
                    m.next = "IDLE"
            with m.State("DATA"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), count.eq(div - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Else():
                    with m.If(line):  # a low stop bit is a framing error: the byte is dropped
                        m.d.sync += [self.data.eq(shift), self.valid.eq(1)]
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """Transmitter with a valid/ready byte stream: a byte is taken when ``valid & ready``."""

    def __init__(self, divider: int):
        _check_divider(divider)
        self.divider = divider
        super().__init__({"tx": Out(1, init=1), "data": In(8), "valid": In(1), "ready": Out(1)})

    def elaborate(self, platform):
        m = Module()
        div = self.divider
        frame = Signal(10, init=0x3FF)  # stop bit, 8 data bits, start bit (sent LSB first)
        bits = Signal(range(11))
        count = Signal(range(div))
        m.d.comb += [self.ready.eq(bits == 0), self.tx.eq(frame[0])]
        with m.If(self.valid & self.ready):
            m.d.sync += [frame.eq((1 << 9) | (self.data << 1)), bits.eq(10), count.eq(div - 1)]
        with m.Elif(bits != 0):
            with m.If(count != 0):
                m.d.sync += count.eq(count - 1)
            with m.Else():
                m.d.sync += [frame.eq((1 << 9) | (frame >> 1)), bits.eq(bits - 1), count.eq(div - 1)]
        return m
