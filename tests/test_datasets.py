"""Dataset loaders: real files load; missing, truncated and wrong-shaped files give one clear line."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from quantmodels.datasets import load_dataset, load_digits, load_mnist_idx, load_mnist_npz
from quantmodels.errors import DataError


def test_digits_embedded():
    d = load_digits()
    assert d.x_train.dtype == np.uint8 and d.x_train.shape[1:] == (8, 8)
    assert len(d.x_train) + len(d.x_test) == 1797
    assert d.x_train.max() == 255 and d.n_classes == 10


def test_mnist_npz(mnist_path):
    d = load_mnist_npz(mnist_path)
    assert d.x_train.shape == (60000, 28, 28) and d.x_test.shape == (10000, 28, 28)
    assert set(np.unique(d.y_test)) == set(range(10))


def _fake(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 28, 28)).astype(np.uint8), rng.integers(0, 10, n).astype(np.uint8))


def test_mnist_idx_gz_and_raw(tmp_path):
    x, y = _fake()
    for stem, arr in [("train-images-idx3-ubyte", x), ("t10k-images-idx3-ubyte", x)]:
        raw = struct.pack(">HBB", 0, 8, 3) + struct.pack(">3I", *arr.shape) + arr.tobytes()
        (tmp_path / (stem + ".gz")).write_bytes(gzip.compress(raw))
    for stem in ["train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"]:
        (tmp_path / stem).write_bytes(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", len(y)) + y.tobytes())
    d = load_dataset(tmp_path)
    np.testing.assert_array_equal(d.x_train, x)
    np.testing.assert_array_equal(d.y_test, y)
    # truncate one file: one clear line naming it
    p = tmp_path / "t10k-labels-idx1-ubyte"
    p.write_bytes(p.read_bytes()[:-3])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: IDX payload has 17 bytes, expected 20"):
        load_mnist_idx(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"^.*nope\.npz: no such file \(expected an \.npz with x_train, y_train, x_test, y_test\)$"):
        load_dataset(tmp_path / "nope.npz")


def test_truncated_npz(tmp_path):
    x, y = _fake()
    p = tmp_path / "m.npz"
    np.savez(p, x_train=x, y_train=y, x_test=x, y_test=y)
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(DataError, match=r"m\.npz: not a readable \.npz archive"):
        load_mnist_npz(p)


def test_wrong_shape(tmp_path):
    x, y = _fake()
    p = tmp_path / "m.npz"
    np.savez(p, x_train=x.reshape(20, 4, 196), y_train=y, x_test=x, y_test=y)
    with pytest.raises(DataError, match=r"m\.npz: x_test images are 28x28, expected the 4x196 of x_train$"):
        load_mnist_npz(p)
    np.savez(p, x_train=x[:, :, :, None, None], y_train=y, x_test=x, y_test=y)
    with pytest.raises(DataError, match=r"m\.npz: x_train has shape \(20, 28, 28, 1, 1\), expected \(N, H, W\), "
                                        r"\(N, H, W, C\) channels-last or \(N, F\) flat"):
        load_mnist_npz(p)
    np.savez(p, x_train=np.zeros((20, 28, 28, 64), np.uint8), y_train=y, x_test=x, y_test=y)
    with pytest.raises(DataError, match=r"x_train has shape \(20, 28, 28, 64\), expected .* <= 16 channels"):
        load_mnist_npz(p)


@pytest.mark.parametrize("shape,image", [((30, 32, 32, 3), (32, 32, 3)), ((30, 16, 16), (16, 16)),
                                         ((30, 12, 20, 1), (12, 20)), ((30, 144), (12, 12)), ((30, 50), (1, 50))])
def test_any_image_size_channels_and_classes(tmp_path, shape, image):
    """MNIST-format files of other datasets load: any size, channels-last colour, K classes."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, shape).astype(np.uint8)
    y = (np.arange(30) % 26).astype(np.int64)  # 26 classes (EMNIST letters style)
    p = tmp_path / "other.npz"
    np.savez(p, x_train=x, y_train=y, x_test=x[:5], y_test=y[:5])
    d = load_dataset(p)
    assert d.image_shape == image and d.n_classes == 26 and d.name == "other"
    np.testing.assert_array_equal(d.x_train.reshape(30, -1), x.reshape(30, -1))


def test_test_labels_outside_the_training_classes(tmp_path):
    x, y = _fake()
    y = y % 4
    p = tmp_path / "m.npz"
    np.savez(p, x_train=x, y_train=y, x_test=x, y_test=np.full_like(y, 7))
    with pytest.raises(DataError, match=r"m\.npz: y_test holds label 7, expected labels 0\.\.3 \(the classes of y_train\)$"):
        load_mnist_npz(p)
    np.savez(p, x_train=x, y_train=np.full(20, 5000), x_test=x, y_test=y)
    with pytest.raises(DataError, match=r"y_train must hold integer labels 0\.\.K-1 \(K <= 1000 classes\)$"):
        load_mnist_npz(p)


def test_missing_key(tmp_path):
    x, y = _fake()
    p = tmp_path / "m.npz"
    np.savez(p, x_train=x, y_train=y, x_test=x)
    with pytest.raises(DataError, match=r"m\.npz: missing key\(s\) y_test"):
        load_mnist_npz(p)


def test_label_length_mismatch(tmp_path):
    x, y = _fake()
    p = tmp_path / "m.npz"
    np.savez(p, x_train=x, y_train=y[:5], x_test=x, y_test=y)
    with pytest.raises(DataError, match=r"y_train has shape \(5,\), expected \(20,\) to match x_train"):
        load_mnist_npz(p)
