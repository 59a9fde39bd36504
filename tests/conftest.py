"""Shared fixtures: small random IR models and the location of ../shared/data/mnist.npz."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from quantmodels.ir import InputSpec, IRModel, Kind, Layer, kind_spec

REPO = Path(__file__).resolve().parents[1]
MNIST = Path(os.environ.get("LOWBIT_MNIST", REPO.parent / "shared" / "data" / "mnist.npz"))


@pytest.fixture(autouse=True, scope="session")
def _lowbit_cache(tmp_path_factory):
    """Keep build caches out of the user's home unless LOWBIT_CACHE is set (CI sets it to reuse builds)."""
    if "LOWBIT_CACHE" not in os.environ:
        os.environ["LOWBIT_CACHE"] = str(tmp_path_factory.mktemp("lowbit-cache"))
    yield


@pytest.fixture
def committed_sfc() -> IRModel:
    """The committed trained SFC W1A1 (benchmarks/results/mnist_sfc_bnn); skips if it is absent."""
    from quantmodels.ir import load_model

    sfc = REPO / "benchmarks" / "results" / "mnist_sfc_bnn"
    if not (sfc / "model.json").exists():
        pytest.skip("no committed SFC model")
    return load_model(sfc)


@pytest.fixture
def mnist_path() -> Path:
    if not MNIST.is_file():
        pytest.skip(f"{MNIST} not present")
    return MNIST


def random_xnor_model(sizes=(16, 8, 4), seed=0, name="rand-xnor") -> IRModel:
    """Random W1A1 network: thresholds drawn inside the popcount range so outputs vary."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        last = i == len(sizes) - 2
        w = rng.integers(0, 2, (n_out, n_in))
        layers.append(Layer(
            name=f"fc{i}", kind="xnor_popcount", in_features=n_in, out_features=n_out,
            input_bits=1, weight_bits=1, output="argmax" if last else "threshold",
            output_bits=None if last else 1, weights=w,
            thresholds=None if last else rng.integers(n_in // 4, 3 * n_in // 4 + 1, (n_out, 1))))
    return IRModel(name, "test", InputSpec(sizes[0], 1, "threshold", 128, (sizes[0],)), layers).validate()


def random_mac_model(sizes=(12, 6, 3), seed=0, name="rand-mac") -> IRModel:
    """Random int8 network with requantize hidden stages."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(Layer(
            name=f"fc{i}", kind="mac", in_features=n_in, out_features=n_out, input_bits=8, weight_bits=8,
            output="argmax" if last else "requantize", output_bits=None if last else 8,
            shift=0 if last else 8, weights=rng.integers(-64, 64, (n_out, n_in)),
            bias=rng.integers(-2000, 2000, n_out)))
    return IRModel(name, "test", InputSpec(sizes[0], 8, "identity", None, (sizes[0],)), layers).validate()


@pytest.fixture
def xnor_model() -> IRModel:
    return random_xnor_model()


@pytest.fixture
def mac_model() -> IRModel:
    return random_mac_model()


#: Every IR kind, from the registry: a kind added there is tested by every test parametrized on it.
ALL_KINDS = tuple(Kind)


def random_layer(kind: str, name: str, rows: int, cols: int, in_bits: int, rng, **fields) -> Layer:
    """A layer of ``kind`` with the kind's example weight width, random valid weights (and a random
    product table for kinds that need one); ``fields`` fill the rest (output stage, conv, ...)."""
    spec = kind_spec(kind)
    wb = spec.example_bits[0]
    products = rng.integers(-50, 51, (1 << wb, 1 << in_bits)) if spec.needs_products else None
    return Layer(name=name, kind=kind, input_bits=in_bits, weight_bits=wb, products=products,
                 weights=spec.random_weights(rng, (rows, cols), wb), **fields)


def kind_input(kind: str, features: int, shape) -> InputSpec:
    """Thresholded pixels for kinds that take 1-bit inputs, raw uint8 otherwise."""
    if kind_spec(kind).fixed_input_bits == 1:
        return InputSpec(features, 1, "threshold", 128, tuple(shape))
    return InputSpec(features, 8, "identity", None, tuple(shape))


def random_kind_model(kind: str, sizes=(12, 6, 3), seed=0, hidden_bits=2) -> IRModel:
    """Random two-layer net of one arithmetic kind, with data-driven thresholds so that hidden
    outputs spread over all levels (hidden_bits-wide, 1 bit for kinds whose inputs are bits)."""
    from quantmodels.golden import accumulate

    rng = np.random.default_rng(seed)
    inp = kind_input(kind, sizes[0], (sizes[0],))
    hidden_bits = kind_spec(kind).fixed_input_bits or hidden_bits
    probe = (rng.integers(0, 256, (400, sizes[0])) * (rng.random((400, sizes[0])) < 0.5))
    layers, in_bits = [], inp.bits
    x = (probe >= 128).astype(np.int64) if inp.bits == 1 else probe
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        last = i == len(sizes) - 2
        L = random_layer(kind, f"fc{i}", n_out, n_in, in_bits, rng, in_features=n_in, out_features=n_out,
                         output="argmax" if last else "threshold", output_bits=None if last else hidden_bits)
        if not last:
            acc = accumulate(L, x)
            q = np.linspace(0, 1, (1 << hidden_bits) + 1)[1:-1]
            L.thresholds = np.ceil(np.quantile(acc, q, axis=0).T).astype(np.int64) + (1 if in_bits == 1 else 0)
            x = (acc[:, :, None] >= L.thresholds[None]).sum(2)
        layers.append(L)
        in_bits = hidden_bits
    return IRModel(f"rand-{kind}", "test", inp, layers).validate()


def random_conv_model(kind: str = "xnor_popcount", in_shape=(8, 8, 1), channels=(4, 6), kernel=3,
                      stride=1, padding=1, pool=(2, 2), n_classes=3, seed=0) -> IRModel:
    """Random CNN in the IR: conv2d layers (each with a fused max-pool) then a dense argmax layer.

    Any kind: 1-bit kinds (xnor_popcount) run on thresholded pixels with 1-bit hidden
    activations, the others on uint8 pixels with 2-bit ones. Thresholds are quantiles of the real
    accumulator over random sparse images, so every output level occurs. ``stride``, ``padding``
    and ``pool`` may also be lists with one entry per conv layer (mixed geometries in one network)."""
    from quantmodels.golden import accumulate, im2col, max_pool
    from quantmodels.ir import ConvSpec

    rng = np.random.default_rng(seed)
    feats = int(np.prod(in_shape))
    inp = kind_input(kind, feats, in_shape)
    bit_inputs = inp.bits == 1
    in_bits, hid_bits = (1, 1) if bit_inputs else (8, 2)
    probe = rng.integers(0, 256, (200, feats)) * (rng.random((200, feats)) < 0.5)
    x = (probe >= 128).astype(np.int64) if bit_inputs else probe
    layers, shape = [], tuple(in_shape)
    def per_layer(v, i):
        return v[i] if isinstance(v, list) else v

    for i, ch in enumerate(channels):
        conv = ConvSpec(shape, (kernel, kernel), per_layer(stride, i), per_layer(padding, i), per_layer(pool, i))
        ph, pw = conv.out_hw
        L = random_layer(kind, f"conv{i}", ch, conv.patch, in_bits, rng, in_features=int(np.prod(shape)),
                         out_features=ph * pw * ch, output="threshold", output_bits=hid_bits, conv=conv)
        acc = accumulate(L, im2col(conv, x).reshape(-1, conv.patch))
        q = np.linspace(0, 1, (1 << hid_bits) + 1)[1:-1]
        L.thresholds = np.ceil(np.quantile(acc, q, axis=0).T).astype(np.int64) + (1 if bit_inputs else 0)
        y = (acc[:, :, None] >= L.thresholds[None]).sum(2).reshape(len(x), -1)
        x = max_pool(conv, y, ch)
        layers.append(L)
        shape, in_bits = (ph, pw, ch), hid_bits
    n_in = int(np.prod(shape))
    layers.append(random_layer(kind, "fc", n_classes, n_in, in_bits, rng, in_features=n_in, out_features=n_classes,
                               output="argmax"))
    return IRModel(f"rand-cnn-{kind}", "test", inp, layers).validate()


def mnist_cnn_model(seed: int = 0) -> IRModel:
    """MNIST-size W1A1 CNN with random weights: 28x28x1 -> conv 16 3x3 + pool 2 (13x13x16)
    -> conv 32 3x3 + pool 2 (5x5x32) -> dense 10."""
    return random_conv_model("xnor_popcount", in_shape=(28, 28, 1), channels=(16, 32), kernel=3, stride=1,
                             padding=0, pool=(2, 2), n_classes=10, seed=seed)


def assert_bit_exact_under_stalls(model: IRModel, h, x, y, stall_pct: int, stalled: int | None = None) -> None:
    """Run ``x`` under Verilator on built hardware ``h``: bit-exact, measured interval within a cycle of
    ``cycles_per_image``, first latency within 2 of the model; then the first ``stalled`` images (all
    by default) again with ``stall_pct`` % random out_ready stalls: nothing dropped, still bit-exact."""
    from lowbit.steps import simulate

    r = simulate(model, h, x, y)
    assert r.n_images == len(x) and r.mismatches == 0, f"first mismatch at image {r.first_bad}"
    assert abs(r.steady_cycles_per_image - h.cycles_per_image) <= 1
    assert abs(r.first_latency - h.latency_cycles) <= 2
    xs, ys = x[:stalled], (None if y is None else y[:stalled])
    r = simulate(model, h, xs, ys, stall_pct=stall_pct)
    assert r.n_images == len(xs) and r.mismatches == 0, f"with back-pressure: first mismatch at image {r.first_bad}"


def assert_rtl_bit_exact(model: IRModel, data, tmp_path: Path) -> None:
    """Generate ``model``'s Verilog, simulate every test image of ``data`` under Verilator and check
    classes and logits against golden, on a trained net (not a constant classifier)."""
    from lowbit.steps import make_hardware, simulate
    from quantmodels.golden import golden_predict

    h = make_hardware(model, None, tmp_path)
    r = simulate(model, h, data.x_test, data.y_test)
    assert r.n_images == len(data.x_test) and r.mismatches == 0, f"first mismatch at image {r.first_bad}"
    gold = golden_predict(model, data.x_test)
    assert abs(r.accuracy - float(np.mean(gold == data.y_test))) < 1e-12
    assert len(np.unique(gold)) >= 5
