"""A compiler wrapper that caches the Verilator runtime's object files across builds.

Every Verilator build compiles the same runtime (``verilated.cpp``, ``verilated_vpi.cpp``, ...)
again: about 34 CPU-seconds a build here against 3 for the design itself. Make calls
``$(OBJCACHE) $(CXX) ... -c -o X.o SRC.cpp`` for each object (verilated.mk), so this script,
set as ``OBJCACHE``, works like ccache's direct mode for those sources only: the key is the
whole command line, the compiler binary's identity and the source's content; a hit is checked
against the content of every header the earlier compile read (its ``-MMD`` dependency file)
before its ``.o`` and ``.d`` are copied in. Anything else (the design, cocotb's ``verilator.cpp``,
which includes the design's header) runs the compiler unchanged.

Standard library only: make runs it once per object as ``python -I objcache.py --cache DIR --
c++ ...``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _sha(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _deps(dfile: Path) -> list[str]:
    """Prerequisites listed in a make dependency file (``out.o: a.cpp b.h \\``)."""
    text = dfile.read_text().replace("\\\n", " ")
    _, _, rest = text.partition(":")
    return sorted(set(rest.split()))


def _compiler_id(exe: str) -> str:
    path = shutil.which(exe) or exe
    real = os.path.realpath(path)
    st = os.stat(real)
    return f"{real}\0{st.st_size}\0{st.st_mtime_ns}"


def cache_key(cmd: list[str], source: str) -> str:
    """Key of one compile: its command line, the compiler binary and the source's bytes."""
    return hashlib.sha256("\0".join([*cmd, _compiler_id(cmd[0]), _sha(source) or ""]).encode()).hexdigest()[:24]


def _cacheable(cmd: list[str]) -> tuple[str, str] | None:
    """(source, output) of a ``-c -o OUT SRC`` compile of a Verilator runtime source (a
    ``verilated*.cpp`` beside ``verilated.mk``), else None."""
    if "-c" not in cmd or "-o" not in cmd or cmd.index("-o") + 1 >= len(cmd):
        return None
    out = cmd[cmd.index("-o") + 1]
    srcs = [a for a in cmd[1:] if a.endswith((".cpp", ".cc", ".c")) and not a.startswith("-")]
    if len(srcs) != 1 or os.path.dirname(out) not in ("", "."):
        return None
    src = os.path.realpath(srcs[0])
    runtime = os.path.basename(src).startswith("verilated") and os.path.exists(
        os.path.join(os.path.dirname(src), "verilated.mk"))
    return (src, out) if runtime else None


def _publish(entry: Path, out: str, dfile: Path) -> None:
    """Store a finished compile atomically: object, dependency file, the headers' digests."""
    deps = {d: _sha(d) for d in _deps(dfile)}
    if any(v is None for v in deps.values()):
        return
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        shutil.copyfile(out, tmp / "obj.o")
        shutil.copyfile(dfile, tmp / "obj.d")
        (tmp / "deps.json").write_text(json.dumps(deps))
        os.replace(tmp, entry)
    except OSError:  # another build published the same entry first (or the disk refused): keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


def _restore(entry: Path, out: str) -> bool:
    """Copy a cached compile in if every header it read is unchanged."""
    try:
        deps = json.loads((entry / "deps.json").read_text())
    except (OSError, ValueError):
        return False
    if any(_sha(d) != h for d, h in deps.items()):
        return False
    try:
        shutil.copyfile(entry / "obj.o", out + ".tmp")
        os.replace(out + ".tmp", out)
        shutil.copyfile(entry / "obj.d", Path(out).with_suffix(".d"))
    except OSError:
        return False
    return True


def command(cache: Path) -> list[str]:
    """The wrapper's command line, to be followed by the compiler's (make's ``OBJCACHE``)."""
    return [sys.executable, "-I", str(Path(__file__).resolve()), "--cache", str(cache), "--"]


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("objcache: usage: objcache.py --cache DIR -- COMPILER ARGS...", file=sys.stderr)
        return 2
    opts, cmd = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    try:
        cache = Path(opts[opts.index("--cache") + 1])
        job = _cacheable(cmd)
        entry = cache / cache_key(cmd, job[0]) if job is not None else None
    except (OSError, ValueError, IndexError):  # the cache is an optimisation: never fail a build over it
        job = entry = None
    if entry is None:
        return subprocess.call(cmd)
    out = job[1]
    if _restore(entry, out):
        return 0
    rc = subprocess.call(cmd)
    dfile = Path(out).with_suffix(".d")
    if rc == 0 and "-MMD" in cmd and dfile.exists():
        try:
            _publish(entry, out, dfile)
        except (OSError, ValueError):
            pass  # not stored; the object just built stands
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
