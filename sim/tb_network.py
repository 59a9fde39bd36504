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
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout

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


@cocotb.test(skip=os.environ.get("LOWBIT_STIM") is None)
async def run_naive(dut) -> None:
    """Reference only: Python drives and samples the bare network once per cycle (slow)."""
    with open(os.environ["LOWBIT_STIM"]) as f:
        words = [int(line, 16) for line in f if line.strip()]
    n = int(os.environ["LOWBIT_N"])
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.out_ready.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    i, got, cycles = 0, [], 0
    while len(got) < n:
        await FallingEdge(dut.clk)  # mid-cycle: drive inputs and sample the handshakes
        cycles += 1
        dut.in_valid.value = int(i < n)
        if i < n:
            dut.in_data.value = words[i]
        await cocotb.triggers.ReadOnly()
        if int(dut.out_valid.value):
            got.append((int(dut.out_logits.value) << len(dut.out_class)) | int(dut.out_class.value))
        if i < n and int(dut.in_ready.value):
            i += 1
    width = (len(dut.out_logits) + len(dut.out_class) + 3) // 4
    with open(os.environ["LOWBIT_RESP"], "w") as f:
        f.write("\n".join(f"{w:0{width}x}" for w in got) + "\n")
    with open(os.environ["LOWBIT_RESULT"], "w") as f:
        json.dump({"cycles": cycles}, f)
