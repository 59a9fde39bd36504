"""Imported QONNX zoo networks under Verilator: RTL bit-exact vs the golden model (and so vs qonnx's executor)."""
from __future__ import annotations

import pytest

pytest.importorskip("qonnx")

from lowbit.flow import make_hardware, simulate  # noqa: E402
from quantmodels.datasets import load_mnist_npz  # noqa: E402
from quantmodels.qonnx import import_qonnx  # noqa: E402

from conftest import REPO  # noqa: E402

pytestmark = pytest.mark.verilator
ZOO = REPO / "tests" / "data" / "qonnx"


# TFC_1W1A: xnor_popcount throughout; TFC_2W2A: lut_product input layer + ternary accumulate layers
@pytest.mark.parametrize("name", ["TFC_1W1A", pytest.param("TFC_2W2A", marks=pytest.mark.slow)])
def test_imported_tfc_bit_exact(name, mnist_path, tmp_path):
    model, _ = import_qonnx(ZOO / f"{name}.onnx")
    d = load_mnist_npz(mnist_path)
    n = 300
    h = make_hardware(model, None, tmp_path)
    r = simulate(model, h, d.x_test[:n], d.y_test[:n])
    assert r.n_images == n and r.mismatches == 0, f"first mismatch at image {r.first_bad}"
    assert r.accuracy > 0.88


# a CNV-style QONNX graph (Conv -> BN -> quantizer -> MaxPool ... -> MatMul), imported, under Verilator
@pytest.mark.parametrize("act, pad", [pytest.param("bipolar", 0, marks=pytest.mark.slow), ("uint", 1)])
def test_imported_conv_graph_bit_exact(act, pad, tmp_path):
    import numpy as np
    import onnx

    from qonnx_graphs import brevitas_cnv
    from quantmodels.golden import golden_forward

    path = tmp_path / "cnv.onnx"
    onnx.save(brevitas_cnv(act=act, pad=pad), str(path))
    model, _ = import_qonnx(path)
    assert [L.op for L in model.layers] == ["conv2d", "conv2d", "dense"]
    r = np.random.default_rng(4)
    x = (r.integers(0, 256, (200, 8, 8)) * (r.random((200, 8, 8)) < 0.5)).astype(np.uint8)
    assert len(np.unique(golden_forward(model, x).logits, axis=0)) > 3  # varied logits to compare
    h = make_hardware(model, None, tmp_path / "hw")
    res = simulate(model, h, x, None)
    assert res.n_images == 200 and res.mismatches == 0, f"first mismatch at image {res.first_bad}"
