"""``verilator --lint-only -Wall`` on the hand-written wrappers (harness, pnr shell) and
lowbit's vendor-cell models (sim/primitives, added when the network instantiates cells)
together with the generated network, whose Amaranth-specific warnings are waived in one
file (``verilator_waivers.vlt``)."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from .build import with_models
from .harness import HARNESS_TOP, HarnessPorts, harness_verilog
from .tools import tool_env, verilator_bin_dir

WAIVERS = Path(__file__).with_name("verilator_waivers.vlt")


def lint(verilog: str | Path, extra: dict[str, str], top: str) -> list[str]:
    """Lint ``verilog`` (copied to dut.v) plus ``extra`` {filename: text}; returns warning lines."""
    with tempfile.TemporaryDirectory(prefix="lowbit-lint-") as tmp:
        d = Path(tmp)
        vtext = Path(verilog).read_text()
        (d / "dut.v").write_text(vtext)
        files = [str(WAIVERS), "dut.v"]
        for name, text in with_models({"dut.v": vtext, **extra}).items():
            if name == "dut.v":
                continue
            (d / name).write_text(text)
            files.append(name)
        r = subprocess.run([str(verilator_bin_dir() / "verilator"), "--lint-only", "-Wall", "--top-module", top,
                            *files], capture_output=True, text=True, cwd=d, env=tool_env(), timeout=300)
    return [ln for ln in (r.stderr + r.stdout).splitlines() if ln.startswith("%")]


def lint_harness(verilog: str | Path, ports: HarnessPorts, depth: int = 64) -> list[str]:
    """Warnings of the simulation harness around the network (should be none)."""
    return lint(verilog, {f"{HARNESS_TOP}.v": harness_verilog(ports, depth)}, HARNESS_TOP)
