"""sim.objcache: the Verilator runtime's objects compiled once, reused while command line,
compiler, source and every header read are unchanged; other sources always compiled."""
from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from sim import objcache
from sim.build import compile_sources
from sim.tools import cache_dir

CXX = shutil.which("c++") or shutil.which("g++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler")


def wrapped(cache: Path, src: Path, out: str, cwd: Path) -> int:
    cmd = [*objcache.command(cache), CXX, "-O1", "-MMD", f"-I{src.parent}", "-c", "-o", out, str(src)]
    return subprocess.run(cmd, cwd=cwd).returncode


@pytest.fixture
def runtime(tmp_path):
    """A stand-in Verilator include directory: verilated.mk beside a verilated_x.cpp and its header."""
    inc = tmp_path / "include"
    inc.mkdir()
    (inc / "verilated.mk").write_text("# marker\n")
    (inc / "value.h").write_text("#define VALUE 1\n")
    (inc / "verilated_x.cpp").write_text('#include "value.h"\nint value() { return VALUE; }\n')
    return inc


def test_runtime_object_reused_until_a_header_changes(runtime, tmp_path):
    cache, a, b, c = tmp_path / "cache", tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    src = runtime / "verilated_x.cpp"
    assert wrapped(cache, src, "verilated_x.o", a) == 0
    assert len(list(cache.iterdir())) == 1  # published: object, dependency file, header digests
    first = (a / "verilated_x.o").read_bytes()
    assert "value.h" in (a / "verilated_x.d").read_text()

    # a header the compile read changes: the entry is refused and the source compiled again
    (runtime / "value.h").write_text("#define VALUE 123456\n")
    assert wrapped(cache, src, "verilated_x.o", b) == 0
    assert (b / "verilated_x.o").read_bytes() != first

    # back as it was: the stored object is served, byte for byte, with its dependency file
    (runtime / "value.h").write_text("#define VALUE 1\n")
    assert wrapped(cache, src, "verilated_x.o", c) == 0
    assert (c / "verilated_x.o").read_bytes() == first and (c / "verilated_x.d").exists()


def test_other_sources_and_failures_are_not_cached(runtime, tmp_path):
    cache = tmp_path / "cache"
    design = tmp_path / "Vtop__ALL.cpp"  # not the runtime: compiled every time, never stored
    design.write_text("int top() { return 2; }\n")
    assert wrapped(cache, design, "Vtop__ALL.o", tmp_path) == 0
    assert (tmp_path / "Vtop__ALL.o").exists() and not cache.exists()
    (runtime / "verilated_x.cpp").write_text("int broken( {\n")
    assert wrapped(cache, runtime / "verilated_x.cpp", "verilated_x.o", tmp_path) != 0
    assert not cache.exists()  # a failed compile publishes nothing


@pytest.mark.verilator
def test_second_verilator_build_compiles_no_runtime_object():
    """Two new designs built by sim.build in the session's cache (its runtime objects perhaps
    stored by an earlier test): after the first, the second adds no runtime object (every one
    served from the cache), and both simulators build."""
    import uuid

    objects = cache_dir() / "verilator-objects"
    tag = uuid.uuid4().int % 1000  # designs no earlier build has made
    v = "module top(input wire [9:0] a, output wire [9:0] y); assign y = a {op} 10'd{k}; endmodule\n"
    one = compile_sources({"dut.v": v.format(op="+", k=tag)}, "top")
    entries = sorted(p.name for p in objects.iterdir())
    assert len(entries) >= 4 and not one.cached  # verilated, _dpi, _vpi, _threads at least
    two = compile_sources({"dut.v": v.format(op="^", k=tag)}, "top")
    assert not two.cached and two.build_dir != one.build_dir
    # the second build's runtime compiles, read off its make log: every key was stored before it
    runtime = []
    for line in (two.build_dir / "build.log").read_text().splitlines():
        if "objcache.py" in line:
            words = shlex.split(line)
            cmd = words[words.index("--") + 1:]
            job = objcache._cacheable(cmd)
            if job is not None:
                runtime.append(objcache.cache_key(cmd, job[0]))
    assert len(runtime) >= 4 and set(runtime) <= set(entries)
    assert all((b.build_dir / "verilated.o").exists() for b in (one, two))
