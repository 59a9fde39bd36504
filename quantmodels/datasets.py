"""Dataset loaders: the embedded 8x8 digits (ships with scikit-learn) and MNIST-format files (.npz or
IDX) of any image size, channel count and class count within bounds (Fashion-MNIST, CIFAR-10 as
(N, 32, 32, 3), ...).

All loaders return uint8 images (N, H, W) or (N, H, W, C) and int64 labels, and raise DataError with
one line naming the file and what was expected.
"""
from __future__ import annotations

import gzip
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError, clip


@dataclass
class Dataset:
    """Train/test split of uint8 images and integer labels."""

    name: str
    x_train: np.ndarray  #: (N, H, W) or (N, H, W, C) uint8
    y_train: np.ndarray  #: (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 samples), scaled 0..16 -> 0..255 uint8.

    The split is a seeded shuffle so that it is the same on every machine.
    """
    from sklearn.datasets import load_digits as _sk_digits  # local: only the demo needs sklearn

    d = _sk_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    te, tr = order[:n_test], order[n_test:]
    return Dataset("digits", x[tr], y[tr], x[te], y[te])


_IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
}


#: Bounds on a user's data file: MNIST is 70,000 images of 784 pixels; anything far beyond is refused
#: from its header, before memory is spent on it.
MAX_IMAGES = 1 << 20
MAX_FILE_BYTES = MAX_IMAGES * 28 * 28 + (1 << 20)
#: Largest image a data file may hold (pixels x channels; CIFAR's 32x32x3 is 3,072) and its longest side.
MAX_IMAGE_VALUES = 1 << 16
MAX_SIDE = 1024
#: Most channels of a channels-last (N, H, W, C) image array.
MAX_CHANNELS = 16
#: Most classes (labels 0..K-1).
MAX_CLASSES = 1000
#: Fewest training images: the validation split (10 %) must hold at least one image.
MIN_TRAIN_IMAGES = 10
MIN_TEST_IMAGES = 1
#: The shapes an image array may have, for error messages.
_SHAPES = "(N, H, W), (N, H, W, C) channels-last or (N, F) flat (F = s*s is read as s x s)"


def _images(path: str, x: np.ndarray, xk: str) -> np.ndarray:
    """``x`` as (N, H, W) or (N, H, W, C) uint8 images; one-line DataError naming ``xk`` otherwise."""
    if x.ndim == 2:  # flat samples: MNIST's (N, 784) and any s*s square become s x s images, else 1 x F
        side = int(round(np.sqrt(x.shape[1])))
        x = x.reshape(len(x), side, side) if side * side == x.shape[1] else x.reshape(len(x), 1, x.shape[1])
    if x.ndim == 4 and x.shape[3] == 1:
        x = x[..., 0]
    if x.ndim not in (3, 4) or min(x.shape[1:], default=0) < 1 or max(x.shape[1:3]) > MAX_SIDE \
            or (x.ndim == 4 and x.shape[3] > MAX_CHANNELS) or int(np.prod(x.shape[1:])) > MAX_IMAGE_VALUES:
        raise DataError(f"{path}: {xk} has shape {clip(x.shape)}, expected {_SHAPES}, sides <= {MAX_SIDE}, "
                        f"<= {MAX_CHANNELS} channels, <= {MAX_IMAGE_VALUES} values an image")
    if x.dtype != np.uint8:
        raise DataError(f"{path}: {xk} has dtype {x.dtype}, expected uint8")
    return x


def _check_split(path: str, x: np.ndarray, y: np.ndarray, xk: str, yk: str,
                 min_images: int = MIN_TEST_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    x = _images(path, x, xk)
    if len(x) < min_images:
        raise DataError(f"{path}: {xk} holds {len(x)} images, expected at least {min_images}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: {yk} has shape {clip(y.shape)}, expected ({len(x)},) to match {xk}")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() >= MAX_CLASSES)):
        raise DataError(f"{path}: {yk} must hold integer labels 0..K-1 (K <= {MAX_CLASSES} classes)")
    return x, y.astype(np.int64)


def _checked(path: str, arrs: dict[str, np.ndarray], name: str) -> Dataset:
    """The four arrays as a Dataset named ``name``, each split checked (shape, dtype, size, labels), the
    splits consistent (one image shape; test labels among the training set's classes)."""
    xtr, ytr = _check_split(path, arrs["x_train"], arrs["y_train"], "x_train", "y_train", MIN_TRAIN_IMAGES)
    xte, yte = _check_split(path, arrs["x_test"], arrs["y_test"], "x_test", "y_test")
    if xte.shape[1:] != xtr.shape[1:]:
        raise DataError(f"{path}: x_test images are {'x'.join(map(str, xte.shape[1:]))}, expected the "
                        f"{'x'.join(map(str, xtr.shape[1:]))} of x_train")
    if ytr.max() < 1:
        raise DataError(f"{path}: y_train holds a single class ({int(ytr.max())}), expected labels of 2 or more classes")
    if yte.max() > ytr.max():
        raise DataError(f"{path}: y_test holds label {int(yte.max())}, expected labels 0..{int(ytr.max())} "
                        "(the classes of y_train)")
    return Dataset(name, xtr, ytr, xte, yte)


def load_mnist_npz(path: str | Path) -> Dataset:
    """MNIST from an .npz with keys x_train, y_train, x_test, y_test (uint8)."""
    from .ir.io import NpzReader  # the IR's header-checked .npz reader (bounded, allow_pickle=False)

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {'not a regular file' if path.exists() else 'no such file'} (expected an .npz with "
                        "x_train, y_train, x_test, y_test)")
    if not zipfile.is_zipfile(path):  # e.g. a .npy file named .npz
        raise DataError(f"{path}: not a readable .npz archive (no zip directory: truncated, or e.g. a .npy "
                        "file), expected an .npz with x_train, y_train, x_test, y_test")
    reader = NpzReader(path, DataError)
    missing = [k for k in _IDX_NAMES if k not in reader]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}; expected x_train, y_train, x_test, y_test")
    arrs = {k: reader.read(k, MAX_FILE_BYTES) for k in _IDX_NAMES}
    return _checked(str(path), arrs, path.stem)


def _read_idx(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".gz":  # bounded: a small gzip may inflate to gigabytes
            with gzip.open(path, "rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        else:
            with open(path, "rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: not a readable {'gzip' if path.suffix == '.gz' else 'IDX'} file "
                        f"({type(e).__name__})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise DataError(f"{path}: more than {MAX_FILE_BYTES} bytes, expected an MNIST-sized IDX file")
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()}, expected 000008xx)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    n = 1
    for d in dims:  # Python ints: a product of uint32 dimensions must not wrap around
        n *= d
    if len(raw) - header != n:
        raise DataError(f"{path}: IDX payload has {len(raw) - header} bytes, expected {clip(n, 30)} "
                        f"for shape {clip(dims)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist_idx(directory: str | Path) -> Dataset:
    """MNIST from the four standard IDX files (raw or .gz) in ``directory``."""
    directory = Path(directory)
    arrs = {}
    for key, stem in _IDX_NAMES.items():
        cands = [directory / stem, directory / (stem + ".gz")]
        found = next((c for c in cands if c.is_file()), None)
        if found is None:
            raise DataError(f"{directory}: {stem}[.gz] not found (expected the four MNIST IDX files)")
        arrs[key] = _read_idx(found)
    return _checked(str(directory), arrs, directory.resolve().name)


def load_dataset(spec: str | Path) -> Dataset:
    """``"digits"`` (embedded), an MNIST ``.npz`` file, or a directory of MNIST IDX files.

    The dataset is named after its file's stem (``fashion.npz`` -> ``fashion``) or directory, so
    metadata never claims "mnist" for a file that may hold anything MNIST-shaped."""
    if str(spec) == "digits":
        return load_digits()
    p = Path(spec)
    if p.is_dir():
        return load_mnist_idx(p)
    if p.suffix == ".npz" or not p.exists():
        return load_mnist_npz(p)
    raise DataError(f"{p}: unrecognised dataset; expected 'digits', an .npz file or a directory of IDX files")
