"""Bit-exact regression of a generated network against the golden integer model.

``build_simulator`` compiles DUT + harness with Verilator (default) or Icarus through the
cocotb Python runner (:mod:`sim.build`: cached by content hash, vendor-cell models added); ``run_regression`` streams N samples through it and compares every
class and logit with :func:`quantmodels.golden.golden_forward`.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from quantmodels.golden import golden_forward, quantize_input
from quantmodels.ir import IRModel

from .build import SimulationError, Simulator, compile_sources
from .harness import HARNESS_TOP, HarnessPorts, harness_verilog
from .tools import activate_tools, tool_versions
from .vectors import pack_rows, read_hex, unpack_responses, write_hex

TEST_MODULE = "sim.tb_network"


@dataclass(frozen=True)
class SimBuild:
    """A compiled simulator: what :func:`run_regression` needs to run it."""

    build_dir: Path
    ports: HarnessPorts
    depth: int
    key: str  #: content hash of the sources + options
    cached: bool  #: True if an earlier build was reused
    seconds: float  #: build wall time (0 when cached)
    simulator: Simulator = Simulator.VERILATOR
    trace: bool = False  #: built with sim.build.TRACE_ARGS: run_regression can write a SAIF toggle file


@dataclass(frozen=True)
class RegressionResult:
    """Outcome of one regression run."""

    n_images: int
    mismatches: int  #: samples whose class or any logit differs from golden
    class_mismatches: int
    first_bad: int | None  #: index of the first mismatching sample
    cycles: int  #: clock cycles from start to the last output
    first_latency: int  #: cycles until the first output
    cycles_per_image: float  #: cycles / n_images (includes filling the pipeline once)
    steady_cycles_per_image: float  #: (cycles - first_latency) / (n - 1): the initiation interval
    build_seconds: float
    build_cached: bool
    sim_seconds: float
    accuracy: float | None = None  #: RTL class accuracy vs labels, when labels are given
    stall_pct: int = 0
    tool_versions: dict = field(default_factory=dict)

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0 and self.n_images > 0

    def to_json(self) -> dict:
        d = asdict(self)
        d["bit_exact"] = self.bit_exact
        return d

    @classmethod
    def from_json(cls, doc: dict) -> RegressionResult:
        """Read back :meth:`to_json` (e.g. a sim.json); run-specific fields a cache dropped
        (build and sim seconds, tool versions) default to empty, other keys are ignored."""
        volatile = {"build_seconds": 0.0, "build_cached": False, "sim_seconds": 0.0}
        return cls(**{**volatile, **{f.name: doc[f.name] for f in fields(cls) if f.name in doc}})


def build_simulator(verilog: str | Path, ports: HarnessPorts, depth: int = 10000,
                    verbose: bool = False, naive: bool = False, simulator: Simulator = Simulator.VERILATOR,
                    trace: bool = False) -> SimBuild:
    """Compile ``verilog`` + harness with ``simulator`` (Verilator or Icarus; cached by content hash).

    ``naive=True`` builds the bare network instead, for :func:`run_naive` (the
    one-await-per-cycle reference testbench the benchmarks compare against). ``trace=True``
    compiles in SAIF tracing (sim.build.TRACE_ARGS) for activity measurements.
    """
    sources = {"dut.v": Path(verilog).read_text()}
    if not naive:
        sources["harness.v"] = harness_verilog(ports, depth)
    c = compile_sources(sources, ports.dut if naive else HARNESS_TOP, simulator, verbose, trace)
    return SimBuild(c.build_dir, ports, depth, c.key, c.cached, c.seconds, simulator, trace)


def run_naive(build: SimBuild, model: IRModel, samples: np.ndarray) -> tuple[int, float, float]:
    """Reference testbench: Python drives and samples the bare network once per clock cycle.

    Returns (mismatching samples, wall seconds, cycles). Only for benchmarking the bulk
    harness against; :func:`run_regression` is the regression.
    """
    from cocotb_tools.runner import get_results, get_runner

    activate_tools()
    gold = golden_forward(model, samples)
    x = quantize_input(model, samples)
    with tempfile.TemporaryDirectory(prefix="lowbit-naive-") as tmp:
        wdir = Path(tmp)
        write_hex(wdir / "stim.hex", pack_rows(x, model.input.bits))
        runner = get_runner(build.simulator)
        t0 = time.perf_counter()
        xml = runner.test(test_module=TEST_MODULE, hdl_toplevel=build.ports.dut, hdl_toplevel_lang="verilog",
                          testcase="run_naive", build_dir=build.build_dir, test_dir=wdir,
                          results_xml=str(wdir / "results.xml"),
                          extra_env={"LOWBIT_STIM": str(wdir / "stim.hex"), "LOWBIT_RESP": str(wdir / "resp.hex"),
                                     "LOWBIT_N": str(len(samples)), "LOWBIT_RESULT": str(wdir / "result.json")},
                          log_file=wdir / "sim.log")
        secs = time.perf_counter() - t0
        n_tests, n_fail = get_results(xml)
        if n_fail or not (wdir / "resp.hex").exists():
            raise SimulationError(f"naive testbench failed: {(wdir / 'sim.log').read_text()[-1500:]}")
        words = read_hex(wdir / "resp.hex")
        cycles = json.loads((wdir / "result.json").read_text())["cycles"]
    p = build.ports
    classes, logits = unpack_responses(words, p.class_width, p.logits_width // model.n_classes, model.n_classes)
    bad = (classes != gold.classes) | np.any(logits != gold.logits, axis=1)
    return int(bad.sum()), secs, cycles


def run_regression(build: SimBuild, model: IRModel, samples: np.ndarray,
                   labels: np.ndarray | None = None, stall_pct: int = 0,
                   workdir: str | Path | None = None, expected_cycles: int | None = None,
                   trace_file: str | Path | None = None) -> RegressionResult:
    """Stream ``samples`` (raw uint8) through the compiled network; compare with golden.

    ``expected_cycles`` (the generator's cycles/image) bounds the run: a hung design fails
    after 10x the expected time instead of simulating for hours. ``trace_file`` (needs a
    ``trace=True`` build) receives the SAIF toggle counts of the whole run.
    """
    from cocotb_tools.runner import get_results, get_runner

    n = len(samples)
    if n == 0:
        raise SimulationError("run_regression: no samples to simulate")
    if n > build.depth:
        raise SimulationError(f"run_regression: {n} samples exceed the harness depth {build.depth}")
    if trace_file is not None and not build.trace:
        raise SimulationError("run_regression: trace_file needs a simulator built with trace=True")
    activate_tools()
    gold = golden_forward(model, samples)
    x = quantize_input(model, samples)
    own_dir = workdir is None
    wdir = Path(tempfile.mkdtemp(prefix="lowbit-sim-")) if own_dir else Path(workdir)
    wdir.mkdir(parents=True, exist_ok=True)
    stim, resp, res_json = wdir / "stim.hex", wdir / "resp.hex", wdir / "result.json"
    for p in (resp, res_json):
        p.unlink(missing_ok=True)
    write_hex(stim, pack_rows(x, model.input.bits))
    # the harness stops at n outputs; this only bounds a hung design (stalls slow it down too)
    per_image = expected_cycles or sum(L.macs * L.input_bits * L.weight_bits for L in model.layers)
    max_cycles = 10_000 + 10 * (n + len(model.layers)) * per_image * (100 // max(1, 100 - stall_pct))
    runner = get_runner(build.simulator)
    t0 = time.perf_counter()
    xml = runner.test(test_module=TEST_MODULE, hdl_toplevel=HARNESS_TOP, hdl_toplevel_lang="verilog",
                      build_dir=build.build_dir,
                      test_dir=wdir, results_xml=str(wdir / "results.xml"),
                      plusargs=[f"+LOWBIT_STIM={stim}", f"+LOWBIT_RESP={resp}", f"+LOWBIT_N={n}",
                                f"+LOWBIT_STALL={stall_pct}"],
                      extra_env={"LOWBIT_RESULT": str(res_json), "LOWBIT_MAX_CYCLES": str(max_cycles)},
                      waves=trace_file is not None,
                      test_args=["--trace-file", str(Path(trace_file).resolve())] if trace_file is not None else [],
                      log_file=wdir / "sim.log")
    sim_secs = time.perf_counter() - t0
    n_tests, n_fail = get_results(xml)
    if n_fail or n_tests == 0 or not res_json.exists() or not resp.exists():
        log = (wdir / "sim.log").read_text()[-2000:] if (wdir / "sim.log").exists() else ""
        raise SimulationError(f"{build.simulator} simulation failed ({n_fail} of {n_tests} cocotb tests failed; logs in {wdir})\n{log}")
    info = json.loads(res_json.read_text())
    words = read_hex(resp)
    if len(words) != n:
        raise SimulationError(f"{resp}: {len(words)} responses, expected {n}")
    p = build.ports
    n_classes = model.n_classes
    classes, logits = unpack_responses(words, p.class_width, p.logits_width // n_classes, n_classes)
    bad_class = classes != gold.classes
    bad = bad_class | np.any(logits != gold.logits, axis=1)
    bad_idx = np.flatnonzero(bad)
    result = RegressionResult(
        n_images=n, mismatches=int(bad.sum()), class_mismatches=int(bad_class.sum()),
        first_bad=int(bad_idx[0]) if bad_idx.size else None,
        cycles=int(info["cycles"]), first_latency=int(info["first_latency"]),
        cycles_per_image=info["cycles"] / n,
        steady_cycles_per_image=(info["cycles"] - info["first_latency"]) / (n - 1) if n > 1 else float(info["cycles"]),
        build_seconds=build.seconds, build_cached=build.cached,
        sim_seconds=sim_secs,
        accuracy=float(np.mean(classes == labels)) if labels is not None else None,
        stall_pct=stall_pct, tool_versions=tool_versions())
    if own_dir:
        shutil.rmtree(wdir, ignore_errors=True)
    return result
