"""QONNX import/export: zoo TFC fixtures vs qonnx's executor, round trips, bad input in one line."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("qonnx")

from lowbit.cli import main  # noqa: E402
from quantmodels.datasets import load_digits, load_mnist_npz  # noqa: E402
from quantmodels.errors import ConfigError, IRError  # noqa: E402
from quantmodels.ir import golden_forward, load_model  # noqa: E402
from quantmodels.qonnx import agreement, export_qonnx, import_qonnx  # noqa: E402
from quantmodels.train import TrainConfig, train  # noqa: E402

from conftest import REPO, random_conv_model  # noqa: E402
from qonnx_graphs import Builder, brevitas_cnv, brevitas_tfc, trunc_mlp, wide_mlp  # noqa: E402

ZOO = REPO / "tests" / "data" / "qonnx"
N_IMAGES = 500
#: fixture -> (input quantizer, first-layer kind, hidden kind, published top-1 %)
TFC = {"TFC_1W1A": ("threshold", "xnor_popcount", "xnor_popcount", 93.17),
       "TFC_1W2A": ("truncate", "lut_product", "accumulate", 94.79),
       "TFC_2W2A": ("truncate", "lut_product", "accumulate", 96.60)}


def _save(model, tmp_path: Path, name="g.onnx") -> Path:
    p = tmp_path / name
    onnx.save(model, str(p))
    return p


def _images(n=1000, seed=1, shape=(4, 4)):
    return np.random.default_rng(seed).integers(0, 256, (n,) + shape).astype(np.uint8)


# ----------------------------------------------------------------------------- zoo fixtures


@pytest.mark.parametrize("name", sorted(TFC))  # the three Brevitas BNN-PYNQ TFC networks
def test_tfc_import_agrees_with_qonnx_executor(name, mnist_path):
    quantizer, k0, k_hidden, published = TFC[name]
    model, summary = import_qonnx(ZOO / f"{name}.onnx")
    assert model.input.quantizer == quantizer
    if quantizer == "threshold":
        assert model.input.threshold == 128  # derived from x/255 -> 2x-1 -> BipolarQuant, not hard-coded
    else:
        assert model.input.bits == 2  # {-1, 0, +1} at pixels 64 and 192: code = pixel >> 6
    assert [L.kind for L in model.layers] == [k0, k_hidden, k_hidden, k_hidden]
    assert [L.rows for L in model.layers] == [64, 64, 64, 10]
    d = load_mnist_npz(mnist_path)
    a = agreement(model, ZOO / f"{name}.onnx", d.x_test[:N_IMAGES], d.y_test[:N_IMAGES])
    assert a.agree == a.n_images == N_IMAGES, a.render()
    assert abs(100 * a.golden_accuracy - published) < 3  # 500 images: close to the published top-1
    assert "argmax of integer logits" in summary.render()


def test_tfc_export_round_trip(tmp_path, mnist_path):
    """import -> export -> executor and import again: same golden classes (1W2A: lut_product first layer)."""
    model, _ = import_qonnx(ZOO / "TFC_1W2A.onnx")
    p = export_qonnx(model, tmp_path / "rt.onnx")
    d = load_mnist_npz(mnist_path)
    x = d.x_test[:N_IMAGES]
    assert agreement(model, p, x).agree == N_IMAGES
    back, _ = import_qonnx(p)
    np.testing.assert_array_equal(golden_forward(back, x).classes, golden_forward(model, x).classes)


# ----------------------------------------------------------------------------- synthesized graphs


@pytest.mark.parametrize("act, w, kinds", [("bipolar", "bipolar", ["xnor_popcount"] * 3),  # TFC W1A1 shape
                                           ("quant", "quant", ["lut_product", "accumulate", "accumulate"])])
def test_synthesized_brevitas_graph(act, w, kinds, tmp_path):
    p = _save(brevitas_tfc(act=act, w=w), tmp_path)
    model, _ = import_qonnx(p)
    assert [L.kind for L in model.layers] == kinds
    a = agreement(model, p, _images())
    assert a.agree == a.n_images, a.render()


def test_wide_integers_gemm_relu_multithreshold(tmp_path):
    """8-bit input Quant, Gemm + bias, 4-bit per-channel-scaled weights, Relu + Quant, MultiThreshold."""
    p = _save(wide_mlp(), tmp_path)
    model, summary = import_qonnx(p)
    assert model.input.quantizer == "identity"
    assert [L.kind for L in model.layers] == ["bit_serial"] * 3
    assert [L.weight_bits for L in model.layers] == [4, 3, 3]
    assert "fc0: scales are not powers of two" in summary.render()  # the float32 MatMul may round
    a = agreement(model, p, _images(2000))
    assert a.agree == a.n_images, a.render()  # measured: no rounding difference on these images
    back, _ = import_qonnx(export_qonnx(model, tmp_path / "rt.onnx"))
    x = _images(500, seed=3)
    np.testing.assert_array_equal(golden_forward(back, x).classes, golden_forward(model, x).classes)


def test_trunc_after_quantizer(tmp_path):
    """Trunc (FLOOR, 8 -> 4 bits) after a Quant: the next layer reads uneven code values (lut_product)."""
    p = _save(trunc_mlp(), tmp_path)
    model, _ = import_qonnx(p)
    assert [L.kind for L in model.layers] == ["bit_serial", "lut_product"]
    a = agreement(model, p, _images(2000))
    assert a.agree == a.n_images, a.render()


# ----------------------------------------------------------------------------- trained models, every method

@pytest.mark.parametrize("method", ["bnn", "xnor", "binaryconnect", "ternary", "pow2", "dorefa", "bitnet",
                                    pytest.param("int8", marks=pytest.mark.slow)])  # int8: 255-level thresholds, ~30 s
def test_trained_round_trip(method, tmp_path):
    data = load_digits()
    model = train(TrainConfig(method=method, hidden=(32, 32), epochs=2, progress=False), data).model
    p = export_qonnx(model, tmp_path / "m.onnx")
    a = agreement(model, p, data.x_test, data.y_test)
    assert a.agree == a.n_images == len(data.x_test), a.render()
    back, _ = import_qonnx(p)
    np.testing.assert_array_equal(golden_forward(back, data.x_test).classes, golden_forward(model, data.x_test).classes)
    # the importer infers each kind from the weight codes alone (pow2: 0 and +-2**e -> shift_add); it
    # maps integer codes wider than 4 bits to mac, so only bitnet's 9-bit bit_serial layers change kind
    want = ["mac" if L.kind == "bit_serial" and L.weight_bits > 4 else L.kind for L in model.layers]
    assert [L.kind for L in back.layers] == want


def test_lut_hidden_layer_export_refused(tmp_path):
    """lut_product hidden layers with 32 input levels: no exact QONNX chain, refused in one line."""
    model = train(TrainConfig(method="lut", hidden=(32, 32), epochs=1, progress=False), load_digits()).model
    with pytest.raises(ConfigError, match=r"^fc1: lut_product with 32 input levels, export supports at most 16 "):
        export_qonnx(model, tmp_path / "m.onnx")


def _sparse_images(n=500, shape=(8, 8), seed=1):
    r = np.random.default_rng(seed)
    return (r.integers(0, 256, (n,) + shape) * (r.random((n,) + shape) < 0.5)).astype(np.uint8)


# act: BipolarQuant (xnor_popcount, no padding) or unsigned Quant (bit_serial, padding 1 exact: code 0 = 0.0)
@pytest.mark.parametrize("act, pad, kind", [("bipolar", 0, "xnor_popcount"), ("uint", 1, "bit_serial")])
def test_synthesized_cnv_graph(act, pad, kind, tmp_path):
    """Conv -> BN -> quantizer -> MaxPool 2 -> Conv -> ... -> Flatten (NCHW) -> MatMul."""
    p = _save(brevitas_cnv(act=act, pad=pad), tmp_path)
    model, summary = import_qonnx(p)
    assert [L.op for L in model.layers] == ["conv2d", "conv2d", "dense"]
    assert model.layers[0].conv.pool == (2, 2) and model.layers[0].conv.padding == pad
    assert {L.kind for L in model.layers} == {kind}
    a = agreement(model, p, _sparse_images())
    assert a.agree == a.n_images, a.render()


# kind: every kind QONNX export expresses in a conv net; geometry: strides, padding and pools mixed
@pytest.mark.parametrize("kind", ["xnor_popcount", "accumulate", "bit_serial", "mac", "shift_add"])
def test_conv_round_trip(kind, tmp_path):
    model = random_conv_model(kind, stride=[2, 1], padding=[0, 1], pool=[(1, 1), (2, 2)])
    x = _sparse_images(shape=(8, 8, 1))
    p = export_qonnx(model, tmp_path / "c.onnx")
    assert agreement(model, p, x).agree == len(x)
    back, _ = import_qonnx(p)
    np.testing.assert_array_equal(golden_forward(back, x).classes, golden_forward(model, x).classes)


def test_lut_conv_export_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"^conv0: lut_product next to conv2d layers is not exported "):
        export_qonnx(random_conv_model("lut_product"), tmp_path / "m.onnx")


# ----------------------------------------------------------------------------- bad input: one line each


def _mutated(tmp_path, edit) -> Path:
    m = brevitas_tfc()
    edit(m.graph)
    return _save(m, tmp_path)


def _node(graph, op, k=0):
    return [n for n in graph.node if n.op_type == op][k]


def test_not_onnx(tmp_path):
    p = tmp_path / "x.onnx"
    p.write_bytes(b"not a protobuf \xff\xfe")
    with pytest.raises(IRError, match=r"^.*x\.onnx: not an ONNX model \(DecodeError: .*\)$"):
        import_qonnx(p)


def test_missing_file(tmp_path):
    with pytest.raises(IRError, match=r"^.*nope\.onnx: no such file, expected an ONNX model$"):
        import_qonnx(tmp_path / "nope.onnx")


def test_unsupported_op(tmp_path):
    def edit(g):
        _node(g, "BatchNormalization").op_type = "LpNormalization"
        del _node(g, "LpNormalization").input[1:]
        del _node(g, "LpNormalization").attribute[:]
    with pytest.raises(IRError, match=r"^g\.onnx: node 'BatchNormalization_\d+' \(LpNormalization\): op not "
                                      r"supported, expected one of .*MatMul.*$"):
        import_qonnx(_mutated(tmp_path, edit))


def test_non_constant_weight(tmp_path):
    b = Builder()
    x = b.node("Flatten", ["x"], axis=1)
    w = b.node("Reshape", [x, b.const([4, 1], np.int64)])
    y = b.node("MatMul", [b.bipolar(x), w], name="fc_dyn")
    with pytest.raises(IRError, match=r"^node 'fc_dyn' \(MatMul\): weight 't\d+' is not constant, expected a "
                                      r"constant weight \(an initializer, possibly through "
                                      r"Quant/BipolarQuant/Transpose\)$"):
        import_qonnx(_save(b.model("x", y, (1, 4), 1), tmp_path))


def test_unsupported_attribute(tmp_path):
    m = brevitas_tfc(act="quant", w="quant")
    q = _node(m.graph, "Quant", 1)
    for a in q.attribute:
        if a.name == "rounding_mode":
            a.s = b"STOCHASTIC"
    with pytest.raises(IRError, match=r"^g\.onnx: node 'Quant_\d+' \(Quant\): rounding_mode='STOCHASTIC', "
                                      r"expected one of ROUND, HALF_EVEN, CEIL, FLOOR, UP, DOWN, HALF_UP, HALF_DOWN$"):
        import_qonnx(_save(m, tmp_path))


def test_per_channel_activation_scale(tmp_path):
    """A shape lowbit cannot map: activation codes need one scale per tensor."""
    m = brevitas_tfc(act="quant", w="quant")
    q = [n for n in m.graph.node if n.op_type == "Quant"][2]  # the first hidden activation quantizer
    init = next(i for i in m.graph.initializer if i.name == q.input[1])
    init.CopyFrom(onnx.numpy_helper.from_array(np.full(12, 1.0, np.float32), init.name))
    with pytest.raises(IRError, match=r"^node 'Quant_\d+' \(Quant\): scale has shape \[12\], expected a scalar "
                                      r"\(per-tensor activation quantization\)$"):
        import_qonnx(_save(m, tmp_path))


def test_missing_activation_quantizer(tmp_path):
    def edit(g):
        q = [n for n in g.node if n.op_type == "BipolarQuant" and n.input[0].startswith("t")][1]
        q.op_type, q.domain = "Relu", ""
        del q.input[1:]
    with pytest.raises(IRError, match=r"^node 'fc0' \(MatMul\): no activation quantizer before the next layer, "
                                      r"expected BipolarQuant, Quant or MultiThreshold"):
        import_qonnx(_mutated(tmp_path, edit))


def test_conv_attribute_refused(tmp_path):
    b = Builder()
    w = b.bipolar(b.const(np.ones((2, 1, 3, 3))))
    y = b.node("Conv", [b.bipolar("x"), w], name="conv0", kernel_shape=[3, 3], dilations=[2, 2])
    y = b.node("BatchNormalization", [y] + [b.const(np.ones(2))] * 4)
    y = b.node("MatMul", [b.node("Flatten", [b.bipolar(y)], axis=1), b.const(np.ones((32, 3)))])
    with pytest.raises(IRError, match=r"^node 'conv0' \(Conv\): group=1, dilations=\[2, 2\], strides=\[1, 1\], "
                                      r"pads=\[0, 0, 0, 0\], expected group 1, dilation 1, one stride and one "
                                      r"padding for every side$"):
        import_qonnx(_save(b.model("x", y, (1, 1, 8, 8), 3), tmp_path))


def test_conv_padding_of_bipolar_input_refused(tmp_path):
    """Zero padding of a {-1, +1} input cannot be a code: refused, naming the node."""
    with pytest.raises(IRError, match=r"^node 'conv0' \(Conv\): padding 1 reads the real value 0, but input code 0 "
                                      r"stands for -1 \(lowbit pads with code 0\)"):
        import_qonnx(_save(brevitas_cnv(act="bipolar", pad=1), tmp_path))


def test_cli_one_line_exit_2(tmp_path, capsys):
    p = tmp_path / "bad.onnx"
    p.write_text("hello")
    assert main(["import", str(p), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lowbit: error: ") and "Traceback" not in err


def test_cli_import_export(tmp_path, capsys):
    p = _save(brevitas_tfc(), tmp_path)
    assert main(["import", str(p), "--out", str(tmp_path / "m")]) == 0
    model = load_model(tmp_path / "m")
    assert model.meta["import"]["input"].startswith("threshold: pixel >= 128")
    assert main(["export", str(tmp_path / "m"), str(tmp_path / "back.onnx")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"wrote .*back\.onnx \(3 layers: xnor_popcount, xnor_popcount, xnor_popcount\)", out)
    assert agreement(model, tmp_path / "back.onnx", _images()).agree == 1000
