"""cocotb test module run inside the simulator by :mod:`sim.regression`.

Drives clock and reset, pulses ``start`` and awaits ``done`` once: the harness streams the
whole batch itself. Results (cycles, latency, outputs seen) go to the JSON file named by
$LOWBIT_RESULT; the responses were written by the harness with $writememh.
"""
from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout

CLOCK_NS = 10


@cocotb.test()
async def run_batch(dut) -> None:
    """Stream the batch loaded by the harness and record the cycle counts."""
    max_cycles = int(os.environ.get("LOWBIT_MAX_CYCLES", "100000000"))
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.start.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    dut.start.value = 1
    await with_timeout(RisingEdge(dut.done), max_cycles * CLOCK_NS, "ns")
    await ClockCycles(dut.clk, 2)  # let the $writememh edge happen
    result = {
        "cycles": int(dut.cycles.value),
        "first_latency": int(dut.first_latency.value),
        "n_out": int(dut.n_out.value),
    }
    path = os.environ.get("LOWBIT_RESULT")
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f)
        os.replace(tmp, path)
