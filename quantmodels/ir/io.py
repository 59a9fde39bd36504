"""Reading and writing IR model directories (``model.json`` + ``weights.npz``), validating as it goes."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_json, atomic_write_npz
from ..errors import IRError
from .constants import MODEL_FILE, READABLE_VERSIONS, WEIGHTS_FILE, FORMAT, Op, OutputType, choices
from .kinds import as_kind, kind_spec
from .schema import ConvSpec, InputSpec, IRModel, Layer
from .validate import validate_model

def save_model(model: IRModel, directory: str | Path) -> Path:
    """Validate and write ``model.json`` + ``weights.npz`` atomically into ``directory``."""
    directory = Path(directory)
    model.validate(str(directory))
    arrays: dict[str, np.ndarray] = {}
    for layer in model.layers:
        arrays.update({k: np.ascontiguousarray(v) for k, v in layer.arrays().items()})
    atomic_write_npz(directory / WEIGHTS_FILE, arrays)
    atomic_write_json(directory / MODEL_FILE, model.to_json())
    return directory


def load_model(directory: str | Path) -> IRModel:
    """Load and validate an IR model directory (or a path to its model.json)."""
    directory = Path(directory)
    if directory.name == MODEL_FILE:
        directory = directory.parent
    mpath, wpath = directory / MODEL_FILE, directory / WEIGHTS_FILE
    if not directory.exists():
        raise IRError(f"{directory}: no such model directory")
    if not mpath.is_file():
        raise IRError(f"{mpath}: missing; an IR model directory holds {MODEL_FILE} and {WEIGHTS_FILE}")
    if not wpath.is_file():
        raise IRError(f"{wpath}: missing; an IR model directory holds {MODEL_FILE} and {WEIGHTS_FILE}")
    try:
        doc = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IRError(f"{mpath}: not valid JSON ({e})") from None
    try:
        with np.load(wpath, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise IRError(f"{wpath}: not a readable .npz archive ({type(e).__name__}: {e})") from None
    return model_from_json(doc, arrays, where=str(mpath), wfile=str(wpath))


def _req(d: Any, key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(d, dict):
        raise IRError(f"{where}: expected a JSON object, got {type(d).__name__}")
    if key not in d:
        raise IRError(f"{where}.{key}: missing")
    v = d[key]
    if typ is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise IRError(f"{where}.{key}: {v!r}, expected an integer")
    if not isinstance(v, typ):
        names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise IRError(f"{where}.{key}: {v!r}, expected {names}")
    return v


def model_from_json(doc: Any, arrays: dict[str, np.ndarray], where: str = "model.json",
                    wfile: str = WEIGHTS_FILE) -> IRModel:
    """Build an :class:`IRModel` from parsed JSON and its arrays, validating as it goes."""
    if not isinstance(doc, dict):
        raise IRError(f"{where}: expected a JSON object at top level")
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise IRError(f"{where}: format: {fmt!r}, expected {FORMAT!r}")
    ver = _req(doc, "schema_version", int, where)
    if ver not in READABLE_VERSIONS:
        raise IRError(f"{where}: schema_version: {ver}, expected one of {', '.join(map(str, READABLE_VERSIONS))}")
    inp = _req(doc, "input", dict, where)
    input_spec = InputSpec(
        features=_req(inp, "features", int, f"{where}: input"),
        bits=_req(inp, "bits", int, f"{where}: input"),
        quantizer=_req(inp, "quantizer", str, f"{where}: input"),
        threshold=inp.get("threshold"),
        source_shape=tuple(inp.get("source_shape", ())),
    )
    layers_doc = _req(doc, "layers", list, where)
    layers = []
    for i, ld in enumerate(layers_doc):
        lw = f"{where}: layers[{i}]"
        name = _req(ld, "name", str, lw)
        kind = as_kind(_req(ld, "kind", str, lw), f"{lw}.kind")
        op = ld.get("op", "dense")
        if op not in tuple(Op):
            raise IRError(f"{lw}.op: {op!r}, expected one of {choices(Op)}")
        conv = None
        if op == "conv2d":
            cd = _req(ld, "conv", dict, lw)
            try:
                conv = ConvSpec(in_shape=tuple(_req(cd, "in_shape", list, f"{lw}.conv")),
                                kernel=tuple(_req(cd, "kernel", list, f"{lw}.conv")),
                                stride=int(cd.get("stride", 1)), padding=int(cd.get("padding", 0)),
                                pool=tuple(cd.get("pool", (1, 1))))
            except (TypeError, ValueError) as e:
                raise IRError(f"{lw}.conv: {cd!r} is malformed ({e})") from None
            except IRError as e:
                raise IRError(f"{lw}.{e}") from None
        out = _req(ld, "output", dict, lw)
        otype = _req(out, "type", str, f"{lw}.output")
        if otype not in tuple(OutputType):
            raise IRError(f"{lw}.output.type: {otype!r}, expected one of {choices(OutputType)}")
        obits = out.get("bits")
        if otype != "argmax" and (not isinstance(obits, int) or isinstance(obits, bool)):
            raise IRError(f"{lw}.output.bits: {obits!r}, expected an integer for output type {otype!r}")

        def arr(suffix: str, required: bool) -> np.ndarray | None:
            key = f"{name}.{suffix}"
            if key not in arrays:
                if required:
                    raise IRError(f"{wfile}: array {key!r} missing (needed by layers[{i}] {name!r})")
                return None
            a = arrays[key]
            if not np.issubdtype(a.dtype, np.integer):
                raise IRError(f"{wfile}: {key}: dtype {a.dtype}, expected integer")
            return a.astype(np.int64)

        layers.append(Layer(
            name=name, kind=kind,
            in_features=_req(ld, "in_features", int, lw),
            out_features=_req(ld, "out_features", int, lw),
            input_bits=_req(ld, "input_bits", int, lw),
            weight_bits=_req(ld, "weight_bits", int, lw),
            output=otype, output_bits=obits,
            shift=int(out.get("shift", 0)),
            weights=arr("weights", True),
            thresholds=arr("thresholds", otype == "threshold"),
            bias=arr("bias", otype == "requantize"),
            products=arr("products", kind_spec(kind).needs_products),
            conv=conv,
        ))
    model = IRModel(name=str(doc.get("name", "model")), method=str(doc.get("method", "unknown")),
                    input=input_spec, layers=layers, meta=dict(doc.get("meta", {})))
    validate_model(model, where, wfile)
    return model
