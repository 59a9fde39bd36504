"""Whole-system simulation: the UART shell + network under Verilator, reachable as a serial URL.

:func:`build_system` compiles the system Verilog (cached by content, :mod:`sim.build`);
:func:`simulated_board` starts the simulator with the :mod:`sim.tb_system` bridge and yields a
pyserial URL (``socket://127.0.0.1:PORT``), so the host code that talks to a real board over a
serial port talks to the simulated one unchanged.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .build import Compiled, SimulationError, compile_sources
from .tools import activate_tools

TEST_MODULE = "sim.tb_system"
START_TIMEOUT_S = 120.0


@dataclass
class SystemRun:
    """What the bridge measured once the host closed the connection (filled on exit)."""

    url: str
    divider: int
    cycles: int = 0  #: simulated clock cycles of the whole run
    first_cycle: int | None = None  #: cycle the first request byte started
    last_cycle: int = 0  #: cycle the last reply byte ended
    bytes_in: int = 0
    bytes_out: int = 0
    framing_errors: int = 0  #: reply bytes with a low stop bit (must be 0)
    out_cycles: list[int] = field(default_factory=list)  #: cycle each reply byte ended
    wall_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def cycles_until_reply_byte(self, n_bytes: int) -> int:
        """Cycles from the first request bit to the end of the ``n_bytes``-th reply byte."""
        if not 0 < n_bytes <= len(self.out_cycles):
            raise SimulationError(f"system simulation: {len(self.out_cycles)} reply bytes, expected >= {n_bytes}")
        return self.out_cycles[n_bytes - 1] - (self.first_cycle or 0)


def build_system(verilog_text: str, top: str) -> Compiled:
    """Compile the system Verilog with Verilator (cached by content hash)."""
    return compile_sources({"system.v": verilog_text}, top)


@contextlib.contextmanager
def simulated_board(build: Compiled, top: str, divider: int, idle_bits: int) -> Iterator[SystemRun]:
    """Run the simulator in the background; yields a :class:`SystemRun` whose ``url`` the host
    opens. ``idle_bits``: bit times the simulation keeps running after the last line activity
    (covers the network's latency and the shell's timeout). On exit (the host has closed the
    port) the bridge's measurements are filled in; a failed simulation raises SimulationError."""
    from cocotb_tools.runner import get_results, get_runner

    activate_tools()
    wdir = Path(tempfile.mkdtemp(prefix="lowbit-system-"))
    port_file, result = wdir / "port.json", wdir / "result.json"
    outcome: dict = {}

    def run() -> None:
        try:
            xml = get_runner(build.simulator).test(
                test_module=TEST_MODULE, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                build_dir=build.build_dir, test_dir=wdir, results_xml=str(wdir / "results.xml"),
                extra_env={"LOWBIT_DIVIDER": str(divider), "LOWBIT_IDLE_BITS": str(idle_bits),
                           "LOWBIT_PORT_FILE": str(port_file), "LOWBIT_RESULT": str(result)},
                log_file=wdir / "sim.log")
            outcome["results"] = get_results(xml)
        except BaseException as e:  # reported by the main thread
            outcome["error"] = e

    def failure(what: str) -> SimulationError:
        log = (wdir / "sim.log").read_text()[-2000:] if (wdir / "sim.log").exists() else ""
        return SimulationError(f"system simulation {what} (logs in {wdir})\n{log}")

    t0 = time.perf_counter()
    thread = threading.Thread(target=run, name="lowbit-system-sim", daemon=True)
    thread.start()
    while not port_file.exists():
        if not thread.is_alive() or time.perf_counter() - t0 > START_TIMEOUT_S:
            raise failure("did not start")
        time.sleep(0.05)
    run_info = SystemRun(url=f"socket://127.0.0.1:{json.loads(port_file.read_text())['port']}", divider=divider)
    yield run_info
    thread.join()
    run_info.wall_seconds = time.perf_counter() - t0
    if "error" in outcome:
        raise failure(f"failed ({type(outcome['error']).__name__}: {outcome['error']})")
    n_tests, n_fail = outcome["results"]
    if n_fail or not n_tests or not result.exists():
        raise failure(f"failed ({n_fail} of {n_tests} cocotb tests failed)")
    doc = json.loads(result.read_text())
    shutil.rmtree(wdir, ignore_errors=True)
    for k in ("cycles", "first_cycle", "last_cycle", "bytes_in", "bytes_out", "framing_errors", "out_cycles"):
        setattr(run_info, k, doc[k])
