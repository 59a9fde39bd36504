"""Timing from real place-and-route: nextpnr-ice40 / nextpnr-ecp5 (YoWASP) fmax.

The network's stream ports are far wider than any package has pins, so place-and-route
runs on a small shell: ``in_data`` is shifted in one bit per cycle and the outputs are
XOR-reduced into one registered pin. The shell adds a shift register but keeps every
network bit observable, so nothing is optimised away.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path

from quantmodels.atomic import atomic_write_json, atomic_write_text
from sim.tools import ToolError, cache_dir, nextpnr_cmd, tool_versions

from .ecp5_outreg import absorb_in_file
from .synth import SynthResult, error_line, synthesize

SHELL_TOP = "lowbit_pnr_shell"
#: Part of the cache key: results cached before a field was added are not reused (3: critical_path;
#: 4: ECP5 block RAM output registers, reports.ecp5_outreg).
PNR_RECORD_VERSION = "4"


class PnrFamily(StrEnum):
    """FPGA families nextpnr places and routes here."""

    ICE40 = "ice40"
    ECP5 = "ecp5"


#: nextpnr device options per family, smallest first: the first one the design fits is used.
#: ECP5 needs a package; with no LPF nextpnr places the shell's five pins itself.
DEVICES = {
    PnrFamily.ICE40: {"up5k": ["--up5k", "--package", "sg48"],
              "hx8k": ["--hx8k", "--package", "ct256"]},
    PnrFamily.ECP5: {"25k": ["--25k", "--package", "CABGA256"],
             "45k": ["--45k", "--package", "CABGA256"],
             "85k": ["--85k", "--package", "CABGA381"]},
}
#: What each device offers, in the units reports.synth counts (datasheets: iCE40 UltraPlus and
#: LP/HX family data sheets, ECP5 family data sheet): logic cells (one LUT4 and one FF each),
#: block RAMs (SB_RAM40_4K / DP16KD) and multipliers (SB_MAC16 / MULT18X18D). Used to say in
#: plain words which resource does not fit, before nextpnr spends minutes finding out.
CAPACITY = {
    PnrFamily.ICE40: {"up5k": {"luts": 5280, "ffs": 5280, "brams": 30, "dsps": 8},
                      "hx8k": {"luts": 7680, "ffs": 7680, "brams": 32, "dsps": 0}},
    PnrFamily.ECP5: {"25k": {"luts": 24288, "ffs": 24288, "brams": 56, "dsps": 28},
                     "45k": {"luts": 43848, "ffs": 43848, "brams": 108, "dsps": 72},
                     "85k": {"luts": 83640, "ffs": 83640, "brams": 208, "dsps": 156}},
}
#: How each family's data sheet names the resources of CAPACITY.
RESOURCE_NAMES = {
    PnrFamily.ICE40: {"luts": "LUT4", "ffs": "flip-flops", "brams": "SB_RAM40_4K", "dsps": "SB_MAC16"},
    PnrFamily.ECP5: {"luts": "LUT4", "ffs": "flip-flops", "brams": "DP16KD", "dsps": "MULT18X18D"},
}
FAMILY_NAMES = {PnrFamily.ICE40: "iCE40", PnrFamily.ECP5: "ECP5"}
ICE40_DEVICES = DEVICES[PnrFamily.ICE40]  #: kept for callers of the ice40-only API
PNR_FAMILIES = tuple(PnrFamily)


@dataclass(frozen=True)
class PnrResult:
    """Place-and-route outcome for one device (MEASURED by nextpnr)."""

    device: str
    fmax_mhz: float | None  #: None if the design did not fit or route
    fits: bool
    note: str = ""  #: nextpnr's error line per device tried (raw; the whole output is in ``log``)
    seconds: float = 0.0
    status: str = ""  #: plain words for a reader: "fits HX8K at 24 MHz", "does not fit any iCE40: ..."
    log: str | None = None  #: nextpnr's output of the failed attempts
    critical_path: dict | None = None  #: :func:`critical_path_summary` of nextpnr's worst path
    #: ECP5: block RAM read ports given their own output register and the flip-flops that became it
    #: (reports.ecp5_outreg, applied to the netlist before nextpnr)
    bram_outreg: dict | None = None

    def to_json(self) -> dict:
        return asdict(self)


#: Cell-name suffixes Yosys/nextpnr append to the register a hw signal became (``acc0_TRELLIS_FF_Q_3``,
#: ``got_SB_DFFESR_Q_1_D_SB_LUT4_O_LC``, an iCE40 logic cell packing the register's LUT): cut off, the
#: rest is the Amaranth signal's hierarchical name.
_FF_SUFFIX = re.compile(r"_(TRELLIS_FF|SB_DFF[A-Z]*|FD[A-Z]*)_Q(_\d+)?(_\w*)?$")
#: Output ports of a carry step (ECP5 CCU2C, iCE40 SB_CARRY): counted as carry hops, not logic levels.
_CARRY_OUT = ("FCO", "CO", "COUT")


def _signal(cell: str) -> str:
    """The hw signal a register cell came from (its name without the FF suffix)."""
    return _FF_SUFFIX.sub("", cell)


def critical_path_summary(report: dict) -> dict | None:
    """A short summary of nextpnr's worst path (``--report``'s ``critical_paths``, the one with the
    largest total delay): start and end cell, the hw signals they are (net driven by the start,
    register the end writes), logic levels (LUT/BRAM/DSP steps; carry hops counted apart), the
    path's ns, the share of routing, and the largest single steps. None when the report has none."""
    paths = [p for p in report.get("critical_paths", []) if p.get("path")]
    # the register-to-register paths set fmax; a pin's path (``<async>``) is listed too, but is the
    # shell's, and only where no clocked path is reported is it the one to show
    clocked = [p for p in paths if "edge" in str(p.get("from", "")) and "edge" in str(p.get("to", ""))]
    paths = clocked or paths
    if not paths:
        return None
    path = max(paths, key=lambda p: sum(s.get("delay", 0.0) for s in p["path"]))["path"]
    total = sum(s.get("delay", 0.0) for s in path)
    routing = sum(s.get("delay", 0.0) for s in path if s.get("type") == "routing")
    logic = [s for s in path if s.get("type") == "logic"]
    carry = [s for s in logic if s.get("to", {}).get("port") in _CARRY_OUT]
    start, end = path[0].get("from", {}), path[-1].get("to", {})
    first_net = next((s.get("net", "") for s in path if s.get("type") == "routing"), "")
    worst = sorted(path, key=lambda s: -s.get("delay", 0.0))[:3]
    return {
        "ns": round(total, 2),
        "from_cell": start.get("cell", ""), "from_port": start.get("port", ""), "from_net": first_net,
        # a register: its hw signal; anything else (a block RAM, a multiplier): cell and port
        "from_signal": (_signal(start.get("cell", "")) if _FF_SUFFIX.search(start.get("cell", ""))
                        else f"{start.get('cell', '')}.{start.get('port', '')}"),
        "to_cell": end.get("cell", ""), "to_signal": _signal(end.get("cell", "")),
        "logic_levels": len(logic) - len(carry), "carry_hops": len(carry),
        "routing_pct": round(100 * routing / total, 1) if total else 0.0,
        "clk_to_q_ns": round(sum(s.get("delay", 0.0) for s in path if s.get("type") == "clk-to-q"), 2),
        "worst_steps": [f"{s.get('type')} {s.get('delay', 0.0):.2f} ns "
                        f"{s.get('net') or s.get('to', {}).get('cell', '')}"[:160] for s in worst],
    }


def describe_critical_path(cp: dict | None) -> str:
    """One line for a reader: 'dut.fc0.core.wrom.0.11.DOA2 -> dut.fc0.core.pe12_l2_1: 13.59 ns, 7 logic
    levels + 0 carry hops, 46.6 % routing (clock-to-out 5.61 ns)'."""
    if not cp:
        return "no critical path in nextpnr's report"
    return (f"{cp['from_signal'][:70]} -> {cp['to_signal'][:70]}: {cp['ns']} ns, {cp['logic_levels']} logic levels + "
            f"{cp['carry_hops']} carry hops, {cp['routing_pct']:g} % routing (clock-to-out {cp['clk_to_q_ns']} ns)")


#: Longest flip-flop chain the shell may form. Yosys's techmap orders cells with a recursive
#: depth-first TopoSort (one stack frame per cell along a path), and YoWASP's WASM stack is small:
#: a 6,272-flip-flop shift register (the int8 TFC's 784 x 8-bit input) crashed it with "wasm trap:
#: call stack exhausted", while 784 (the W1A1 TFC's input) passed. 256 keeps a wide margin.
MAX_SHELL_CHAIN = 256


def shell_word(in_width: int) -> int:
    """Bits the shell shifts into ``in_data`` at once, so its chain of words stays <= MAX_SHELL_CHAIN."""
    return -(-in_width // MAX_SHELL_CHAIN)


def shell_verilog(dut: str, in_width: int, out_width_class: int, out_width_logits: int) -> str:
    """Verilog of the pin-limited shell around the network top ``dut``.

    ``din`` fills a word of :func:`shell_word` bits, one bit per cycle; every word's worth of cycles
    the word is shifted into the input register as a whole. Each flip-flop chain is then at most
    MAX_SHELL_CHAIN (words) or one word long, where a plain bit-serial shift register would be
    ``in_width`` long (see MAX_SHELL_CHAIN for why that matters).
    """
    w = shell_word(in_width)
    if w == 1:  # narrow inputs: the plain bit-serial shift register (the form every earlier pnr result used)
        shift = "{sr[IW-2:0], din}" if in_width > 1 else "din"
        load = f"    always @(posedge clk) sr <= {shift};"
    else:
        n = -(-in_width // w) * w
        load = f"""    localparam integer W = {w};
    localparam integer N = {n};
    reg [W-1:0] word;
    reg [{max(1, (w - 1).bit_length()) - 1}:0] cnt;
    reg [N-1:0] words;
    always @(posedge clk) begin
        word <= {{word[W-2:0], din}};
        cnt <= (cnt == W - 1) ? 0 : cnt + 1;
        if (cnt == W - 1) words <= {{words[N-W-1:0], word}};
    end
    always @(*) sr = words[IW-1:0];"""
    return f"""// Generated by lowbit.reports.pnr: pin-limited shell for place-and-route
module {SHELL_TOP} (input wire clk, input wire rst, input wire din, input wire vin,
                    output wire rdy, output reg dout);
    localparam integer IW = {in_width};
    reg [IW-1:0] sr;
    wire out_valid;
    wire [{out_width_class}-1:0] out_class;
    wire [{out_width_logits}-1:0] out_logits;
{load}
    {dut} dut (.clk(clk), .rst(rst), .in_valid(vin), .in_ready(rdy), .in_data(sr),
               .out_valid(out_valid), .out_ready(1'b1), .out_class(out_class), .out_logits(out_logits));
    always @(posedge clk) dout <= ^{{out_valid, out_class, out_logits}};
endmodule
"""


def device_name(fam: PnrFamily | str, dev: str) -> str:
    """How a reader knows the part: 'HX8K', 'ECP5-25K'."""
    return dev.upper() if PnrFamily(fam) == PnrFamily.ICE40 else f"ECP5-{dev.upper()}"


def misfit(fam: PnrFamily, dev: str, syn: SynthResult) -> str | None:
    """Why ``syn`` cannot fit ``dev`` by cell count alone ('needs 808 SB_MAC16, has 8'), or None."""
    cap = CAPACITY[fam][dev]
    over = [k for k in cap if getattr(syn, k) > cap[k]]
    if not over:
        return None
    k = over[0]
    return f"needs {getattr(syn, k):,.0f} {RESOURCE_NAMES[fam][k]}, has {cap[k]:,}"


def fits_nowhere(fam: PnrFamily, devices: tuple[str, ...], syn: SynthResult) -> str | None:
    """The plain status when no device of ``devices`` has the cells ``syn`` needs, else None:
    'does not fit any iCE40: needs 808 SB_MAC16, the largest part has 8'."""
    if not all(misfit(fam, d, syn) for d in devices):
        return None
    caps = [CAPACITY[fam][d] for d in devices]
    most = {k: max(c[k] for c in caps) for k in caps[0]}
    # every resource beyond the largest part, the worst overflow first
    over = sorted((k for k in most if getattr(syn, k) > most[k]), key=lambda k: -getattr(syn, k) / max(most[k], 1))
    if over:
        return f"does not fit any {FAMILY_NAMES[fam]}: " + "; ".join(
            f"needs {getattr(syn, k):,.0f} {RESOURCE_NAMES[fam][k]}, the largest part has {most[k]:,}" for k in over)
    why = "; ".join(f"{device_name(fam, d)} {misfit(fam, d, syn)}" for d in devices)
    return f"does not fit any {FAMILY_NAMES[fam]}: {why}"


def _parse_fmax(report: dict) -> float | None:
    fmax = report.get("fmax", {})
    vals = [v.get("achieved") for v in fmax.values() if isinstance(v, dict) and v.get("achieved")]
    return float(min(vals)) if vals else None


def synth_target(fam: PnrFamily | str, devices: tuple[str, ...] | None = None) -> str:
    """The synthesis target for placing on ``devices`` of ``fam``: the family's, or its ``-nodsp``
    variant when none of the devices has multipliers (iCE40 HX8K: no SB_MAC16, so the products
    must be LUT multipliers)."""
    fam = PnrFamily(fam)
    devs = tuple(devices or DEVICES[fam])
    return str(fam) if any(CAPACITY[fam][d]["dsps"] for d in devs if d in CAPACITY[fam]) else f"{fam}-nodsp"


def place_and_route(fam: PnrFamily | str, verilog: str | Path, dut: str, in_width: int, class_width: int,
                    logits_width: int, devices: tuple[str, ...] | None = None,
                    timeout: float = 1800, seed: int = 1) -> PnrResult:
    """Synthesize the shell + network for ``fam`` (ice40 or ecp5) and return nextpnr's fmax on the
    first device (smallest first) it fits."""
    try:
        fam = PnrFamily(fam)
    except ValueError:
        raise ToolError(f"place-and-route family: {fam!r}, expected one of {', '.join(PNR_FAMILIES)}") from None
    devices = tuple(devices or DEVICES[fam])
    unknown = [d for d in devices if d not in DEVICES[fam]]
    if unknown:
        raise ToolError(f"{fam} devices: {unknown}, expected some of {', '.join(DEVICES[fam])}")
    vtext = Path(verilog).read_text()
    shell = shell_verilog(dut, in_width, class_width, logits_width)
    tool = f"yowasp-nextpnr-{fam}"
    target = synth_target(fam, devices)
    # a -nodsp synthesis is another netlist: its own key (the family's keeps the keys cached before)
    key = hashlib.sha256("\0".join([PNR_RECORD_VERSION, fam, vtext, shell, ",".join(devices), str(seed),
                                    tool_versions().get(tool, "")] + ([target] if target != fam else [])
                                   ).encode()).hexdigest()[:20]
    cdir = cache_dir() / "pnr" / key
    cfile = cdir / "result.json"
    if cfile.exists():
        cached = PnrResult(**json.loads(cfile.read_text()))
        if (cdir / "report.json").exists():  # summarised again: the summary may have learnt more since
            cached = replace(cached, critical_path=critical_path_summary(json.loads((cdir / "report.json").read_text())))
        return cached
    cdir.mkdir(parents=True, exist_ok=True)
    # the network alone already needs more than any part has: say so without building the shell
    # (its synthesis is the same run the report's area column made, so it is cached)
    nowhere = fits_nowhere(fam, devices, synthesize(verilog, dut, target))
    if nowhere is None:
        combined = cdir / "shell.v"
        combined.write_text(vtext + "\n" + shell)
        syn = synthesize(combined, SHELL_TOP, target)
        nowhere = fits_nowhere(fam, devices, syn)
    if nowhere is not None:
        result = PnrResult(",".join(devices), None, False, nowhere, status=nowhere)
    else:
        result = _run_nextpnr(fam, devices, syn, seed, timeout, cdir)
    atomic_write_json(cfile, result.to_json())
    return result


def _run_nextpnr(fam: PnrFamily, devices: tuple[str, ...], syn: SynthResult, seed: int, timeout: float,
                 cdir: Path) -> PnrResult:
    """nextpnr on each device with room for ``syn``'s cells, smallest first, until one places and routes."""
    notes, logs, outreg = [], [], None
    for dev in devices:
        why = misfit(fam, dev, syn)
        if why:
            notes.append(f"{dev}: {why}")
            continue
        with tempfile.TemporaryDirectory(prefix="lowbit-pnr-") as tmp:
            shutil.copyfile(str(syn.netlist_json), Path(tmp) / "netlist.json")
            if fam is PnrFamily.ECP5:  # the block RAMs' own output registers (Yosys never uses them)
                outreg = absorb_in_file(Path(tmp) / "netlist.json").record()
            rep = Path(tmp) / "report.json"
            cmd = nextpnr_cmd(fam) + DEVICES[fam][dev] + [
                "--json", "netlist.json", "--timing-allow-fail", "--report", "report.json",
                "--seed", str(seed), "--freq", "12", "-q"]
            t0 = time.perf_counter()
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp)
            except subprocess.TimeoutExpired:
                notes.append(f"{dev}: timed out after {timeout:.0f} s")
                continue
            secs = time.perf_counter() - t0
            if r.returncode != 0 or not rep.exists():
                out = "\n".join(m for m in (r.stderr + r.stdout).splitlines() if "Preparing to run" not in m)
                notes.append(f"{dev}: {error_line(out)}")
                logs.append(f"$ {' '.join(cmd)}\n{out}\n")
                continue
            doc = json.loads(rep.read_text())
            fmax = _parse_fmax(doc)
            shutil.copyfile(rep, cdir / "report.json")  # every critical path's steps, for a closer look
            at = f" at {fmax:,.1f} MHz" if fmax else " (nextpnr reported no fmax)"
            log = atomic_write_text(cdir / "nextpnr.log", "\n".join(logs)) if logs else None
            return PnrResult(dev, fmax, True, "; ".join(notes), round(secs, 1),
                             status=f"fits {device_name(fam, dev)}{at}", log=str(log) if log else None,
                             critical_path=critical_path_summary(doc), bram_outreg=outreg)
    log = atomic_write_text(cdir / "nextpnr.log", "\n".join(logs)) if logs else None
    tried = ", ".join(device_name(fam, d) for d in devices)
    status = (f"not placed on {tried}: nextpnr failed, see its log" if logs
              else f"not placed on {tried}: " + "; ".join(notes))
    return PnrResult(",".join(devices), None, False, "; ".join(notes) or "did not fit", status=status,
                     log=str(log) if log else None)


def place_and_route_ice40(verilog: str | Path, dut: str, in_width: int, class_width: int,
                          logits_width: int, devices: tuple[str, ...] = ("up5k", "hx8k"),
                          timeout: float = 1800, seed: int = 1) -> PnrResult:
    """nextpnr-ice40 fmax (see :func:`place_and_route`)."""
    return place_and_route("ice40", verilog, dut, in_width, class_width, logits_width, devices, timeout, seed)
