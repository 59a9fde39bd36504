"""Every training method's exported IR runs bit-exact in RTL: NumPy training -> IR -> Verilog ->
Verilator regression against the golden model (which equals the float model, tested elsewhere).

Tiny nets on the embedded digits keep each Verilator build small; the point is the path
method -> IR kind -> hardware unit, for every registered method (the registry is enumerated, so a
new method is covered automatically) as an MLP and as a CNN (conv2d + fused max-pool, then dense).
"""
from __future__ import annotations

import pytest

from quantmodels.datasets import load_digits
from quantmodels.methods import REGISTRY
from quantmodels.train import TrainConfig, train

from conftest import assert_rtl_bit_exact

pytestmark = pytest.mark.verilator

MLP = "f16,f16"
#: 8x8 digits: 4 channels 3x3 (padded), 2x2 pool -> 4x4x4, a dense layer of 16, the classifier
CNN = "c4k3p1,p2,f16"
#: method -> TrainConfig extras (default: none) that make the tiny nets learn on digits in 4 epochs
EXTRAS = {"dorefa": {"weight_bits": 2, "act_bits": 2},
          "bitnet": {"weight_bits": 3, "act_bits": 2},
          "lut": {"weight_bits": 4, "act_bits": 2}}  # 4-bit input codes (default) keep the first table 16 x 16
#: CNN-only extras (merged over EXTRAS)
CNN_EXTRAS = {"bitnet": {"options": {"bits_every": 10, "lam_b": 0.1}},  # per-layer widths moved by the MDL step
              "lut": {"lr": 1e-2, "batch_size": 32},
              "int8": {"lr": 1e-2, "batch_size": 32}}  # float32 CNN, int8 PTQ -> mac conv2d + requantize + pool


@pytest.fixture(scope="module")
def digits():
    return load_digits()


# method: every registered method; arch: a dense MLP and a CNN
def _arch_params(method: str) -> list:
    """MLP of every method in the default run; CNNs of every method but bnn under ``-m slow`` (the conv
    unit of every kind is also checked in the default run by tests/test_conv.py's random CNNs)."""
    return [pytest.param(method, MLP, id=f"{method}-mlp"),
            pytest.param(method, CNN, id=f"{method}-cnn", marks=() if method == "bnn" else pytest.mark.slow)]


@pytest.mark.parametrize("method, arch", [p for m in sorted(REGISTRY) for p in _arch_params(m)])
def test_every_method_rtl_bit_exact(method, arch, digits, tmp_path):
    extra = EXTRAS.get(method, {}) | (CNN_EXTRAS.get(method, {}) if arch == CNN else {})
    res = train(TrainConfig(method=method, arch=arch, epochs=4, seed=1, progress=False, **extra), digits)
    assert res.model.method == method
    assert [L.op for L in res.model.layers] == (["conv2d", "dense", "dense"] if arch == CNN else ["dense"] * 3)
    assert res.agreement == 1.0  # golden == the method's quantized float pass (int8: grid-snapped fake-quant)
    assert_rtl_bit_exact(res.model, digits, tmp_path)


@pytest.mark.slow  # one Verilator build of ~20-40 s
def test_many_level_thresholds_rtl_bit_exact(digits, tmp_path):
    """7-bit hidden activations: 127 thresholds per neuron, all compared in one cycle and counted by a
    balanced tree. This once built a 127-deep adder chain that gcc did not compile in 28 minutes."""
    res = train(TrainConfig(method="pow2", arch="f8", act_bits=7, weight_bits=5, epochs=4, seed=1,
                            progress=False), digits)
    hidden = res.model.layers[0]
    assert hidden.output == "threshold" and hidden.n_thresholds == 127
    assert len(set(map(tuple, hidden.thresholds.tolist()))) > 1  # real, distinct per-neuron thresholds
    assert_rtl_bit_exact(res.model, digits, tmp_path)
