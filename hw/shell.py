"""I/O shell: UART in, framed requests to the network, framed replies out (protocol: :mod:`hw.protocol`).

The shell knows the network only by its public stream ports (``in_valid/in_ready/in_data``,
``out_valid/out_ready/out_class/out_logits``, as :class:`hw.network.NetworkTop` has them), so it
wraps any network top, whatever its internals. Receive and transmit run side by side (full
duplex): the next request may arrive while a reply is being sent. Replies leave in request order:
an error reply waits until every image already in the network has been answered.
"""
from __future__ import annotations

from contextlib import contextmanager

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from quantmodels.errors import ConfigError

from .protocol import REPLY_HEADER, REQUEST_HEADER, TIMEOUT_BYTES, Status, byte_count
from .uart import UARTRx, UARTTx

MAX_IN_FLIGHT = 255


def _crc_step_matrix() -> list[tuple[list[int], list[int]]]:
    """For each output bit of one CRC byte step: the crc bits and byte bits it XORs.

    The CRC is linear over GF(2), so it is found by pushing unit vectors through the reference
    (hw.protocol.crc16); the hardware is then one XOR per output bit, not 8 nested muxes."""
    from .protocol import crc16

    def step(c: int, b: int) -> int:
        # crc16 starts from c and appends b; linear part only: subtract the zero response
        return crc16(bytes((b,)), c) ^ crc16(bytes((0,)), 0)

    cols_c = [step(1 << i, 0) for i in range(16)]
    cols_b = [step(0, 1 << i) for i in range(8)]
    return [([i for i in range(16) if cols_c[i] >> o & 1], [i for i in range(8) if cols_b[i] >> o & 1])
            for o in range(16)]


_CRC_MATRIX = _crc_step_matrix()


def crc16_byte(crc: Value, byte: Value) -> Value:
    """Combinational CRC-16/CCITT update of ``crc`` by one byte, as hw.protocol.crc16 (XOR network)."""
    bits = []
    for cs, bs in _CRC_MATRIX:
        terms = [crc[i] for i in cs] + [byte[i] for i in bs]
        v = terms[0]
        for t in terms[1:]:
            v = v ^ t
        bits.append(v)
    return Cat(*bits)


class SystemShell(wiring.Component):
    """UART shell around ``net``: pins ``rx`` (in) and ``tx`` (out), one clock domain ``sync``.

    ``divider`` is the UART bit time in clock cycles; ``timeout_bytes`` byte times of silence inside a
    frame make the shell reply TIMEOUT and drop the frame."""

    def __init__(self, net: wiring.Component, divider: int, timeout_bytes: int = TIMEOUT_BYTES):
        self.net = net
        self.divider = divider
        self.timeout_bytes = timeout_bytes
        self.in_width = len(net.in_data)
        self.class_width = len(net.out_class)
        self.logits_width = len(net.out_logits)
        self.in_bytes = byte_count(self.in_width)
        self.out_bytes = byte_count(self.class_width + self.logits_width)
        if self.in_bytes > 0xFFFF or self.out_bytes > 0xFF:  # LEN fields: 16 bits in, replies send LEN_HI = 0
            raise ConfigError(f"shell: {self.in_bytes} image bytes and {self.out_bytes} reply bytes, expected at most "
                              "65535 and 255")
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.net = net = self.net
        m.submodules.uart_rx = urx = UARTRx(self.divider)
        m.submodules.uart_tx = utx = UARTTx(self.divider)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        nb, ob = self.in_bytes, self.out_bytes
        byte, got = urx.data, urx.valid

        # ---- receive side: hunt the header, collect LEN, payload, CRC; hand the image over ----
        image = Signal(nb * 8)
        length_lo = Signal(8)
        count = Signal(range(max(nb, 2)))
        crc = Signal(16)
        crc_hi = Signal(8)
        limit = self.timeout_bytes * 10 * self.divider
        silence = Signal(range(limit + 1))
        in_frame = Signal()  # inside a frame after its header: silence counts towards TIMEOUT
        timed_out = Signal()
        err_req = Signal()  # an error reply is wanted (status in err_code)
        err_code = Signal(8)
        in_flight = Signal(range(MAX_IN_FLIGHT + 1))
        tx_idle = Signal()
        m.d.comb += [net.in_data.eq(image[:self.in_width]), timed_out.eq(silence == limit)]
        with m.If(in_frame & ~got):
            m.d.sync += silence.eq(silence + 1)
        with m.Else():
            m.d.sync += silence.eq(0)

        def fail(code: Status) -> None:
            m.d.sync += err_code.eq(int(code))
            m.next = "ERROR"

        @contextmanager
        def frame_byte():
            """A state inside a frame: its body runs on the next byte; silence fails the frame."""
            m.d.comb += in_frame.eq(1)
            with m.If(got):
                yield
            with m.Elif(timed_out):
                fail(Status.TIMEOUT)

        with m.FSM(name="rx_fsm"):
            with m.State("HDR0"):
                with m.If(got & (byte == REQUEST_HEADER[0])):
                    m.next = "HDR1"
            with m.State("HDR1"):
                with m.If(got):
                    with m.If(byte == REQUEST_HEADER[1]):
                        m.d.sync += crc.eq(0xFFFF)
                        m.next = "LEN0"
                    with m.Elif(byte != REQUEST_HEADER[0]):
                        m.next = "HDR0"
            with m.State("LEN0"):
                with frame_byte():
                    m.d.sync += [length_lo.eq(byte), crc.eq(crc16_byte(crc, byte))]
                    m.next = "LEN1"
            with m.State("LEN1"):
                with frame_byte():
                    m.d.sync += [crc.eq(crc16_byte(crc, byte)), count.eq(0)]
                    with m.If(Cat(length_lo, byte) == nb):
                        m.next = "PAYLOAD"
                    with m.Else():  # LEN is checked before the payload: a wrong one is not waited out
                        fail(Status.BAD_LENGTH)
            with m.State("PAYLOAD"):
                with frame_byte():
                    # bytes arrive little-endian: shift down, the newest byte enters at the top
                    m.d.sync += [image.eq(Cat(image[8:], byte)), crc.eq(crc16_byte(crc, byte)),
                                 count.eq(count + 1)]
                    with m.If(count == nb - 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                with frame_byte():
                    m.d.sync += crc_hi.eq(byte)
                    m.next = "CRC1"
            with m.State("CRC1"):
                with frame_byte():
                    with m.If(Cat(byte, crc_hi) == crc):
                        m.next = "SEND"
                    with m.Else():
                        fail(Status.BAD_CRC)
            with m.State("SEND"):  # bytes arriving now are dropped: the host waits for replies
                m.d.comb += net.in_valid.eq(1)
                with m.If(net.in_ready):
                    m.next = "HDR0"
            with m.State("ERROR"):  # earlier images are answered first, so replies stay in order
                m.d.comb += err_req.eq((in_flight == 0) & tx_idle)
                with m.If(err_req):
                    m.next = "HDR0"

        # ---- transmit side: header, status, LEN, payload, CRC (big-endian) ----
        status = Signal(8)
        has_payload = Signal()
        out = Signal(ob * 8)
        tcount = Signal(range(max(ob, 2)))
        tcrc = Signal(16)
        tx_byte = Signal(8)
        m.d.comb += utx.data.eq(tx_byte)
        take = utx.valid & utx.ready
        accept_out = Signal()

        def send(value, nxt, crc_it: bool = True) -> None:
            m.d.comb += [utx.valid.eq(1), tx_byte.eq(value)]
            with m.If(take):
                if crc_it:
                    m.d.sync += tcrc.eq(crc16_byte(tcrc, tx_byte))
                m.next = nxt

        with m.FSM(name="tx_fsm"):
            with m.State("IDLE"):
                m.d.comb += tx_idle.eq(1)
                with m.If(err_req):
                    m.d.sync += [status.eq(err_code), has_payload.eq(0)]
                    m.next = "HDR0"
                with m.Elif(net.out_valid):
                    m.d.comb += [net.out_ready.eq(1), accept_out.eq(1)]
                    m.d.sync += [status.eq(int(Status.OK)), has_payload.eq(1),
                                 out.eq(Cat(net.out_class, net.out_logits))]
                    m.next = "HDR0"
            with m.State("HDR0"):
                send(REPLY_HEADER[0], "HDR1", crc_it=False)
            with m.State("HDR1"):
                send(REPLY_HEADER[1], "STATUS", crc_it=False)
                m.d.sync += tcrc.eq(0xFFFF)
            with m.State("STATUS"):
                send(status, "LEN0")
            with m.State("LEN0"):
                send(Mux(has_payload, ob, 0), "LEN1")
            with m.State("LEN1"):  # replies are shorter than 256 bytes
                send(0, "PAYLOAD")
                m.d.sync += tcount.eq(0)
            with m.State("PAYLOAD"):
                with m.If(~has_payload):
                    m.next = "CRC0"
                with m.Else():
                    send(out[:8], "CRC0")
                    with m.If(take):
                        m.d.sync += [tcount.eq(tcount + 1), out.eq(out >> 8)]
                        with m.If(tcount != ob - 1):
                            m.next = "PAYLOAD"
            with m.State("CRC0"):
                send(tcrc[8:], "CRC1", crc_it=False)
            with m.State("CRC1"):
                send(tcrc[:8], "IDLE", crc_it=False)

        # images inside the network: +1 when one enters, -1 when its result leaves
        entered = net.in_valid & net.in_ready
        with m.If(entered & ~accept_out):
            m.d.sync += in_flight.eq(in_flight + 1)
        with m.Elif(accept_out & ~entered):
            m.d.sync += in_flight.eq(in_flight - 1)
        return m



SYSTEM_TOP = "lowbit_system"


def system_verilog(net: wiring.Component, divider: int, top_name: str = SYSTEM_TOP) -> str:
    """Verilog of the shell around ``net`` with ports ``clk, rst, rx, tx`` (for simulation; boards
    elaborate :class:`SystemShell` through their Amaranth platform instead)."""
    from amaranth.back import verilog

    return verilog.convert(SystemShell(net, divider), name=top_name, emit_src=False)
