"""IR schema v3: conv2d layers with fused max-pool; golden model vs a naive loop reference."""
from __future__ import annotations

import json

import numpy as np
import pytest

from quantmodels.errors import IRError
from quantmodels.golden import golden_forward, quantize_input
from quantmodels.ir import SCHEMA_VERSION, ConvSpec, load_model, save_model

from conftest import ALL_KINDS, random_conv_model
from test_kinds import reference_acc


def naive_conv_layer(L, x: np.ndarray) -> np.ndarray:
    """Direct loops over images, output positions, channels and kernel taps (the IR text's rule)."""
    c = L.conv
    h, w, ch = c.in_shape
    kh, kw = c.kernel
    oh, ow = c.conv_hw
    img = x.reshape(len(x), h, w, ch)
    y = np.zeros((len(x), oh, ow, L.rows), dtype=np.int64)
    for n in range(len(x)):
        for oy in range(oh):
            for ox in range(ow):
                patch = []
                for ky in range(kh):
                    for kx in range(kw):
                        for cc in range(ch):
                            iy, ix = oy * c.stride - c.padding + ky, ox * c.stride - c.padding + kx
                            inside = 0 <= iy < h and 0 <= ix < w
                            patch.append(img[n, iy, ix, cc] if inside else 0)  # padding reads code 0
                acc = reference_acc(L, np.array(patch)[None])[0]  # each kind's per-element definition
                for o in range(L.rows):
                    y[n, oy, ox, o] = int(np.sum(acc[o] >= L.thresholds[o]))
    k, s = c.pool
    ph, pw = c.out_hw
    out = np.zeros((len(x), ph, pw, L.rows), dtype=np.int64)
    for py in range(ph):
        for px in range(pw):
            out[:, py, px, :] = y[:, py * s:py * s + k, px * s:px * s + k, :].max(axis=(1, 2))
    return out.reshape(len(x), -1)


# kind: every kind of the registry (xnor_popcount: padding reads -1; the others: code 0 = value 0)
# geometry: (stride, padding, pool) incl. stride 2, no padding, overlapping pool 3/2
@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("geom", [(1, 1, (2, 2)), (2, 0, (1, 1)), (1, 2, (3, 2))])
def test_golden_conv_matches_naive_loops(kind, geom):
    stride, padding, pool = geom
    m = random_conv_model(kind, in_shape=(9, 8, 2), channels=(3, 4), stride=stride, padding=padding, pool=pool)
    rng = np.random.default_rng(4)
    raw = (rng.integers(0, 256, (6, m.input.features)) * (rng.random((6, m.input.features)) < 0.5)).astype(np.uint8)
    res = golden_forward(m, raw)
    x = quantize_input(m, raw)
    for i, L in enumerate(m.layers[:-1]):
        ref = naive_conv_layer(L, x)
        np.testing.assert_array_equal(res.activations[i], ref)
        assert len(np.unique(ref)) > 1  # real variety, not a constant map
        x = ref


def test_conv_round_trip(tmp_path):
    m = random_conv_model()
    save_model(m, tmp_path / "m")
    m2 = load_model(tmp_path / "m")
    assert m2.layers[0].conv == m.layers[0].conv and m2.layers[0].op == "conv2d"
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION and doc["layers"][0]["conv"]["pool"] == [2, 2]
    x = np.random.default_rng(0).integers(0, 256, (5, m.input.features)).astype(np.uint8)
    np.testing.assert_array_equal(golden_forward(m2, x).logits, golden_forward(m, x).logits)


def test_conv_geometry_and_counts():
    c = ConvSpec((28, 28, 1), (3, 3), 1, 0, (2, 2))
    assert c.conv_hw == (26, 26) and c.out_hw == (13, 13) and c.patch == 9
    m = random_conv_model(in_shape=(8, 8, 1), channels=(4,), padding=1)
    L = m.layers[0]
    assert (L.rows, L.cols, L.positions) == (4, 9, 64) and L.macs == 64 * 4 * 9


def test_conv_validation_errors(tmp_path):
    m = random_conv_model()
    d = save_model(m, tmp_path / "m")
    doc = json.loads((d / "model.json").read_text())
    doc["layers"][0]["out_features"] += 1
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(IRError, match=r"layers\[0\]\.out_features: 65, expected 64 \(= 4x4 positions x 4 channels\)$"):
        load_model(d)
    doc["layers"][0]["out_features"] -= 1
    doc["layers"][0]["conv"]["kernel"] = [11, 11]
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(IRError, match=r"layers\[0\]\.conv: kernel \[11, 11\] with padding 1 does not fit the input \[8, 8, 1\]$"):
        load_model(d)
    doc["layers"][0]["conv"]["kernel"] = [3, 3]
    doc["layers"][0]["op"] = "conv3d"
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(IRError, match=r"layers\[0\]\.op: 'conv3d', expected one of dense, conv2d$"):
        load_model(d)
