"""``--input-bits K``: the first layer reads K-bit pixels for every method, mapped to the right IR
kind, golden == the float model on every test image, and bit-exact in RTL (Verilator)."""
from __future__ import annotations

import numpy as np
import pytest

from quantmodels.datasets import load_digits
from quantmodels.errors import ConfigError
from quantmodels.golden import golden_predict
from quantmodels.methods import REGISTRY
from quantmodels.train import TrainConfig, train

from conftest import assert_rtl_bit_exact

#: method -> TrainConfig extras for the tiny digits nets (as tests/test_methods_rtl.py)
EXTRAS = {"dorefa": {"weight_bits": 2, "act_bits": 2}, "bitnet": {"weight_bits": 3, "act_bits": 2},
          "lut": {"weight_bits": 4, "act_bits": 2}}
#: the first layer's kind when it reads K > 1 bits: binary-weight XNOR methods become add/subtract
FIRST_KIND = {"bnn": "accumulate", "xnor": "accumulate"}


@pytest.fixture(scope="module")
def digits():
    return load_digits()


# method: every registered one (a new method is covered automatically); K: a truncating width
@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_input_bits_every_method(method, digits):
    cfg = TrainConfig(method=method, arch="f16,f16", epochs=2, seed=1, progress=False, input_bits=3,
                      **EXTRAS.get(method, {}))
    res = train(cfg, digits)
    m = res.model
    assert (m.input.quantizer, m.input.bits) == ("truncate", 3)
    L0 = m.layers[0]
    assert L0.input_bits == 3 and L0.kind == FIRST_KIND.get(method, REGISTRY[method].kind_for(cfg))
    assert [L.kind for L in m.layers[1:]] == [REGISTRY[method].kind_for(cfg)] * 2
    assert res.agreement == 1.0  # golden == the method's quantized float pass on every test image
    assert m.meta["config"]["input_bits"] == 3


def test_bnn_input_bits_kinds(digits):
    """K = 1 is BNN's own thresholded input (xnor_popcount); K = 8 the raw pixels, +-1 weights added."""
    for k, quant, kind in ((1, "threshold", "xnor_popcount"), (8, "identity", "accumulate")):
        res = train(TrainConfig(method="bnn", arch="f16", epochs=2, seed=0, progress=False, input_bits=k), digits)
        m = res.model
        assert (m.input.quantizer, m.input.bits, m.layers[0].kind) == (quant, k, kind)
        if k == 8:  # binary weights stored as accumulate codes {-1, +1}: no zero weight
            assert set(np.unique(m.layers[0].weights)) == {-1, 1}
        np.testing.assert_array_equal(golden_predict(m, digits.x_test), res.net.predict(digits.x_test))


def test_default_input_bits_recorded():
    assert TrainConfig(method="bnn", progress=False).input_bits == 1
    assert TrainConfig(method="int8", progress=False).input_bits == 8
    assert TrainConfig(method="lut", progress=False).input_bits == 4  # the lut option's default


@pytest.mark.parametrize("kw, msg", [
    (dict(method="bnn", input_bits=9), r"^input_bits: 9, expected an integer in 1\.\.8$"),
    (dict(method="bnn", input_bits=0), r"^input_bits: 0, expected an integer in 1\.\.8$"),
    (dict(method="lut", input_bits=3, options={"input_bits": 5}),
     r"^input_bits: 3, but option input_bits=5; expected one setting"),
])
def test_input_bits_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        TrainConfig(progress=False, **kw)


@pytest.mark.slow  # three Verilator builds: minutes on a shared 2-core machine
@pytest.mark.verilator
# (method, K, extras): bnn reading raw pixels (accumulate first layer, then xnor_popcount) and
# int8 reading 4-bit pixels (a 4-bit x 8-bit mac first layer)
@pytest.mark.parametrize("method, k, extra", [("bnn", 8, {}), ("int8", 4, {}), ("ternary", 2, {})],
                         ids=["bnn-k8", "int8-k4", "ternary-k2"])
def test_input_bits_rtl_bit_exact(method, k, extra, digits, tmp_path):
    res = train(TrainConfig(method=method, arch="f16,f16", epochs=4, seed=1, progress=False, input_bits=k,
                            **extra), digits)
    model = res.model
    assert model.layers[0].input_bits == k
    assert_rtl_bit_exact(model, digits, tmp_path)
