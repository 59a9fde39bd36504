"""IR save/load round trip, validation messages, and the golden model's arithmetic."""
from __future__ import annotations

import json

import numpy as np
import pytest

from quantmodels.errors import IRError
from quantmodels.golden import golden_forward
from quantmodels.ir import load_model, save_model

from conftest import random_mac_model, random_xnor_model


def test_round_trip(tmp_path, xnor_model):
    save_model(xnor_model, tmp_path / "m")
    m2 = load_model(tmp_path / "m")
    assert [L.to_json() for L in m2.layers] == [L.to_json() for L in xnor_model.layers]
    for a, b in zip(m2.layers, xnor_model.layers):
        np.testing.assert_array_equal(a.weights, b.weights)
    with np.load(tmp_path / "m" / "weights.npz", allow_pickle=False) as npz:
        assert all(np.issubdtype(npz[k].dtype, np.integer) for k in npz.files)


def test_golden_xnor_matches_pm1_dot_product(xnor_model):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (50, 16)).astype(np.uint8)
    res = golden_forward(xnor_model, x)
    xb = np.where(x >= 128, 1, -1)
    L0 = xnor_model.layers[0]
    dot = xb @ np.where(L0.weights == 1, 1, -1).T
    pop = (dot + L0.in_features) // 2
    np.testing.assert_array_equal(res.activations[0], (pop >= L0.thresholds[:, 0]).astype(int))
    assert res.activations[0].min() == 0 and res.activations[0].max() == 1  # real data, both values


def test_golden_mac_requantize(mac_model):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (20, 12)).astype(np.uint8)
    res = golden_forward(mac_model, x)
    L0 = mac_model.layers[0]
    acc = x.astype(np.int64) @ L0.weights.T + L0.bias
    np.testing.assert_array_equal(res.activations[0], np.clip(np.floor(acc / 256), 0, 255))


def _corrupt(tmp_path, edit_json=None, edit_arrays=None):
    m = random_xnor_model()
    d = save_model(m, tmp_path / "m")
    if edit_json:
        doc = json.loads((d / "model.json").read_text())
        edit_json(doc)
        (d / "model.json").write_text(json.dumps(doc))
    if edit_arrays:
        with np.load(d / "weights.npz") as npz:
            arrs = {k: npz[k] for k in npz.files}
        edit_arrays(arrs)
        np.savez(d / "weights.npz", **arrs)
    return d


def test_unknown_kind(tmp_path):
    d = _corrupt(tmp_path, lambda doc: doc["layers"][1].update(kind="conv_magic"))
    with pytest.raises(IRError, match=r"^.*model\.json: layers\[1\]\.kind: 'conv_magic', expected one of xnor_popcount, mac, accumulate, shift_add, bit_serial, lut_product$"):
        load_model(d)


def test_inconsistent_shapes(tmp_path):
    d = _corrupt(tmp_path, lambda doc: doc["layers"][1].update(in_features=9))
    with pytest.raises(IRError, match=r"layers\[1\]\.in_features: 9, expected 8 \(= layers\[0\] out_features\)$"):
        load_model(d)


def test_weight_array_shape(tmp_path):
    d = _corrupt(tmp_path, edit_arrays=lambda a: a.update({"fc0.weights": a["fc0.weights"][:, :5]}))
    with pytest.raises(IRError, match=r"weights\.npz: fc0\.weights: shape \(8, 5\), expected \(8, 16\)$"):
        load_model(d)


def test_float_weights_refused(tmp_path):
    d = _corrupt(tmp_path, edit_arrays=lambda a: a.update({"fc0.weights": a["fc0.weights"].astype(np.float32)}))
    with pytest.raises(IRError, match=r"fc0\.weights: dtype float32, expected integer$"):
        load_model(d)


def test_missing_files(tmp_path):
    with pytest.raises(IRError, match="no such model directory"):
        load_model(tmp_path / "nope")
    (tmp_path / "e").mkdir()
    with pytest.raises(IRError, match=r"model\.json: missing"):
        load_model(tmp_path / "e")


def test_truncated_weights(tmp_path):
    d = _corrupt(tmp_path)
    data = (d / "weights.npz").read_bytes()
    (d / "weights.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(IRError, match=r"weights\.npz: not a readable \.npz archive"):
        load_model(d)


def test_mac_weight_range(tmp_path):
    m = random_mac_model()
    m.layers[0].weights[0, 0] = 300
    with pytest.raises(IRError, match=r"fc0\.weights: values in \[-?\d+, 300\], expected \[-128, 127\]"):
        m.validate()


def test_truncate_input_quantizer_bits_checked(tmp_path):
    d = _corrupt(tmp_path, lambda doc: doc["input"].update(quantizer="truncate", bits=9))
    with pytest.raises(IRError, match=r"input\.bits: 9, expected 1\.\.8 for quantizer 'truncate'"):
        load_model(d)
    d = _corrupt(tmp_path / "b", lambda doc: doc["input"].update(quantizer="round"))
    with pytest.raises(IRError, match=r"input\.quantizer: 'round', expected one of threshold, identity, truncate$"):
        load_model(d)


def test_readme_hand_written_example(tmp_path, monkeypatch, capsys):
    """The README's hand-written +-1 network runs as printed, and its threshold conversion is right:
    the golden model equals the plain +-1 arithmetic (sign inputs, dot >= t, argmax)."""
    import re as _re

    from conftest import REPO

    text = (REPO / "README.md").read_text()
    code = _re.search(r"## Writing the IR by hand.*?```python\n(.*?)```", text, _re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README example", "exec"), scope)
    model, rng = scope["model"], np.random.default_rng(1)
    x = rng.integers(0, 256, (200, 28, 28)).astype(np.uint8)
    s = np.where(x.reshape(200, -1) >= 128, 1, -1)
    h = np.where(s @ scope["w0"].T >= scope["t0"], 1, -1)
    want = np.argmax(h @ scope["w1"].T, axis=1)
    np.testing.assert_array_equal(golden_forward(model, x).classes, want)
    assert len(set(want.tolist())) > 2
