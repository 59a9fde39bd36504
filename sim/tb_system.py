"""cocotb bridge run inside the simulator by :mod:`sim.system`: a TCP socket <-> the UART pins.

The host program (:mod:`lowbit.host`, the same code that talks to a board) connects with pyserial's
``socket://`` URL. Every byte it sends is driven onto ``rx`` bit by bit (start bit, 8 data bits LSB
first, stop bit, each ``divider`` clock cycles long); every byte the shell sends on ``tx`` is
sampled in the middle of each bit and sent back. Nothing here knows the protocol: framing, CRC and
error replies are the shell's job, checked by the host.

Simulated time advances one bit time per step while bytes are queued or the line was active within
``$LOWBIT_IDLE_BITS`` bit times (the shell's timeout window plus the network latency); after that
the bridge waits for the host without advancing time. Environment: ``LOWBIT_DIVIDER``,
``LOWBIT_IDLE_BITS``, ``LOWBIT_PORT_FILE`` (the listening port is written there),
``LOWBIT_RESULT`` (JSON: cycles, bytes each way, first/last active cycle, the cycle each
reply byte ended).
"""
from __future__ import annotations

import collections
import json
import os
import select
import socket

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer
from cocotb.utils import get_sim_time

CLOCK_NS = 10
ACCEPT_TIMEOUT_S = 120.0


def _cycle() -> int:
    return int(get_sim_time("ns")) // CLOCK_NS


def _write_json(path: str, doc: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


@cocotb.test()
async def serve(dut) -> None:
    """Bridge host bytes to the UART pins until the host closes the connection."""
    div = int(os.environ["LOWBIT_DIVIDER"])
    idle_bits = int(os.environ.get("LOWBIT_IDLE_BITS", "400"))
    bit_ns = div * CLOCK_NS
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    _write_json(os.environ["LOWBIT_PORT_FILE"], {"port": srv.getsockname()[1]})
    srv.settimeout(ACCEPT_TIMEOUT_S)
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.setblocking(False)
    stats = {"bytes_in": 0, "bytes_out": 0, "first_cycle": None, "last_cycle": 0, "framing_errors": 0,
             "out_cycles": []}
    last_active = [_cycle()]

    async def monitor_tx() -> None:
        """Sample every byte the shell sends and pass it to the host."""
        while True:
            await FallingEdge(dut.tx)  # start bit
            await Timer(bit_ns + bit_ns // 2, unit="ns")  # middle of data bit 0
            value = 0
            for i in range(8):
                value |= int(dut.tx.value) << i
                await Timer(bit_ns, unit="ns")
            if not int(dut.tx.value):
                stats["framing_errors"] += 1
            conn.setblocking(True)
            conn.sendall(bytes((value,)))
            conn.setblocking(False)
            stats["bytes_out"] += 1
            stats["last_cycle"] = last_active[0] = _cycle()
            stats["out_cycles"].append(stats["last_cycle"])

    cocotb.start_soon(monitor_tx())
    queue: collections.deque[int] = collections.deque()
    closed = False
    while True:
        try:
            data = conn.recv(65536)
            if not data:
                closed = True
            queue.extend(data)
        except BlockingIOError:
            pass
        if queue:
            byte = queue.popleft()
            if stats["first_cycle"] is None:
                stats["first_cycle"] = _cycle()
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                dut.rx.value = bit
                await Timer(bit_ns, unit="ns")
            stats["bytes_in"] += 1
            last_active[0] = _cycle()
        elif _cycle() - last_active[0] < idle_bits * div:
            await Timer(bit_ns, unit="ns")  # a reply may be on its way: let the hardware run
        elif closed:
            break
        else:
            select.select([conn], [], [], 0.05)  # nothing in flight: wait for the host, not the clock
    stats["cycles"] = _cycle()
    conn.close()
    srv.close()
    _write_json(os.environ["LOWBIT_RESULT"], stats)
