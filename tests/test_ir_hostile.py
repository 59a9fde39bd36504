"""Hostile model directories: every malformed input is refused with one line naming the file or
field (IRError), never a traceback from deep inside numpy, never silently accepted; what validation
accepts, the golden model runs.

The named cases are the classes found by fuzzing the CLI (issue 20); the hypothesis test mutates
random fields of a real model.json with hostile values (a reduced profile here; ``-m slow`` runs
thousands of cases).
"""
from __future__ import annotations

import json
import re
import shutil
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantmodels.errors import IRError
from quantmodels.golden import golden_forward
from quantmodels.ir import load_model, save_model

from conftest import random_conv_model, random_kind_model, random_mac_model, random_xnor_model

MAX_LINE = 300


def _saved(tmp_path, model=None, name="m"):
    return save_model(model or random_mac_model(), tmp_path / name)


def _edit(d, fn):
    doc = json.loads((d / "model.json").read_text())
    fn(doc)
    (d / "model.json").write_text(json.dumps(doc))
    return d


def _refused(d, pattern: str) -> str:
    with pytest.raises(IRError) as e:
        load_model(d)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) <= MAX_LINE, msg
    assert re.search(pattern, msg), msg
    return msg


# ----------------------------------------------------------------------------- typed fields
@pytest.mark.parametrize("edit, pattern", [
    (lambda d: d.update(meta=[1, 2]), r"model\.json: meta: \[1, 2\], expected an object"),
    (lambda d: d["input"].update(source_shape=12), r"input\.source_shape: 12, expected a list"),
    (lambda d: d["layers"][0]["output"].update(shift=1.5), r"layers\[0\]\.output\.shift: 1\.5, expected an integer"),
    (lambda d: d["layers"][0]["output"].update(shift=[3]), r"output\.shift: \[3\], expected an integer"),
    (lambda d: d["layers"][0]["output"].update(shift=None), r"output\.shift: None, expected an integer"),
    (lambda d: d["layers"][0]["output"].pop("shift"), r"layers\[0\]\.output\.shift: missing"),
    (lambda d: d["layers"][0].update(name=""), r"layers\[0\]\.name: '', expected a name of letters"),
    (lambda d: d["layers"][0].update(name="fc 0"), r"layers\[0\]\.name: 'fc 0', expected a name"),
    (lambda d: d["layers"][0].update(in_features=12.0), r"in_features: 12\.0, expected an integer"),
    (lambda d: d["layers"][0].update(out_features=10 ** 30), r"out_features: 1000000000000000000000000000000, "
                                                             r"expected an integer in 1\.\.16777216"),
    (lambda d: d["input"].update(threshold="128"), r"input\.threshold: '128', expected an integer"),
    (lambda d: d.update(name=5), r"model\.json: name: 5, expected a string"),
])
def test_field_types_are_exact(tmp_path, edit, pattern):
    _refused(_edit(_saved(tmp_path), edit), pattern)


@pytest.mark.parametrize("field, value, pattern", [
    ("in_shape", [8, 8.5, 1], r"conv\.in_shape: \[8, 8\.5, 1\], expected a list of 3 integers"),
    ("padding", "1", r"conv\.padding: '1', expected an integer"),
    ("stride", 0, r"conv\.stride: 0, expected an integer in 1\.\.4096"),
    ("pool", [2], r"conv\.pool: \[2\], expected a list of 2 integers"),
])
def test_conv_fields_are_exact(tmp_path, field, value, pattern):
    d = _saved(tmp_path, random_conv_model(channels=(2,)))
    _refused(_edit(d, lambda doc: doc["layers"][0]["conv"].update({field: value})), pattern)


def test_unparseable_json_is_one_line(tmp_path):
    d = _saved(tmp_path)
    (d / "model.json").write_text("[" * 100_000 + "]" * 100_000)
    _refused(d, r"model\.json: (JSON nested too deeply|expected a JSON object)")
    (d / "model.json").write_text('{"format": "lowbit-ir", "schema_version": ' + "9" * 5000 + "}")
    _refused(d, r"model\.json: not valid JSON")
    (d / "model.json").write_bytes("{}".encode("utf-16"))
    _refused(d, r"model\.json: not UTF-8 text")


def test_long_values_are_cut_in_messages(tmp_path):
    msg = _refused(_edit(_saved(tmp_path), lambda d: d["layers"][0].update(kind="x" * 100_000)), r"kind: ")
    assert len(msg) < MAX_LINE


# ----------------------------------------------------------------------------- integer ranges
def test_bias_near_int64_limits_is_refused(tmp_path):
    def huge(a):
        a["fc0.bias"] = a["fc0.bias"].copy()
        a["fc0.bias"][0] = 2 ** 62
    d = _saved(tmp_path)
    with np.load(d / "weights.npz") as z:
        arrs = {k: z[k] for k in z.files}
    huge(arrs)
    np.savez(d / "weights.npz", **arrs)
    _refused(d, r"fc0: accumulator \+ bias span \[.*\], 64 bits; expected at most 48 bits")


# ----------------------------------------------------------------------------- weights.npz
def test_corrupt_or_wrong_weight_files(tmp_path):
    d = _saved(tmp_path)
    raw = bytearray((d / "weights.npz").read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # a flipped byte inside the compressed data
    (d / "weights.npz").write_bytes(bytes(raw))
    _refused(d, r"weights\.npz: (.*unreadable|not a readable \.npz archive)")
    np.save(d / "weights.npy", np.zeros(3, np.int64))
    shutil.move(d / "weights.npy", d / "weights.npz")  # a .npy named .npz
    _refused(d, r"weights\.npz: not a readable \.npz archive")


def test_oversized_array_is_refused_before_it_is_read(tmp_path):
    d = _saved(tmp_path)
    with np.load(d / "weights.npz") as z:
        arrs = {k: z[k] for k in z.files}
    arrs["fc0.weights"] = np.zeros((4000, 1000), np.int8)  # 4 M values where 72 belong
    np.savez_compressed(d / "weights.npz", **arrs)
    assert (d / "weights.npz").stat().st_size < 100_000
    _refused(d, r"fc0\.weights: shape \(4000, 1000\) holds 4000000 values, expected at most")


def test_float_and_foreign_members(tmp_path):
    d = _saved(tmp_path)
    with np.load(d / "weights.npz") as z:
        arrs = {k: z[k] for k in z.files}
    np.savez(d / "weights.npz", **{**arrs, "fc9.weights": np.zeros(2, np.int64)})
    _refused(d, r"array 'fc9\.weights' belongs to no layer")
    with zipfile.ZipFile(d / "weights.npz", "a") as z:
        z.writestr("notes.txt", "hello")
    _refused(d, r"member 'notes\.txt' is not an array")


# ----------------------------------------------------------------------------- durability
def test_weights_from_another_save_are_refused(tmp_path):
    """A kill between the two writes of save_model leaves new weights beside the old description."""
    a = _saved(tmp_path, random_mac_model(seed=0), "a")
    b = _saved(tmp_path, random_mac_model(seed=1), "b")
    shutil.copy(b / "weights.npz", a / "weights.npz")
    _refused(a, r"array 'fc0\.(bias|weights)' differs from the one .*model\.json was saved with")


def test_deleted_optional_array_is_refused(tmp_path):
    m = random_kind_model("accumulate")
    m.layers[-1].bias = np.arange(m.layers[-1].rows)
    d = _saved(tmp_path, m)
    with np.load(d / "weights.npz") as z:
        arrs = {k: z[k] for k in z.files if k != "fc1.bias"}
    np.savez(d / "weights.npz", **arrs)
    _refused(d, r"array 'fc1\.bias' listed in the manifest but not stored")


def test_models_without_manifest_still_load(tmp_path):
    d = _saved(tmp_path, random_xnor_model())
    _edit(d, lambda doc: (doc.pop("arrays"), doc.update(schema_version=4)))
    assert load_model(d).layers[0].weights.shape == (8, 16)


# ----------------------------------------------------------------------------- fuzzing
HOSTILE = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True),
                    st.text(max_size=20), st.lists(st.integers(-3, 300), max_size=4),
                    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _paths(node, prefix=()):
    """Every (path, value) of a JSON document, containers included."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _set(doc, path, value):
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def check_mutation(base_dir, tmp_path, index: int, value) -> str:
    """Mutate one field of a saved model; the loader must refuse it in one line or return a model
    the golden model runs on. Returns "refused" or "accepted"."""
    d = tmp_path / "fz"
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(base_dir, d)
    doc = json.loads((d / "model.json").read_text())
    paths = [p for p, _ in _paths(doc) if p and p[0] != "meta"]
    _set(doc, paths[index % len(paths)], value)
    (d / "model.json").write_text(json.dumps(doc))
    try:
        m = load_model(d)
    except IRError as e:
        assert "\n" not in str(e) and len(str(e)) <= MAX_LINE, str(e)
        return "refused"
    x = np.random.default_rng(0).integers(0, 256, (8, m.input.features)).astype(np.uint8)
    golden_forward(m, x)  # accepted means runnable
    return "accepted"


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    return [save_model(m, root / m.name) for m in (random_mac_model(), random_conv_model(channels=(2,)),
                                                    random_kind_model("lut_product"))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 2), index=st.integers(0, 10_000), value=HOSTILE)
def test_fuzz_model_json(saved_models, tmp_path, which, index, value):
    check_mutation(saved_models[which], tmp_path, index, value)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 2), index=st.integers(0, 10_000), value=HOSTILE)
def test_fuzz_model_json_long(saved_models, tmp_path, which, index, value):
    check_mutation(saved_models[which], tmp_path, index, value)
