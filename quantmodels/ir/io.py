"""Reading and writing IR model directories (``model.json`` + ``weights.npz``), validating as it goes.

Everything a user hands lowbit is hostile until checked: every field is read with its exact JSON
type (no silent ``int("1")`` or ``int(8.5)``), every array is size-checked from its header before
its data is read, and schema v5 directories carry a manifest (the sha256 of every array) in
``model.json``, written last: a directory whose two files do not belong together (an interrupted
save, a deleted or swapped array) is refused on load instead of running a different network.
"""
from __future__ import annotations

import hashlib
import json
import re
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_json, atomic_write_npz
from ..errors import IRError, LowbitError, clip
from .constants import (FORMAT, LAYER_NAME, MAX_BITS, MAX_FEATURES, MODEL_FILE, READABLE_VERSIONS, WEIGHTS_FILE, Op,
                        OutputType, choices)
from .kinds import as_kind, kind_spec
from .schema import ConvSpec, InputSpec, IRModel, Layer, validate_model


MANIFEST_VERSION = 5  #: first schema version whose model.json carries the arrays' manifest
MAX_JSON_BYTES = 16 << 20  #: a model description is kilobytes; refuse anything absurd before parsing
_MISSING = object()
#: The keys each output stage's JSON object may hold (what ``Layer.to_json`` writes for it).
_OUTPUT_KEYS = {"threshold": {"type", "bits"}, "requantize": {"type", "bits", "shift"}, "argmax": {"type"}}


def array_digest(a: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes: the manifest entry of one stored array."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def save_model(model: IRModel, directory: str | Path) -> Path:
    """Validate and write ``weights.npz``, then ``model.json`` with the arrays' manifest (each file
    atomically; the JSON last, so a half-saved directory fails its manifest check on load)."""
    directory = Path(directory)
    model.validate(str(directory))
    arrays: dict[str, np.ndarray] = {}
    for layer in model.layers:
        arrays.update({k: np.ascontiguousarray(v) for k, v in layer.arrays().items()})
    atomic_write_npz(directory / WEIGHTS_FILE, arrays)
    doc = model.to_json()
    doc["arrays"] = {k: array_digest(v) for k, v in arrays.items()}
    atomic_write_json(directory / MODEL_FILE, doc)
    return directory


def load_model(directory: str | Path) -> IRModel:
    """Load and validate an IR model directory (or a path to its model.json)."""
    directory = Path(directory)
    if directory.name == MODEL_FILE:
        directory = directory.parent
    mpath, wpath = directory / MODEL_FILE, directory / WEIGHTS_FILE
    if not directory.is_dir():
        raise IRError(f"{directory}: no such model directory")
    for p in (mpath, wpath):
        if not p.is_file():
            raise IRError(f"{p}: missing; an IR model directory holds {MODEL_FILE} and {WEIGHTS_FILE}")
    doc = read_json(mpath)
    return model_from_json(doc, NpzReader(wpath), where=str(mpath), wfile=str(wpath))


def read_json(path: Path) -> Any:
    """Parse a JSON file; IRError naming the file for anything that is not a sane JSON document."""
    if path.stat().st_size > MAX_JSON_BYTES:
        raise IRError(f"{path}: {path.stat().st_size} bytes, expected a JSON document under {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise IRError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise IRError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise IRError(f"{path}: JSON nested too deeply") from None
    except ValueError as e:  # e.g. an integer literal of thousands of digits
        raise IRError(f"{path}: not valid JSON ({clip(str(e), 80)})") from None


def check_array(path: str, key: str, dtype: np.dtype, shape: tuple, max_elements: int,
                error: type[LowbitError] = IRError) -> None:
    """An array lowbit may read: integer dtype, at most ``max_elements`` values (from its header).

    ``error``: the error type raised (IRError for models, DataError for datasets)."""
    if dtype.hasobject or not np.issubdtype(dtype, np.integer):
        raise error(f"{path}: {key}: dtype {dtype}, expected integer")
    n = int(np.prod(shape, dtype=object))
    if n > max_elements:
        raise error(f"{path}: {key}: shape {clip(shape)} holds {clip(n, 30)} values, expected at most {max_elements}")


class NpzReader:
    """The arrays of a ``weights.npz``, read one at a time after a header check (shape, dtype, size)
    so that a corrupt or oversized archive fails with one line before memory is spent on it."""

    def __init__(self, path: Path | str, error: type[LowbitError] = IRError):
        self.path, self.error = str(path), error
        try:
            self._zip = zipfile.ZipFile(path)
            self.names = {n[:-4] for n in self._zip.namelist() if n.endswith(".npy")}
            extra = [n for n in self._zip.namelist() if not n.endswith(".npy")]
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise error(f"{path}: not a readable .npz archive ({type(e).__name__}: {clip(str(e), 80)})") from None
        if extra:
            raise error(f"{path}: member {clip(extra[0])} is not an array (.npy)")

    def __contains__(self, key: str) -> bool:
        return key in self.names

    def read(self, key: str, max_elements: int) -> np.ndarray:
        """Array ``key`` if it is an integer array of at most ``max_elements`` elements."""
        try:
            with self._zip.open(f"{key}.npy") as f:
                version = np.lib.format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise self.error(f"{self.path}: {key}: .npy format version {version}, expected 1.0 or 2.0")
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(f)  # header only: no data read yet
                check_array(self.path, key, dtype, shape, max_elements, self.error)
            with self._zip.open(f"{key}.npy") as f:
                a = np.lib.format.read_array(f, allow_pickle=False)
                # read to the member's end: zipfile checks the CRC-32 only there, so a flipped byte in
                # a stored (uncompressed) member would otherwise load as different numbers
                if f.read(1):
                    raise self.error(f"{self.path}: {key}: data after the array's {a.size} values, expected none")
                return a
        except LowbitError:
            raise
        # numpy parses the .npy header with tokenize + ast: a corrupt header raises their errors too
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, KeyError, SyntaxError,
                tokenize.TokenError, RecursionError, OverflowError) as e:
            raise self.error(f"{self.path}: {key}: unreadable ({type(e).__name__}: {clip(str(e), 80)})") from None


class _DictArrays:
    """In-memory arrays (model_from_json called with a dict) behind the reader interface."""

    def __init__(self, arrays: dict[str, np.ndarray], path: str):
        self.arrays, self.names, self.path = arrays, set(arrays), path

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def read(self, key: str, max_elements: int) -> np.ndarray:
        a = np.asarray(self.arrays[key])
        check_array(self.path, key, a.dtype, a.shape, max_elements)
        return a


# ----------------------------------------------------------------------------- typed fields


def _obj(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise IRError(f"{where}: {clip(v)}, expected a JSON object")
    return v


def _req(d: Any, key: str, typ: type | tuple[type, ...], where: str, default: Any = _MISSING) -> Any:
    """Field ``key`` of object ``d`` with exactly JSON type ``typ`` (bool is not an int)."""
    d = _obj(d, where)
    # a field of the file itself reads "model.json: layers", of a nested object "...: layers[0].kind"
    field = f"{where}.{key}" if ": " in where else f"{where}: {key}"
    if key not in d:
        if default is not _MISSING:
            return default
        raise IRError(f"{field}: missing")
    v = d[key]
    if typ is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise IRError(f"{field}: {clip(v)}, expected an integer")
    if not isinstance(v, typ):
        names = " or ".join(_JSON_TYPE_NAMES.get(t, t.__name__) for t in (typ if isinstance(typ, tuple) else (typ,)))
        raise IRError(f"{field}: {clip(v)}, expected {names}")
    return v


#: How a field's expected JSON type is named in an error.
_JSON_TYPE_NAMES = {list: "a list", dict: "an object", str: "a string", float: "a number", int: "an integer",
                    bool: "true or false"}


def _int(d: Any, key: str, where: str, lo: int, hi: int, default: Any = _MISSING) -> int:
    v = _req(d, key, int, where, default)
    if not lo <= v <= hi:
        raise IRError(f"{where}.{key}: {clip(v)}, expected an integer in {lo}..{hi}")
    return v


def _ints(d: Any, key: str, where: str, n: int | None, lo: int, hi: int, default: Any = _MISSING) -> tuple[int, ...]:
    v = _req(d, key, list, where, default)
    if (n is not None and len(v) != n) or any(isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi
                                              for x in v):
        size = f"{n} " if n is not None else ""
        raise IRError(f"{where}.{key}: {clip(v)}, expected a list of {size}integers in {lo}..{hi}")
    return tuple(v)


def _conv(cd: Any, lw: str) -> ConvSpec:
    w = f"{lw}.conv"
    try:
        return ConvSpec(in_shape=_ints(cd, "in_shape", w, 3, 1, MAX_FEATURES), kernel=_ints(cd, "kernel", w, 2, 1, 4096),
                        stride=_int(cd, "stride", w, 1, 4096, 1), padding=_int(cd, "padding", w, 0, 4096, 0),
                        pool=_ints(cd, "pool", w, 2, 1, 4096, [1, 1]))
    except IRError as e:
        msg = str(e)
        raise IRError(msg if msg.startswith(lw) else f"{lw}.{msg}") from None


# ----------------------------------------------------------------------------- the model


def model_from_json(doc: Any, arrays: "dict[str, np.ndarray] | NpzReader", where: str = "model.json",
                    wfile: str = WEIGHTS_FILE) -> IRModel:
    """Build an :class:`IRModel` from parsed JSON and its arrays, validating as it goes."""
    if not isinstance(doc, dict):
        raise IRError(f"{where}: expected a JSON object at top level")
    reader = _DictArrays(arrays, wfile) if isinstance(arrays, dict) else arrays
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise IRError(f"{where}: format: {clip(fmt)}, expected {FORMAT!r}")
    ver = _req(doc, "schema_version", int, where)
    if ver not in READABLE_VERSIONS:
        raise IRError(f"{where}: schema_version: {clip(ver)}, expected one of {', '.join(map(str, READABLE_VERSIONS))}")
    inp = _req(doc, "input", dict, where)
    iw = f"{where}: input"
    threshold = inp.get("threshold")
    input_spec = InputSpec(
        features=_int(inp, "features", iw, 1, MAX_FEATURES),
        bits=_int(inp, "bits", iw, 1, MAX_BITS),
        quantizer=_req(inp, "quantizer", str, iw),
        threshold=None if threshold is None else _int(inp, "threshold", iw, 0, 256),
        source_shape=_ints(inp, "source_shape", iw, None, 1, MAX_FEATURES, []),
    )
    layers_doc = _req(doc, "layers", list, where)
    manifest = _req(doc, "arrays", dict, where, None)
    if manifest is None and ver >= MANIFEST_VERSION:  # deleting the manifest must not switch its check off
        raise IRError(f"{where}: arrays: missing, expected the sha256 manifest of {WEIGHTS_FILE} "
                      f"(schema_version {ver} >= {MANIFEST_VERSION})")
    used: dict[str, str] = {}  #: array name -> digest of what was read
    layers = []
    for i, ld in enumerate(layers_doc):
        lw = f"{where}: layers[{i}]"
        name = _req(ld, "name", str, lw)
        if not re.match(LAYER_NAME, name):  # before the name is used as an array key
            raise IRError(f"{lw}.name: {clip(name)}, expected a name of letters, digits and '_' "
                          f"(not starting with a digit, at most 63 characters)")
        kind = as_kind(_req(ld, "kind", str, lw), f"{lw}.kind")
        op = ld.get("op", "dense")
        if op not in tuple(Op):
            raise IRError(f"{lw}.op: {clip(op)}, expected one of {choices(Op)}")
        conv = _conv(_req(ld, "conv", dict, lw), lw) if op == "conv2d" else None
        in_f, out_f = _int(ld, "in_features", lw, 1, MAX_FEATURES), _int(ld, "out_features", lw, 1, MAX_FEATURES)
        ib, wb = _int(ld, "input_bits", lw, 1, MAX_BITS), _int(ld, "weight_bits", lw, 1, MAX_BITS)
        out = _req(ld, "output", dict, lw)
        otype = _req(out, "type", str, f"{lw}.output")
        if otype not in tuple(OutputType):
            raise IRError(f"{lw}.output.type: {clip(otype)}, expected one of {choices(OutputType)}")
        extra = sorted(set(out) - _OUTPUT_KEYS[otype])
        if extra:  # e.g. a 'shift' on a threshold stage: ignored today, so refuse it rather than drop it
            raise IRError(f"{lw}.output.{clip(extra[0], 40)}: present for output type {otype!r}, expected only "
                          f"{', '.join(sorted(_OUTPUT_KEYS[otype]))}")
        obits = out.get("bits")
        if otype != "argmax" and (not isinstance(obits, int) or isinstance(obits, bool)):
            raise IRError(f"{lw}.output.bits: {clip(obits)}, expected an integer for output type {otype!r}")
        if otype != "argmax":
            obits = _int(out, "bits", f"{lw}.output", 1, MAX_BITS)
        shift = _int(out, "shift", f"{lw}.output", 0, 62) if otype == "requantize" else 0
        # array sizes follow from the fields above: refuse an oversized member before reading it
        positions = conv.out_hw[0] * conv.out_hw[1] if conv is not None else 1
        rows, cols = max(1, out_f // positions), conv.patch if conv is not None else in_f

        def arr(suffix: str, required: bool, max_elements: int) -> np.ndarray | None:
            key = f"{name}.{suffix}"
            if key not in reader:
                if required:
                    raise IRError(f"{wfile}: array {key!r} missing (needed by layers[{i}] {name!r})")
                return None
            raw = reader.read(key, 4 * max_elements + 4096)  # a resource guard: validation checks the exact shape
            used[key] = array_digest(raw)
            return raw.astype(np.int64)

        layers.append(Layer(
            name=name, kind=kind, in_features=in_f, out_features=out_f, input_bits=ib, weight_bits=wb,
            output=otype, output_bits=obits, shift=shift,
            weights=arr("weights", True, rows * cols),
            thresholds=arr("thresholds", otype == "threshold", rows * ((1 << min(obits or 0, 8)) - 1)),
            bias=arr("bias", otype == "requantize", rows),
            products=arr("products", kind_spec(kind).needs_products, (1 << wb) * (1 << ib)),
            conv=conv,
        ))
    unused = sorted(reader.names - set(used))
    if unused:
        raise IRError(f"{wfile}: array {clip(unused[0])} belongs to no layer of {where}")
    meta = _req(doc, "meta", dict, where, {})
    model = IRModel(name=_req(doc, "name", str, where, "model"), method=_req(doc, "method", str, where, "unknown"),
                    input=input_spec, layers=layers, meta=dict(meta))
    validate_model(model, where, wfile)  # the specific rule first; then whether the two files belong together
    if manifest is not None:
        _check_manifest(manifest, used, where, wfile)
    return model


def _check_manifest(manifest: dict, used: dict[str, str], where: str, wfile: str) -> None:
    """Every array the manifest names is present and unchanged, and nothing else is."""
    if set(manifest) != set(used):
        odd = sorted(set(manifest) ^ set(used))[0]
        state = "listed in the manifest but not stored" if odd in manifest else "stored but not in the manifest"
        raise IRError(f"{wfile}: array {clip(odd)} {state} ({Path(where).name} and {Path(wfile).name} "
                      f"do not belong together)")
    for key, digest in sorted(used.items()):
        if digest != manifest[key]:
            raise IRError(f"{wfile}: array {key!r} differs from the one {Path(where).name} was saved with "
                          f"(interrupted save or edited file)")
