"""Every training method's exported IR runs bit-exact in RTL: NumPy training -> IR -> Verilog ->
Verilator regression against the golden model (which equals the float model, tested elsewhere).

Tiny nets on the embedded digits keep each Verilator build small; the point is the path
method -> IR kind -> hardware unit, for every method and for trained CNNs of several kinds.
"""
from __future__ import annotations

import numpy as np
import pytest

from lowbit.flow import make_hardware, simulate
from quantmodels.datasets import load_digits
from quantmodels.golden import golden_predict
from quantmodels.train import METHODS, TrainConfig, train

pytestmark = pytest.mark.verilator

#: method -> (arch, TrainConfig extras): the smallest setting that still learns on digits
CASES = {m: ("f16,f16", {}) for m in METHODS}
CASES["dorefa"] = ("f16,f16", {"weight_bits": 2, "act_bits": 2})
CASES["bitnet"] = ("f16,f16", {"weight_bits": 3, "act_bits": 2})
CASES["lut"] = ("f16,f16", {"weight_bits": 4, "act_bits": 2})
# trained CNNs (conv2d + fused max-pool) of several arithmetic kinds: case -> (method, arch, extras)
CNN_CASES = {"bnn-cnn": ("bnn", "c4k3p1,p2,f16", {}), "binaryconnect-cnn": ("binaryconnect", "c4k3p1,p2,f16", {}),
             "dorefa-cnn": ("dorefa", "c4k3p1,p2,f16", {"weight_bits": 2, "act_bits": 2}),
             # per-layer bit widths from the MDL step (bits_every small enough to move them)
             "bitnet-cnn": ("bitnet", "c4k3p1,p2,f16", {"weight_bits": 3, "act_bits": 2,
                                                        "options": {"bits_every": 10, "lam_b": 0.1}}),
             # product tables: 4-bit input codes (default input_bits) keep the conv table 16 x 16
             "lut-cnn": ("lut", "c4k3p1,p2,f16", {"weight_bits": 4, "act_bits": 2, "lr": 1e-2, "batch_size": 32}),
             # the multiplier baseline: float32 CNN, int8 PTQ -> mac conv2d with requantize + pool
             "int8-cnn": ("int8", "c4k3p1,p2,f16", {"lr": 1e-2, "batch_size": 32})}


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _check(model, digits, tmp_path):
    h = make_hardware(model, None, tmp_path)
    r = simulate(model, h, digits.x_test, digits.y_test)
    assert r.n_images == len(digits.x_test) and r.mismatches == 0, f"first mismatch at image {r.first_bad}"
    gold = golden_predict(model, digits.x_test)
    assert abs(r.accuracy - float(np.mean(gold == digits.y_test))) < 1e-12
    assert len(np.unique(gold)) >= 5  # a trained net, not a constant classifier


@pytest.mark.parametrize("method", sorted(CASES))
def test_every_method_rtl_bit_exact(method, digits, tmp_path):
    arch, extra = CASES[method]
    res = train(TrainConfig(method=method, arch=arch, epochs=4, seed=1, progress=False, **extra), digits)
    assert res.agreement == 1.0  # int8 too: golden == its grid-snapped fake-quant pass
    _check(res.model, digits, tmp_path)


@pytest.mark.parametrize("case", sorted(CNN_CASES))
def test_trained_cnn_rtl_bit_exact(case, digits, tmp_path):
    method, arch, extra = CNN_CASES[case]
    res = train(TrainConfig(method=method, arch=arch, epochs=4, seed=1, progress=False, **extra), digits)
    assert res.model.layers[0].op == "conv2d"
    assert res.agreement == 1.0  # golden == the method's quantized float pass (int8: grid-snapped)
    _check(res.model, digits, tmp_path)
