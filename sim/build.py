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
import shlex
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from . import objcache, primitives
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
#: ``-fno-tree-ter``: gcc keeps single-use temporaries apart instead of substituting them into one
#: expression tree for its RTL combiner. A layer of many-level thresholds (7-bit outputs: 127
#: compares per neuron, counted) otherwise gives gcc -O1 expressions its combiner needs minutes for
#: (49->13 at 7 bits: one 37,000-line function, not done in 28 minutes; 64->8 unpipelined: 150 s
#: in the combiner, 4 s with -fno-tree-ter). (``--output-split-cfuncs`` also helped, but it splits
#: large designs into several files, which hits the PCH bug above.)
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast", "--output-split", "0",
                  "--x-initial", "fast", "-CFLAGS", "-O1", "-CFLAGS", "-fno-tree-ter",
                  "--no-public-flat-rw", "--public-depth", "1"]
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


#: The file a finished build carries (written last): its key and the digests of the files it runs.
STAMP = "lowbit.built"
#: Owner tag of a temporary build directory (``.<key>.<host>-<pid>.<random>``): lets a later run tell
#: an orphan of a killed process from a build in progress in a live one.
_HOST = socket.gethostname().replace(".", "_")
_OWNER = f"{_HOST}-{os.getpid()}"
#: A temporary build directory from another host is an orphan once this old (its process cannot be checked).
ORPHAN_AGE_S = 24 * 3600


def _digests(bdir: Path) -> dict[str, str]:
    """sha256 of the build's sources and executables (what a cached run reads and executes)."""
    out = {}
    for f in sorted(bdir.rglob("*")):
        if f.is_file() and not f.is_symlink() and (f.suffix in (".v", ".sv") or os.access(f, os.X_OK)):
            out[f.relative_to(bdir).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def stamp_matches(bdir: Path, key: str) -> bool:
    """True if ``bdir`` is a finished build of ``key`` whose files are the ones it was built with."""
    try:
        stamp = json.loads((bdir / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(stamp, dict) and stamp.get("key") == key and isinstance(stamp.get("files"), dict)
            and bool(stamp["files"]) and stamp["files"] == _digests(bdir))


def _discard(bdir: Path) -> None:
    """Move a bad cached build out of the way (rename first: atomic for concurrent readers), then delete."""
    junk = Path(tempfile.mkdtemp(prefix=f".{bdir.name}.{_OWNER}.", dir=bdir.parent))
    try:
        os.replace(bdir, junk / "old")
    except OSError:
        pass  # already replaced by another process
    shutil.rmtree(junk, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_orphan_builds(root: Path) -> int:
    """Remove temporary build directories under ``root`` left by killed processes (their owner's
    pid is gone on this host, or they are over a day old); returns how many were removed."""
    n = 0
    for d in root.glob(".*") if root.is_dir() else ():
        if not d.is_dir():
            continue
        parts = d.name.split(".")  # ['', key, 'host-pid', random]
        owner_host, _, pid = parts[2].rpartition("-") if len(parts) >= 4 else ("", "", "")
        if owner_host == _HOST and pid.isdigit():
            orphan = not _alive(int(pid))
        else:
            try:
                orphan = time.time() - d.stat().st_mtime > ORPHAN_AGE_S
            except OSError:
                continue
        if orphan:
            shutil.rmtree(d, ignore_errors=True)
            n += 1
    return n


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


def _runner(simulator: str):
    """cocotb's runner for ``simulator``; Verilator's with its runtime objects cached across builds."""
    from cocotb_tools.runner import Verilator, get_runner  # local: cocotb is only needed for simulation

    if simulator != Simulator.VERILATOR:
        return get_runner(simulator)

    class CachedRuntimeVerilator(Verilator):
        """Make compiles each object through ``OBJCACHE`` (verilated.mk): :mod:`sim.objcache` serves
        the Verilator runtime's objects (``verilated*.cpp``, the same in every build) from
        ``<cache>/verilator-objects`` and compiles the design as before."""

        def _build_command(self):
            cmds = list(super()._build_command())
            if cmds and list(cmds[-1][:1]) == ["make"]:
                wrapper = objcache.command(cache_dir() / "verilator-objects")
                cmds[-1] = [*cmds[-1], "OBJCACHE=" + shlex.join(wrapper)]
            return cmds

    return CachedRuntimeVerilator()


def compile_sources(sources: dict[str, str], top: str, simulator: str = Simulator.VERILATOR,
                    verbose: bool = False, trace: bool = False) -> Compiled:
    """Build ``sources`` ({file name: Verilog text}) with top module ``top`` (cached).

    ``trace=True`` (Verilator only) compiles in SAIF toggle tracing (:data:`TRACE_ARGS`)."""
    simulator = check_simulator(simulator)
    activate_tools()
    srcs = with_models(sources)
    if trace and simulator is not Simulator.VERILATOR:
        raise ToolError(f"simulator: '{simulator}' cannot trace toggles, expected 'verilator' for activity")
    args = BUILD_ARGS[simulator] + (TRACE_ARGS if trace else [])
    key = build_key(srcs, top, simulator, args)
    bdir = cache_dir() / simulator / key
    if (bdir / STAMP).exists():
        if stamp_matches(bdir, key):
            return Compiled(bdir, simulator, key, True, 0.0)
        _discard(bdir)  # edited, truncated or another key's build: never run it, rebuild
    bdir.parent.mkdir(parents=True, exist_ok=True)
    clean_orphan_builds(bdir.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.{_OWNER}.", dir=bdir.parent))
    for name, text in srcs.items():
        (tmp / name).write_text(text)
    log = tmp / "build.log"
    t0 = time.perf_counter()
    try:
        _runner(simulator).build(sources=[tmp / n for n in srcs], hdl_toplevel=top, build_dir=tmp,
                                    build_args=args, timescale=("1ns", "1ps"), waves=trace, verbose=verbose,
                                    log_file=log)
    except (Exception, SystemExit) as e:  # the runner raises SystemExit/CalledProcessError
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise SimulationError(f"{simulator} build failed in {tmp} ({type(e).__name__}: {e})\n{tail}") from None
    secs = time.perf_counter() - t0
    # the stamp is written last: the key and the sha256 of every file the run executes or reads
    (tmp / STAMP).write_text(json.dumps({"seconds": secs, "key": key, "files": _digests(tmp)}))
    try:
        os.replace(tmp, bdir)  # atomic publish of the finished build
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process won the race: use theirs
        if not (bdir / STAMP).exists():
            raise
    return Compiled(bdir, simulator, key, False, secs)
