"""Whole-network RTL regressions under Verilator (cocotb runner): bit-exact vs the golden model."""
from __future__ import annotations

import re

import numpy as np
import pytest

from lowbit.steps import make_hardware, simulate
from quantmodels.datasets import Dataset, load_digits, load_mnist_npz
from quantmodels.ir import load_model
from quantmodels.train import TrainConfig, train

from conftest import ALL_KINDS, REPO, random_mac_model, random_xnor_model

pytestmark = pytest.mark.verilator
SFC_MODEL = REPO / "benchmarks" / "results" / "mnist_sfc_bnn"


@pytest.fixture(scope="module")
def sfc_model(tmp_path_factory):
    """The committed trained SFC W1A1 model, or (if absent) a one-epoch one."""
    if (SFC_MODEL / "model.json").exists():
        return load_model(SFC_MODEL)
    from conftest import MNIST

    if not MNIST.is_file():
        pytest.skip("no MNIST")
    d = load_mnist_npz(MNIST)
    sub = Dataset("mnist", d.x_train[:10000], d.y_train[:10000], d.x_test, d.y_test)
    return train(TrainConfig(method="bnn", hidden=(256, 256, 256), epochs=1, progress=False), sub).model


def test_sfc_w1a1_mnist_bit_exact(sfc_model, mnist_path, tmp_path):
    d = load_mnist_npz(mnist_path)
    n = 300  # >= 200 MNIST test images through the SFC-size W1A1 network
    h = make_hardware(sfc_model, None, tmp_path)
    r = simulate(sfc_model, h, d.x_test[:n], d.y_test[:n])
    assert r.n_images == n and r.mismatches == 0, f"first mismatch at image {r.first_bad}"
    assert r.accuracy > 0.85
    # throughput: the slowest layer's cycles plus the pipeline, as the generator predicts
    assert abs(r.steady_cycles_per_image - h.cycles_per_image) <= 1
    assert abs(r.first_latency - h.latency_cycles) <= 2


@pytest.mark.parametrize("method", ["bnn", "int8"])
def test_demo_nets_bit_exact_all_test_images(method, tmp_path):
    data = load_digits()
    model = train(TrainConfig(method=method, hidden=(64, 64, 64), epochs=20, progress=False), data).model
    h = make_hardware(model, None, tmp_path)
    r = simulate(model, h, data.x_test, data.y_test)
    assert r.n_images == len(data.x_test) == 359
    assert r.mismatches == 0, f"first mismatch at image {r.first_bad}"
    assert r.accuracy == pytest.approx(model.meta["golden_test_accuracy"])


@pytest.mark.parametrize("make, fold", [(random_xnor_model, "pe=2,simd=4"),
                                        (random_mac_model, "fc0:pe=3,simd=4;fc1:pe=3,simd=3")])
def test_back_pressure_keeps_results(make, fold, tmp_path):
    """40% of cycles without out_ready: every result still arrives once, in order, bit-exact."""
    model = make()
    rng = np.random.default_rng(1)
    shape = (500, model.input.features)
    x = (rng.integers(0, 256, shape) * (rng.random(shape) < 0.5)).astype(np.uint8)
    h = make_hardware(model, fold, tmp_path)
    r = simulate(model, h, x, None, stall_pct=40)
    assert r.n_images == 500 and r.mismatches == 0


def test_regression_detects_a_wrong_model(tmp_path):
    """The checker can fail: simulate hardware built from one model against another's golden."""
    model = random_xnor_model((16, 8, 4), seed=0)
    h = make_hardware(model, None, tmp_path)
    other = random_xnor_model((16, 8, 4), seed=0)
    other.layers[1].weights[0] = 1 - other.layers[1].weights[0]  # flip class 0's weights
    x = np.random.default_rng(2).integers(0, 256, (200, 16)).astype(np.uint8)
    r = simulate(other, h, x, None)
    assert r.mismatches > 0 and r.first_bad is not None
    assert not r.bit_exact


@pytest.mark.parametrize("kind", ALL_KINDS)  # every kind of the registry
def test_every_kind_verilator_random(kind, tmp_path):
    """Randomized weights, thresholds and inputs for each arithmetic kind, with back-pressure."""
    from conftest import random_kind_model

    model = random_kind_model(kind, sizes=(24, 8, 4), seed=11)
    rng = np.random.default_rng(12)
    shape = (400, 24)
    x = (rng.integers(0, 256, shape) * (rng.random(shape) < 0.5)).astype(np.uint8)
    h = make_hardware(model, "fc0:pe=4,simd=6;fc1:pe=2,simd=4", tmp_path)
    r = simulate(model, h, x, None, stall_pct=20)
    assert r.n_images == 400 and r.mismatches == 0, f"first mismatch at {r.first_bad}"
    assert abs(r.steady_cycles_per_image - h.cycles_per_image) <= 1


@pytest.mark.parametrize("make", [random_xnor_model, random_mac_model])
def test_hand_written_wrappers_lint_clean(make, tmp_path):
    """verilator --lint-only -Wall: no warning in the harness or the pnr shell (Amaranth's are waived
    in sim/verilator_waivers.vlt)."""
    from reports.pnr import SHELL_TOP, shell_verilog
    from sim.lint import lint, lint_harness

    h = make_hardware(make(), None, tmp_path)
    assert lint_harness(h.verilog, h.ports) == []
    p = h.ports
    shell = shell_verilog(p.dut, p.in_width, p.class_width, p.logits_width)
    assert lint(h.verilog, {f"{SHELL_TOP}.v": shell}, SHELL_TOP) == []


@pytest.mark.yosys
@pytest.mark.parametrize("make", [random_xnor_model, pytest.param(random_mac_model, marks=pytest.mark.slow)])
def test_gate_level_netlist_bit_exact(make, tmp_path):
    """The Yosys gate-level netlist simulates bit-exact too: synthesis did not change behaviour."""
    from reports.gatelevel import gate_level_netlist

    model = make()
    h = make_hardware(model, None, tmp_path)
    netlist = gate_level_netlist(h.verilog, h.ports.dut)
    text = netlist.read_text()
    # a flattened gate netlist: one module, hundreds of single-gate assigns, no memories left
    assert text.count("module ") == 1 and len(re.findall(r"assign .* = .*[&|^~]", text)) > 200
    assert "reg [" not in text or "] mem" not in text
    from dataclasses import replace

    gates = replace(h, verilog=netlist)
    rng = np.random.default_rng(4)
    shape = (300, model.input.features)
    x = (rng.integers(0, 256, shape) * (rng.random(shape) < 0.5)).astype(np.uint8)
    r = simulate(model, gates, x, None)
    assert r.mismatches == 0 and r.n_images == 300


def test_build_cache_key_follows_the_cocotb_library_path(monkeypatch):
    """A build linked against another environment's cocotb libraries (RUNPATH) is never reused."""
    from cocotb_tools import config

    from sim.build import build_key

    srcs = {"t.v": "module t(input a, output b); assign b = a; endmodule\n"}
    k0 = build_key(srcs, "t", "verilator", [])
    assert build_key(srcs, "t", "verilator", []) == k0  # deterministic
    monkeypatch.setattr(config, "libs_dir", config.libs_dir.parent / "elsewhere" / "libs")
    assert build_key(srcs, "t", "verilator", []) != k0


def test_harness_ports_come_from_the_design_and_its_hw_json(tmp_path):
    """One function derives the harness ports: from the generated design and from hw.json alike."""
    import json

    from hw.verilog import VerilogDesign
    from sim.harness import HarnessPorts

    h = make_hardware(random_mac_model((16, 8, 4)), "pe=2,simd=8", tmp_path)
    d = VerilogDesign(**json.loads((tmp_path / "hw.json").read_text()))
    assert HarnessPorts.of(d) == h.ports
    assert h.ports.logits_width == d.logit_width * 4 and h.ports.in_width == 16 * 8  # 16 int8 pixels


def test_regression_result_reads_back_a_cached_sim_json():
    """sim.json of a sweep drops run-specific fields: they come back as empty defaults."""
    from sim.regression import RegressionResult

    r = RegressionResult(n_images=3, mismatches=1, class_mismatches=0, first_bad=2, cycles=90, first_latency=30,
                         cycles_per_image=30.0, steady_cycles_per_image=30.0, build_seconds=4.0,
                         build_cached=False, sim_seconds=1.5, accuracy=0.5, tool_versions={"cocotb": "2"})
    assert RegressionResult.from_json(r.to_json()) == r
    doc = {k: v for k, v in r.to_json().items() if k not in ("build_seconds", "sim_seconds", "tool_versions")}
    back = RegressionResult.from_json({**doc, "verilog_sha256": "ab"})
    assert back.mismatches == 1 and not back.bit_exact and back.sim_seconds == 0.0 and back.tool_versions == {}
