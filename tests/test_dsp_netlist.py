"""The netlists Yosys makes of a mac network with DSP blocks (iCE40 SB_MAC16, xilinx DSP48E1) simulated
with Yosys's cell models against the golden model: what the FPGA would run, not only what was written.

It also pins why hw.lanes.UNREGISTERED_DSP_PRODUCT_FAMILIES holds ice40: the same network built for
a family that registers its products (ecp5) is mis-synthesized by synth_ice40 -dsp (Yosys 0.70's
ice40_dsp drops one product of each adder pair). If that check ever fails, Yosys was fixed and iCE40
may register its products again."""
from __future__ import annotations

import re

import numpy as np
import pytest
from dataclasses import replace

from hw.lanes import UNREGISTERED_DSP_PRODUCT_FAMILIES
from lowbit.steps import make_hardware, simulate
from reports.gatelevel import vendor_netlist

from conftest import random_mac_model

pytestmark = pytest.mark.yosys


def _netlist_run(model, family: str, tmp_path, n: int = 120, target: str = "ice40"):
    """Build the net for ``family`` at its default clock (register stages on), synthesize it for
    ``target`` (DSPs on) and simulate that netlist on random pixels; (result, DSP block count)."""
    from lowbit.steps import target_clock

    h = make_hardware(model, "pe=2,simd=4", tmp_path / family, clock_mhz=target_clock("auto", family), family=family)
    netlist = vendor_netlist(h.verilog, h.ports.dut, target)
    dsp = {"ice40": "SB_MAC16", "xilinx": "DSP48E1"}[target]
    macs = len(re.findall(rf"^\s*{dsp}\s", netlist.read_text(), re.M))
    x = np.random.default_rng(7).integers(0, 256, (n, model.input.features)).astype(np.uint8)
    return simulate(model, replace(h, verilog=netlist), x, None), macs


def test_ice40_mac_netlist_with_dsps_is_bit_exact(tmp_path):
    """Products unregistered on iCE40 (the family rule): every product in its own SB_MAC16, and the
    netlist bit-exact against the golden model on real (random, non-zero) inputs."""
    assert "ice40" in UNREGISTERED_DSP_PRODUCT_FAMILIES
    model = random_mac_model((16, 8, 4))
    r, macs = _netlist_run(model, "ice40", tmp_path)
    assert macs >= 8  # pe x simd = 8 lanes a layer mapped to DSP blocks: the path under test exists
    assert r.n_images == 120 and r.mismatches == 0, r


def test_yosys_ice40_dsp_still_drops_registered_products(tmp_path):
    """The canary: products registered (ecp5's build) come out of synth_ice40 -dsp wrong."""
    model = random_mac_model((16, 8, 4))
    r, macs = _netlist_run(model, "ecp5", tmp_path)
    assert r.mismatches > 0, "synth_ice40 -dsp now keeps registered products: drop ice40 from the rule"


def test_xilinx_registered_dsp_products_are_bit_exact(tmp_path):
    """xilinx keeps the product register (DSP48E1's own MREG/PREG): its netlist simulates exact."""
    model = random_mac_model((16, 8, 4))
    r, macs = _netlist_run(model, "xilinx", tmp_path, target="xilinx")
    assert macs >= 8
    assert r.n_images == 120 and r.mismatches == 0, r
