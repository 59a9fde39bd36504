"""ECP5 block RAM output registers (reports.ecp5_outreg): which flip-flops move into a DP16KD, which
never do, and that a real Yosys netlist so rewritten still places, routes and packs."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reports.ecp5_outreg import absorb_in_file, absorb_output_registers

CLK, CE, RST = 2, 3, 4  # net numbers of the hand-made netlists


def _ff(d: int, q: int, clk=CLK, lsr="0", ce=None) -> dict:
    params = {"CEMUX": "CE" if ce is not None else "1 ", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR",
              "REGSET": "RESET"}
    conn = {"CLK": [clk], "DI": [d], "LSR": [lsr], "Q": [q]}
    if lsr != "0":
        params["SRMODE"] = "LSR_OVER_CE"
    if ce is not None:
        conn["CE"] = [ce]
    return {"type": "TRELLIS_FF", "parameters": params, "connections": conn,
            "port_directions": {"CLK": "input", "DI": "input", "LSR": "input", "CE": "input", "Q": "output"}}


def _bram(width: int = 18, used: int = 4) -> tuple[dict, dict]:
    """A DP16KD whose first ``used`` read bits (port B; both halves when ``width`` is 36) each feed a
    plain register, and the netlist holding it."""
    conn = {"CLKA": [CLK] if width == 18 else ["0"], "CLKB": [CLK], "CEA": ["1"], "CEB": ["1"],
            "OCEA": ["1"] if width == 18 else ["0"], "OCEB": ["1"], "RSTA": ["0"], "RSTB": ["0"]}
    dirs = {k: "input" for k in conn}
    cells, net = {}, 100
    pins = [f"DOB{i}" for i in range(18)] + ([f"DOA{i}" for i in range(18)] if width == 36 else [])
    for k, pin in enumerate(pins):
        conn[pin] = [net]
        dirs[pin] = "output"
        if k < used:
            cells[f"q_TRELLIS_FF_Q_{k}"] = _ff(net, net + 1000)
        net += 1
    w = format(width, "032b")
    bram = {"type": "DP16KD", "connections": conn, "port_directions": dirs,
            "parameters": {"DATA_WIDTH_A": w, "DATA_WIDTH_B": w, "REGMODE_A": "NOREG", "REGMODE_B": "NOREG",
                           "CLKAMUX": "CLKA", "CLKBMUX": "CLKB"}}
    cells["rom"] = bram
    return bram, {"modules": {"top": {"attributes": {"top": 1}, "ports": {}, "cells": cells}}}


def test_plain_registers_move_into_the_block() -> None:
    bram, nl = _bram(used=5)
    res = absorb_output_registers(nl)
    assert (res.ports, res.flip_flops, res.skipped) == (1, 5, 0)
    cells = nl["modules"]["top"]["cells"]
    assert bram["parameters"]["REGMODE_B"] == "OUTREG" and bram["parameters"]["REGMODE_A"] == "NOREG"
    assert not [c for c in cells.values() if c["type"] == "TRELLIS_FF"]
    # each data pin now drives what its register drove
    assert [bram["connections"][f"DOB{i}"] for i in range(5)] == [[100 + i + 1000] for i in range(5)]
    assert bram["connections"]["DOB5"] == [105]  # an unused bit is left alone


def test_pseudo_dual_port_sets_both_halves() -> None:
    bram, nl = _bram(width=36, used=30)  # DOB0-17 and DOA0-11, all read on side B
    res = absorb_output_registers(nl)
    assert (res.ports, res.flip_flops) == (1, 30)
    assert bram["parameters"]["REGMODE_A"] == bram["parameters"]["REGMODE_B"] == "OUTREG"
    assert bram["connections"]["OCEB"] == ["1"]


def test_shared_clock_enable_becomes_the_output_enable() -> None:
    bram, nl = _bram(used=3)
    for c in nl["modules"]["top"]["cells"].values():
        if c["type"] == "TRELLIS_FF":
            c["parameters"]["CEMUX"] = "CE"
            c["connections"]["CE"] = [CE]
    assert absorb_output_registers(nl).ports == 1
    assert bram["connections"]["OCEB"] == [CE]


@pytest.mark.parametrize("spoil", ["reset", "fanout", "other_clock", "two_enables", "logic_load", "inverted_clock"])
def test_anything_but_a_plain_register_keeps_noreg(spoil: str) -> None:
    bram, nl = _bram(used=4)
    cells = nl["modules"]["top"]["cells"]
    ff = cells["q_TRELLIS_FF_Q_1"]
    if spoil == "reset":  # the block's reset would have to stand in for the register's: never
        cells["q_TRELLIS_FF_Q_1"] = _ff(101, 1101, lsr=RST)
    elif spoil == "fanout":  # the data bit is also used before the register
        cells["lut"] = {"type": "LUT4", "connections": {"A": [101], "Z": [7]}, "parameters": {},
                        "port_directions": {"A": "input", "Z": "output"}}
    elif spoil == "other_clock":
        ff["connections"]["CLK"] = [9]
    elif spoil == "two_enables":
        cells["q_TRELLIS_FF_Q_2"] = _ff(102, 1102, ce=CE)
    elif spoil == "logic_load":  # the data bit feeds logic, not a register
        del cells["q_TRELLIS_FF_Q_1"]
        cells["lut"] = {"type": "LUT4", "connections": {"A": [101], "Z": [7]}, "parameters": {},
                        "port_directions": {"A": "input", "Z": "output"}}
    elif spoil == "inverted_clock":
        ff["parameters"]["CLKMUX"] = "INV"
    before = copy.deepcopy(nl)
    res = absorb_output_registers(nl)
    assert (res.ports, res.flip_flops, res.skipped) == (0, 0, 1)
    assert nl == before


def test_unreadable_netlist_is_one_line(tmp_path) -> None:
    p = tmp_path / "netlist.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match=r"netlist\.json: not a readable Yosys JSON netlist"):
        absorb_in_file(p)
    for wrong in ("[1, 2]", '{"modules": 3}'):  # JSON, but not a netlist
        p.write_text(wrong)
        with pytest.raises(ValueError, match=r"netlist\.json: not a Yosys JSON netlist \(expected an object"):
            absorb_in_file(p)


# ------------------------------------------------------------------ real tools
ROM_WORDS = [(i * 2654435761) & 0xFFFFFFFFF for i in range(512)]  # 36-bit words, not a pattern Yosys folds


@pytest.fixture(scope="module")
def rom_netlist(tmp_path_factory):
    """A 512 x 36-bit ROM read synchronously into a reset-free register, synthesized by synth_ecp5."""
    from amaranth import Module, Signal
    from amaranth.back import verilog
    from amaranth.hdl import Elaboratable
    from amaranth.lib.memory import Memory

    from reports.synth import synthesize

    class RomReg(Elaboratable):
        def __init__(self):
            self.addr, self.q = Signal(9), Signal(36)

        def elaborate(self, platform):
            m = Module()
            m.submodules.rom = rom = Memory(shape=36, depth=512, init=ROM_WORDS)
            rp = rom.read_port(domain="sync")
            q = Signal(36, reset_less=True)
            m.d.comb += rp.addr.eq(self.addr)
            m.d.sync += q.eq(rp.data)
            m.d.comb += self.q.eq(q)
            return m

    d = tmp_path_factory.mktemp("outreg")
    top = RomReg()
    (d / "rom.v").write_text(verilog.convert(top, name="rom_reg", ports=[top.addr, top.q]))
    syn = synthesize(d / "rom.v", "rom_reg", "ecp5")
    assert syn.brams == 1
    return syn


def test_real_netlist_places_routes_and_packs(rom_netlist, tmp_path) -> None:
    """Yosys's wide ROM mapping (36-bit pseudo-dual-port) gets OUTREG, nextpnr places it with the
    block's registered timing and ecppack writes a bitstream for it."""
    from reports.pnr import DEVICES
    from sim.tools import nextpnr_cmd

    shutil.copyfile(rom_netlist.netlist_json, tmp_path / "netlist.json")
    res = absorb_in_file(tmp_path / "netlist.json")
    assert res.ports == 1 and res.flip_flops == 36, res
    doc = json.loads((tmp_path / "netlist.json").read_text())
    cells = next(iter(doc["modules"].values()))["cells"]
    assert not [c for c in cells.values() if c["type"] == "TRELLIS_FF"]
    r = subprocess.run(nextpnr_cmd("ecp5") + DEVICES["ecp5"]["25k"] + [
        "--json", "netlist.json", "--textcfg", "design.config", "--report", "report.json", "-q", "--freq", "100"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-800:]
    cfg = (tmp_path / "design.config").read_text()
    assert "OUTREG" in cfg, "the block RAM's REGMODE did not reach the bitstream configuration"
    r = subprocess.run([str(Path(sys.executable).parent / "yowasp-ecppack"), "design.config", "design.bit"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and (tmp_path / "design.bit").stat().st_size > 100_000, r.stderr[-800:]
