"""Real Yosys synthesis and nextpnr place-and-route of generated networks, and the report files."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from lowbit.steps import make_hardware
from reports.report import DesignInput, write_report
from reports.synth import synthesize

from conftest import random_mac_model, random_xnor_model

pytestmark = pytest.mark.yosys


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    out = []
    # the int8 net is folded narrower: its multipliers in LUTs (xilinx-nodsp) dominate the test's time
    for label, model, fold in [("W1A1", random_xnor_model((64, 32, 10)), "pe=2,simd=16"),
                               ("int8", random_mac_model((64, 32, 10)), "pe=1,simd=8")]:
        model.meta["golden_test_accuracy"] = 0.5
        h = make_hardware(model, fold, tmp_path_factory.mktemp(label))
        out.append(DesignInput(label, model, h.verilog, h.ports, h.cycles_per_image, h.latency_cycles))
    return out


def test_synthesis_counts(designs):
    xnor, mac = designs
    s_x = synthesize(xnor.verilog, xnor.ports.dut, "xilinx")
    s_m = synthesize(mac.verilog, mac.ports.dut, "xilinx")
    assert s_x.luts > 0 and s_x.ffs > 0 and s_x.dsps == 0
    assert s_m.dsps == 2 * (1 * 8)  # pe*simd multipliers in each of the two layers
    s_m_lut = synthesize(mac.verilog, mac.ports.dut, "xilinx-nodsp")
    assert s_m_lut.dsps == 0 and s_m_lut.luts > s_m.luts  # multipliers moved into LUTs
    assert synthesize(xnor.verilog, xnor.ports.dut, "ice40").luts > 0


def test_report_files(designs, tmp_path):
    paths = write_report(designs, tmp_path, ("ice40", "xilinx"), pnr=True, progress=lambda m: None)
    df = pd.read_csv(paths["csv"])
    assert list(df["design"]) == ["W1A1", "int8"]
    w1, i8 = df.iloc[0], df.iloc[1]
    assert w1["measured_xilinx_luts"] > 0 and i8["measured_xilinx_dsps"] > 0
    assert w1["model_energy_pj"] < i8["model_energy_pj"]
    assert w1["memory_bits"] == 64 * 32 + 32 * 10 + 32 * 7  # weights + 32 thresholds of 7 bits
    assert w1["measured_ice40_fmax_mhz"] > 1  # nextpnr placed and routed it
    html = paths["html"].read_text()
    assert "data:image/png;base64," in html and "MODEL" in html and "Horowitz" in html
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(paths["json"].read_text())
    assert doc["meta"]["energy_constants_pj"]["int_mult_8"] == 0.2
