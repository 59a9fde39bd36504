"""ECP5 block RAM output registers: move the flip-flops that follow a DP16KD into the block.

A DP16KD in its default ``NOREG`` mode presents read data 5.6-5.8 ns after the clock (nextpnr's
ECP5 timing), so a block RAM feeding a fabric register caps the clock near 120-135 MHz whatever the
logic does. The block has its own output register (``REGMODE_x = "OUTREG"``) with a much shorter
clock-to-out, but Yosys's ECP5 memory mapping never uses it. This pass does, on the JSON netlist
``synth_ecp5`` writes, before nextpnr reads it.

It is an exact rewrite, never a retiming: a port is changed only when every read data bit it
drives goes to exactly one flip-flop and nothing else, and those flip-flops all share the port's
clock, have no set/reset (so the block's reset never has to stand in for theirs) and share one
clock enable (which becomes the port's output clock enable ``OCEx``). Those flip-flops are deleted
and the port's data bits drive their outputs: the same values on the same cycles.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from quantmodels.atomic import atomic_write_text

BRAM = "DP16KD"
FF = "TRELLIS_FF"
DATA_BITS = 18  # DOA0..DOA17, DOB0..DOB17


@dataclass(frozen=True)
class OutregResult:
    """What :func:`absorb_output_registers` did to a netlist."""
    ports: int  #: block RAM ports switched to OUTREG
    flip_flops: int  #: fabric flip-flops removed (each now the block's own register)
    skipped: int  #: read ports in use that kept NOREG (their data is not a plain register's input)


def _param(cell: dict, name: str, default: str = "") -> str:
    return str(cell.get("parameters", {}).get(name, default)).strip()


def _loads(module: dict) -> dict:
    """Every input pin (and module output port) each net bit reaches."""
    loads = defaultdict(list)
    for name, cell in module["cells"].items():
        dirs = cell.get("port_directions", {})
        for pin, bits in cell["connections"].items():
            if dirs.get(pin) != "output":
                for b in bits:
                    loads[b].append((name, pin))
    for pname, port in module.get("ports", {}).items():
        if port.get("direction") != "input":
            for b in port["bits"]:
                loads[b].append((None, pname))
    return loads


def _plain_register(ff: dict, clock) -> tuple[bool, object]:
    """(whether ``ff`` is a rising-edge flip-flop on ``clock`` without set/reset, its clock enable)."""
    cn = ff["connections"]
    if _param(ff, "CLKMUX", "CLK") != "CLK" or cn.get("CLK") != clock:
        return False, None
    if cn.get("LSR", ["0"]) != ["0"] or _param(ff, "LSRMUX", "LSR") != "LSR" or "M" in cn:
        return False, None
    cemux = _param(ff, "CEMUX", "1")
    if cemux == "1":
        return True, "1"
    if cemux == "CE" and "CE" in cn:
        return True, cn["CE"][0]
    return False, None


def absorb_output_registers(netlist: dict) -> OutregResult:
    """Rewrite ``netlist`` (a Yosys JSON netlist of ECP5 cells) in place: every DP16KD read port
    whose data bits each feed exactly one plain flip-flop gets ``REGMODE_x = "OUTREG"`` and those
    flip-flops are removed. Returns the counts."""
    ports = ffs = skipped = 0
    for module in netlist.get("modules", {}).values():
        cells = module.get("cells", {})
        loads = _loads(module)
        for bram in [c for c in cells.values() if c.get("type") == BRAM]:
            cn = bram["connections"]
            for side in "AB":
                if _param(bram, f"REGMODE_{side}", "NOREG") != "NOREG" or _param(bram, f"CLK{side}MUX", f"CLK{side}") != f"CLK{side}":
                    continue
                clock = cn.get(f"CLK{side}")
                taken, enables, ok = [], set(), True
                for i in range(DATA_BITS):
                    bits = cn.get(f"DO{side}{i}")
                    if not bits or not loads.get(bits[0]):
                        continue  # an unused data bit
                    sinks = loads[bits[0]]
                    name, pin = sinks[0]
                    ff = cells.get(name) if name else None
                    if len(sinks) != 1 or pin != "DI" or ff is None or ff.get("type") != FF:
                        ok = False
                        break
                    plain, ce = _plain_register(ff, clock)
                    if not plain:
                        ok = False
                        break
                    enables.add(ce)
                    taken.append((i, name))
                if not ok:
                    skipped += 1
                    continue
                if not taken:
                    continue
                if len(enables) != 1 or not isinstance(cn.get(f"OCE{side}"), list) or cn[f"OCE{side}"] != ["1"]:
                    skipped += 1
                    continue
                for i, name in taken:
                    cn[f"DO{side}{i}"] = list(cells[name]["connections"]["Q"])
                    del cells[name]
                ce = enables.pop()
                cn[f"OCE{side}"] = [ce]
                bram["parameters"][f"REGMODE_{side}"] = "OUTREG"
                ports += 1
                ffs += len(taken)
    return OutregResult(ports, ffs, skipped)


def absorb_in_file(path: str | Path) -> OutregResult:
    """:func:`absorb_output_registers` on a JSON netlist file, rewritten atomically."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{p}: not a readable Yosys JSON netlist ({e})") from None
    res = absorb_output_registers(doc)
    if res.ports:
        atomic_write_text(p, json.dumps(doc))
    return res
