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

    def record(self) -> dict:
        """What a placement or bitstream record keeps: ports switched and flip-flops absorbed."""
        return {"ports": self.ports, "flip_flops": self.flip_flops}


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


def _int_param(cell: dict, name: str, default: int) -> int:
    """A Yosys JSON integer parameter (written as a binary string) or ``default``."""
    v = cell.get("parameters", {}).get(name)
    if isinstance(v, int):
        return v
    try:
        return int(str(v).strip(), 2)
    except ValueError:
        return default


def _read_ports(bram: dict) -> list[tuple[str, str, list[str]]]:
    """(side whose clock and enables read, sides whose REGMODE the port sets, data pins) of each read
    port. A 36-bit pseudo-dual-port block (``DATA_WIDTH_A`` = 36, Yosys's wide ROM/RAM mapping) reads
    all 36 bits on side B: DOB0-17 and DOA0-17 share CLKB, OCEB and both REGMODEs (as nextpnr's own
    PDPW16KD conversion sets them)."""
    if _int_param(bram, "DATA_WIDTH_A", 18) == 36:
        return [("B", "AB", [f"DOB{i}" for i in range(DATA_BITS)] + [f"DOA{i}" for i in range(DATA_BITS)])]
    return [(side, side, [f"DO{side}{i}" for i in range(DATA_BITS)]) for side in "AB"]


def _registers_after(pins: list[str], bram: dict, cells: dict, loads: dict, clock) -> tuple[list, set] | None:
    """((pin, flip-flop name) for every used data pin, their clock enables), or None when a used pin
    drives anything but exactly one plain flip-flop on ``clock``."""
    taken, enables = [], set()
    for pin in pins:
        bits = bram["connections"].get(pin)
        if not bits or not loads.get(bits[0]):
            continue  # an unused data bit
        sinks = loads[bits[0]]
        name, sink_pin = sinks[0]
        ff = cells.get(name) if name else None
        if len(sinks) != 1 or sink_pin != "DI" or ff is None or ff.get("type") != FF:
            return None
        plain, ce = _plain_register(ff, clock)
        if not plain:
            return None
        enables.add(ce)
        taken.append((pin, name))
    return taken, enables


def absorb_output_registers(netlist: dict) -> OutregResult:
    """Rewrite ``netlist`` (a Yosys JSON netlist of ECP5 cells) in place: every DP16KD read port
    whose data bits each feed exactly one plain flip-flop gets ``REGMODE = "OUTREG"`` and those
    flip-flops are removed. Returns the counts."""
    ports = ffs = skipped = 0
    for module in netlist.get("modules", {}).values():
        cells = module.get("cells", {})
        loads = _loads(module)
        for bram in [c for c in cells.values() if c.get("type") == BRAM]:
            cn = bram["connections"]
            for side, sides, pins in _read_ports(bram):
                if any(_param(bram, f"REGMODE_{s}", "NOREG") != "NOREG" for s in sides):
                    continue
                if _param(bram, f"CLK{side}MUX", f"CLK{side}") != f"CLK{side}" or cn.get(f"OCE{side}") != ["1"]:
                    continue  # an inverted clock or a used output enable: leave the port as it is
                found = _registers_after(pins, bram, cells, loads, cn.get(f"CLK{side}"))
                if found is None or len(found[1]) > 1:
                    skipped += 1
                    continue
                taken, enables = found
                if not taken:
                    continue
                for pin, name in taken:
                    cn[pin] = list(cells[name]["connections"]["Q"])
                    del cells[name]
                ce = enables.pop()
                for s in sides:  # PDP: OCEA too, so the register never depends on which enable the part uses
                    cn[f"OCE{s}"] = [ce]
                    bram["parameters"][f"REGMODE_{s}"] = "OUTREG"
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
    if not isinstance(doc, dict) or not isinstance(doc.get("modules", {}), dict):
        raise ValueError(f"{p}: not a Yosys JSON netlist (expected an object with a 'modules' object)")
    res = absorb_output_registers(doc)
    if res.ports:
        atomic_write_text(p, json.dumps(doc))
    return res
