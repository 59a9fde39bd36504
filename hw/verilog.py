"""Verilog export of a network top plus ``hw.json`` describing its ports and folding."""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from amaranth.back import verilog

from quantmodels.atomic import atomic_write_json, atomic_write_text
from quantmodels.ir import IRModel

from .folding import Folding
from .network import NetworkTop

TOP_NAME = "lowbit_net"


@dataclass
class VerilogDesign:
    """A generated design: where the Verilog is and what the harness/reports need to know."""

    top_name: str
    verilog_path: str
    sha256: str
    in_width: int  #: in_data bits
    class_width: int  #: out_class bits
    logit_width: int  #: bits per logit in out_logits
    n_classes: int
    cycles_per_image: int  #: initiation interval (estimate; the simulator measures it)
    latency_cycles: int  #: first-result latency estimate
    foldings: list[str] = field(default_factory=list)
    popcount: str = "tree"  #: popcount style (hw.arith.POPCOUNT_STYLES)
    mem_style: str = "auto"  #: memory style asked for (hw.memstyle.MEM_STYLES)
    #: per layer: (weight ROM style, threshold ROM style) as resolved; None = the synthesis tool's choice
    rom_styles: list = field(default_factory=list)
    clock_mhz: float | None = None  #: target clock the pipeline depth was chosen for (None: no target)
    family: str = "ice40"  #: family of the delay model behind that choice (hw.pipeline)
    pipeline_stages: list[int] = field(default_factory=list)  #: per layer: register stages in its adder trees
    layer_cycles: list[int] = field(default_factory=list)
    generation_seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def generate_verilog(model: IRModel, foldings: list[Folding], out_dir: str | Path,
                     top_name: str = TOP_NAME, popcount: str = "tree", mem_style: str = "auto",
                     clock_mhz: float | None = None, family: str = "ice40") -> VerilogDesign:
    """Elaborate the network, write ``<out_dir>/<top_name>.v`` and ``hw.json`` atomically."""
    out = Path(out_dir)
    t0 = time.perf_counter()
    top = NetworkTop(model, foldings, popcount, mem_style, clock_mhz, family)
    text = verilog.convert(top, name=top_name, emit_src=False)
    secs = time.perf_counter() - t0
    vpath = out / f"{top_name}.v"
    atomic_write_text(vpath, text)
    d = VerilogDesign(
        top_name=top_name, verilog_path=str(vpath), sha256=hashlib.sha256(text.encode()).hexdigest(),
        in_width=len(top.in_data), class_width=len(top.out_class), logit_width=top.logit_width,
        n_classes=model.n_classes, cycles_per_image=top.cycles_per_image, latency_cycles=top.latency_cycles,
        foldings=[str(f) for f in foldings], popcount=popcount, mem_style=str(top.mem_style),
        rom_styles=[[None if s is None else str(s) for s in (u.core.weight_style, u.core.param_style)]
                    for u in top.units],
        clock_mhz=clock_mhz, family=family, pipeline_stages=top.pipeline_stages,
        layer_cycles=[f.cycles for f in foldings],
        generation_seconds=round(secs, 3))
    atomic_write_json(out / "hw.json", d.to_json())
    return d
