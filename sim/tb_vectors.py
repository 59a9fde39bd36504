"""cocotb test module for a combinational probe (:mod:`sim.comb`): applies every word of
$LOWBIT_STIM to ``x``, lets it settle, records ``y`` into $LOWBIT_RESP (hex, one per line)."""
from __future__ import annotations

import os

import cocotb
from cocotb.triggers import Timer


@cocotb.test()
async def apply_vectors(dut) -> None:
    """One settle step per vector; the comparison happens in Python afterwards."""
    with open(os.environ["LOWBIT_STIM"]) as f:
        words = [int(line, 16) for line in f if line.strip()]
    out = []
    for w in words:
        dut.x.value = w
        await Timer(1, unit="ns")
        out.append(int(dut.y.value))
    tmp = os.environ["LOWBIT_RESP"] + ".tmp"
    with open(tmp, "w") as f:
        f.write("".join(f"{v:x}\n" for v in out))
    os.replace(tmp, os.environ["LOWBIT_RESP"])
