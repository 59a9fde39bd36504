"""lowbit's own behavioural Verilog models of the vendor cells its generators may instantiate
(``hw.xilinx_cells.PRIMITIVES``), and which of them a given design needs.

Simulators (Verilator, Icarus) and non-Xilinx synthesis get the models of exactly the cells
a design instantiates; ``synth_xilinx`` never does, so it keeps the real cells.
"""
from __future__ import annotations

import re
from pathlib import Path

MODEL_DIR = Path(__file__).with_name("primitives")


def available() -> tuple[str, ...]:
    """Names of the cells with a model (one file ``<NAME>.v`` each)."""
    return tuple(sorted(p.stem for p in MODEL_DIR.glob("*.v")))


def instantiated(verilog_text: str) -> list[str]:
    """Modelled cells instantiated in ``verilog_text`` (a line starting with the cell name,
    as Amaranth and Yosys write instances), in a stable order."""
    return [n for n in available() if re.search(rf"^\s*{re.escape(n)}\s", verilog_text, re.M)]


def model_sources(verilog_text: str) -> list[Path]:
    """Model files a simulation of ``verilog_text`` needs (empty for a plain design)."""
    return [MODEL_DIR / f"{n}.v" for n in instantiated(verilog_text)]


def model_text(verilog_text: str) -> str:
    """The needed models concatenated (for tools that take a single source file)."""
    return "".join(p.read_text() + "\n" for p in model_sources(verilog_text))
