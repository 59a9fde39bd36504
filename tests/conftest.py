"""Shared fixtures: small random IR models and the location of ../shared/data/mnist.npz."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from quantmodels.ir import InputSpec, IRModel, Layer

REPO = Path(__file__).resolve().parents[1]
MNIST = Path(os.environ.get("LOWBIT_MNIST", REPO.parent / "shared" / "data" / "mnist.npz"))


@pytest.fixture(autouse=True, scope="session")
def _lowbit_cache(tmp_path_factory):
    """Keep build caches out of the user's home unless LOWBIT_CACHE is set (CI sets it to reuse builds)."""
    if "LOWBIT_CACHE" not in os.environ:
        os.environ["LOWBIT_CACHE"] = str(tmp_path_factory.mktemp("lowbit-cache"))
    yield


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


NEW_KINDS = ("accumulate", "shift_add", "bit_serial", "lut_product")


def _random_weights(kind: str, wb: int, shape, rng) -> np.ndarray:
    if kind == "accumulate":
        return rng.choice([-1, 0, 1], size=shape, p=[0.35, 0.3, 0.35])
    if kind == "shift_add":
        e = rng.integers(0, wb - 1, shape)
        return np.where(rng.random(shape) < 0.2, 0, rng.choice([-1, 1], size=shape) * (1 << e))
    if kind == "lut_product":
        return rng.integers(0, 1 << wb, shape)
    return rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), shape)


def random_kind_model(kind: str, sizes=(12, 6, 3), seed=0, hidden_bits=2) -> IRModel:
    """Random two-layer net of one arithmetic kind, with data-driven thresholds/shifts so that
    hidden outputs spread over all levels (uint8 inputs, hidden_bits-wide hidden activations)."""
    from quantmodels.golden import accumulate

    rng = np.random.default_rng(seed)
    wbits = {"accumulate": 2, "shift_add": 4, "bit_serial": 3, "lut_product": 2}[kind]
    probe = (rng.integers(0, 256, (400, sizes[0])) * (rng.random((400, sizes[0])) < 0.5))
    layers, x, in_bits = [], probe, 8
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        last = i == len(sizes) - 2
        products = None
        if kind == "lut_product":
            products = rng.integers(-50, 51, (1 << wbits, 1 << in_bits))
        L = Layer(name=f"fc{i}", kind=kind, in_features=n_in, out_features=n_out, input_bits=in_bits,
                  weight_bits=wbits, output="argmax" if last else "threshold",
                  output_bits=None if last else hidden_bits,
                  weights=_random_weights(kind, wbits, (n_out, n_in), rng), products=products)
        if not last:
            acc = accumulate(L, x)
            q = np.linspace(0, 1, (1 << hidden_bits) + 1)[1:-1]
            L.thresholds = np.ceil(np.quantile(acc, q, axis=0).T).astype(np.int64)
            x = (acc[:, :, None] >= L.thresholds[None]).sum(2)
        layers.append(L)
        in_bits = hidden_bits
    return IRModel(f"rand-{kind}", "test", InputSpec(sizes[0], 8, "identity", None, (sizes[0],)),
                   layers).validate()


def random_conv_model(kind: str = "xnor_popcount", in_shape=(8, 8, 1), channels=(4, 6), kernel=3,
                      stride=1, padding=1, pool=(2, 2), n_classes=3, seed=0) -> IRModel:
    """Random CNN in the IR: conv2d layers (each with a fused max-pool) then a dense argmax layer.

    ``kind`` "xnor_popcount" gives a W1A1 net on thresholded pixels; "accumulate" a ternary net on
    uint8 pixels with 2-bit hidden activations. Thresholds are quantiles of the real accumulator
    over random sparse images, so every output level occurs."""
    from quantmodels.golden import accumulate, im2col, max_pool
    from quantmodels.ir import ConvSpec

    rng = np.random.default_rng(seed)
    xnor = kind == "xnor_popcount"
    in_bits, hid_bits, wbits = (1, 1, 1) if xnor else (8, 2, 2)
    feats = int(np.prod(in_shape))
    probe = rng.integers(0, 256, (200, feats)) * (rng.random((200, feats)) < 0.5)
    x = (probe >= 128).astype(np.int64) if xnor else probe
    layers, shape = [], tuple(in_shape)
    for i, ch in enumerate(channels):
        conv = ConvSpec(shape, (kernel, kernel), stride, padding, pool)
        w = rng.integers(0, 2, (ch, conv.patch)) if xnor else rng.choice([-1, 0, 1], (ch, conv.patch))
        ph, pw = conv.out_hw
        L = Layer(name=f"conv{i}", kind=kind, in_features=int(np.prod(shape)), out_features=ph * pw * ch,
                  input_bits=in_bits, weight_bits=wbits, output="threshold", output_bits=hid_bits,
                  weights=w, conv=conv)
        acc = accumulate(L, im2col(conv, x).reshape(-1, conv.patch))
        q = np.linspace(0, 1, (1 << hid_bits) + 1)[1:-1]
        L.thresholds = np.ceil(np.quantile(acc, q, axis=0).T).astype(np.int64) + (1 if xnor else 0)
        y = (acc[:, :, None] >= L.thresholds[None]).sum(2).reshape(len(x), -1)
        x = max_pool(conv, y, ch)
        layers.append(L)
        shape, in_bits = (ph, pw, ch), hid_bits
    n_in = int(np.prod(shape))
    w = rng.integers(0, 2, (n_classes, n_in)) if xnor else rng.choice([-1, 0, 1], (n_classes, n_in))
    layers.append(Layer(name="fc", kind=kind, in_features=n_in, out_features=n_classes, input_bits=in_bits,
                        weight_bits=wbits, output="argmax", weights=w))
    inp = InputSpec(feats, 1, "threshold", 128, tuple(in_shape)) if xnor else \
        InputSpec(feats, 8, "identity", None, tuple(in_shape))
    return IRModel(f"rand-cnn-{kind}", "test", inp, layers).validate()
