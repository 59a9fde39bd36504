"""Run input vectors through a combinational probe under a real simulator (Verilator/Icarus).

For unit tests of datapath blocks that instantiate vendor cells (Amaranth's simulator cannot
run Instances): the probe has one input ``x`` and one output ``y``; the caller compares.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .build import SimulationError, compile_sources
from .tools import activate_tools

TEST_MODULE = "sim.tb_vectors"


def run_vectors(verilog: str, top: str, words: list[int], simulator: str = "verilator") -> list[int]:
    """``y`` for every ``x`` in ``words`` (Verilog text of module ``top``; build cached)."""
    from cocotb_tools.runner import get_results, get_runner

    c = compile_sources({"dut.v": verilog}, top, simulator)
    activate_tools()
    with tempfile.TemporaryDirectory(prefix="lowbit-vec-") as tmp:
        d = Path(tmp)
        (d / "stim.hex").write_text("".join(f"{w:x}\n" for w in words))
        xml = get_runner(simulator).test(test_module=TEST_MODULE, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                                         build_dir=c.build_dir, test_dir=d, results_xml=str(d / "results.xml"),
                                         extra_env={"LOWBIT_STIM": str(d / "stim.hex"),
                                                    "LOWBIT_RESP": str(d / "resp.hex")},
                                         log_file=d / "sim.log")
        n_tests, n_fail = get_results(xml)
        resp = d / "resp.hex"
        if n_fail or n_tests == 0 or not resp.exists():
            log = (d / "sim.log").read_text()[-2000:] if (d / "sim.log").exists() else ""
            raise SimulationError(f"{simulator}: vector run of {top} failed\n{log}")
        return [int(s, 16) for s in resp.read_text().split()]
