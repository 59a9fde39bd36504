"""QONNX graph access shared by import and export: loading, the supported op set, the executor.

Everything here goes through the ``onnx`` / ``qonnx`` packages' own loading, shape inference,
cleanup (:func:`qonnx.util.cleanup.cleanup_model`) and execution
(:func:`qonnx.core.onnx_exec.execute_onnx`); lowbit adds only the checks that turn a graph it
cannot map into one line naming the node (name and op type) or file and what was expected.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import IRError, clip

#: Raw uint8 sample ``p`` enters the graph as ``float32(p) / 255`` (torchvision ToTensor, as the
#: Brevitas BNN-PYNQ networks were trained; :func:`pixels_to_graph`); export writes graphs with
#: the same convention.

#: Quantizers: they define an integer code grid (QONNX custom ops and FINN's MultiThreshold).
QUANTIZERS = frozenset({"BipolarQuant", "Quant", "IntQuant", "MultiThreshold"})
#: Elementwise ops evaluated by the executor inside a layer's level function (constants only).
ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Relu", "BatchNormalization", "Trunc", "Identity"})
#: Ops that only move data: the flatten plumbing and layout changes.
LAYOUT = frozenset({"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze"})
#: Ops that compute the flatten's shape (folded to constants by cleanup).
SHAPE_PLUMBING = frozenset({"Shape", "Gather", "Unsqueeze", "Concat", "Constant", "Pow", "Cast"})
LINEAR = frozenset({"MatMul", "Gemm", "Conv"})
SUPPORTED = QUANTIZERS | ELEMENTWISE | LAYOUT | SHAPE_PLUMBING | LINEAR | {"MaxPool"}


def node_label(node) -> str:
    """``node 'MatMul_0' (MatMul)``: how every error names a node."""
    return f"node {node.name or '<unnamed>'!r} ({node.op_type})"


ROUNDING = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN")
#: Attributes lowbit maps: (op, attribute) -> (default, allowed values)
ATTRS = {("Quant", "rounding_mode"): ("ROUND", ROUNDING), ("IntQuant", "rounding_mode"): ("ROUND", ROUNDING),
         ("Trunc", "rounding_mode"): ("FLOOR", ROUNDING), ("Flatten", "axis"): (1, (1,)),
         ("Gemm", "transA"): (0, (0,)), ("BatchNormalization", "training_mode"): (0, (0,))}


def _check_ops(model, path: Path) -> None:
    for i, n in enumerate(model.graph.node):
        name = n.name or f"#{i}"
        if n.op_type not in SUPPORTED:
            raise IRError(f"{path.name}: node {name!r} ({n.op_type}): op not supported, expected one of "
                          f"{', '.join(sorted(SUPPORTED - SHAPE_PLUMBING))} (plus shape plumbing)")
        for (op, a), (default, allowed) in ATTRS.items():
            if op == n.op_type and a is not None:
                v = attr(n, a, default)
                v = v.upper() if isinstance(v, str) else v
                if v not in allowed:
                    raise IRError(f"{path.name}: node {name!r} ({n.op_type}): {a}={v!r}, expected one of "
                                  f"{', '.join(map(str, allowed))}")


def load_qonnx(path: str | Path):
    """Read ``path`` as ONNX, check the op set, clean it up with qonnx; return a ModelWrapper."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    path = Path(path)
    if not path.is_file():
        raise IRError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}, expected an ONNX model")
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf raises several types for garbage
        raise IRError(f"{path}: not an ONNX model ({type(e).__name__}: {clip(str(e).splitlines()[0] if str(e) else '', 80)})") from None
    if not proto.graph.node:
        raise IRError(f"{path}: not an ONNX model (no graph nodes)")
    _check_ops(proto, path)
    real_inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    if len(real_inputs) != 1 or len(proto.graph.output) != 1:
        raise IRError(f"{path}: {len(real_inputs)} graph inputs and {len(proto.graph.output)} outputs, "
                      f"expected one image input and one logits output")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from qonnx.transformation.gemm_to_matmul import GemmToMatMul
            from qonnx.transformation.infer_shapes import InferShapes

            model = _cleanup(ModelWrapper(proto))
            if model.get_nodes_by_op_type("Gemm"):
                model = _cleanup(model.transform(GemmToMatMul()).transform(InferShapes()))
        except IRError:
            raise
        except Exception as e:
            raise IRError(f"{path}: qonnx cleanup failed ({type(e).__name__}: {clip(str(e), 100)})") from None
    shape = model.get_tensor_shape(model.graph.input[0].name)
    if not shape or any(not isinstance(d, int) or d < 1 for d in shape[1:]):
        raise IRError(f"{path}: input shape {shape}, expected a static shape (batch, ...)")
    return model


def _cleanup(model):
    """qonnx's ``cleanup_model`` without its renaming steps, so errors name the file's own nodes."""
    from qonnx.transformation.extract_conv_bias import ExtractBiasFromConv
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (GiveUniqueParameterTensors, RemoveStaticGraphInputs,
                                              RemoveUnusedTensors)
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    for n in model.graph.node:  # as cleanup_model: Brevitas' domain -> qonnx's custom ops
        if n.op_type in ("Quant", "Trunc", "BipolarQuant"):
            n.domain = "qonnx.custom_op.general"
    for t in (InferShapes(), GiveUniqueParameterTensors(),
              FoldConstants(exclude_op_types=["Quant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear"]),
              FoldTransposeIntoQuantInit(), RemoveUnusedTensors(), RemoveStaticGraphInputs(),
              ExtractBiasFromConv(), InferShapes()):
        model = model.transform(t)
    seen = set()
    for i, n in enumerate(model.graph.node):
        if not n.name or n.name in seen:
            n.name = f"{n.op_type}_{i}"
        seen.add(n.name)
    return model


def is_const(model, tensor: str) -> bool:
    """True if ``tensor`` depends only on initializers (weights and their quantizers)."""
    if model.get_initializer(tensor) is not None:
        return True
    prod = model.find_producer(tensor)
    return prod is not None and all(is_const(model, t) for t in prod.input if t)


def const_value(model, tensor: str) -> np.ndarray:
    """Evaluate a constant tensor (an initializer or a constant subgraph) with the executor."""
    init = model.get_initializer(tensor)
    if init is not None:
        return np.asarray(init)
    prod = model.find_producer(tensor)
    ctx = {t: const_value(model, t) for t in prod.input if t}
    return run_nodes(model, [prod], ctx, prod.output[0])


def dynamic_inputs(model, node) -> list[str]:
    return [t for t in node.input if t and not is_const(model, t)]


def attr(node, name: str, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def run_nodes(model, nodes: list, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
    """Execute ``nodes`` (a chain of ``model``'s nodes) on ``feeds`` with qonnx's executor.

    A small model is built from the nodes, their constant inputs and the feeds' shapes, shapes
    are inferred by qonnx, then :func:`qonnx.core.onnx_exec.execute_onnx` runs it: the same
    per-node code (onnxruntime for standard ops, qonnx's NumPy for its custom ops) that runs the
    whole graph."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    inits, dyn = [], []
    for n in nodes:
        for t in n.input:
            if not t or t in feeds:
                continue
            v = model.get_initializer(t)
            if v is not None and n.op_type == "Reshape" and t == n.input[1]:
                v = np.array([-1] + list(model.get_tensor_shape(n.output[0])[1:]), np.int64)  # any batch
            if v is not None and all(i.name != t for i in inits):
                inits.append(helper.make_tensor(t, _onnx_type(v), v.shape, np.asarray(v).flatten().tolist()))
    for t, v in feeds.items():
        dyn.append(helper.make_tensor_value_info(t, _onnx_type(v), list(v.shape)))
    out = helper.make_tensor_value_info(output, TensorProto.FLOAT, None)
    g = helper.make_graph(list(nodes), "lowbit-sub", dyn, [out], initializer=inits)
    sub = ModelWrapper(qonnx_make_model(g, opset_imports=list(model.model.opset_import)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub = sub.transform(InferShapes())
        return np.asarray(execute_onnx(sub, dict(feeds))[output])


def pixels_to_graph(images: np.ndarray) -> np.ndarray:
    """Raw uint8 samples (N, ...) -> the graph's float32 input values, flattened: ``p / 255``."""
    return np.asarray(images).reshape(len(images), -1).astype(np.float32) / np.float32(255.0)


def _onnx_type(v) -> int:
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype)


def run_graph(model, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """The qonnx executor on raw uint8 ``images`` (N, ...) (:func:`pixels_to_graph`): (N, outputs)."""
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    shape = model.get_tensor_shape(iname)
    outs, cache = [], {}
    x = pixels_to_graph(images)
    if len(shape) == 4 and shape[1] > 1:  # raw (N, H, W, C) samples -> the graph's NCHW
        _, C, H, W = shape
        x = x.reshape(len(x), H, W, C).transpose(0, 3, 1, 2).reshape(len(x), -1)
    for s in range(0, len(x), batch):
        xb = x[s:s + batch]
        n = len(xb)
        if n not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache[n] = model.transform(ChangeBatchSize(n)).transform(InferShapes())
        m = cache[n]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outs.append(np.asarray(execute_onnx(m, {iname: xb.reshape([n] + list(shape[1:]))})[oname]).reshape(n, -1))
    return np.concatenate(outs)
