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
@pytest.mark.parametrize("name", ["TFC_1W1A", "TFC_2W2A"])
def test_imported_tfc_bit_exact(name, mnist_path, tmp_path):
    model, _ = import_qonnx(ZOO / f"{name}.onnx")
    d = load_mnist_npz(mnist_path)
    n = 300
    h = make_hardware(model, None, tmp_path)
    r = simulate(model, h, d.x_test[:n], d.y_test[:n])
    assert r.n_images == n and r.mismatches == 0, f"first mismatch at image {r.first_bad}"
    assert r.accuracy > 0.88
