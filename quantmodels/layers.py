"""Layer arithmetic with hand-written backward passes (vectorised NumPy, channels-last).

* :func:`im2col` / :func:`col2im`: (N, H, W, C) images <-> (N, OH, OW, k*k*C) patches in
  ``(ky, kx, c)`` order, any stride and padding; padding reads a given value (the value of
  input code 0, as the IR's conv2d rule prescribes).
* :class:`MaxPool2d`: window k, stride s, no padding, floor output size; the gradient goes to
  the first maximum of each window.
* :class:`ArchLayer` / :func:`arch_layers`: the geometry walk over parsed arch items every
  network shares (input layout, each layer's shape, ConvGeom and fused pool, the output layer),
  with the layer's patch / pool / adjoint plumbing; :func:`eval_batches` bounds eval memory.
* Norms, the block stage between the matrix product and the activation (one interface:
  ``forward(a, train)``, ``backward(dy) -> (da, grads)``, ``eval64(a)``, ``integer_bias(ps)``):
  :class:`BatchNorm`: per-channel batch norm over every axis but the last, optionally
  shift-based (Hubara et al. 2016: AP2 of gamma and of 1/std); its :meth:`BatchNorm.eval64`
  is THE eval-mode formula the float model and the threshold export both evaluate.
  :class:`Bias`: a per-channel bias (the float baseline and the lut method).
  :class:`OutScale`: one positive learned scalar ``exp(log_alpha)`` (the quantized methods'
  output layer: no bias, no per-class scale, so the integer argmax is exact).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .arch import ArchItem, Conv, Dense, Pool
from .ir import ConvSpec
from .quantizers import ap2

BN_EPS = 1e-4
BN_MOMENTUM = 0.1
#: eval batches hold at most this many patch elements (memory bound for conv nets; every dense
#: net of the presets on 10k MNIST test images fits one batch, so dense evals are unbatched)
EVAL_BUDGET = 1 << 24


@dataclass(frozen=True)
class ConvGeom:
    """Square-kernel convolution geometry on an (H, W, C) input."""

    in_shape: tuple[int, int, int]
    k: int
    stride: int = 1
    pad: int = 0

    @property
    def out_hw(self) -> tuple[int, int]:
        h, w, _ = self.in_shape
        return (h + 2 * self.pad - self.k) // self.stride + 1, (w + 2 * self.pad - self.k) // self.stride + 1

    @property
    def fan_in(self) -> int:
        return self.k * self.k * self.in_shape[2]


def im2col(x: np.ndarray, g: ConvGeom, pad_value: float = 0.0) -> np.ndarray:
    """(N, H, W, C) -> (N, OH, OW, k*k*C) patches in (ky, kx, c) order."""
    n, (oh, ow), k, s, p = len(x), g.out_hw, g.k, g.stride, g.pad
    if p:
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=pad_value)
    sn, sh, sw, sc = x.strides
    view = np.lib.stride_tricks.as_strided(x, (n, oh, ow, k, k, x.shape[3]),
                                           (sn, sh * s, sw * s, sh, sw, sc), writeable=False)
    return view.reshape(n, oh, ow, k * k * x.shape[3])


def col2im(dp: np.ndarray, g: ConvGeom) -> np.ndarray:
    """Adjoint of :func:`im2col`: (N, OH, OW, k*k*C) patch gradients -> (N, H, W, C)."""
    h, w, c = g.in_shape
    k, s, p = g.k, g.stride, g.pad
    n, oh, ow, _ = dp.shape
    dx = np.zeros((n, h + 2 * p, w + 2 * p, c), dp.dtype)
    d6 = dp.reshape(n, oh, ow, k, k, c)
    for ky in range(k):  # k*k strided adds, each vectorised over images, positions, channels
        for kx in range(k):
            dx[:, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s, :] += d6[:, :, :, ky, kx, :]
    return dx[:, p:p + h, p:p + w, :]


class MaxPool2d:
    """Max-pool over (N, H, W, C): window ``k``, stride ``s``, no padding, floor output size."""

    def __init__(self, k: int, s: int | None = None):
        self.k, self.s = k, s or k

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        return (h - self.k) // self.s + 1, (w - self.k) // self.s + 1

    def _windows(self, x: np.ndarray):
        ph, pw = self.out_hw(x.shape[1], x.shape[2])
        s = self.s
        for dy in range(self.k):
            for dx in range(self.k):
                yield dy, dx, x[:, dy:dy + s * (ph - 1) + 1:s, dx:dx + s * (pw - 1) + 1:s, :]

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        out = None
        arg = None
        for i, (_, _, v) in enumerate(self._windows(x)):
            if out is None:
                out, arg = v.copy(), np.zeros(v.shape, np.int32)
            else:
                better = v > out  # strict: ties keep the first window offset
                out = np.where(better, v, out)
                arg = np.where(better, i, arg)
        if train:
            self._cache = (x.shape, arg)
        return out

    def backward(self, dy: np.ndarray) -> np.ndarray:
        shape, arg = self._cache
        dx = np.zeros(shape, dy.dtype)
        ph, pw = arg.shape[1:3]
        s = self.s
        for i, (oy, ox, _) in enumerate(self._windows(dx)):
            dx[:, oy:oy + s * (ph - 1) + 1:s, ox:ox + s * (pw - 1) + 1:s, :] += np.where(arg == i, dy, 0)
        return dx


@dataclass(frozen=True)
class ArchLayer:
    """Geometry of one layer: dense (``geom`` None) or conv with an optional fused max-pool."""

    name: str
    in_shape: tuple[int, ...]
    out: int
    geom: ConvGeom | None = None
    pool: MaxPool2d | None = None

    @property
    def fan_in(self) -> int:
        return self.geom.fan_in if self.geom else int(np.prod(self.in_shape))

    @property
    def out_shape(self) -> tuple[int, ...]:
        if self.geom is None:
            return (self.out,)
        oh, ow = self.geom.out_hw
        return (*(self.pool.out_hw(oh, ow) if self.pool else (oh, ow)), self.out)

    @property
    def patch_elements(self) -> int:
        """Elements of one sample's patch matrix (the eval memory per sample)."""
        return int(np.prod(self.geom.out_hw)) * self.fan_in if self.geom else self.fan_in

    def patches(self, x: np.ndarray, pad_value: float = 0.0) -> np.ndarray:
        """(N, *in_shape) -> (N * positions, fan_in) rows; padding reads ``pad_value``."""
        if self.geom is None:
            return x.reshape(len(x), -1)
        return im2col(x, self.geom, pad_value).reshape(-1, self.fan_in)

    def outputs(self, v: np.ndarray, n: int, train: bool = False) -> np.ndarray:
        """(N * positions, out) layer outputs -> (N, *out_shape): image layout, then the pool
        (``train``: the pool keeps its argmax for :meth:`MaxPool2d.backward`)."""
        if self.geom is None:
            return v
        v = v.reshape(n, *self.geom.out_hw, self.out)
        return self.pool.forward(v, train=train) if self.pool else v

    def input_grad(self, dP: np.ndarray, xshape: tuple[int, ...]) -> np.ndarray:
        """Adjoint of :meth:`patches`."""
        if self.geom is None:
            return dP.reshape(xshape)
        return col2im(dP.reshape(xshape[0], *self.geom.out_hw, self.fan_in), self.geom)

    def conv_spec(self) -> ConvSpec | None:
        """The IR geometry (conv + fused pool), None for a dense layer."""
        if self.geom is None:
            return None
        g = self.geom
        return ConvSpec(g.in_shape, (g.k, g.k), g.stride, g.pad, (self.pool.k, self.pool.s) if self.pool else (1, 1))


def arch_layers(items: list[ArchItem], image_shape: tuple[int, ...], n_out: int) -> list[ArchLayer]:
    """Parsed arch items (hidden layers) + the output layer of ``n_out`` units -> layer geometry,
    named ``conv<i>`` / ``fc<i>`` by position; each pool is fused into the conv before it.

    Dense-only nets see the flattened input (N, features); nets with convolutions see images
    (N, H, W, C), C = 1 for 2-D samples."""
    has_conv = any(isinstance(i, Conv) for i in items)
    shape: tuple[int, ...] = (int(np.prod(image_shape)),)
    if has_conv:
        shape = tuple(image_shape) if len(image_shape) == 3 else (*image_shape, 1)[:3]
    layers: list[ArchLayer] = []
    for j, it in enumerate(items):
        if isinstance(it, Pool):  # fused into the preceding conv
            continue
        if isinstance(it, Conv):
            nxt = items[j + 1] if j + 1 < len(items) else None
            layer = ArchLayer(f"conv{len(layers)}", shape, it.out, ConvGeom(shape, it.k, it.stride, it.pad),
                              MaxPool2d(nxt.k, nxt.stride) if isinstance(nxt, Pool) else None)
        elif isinstance(it, Dense):
            layer = ArchLayer(f"fc{len(layers)}", shape, it.out)
        else:
            raise TypeError(f"arch item {it!r}")
        layers.append(layer)
        shape = layer.out_shape
    layers.append(ArchLayer(f"fc{len(layers)}", shape, n_out))
    return layers


def eval_batches(samples: np.ndarray, layers: list[ArchLayer], budget: int = EVAL_BUDGET) -> Iterator[np.ndarray]:
    """Slices of ``samples`` whose largest patch matrix stays within ``budget`` elements."""
    step = max(1, budget // max(L.patch_elements for L in layers))
    for s in range(0, len(samples), step):
        yield samples[s:s + step]


class BatchNorm:
    """Batch norm over the last axis; ``shift=True`` uses AP2(gamma), AP2(1/std) and the
    variance estimate mean(C * AP2(C)) of shift-based BN (Hubara et al. 2016, Alg. 3).

    Parameters live in the shared dict ``params`` under ``<name>.gamma`` / ``<name>.beta``
    (initialised to 1 and ``beta``),
    running statistics in ``state`` under ``<name>.mean`` / ``<name>.var``.
    """

    def __init__(self, name: str, n: int, params: dict, state: dict, shift: bool = False, beta: float = 0.0):
        self.name, self.shift = name, shift
        self.params, self.state = params, state
        params[f"{name}.gamma"] = np.ones(n, np.float32)
        params[f"{name}.beta"] = np.full(n, beta, np.float32)
        state[f"{name}.mean"] = np.zeros(n, np.float32)
        state[f"{name}.var"] = np.ones(n, np.float32)

    def _gamma(self) -> np.ndarray:
        g = self.params[f"{self.name}.gamma"]
        return ap2(g) if self.shift else g

    def forward(self, a: np.ndarray, train: bool) -> np.ndarray:
        if not train:
            return self.eval64(a).astype(np.float32)
        a2 = a.reshape(-1, a.shape[-1])
        mu = a2.mean(0)
        c = a2 - mu
        var = (c * ap2(c)).mean(0) if self.shift else (c * c).mean(0)
        inv = 1.0 / np.sqrt(var + BN_EPS)
        if self.shift:
            inv = ap2(inv)
        ahat = c * inv
        y = self._gamma() * ahat + self.params[f"{self.name}.beta"]
        m, n = BN_MOMENTUM, len(a2)
        st = self.state
        st[f"{self.name}.mean"] = ((1 - m) * st[f"{self.name}.mean"] + m * mu).astype(np.float32)
        st[f"{self.name}.var"] = ((1 - m) * st[f"{self.name}.var"] + m * var * n / max(n - 1, 1)).astype(np.float32)
        self._cache = (ahat, inv, a.shape)
        return y.reshape(a.shape)

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Exact BN backward; the shift variant passes gradients straight through AP2."""
        ahat, inv, shape = self._cache
        dy2 = dy.reshape(-1, shape[-1])
        grads = {f"{self.name}.gamma": np.sum(dy2 * ahat, 0), f"{self.name}.beta": np.sum(dy2, 0)}
        dah = dy2 * self._gamma()
        n = len(dah)
        da = inv / n * (n * dah - dah.sum(0) - ahat * np.sum(dah * ahat, 0))
        return da.reshape(shape).astype(np.float32, copy=False), grads

    def eval64(self, a: np.ndarray) -> np.ndarray:
        """Eval-mode BN in float64 (channels on the last axis): the single formula shared by the
        float model's eval pass and the exact threshold export."""
        p, st, nm = self.params, self.state, self.name
        g = p[f"{nm}.gamma"].astype(np.float64)
        inv = 1.0 / np.sqrt(st[f"{nm}.var"].astype(np.float64) + BN_EPS)
        if self.shift:
            g, inv = ap2(g), ap2(inv)
        return g * ((np.asarray(a, np.float64) - st[f"{nm}.mean"].astype(np.float64)) * inv) \
            + p[f"{nm}.beta"].astype(np.float64)


def bn_eval(a: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Eval-mode batch norm in float64 with explicit parameters (used by
    :func:`quantmodels.export.fold_bn_thresholds`)."""
    a = np.asarray(a, dtype=np.float64)
    return gamma.astype(np.float64) * (a - mean.astype(np.float64)) / np.sqrt(var.astype(np.float64) + BN_EPS) \
        + beta.astype(np.float64)


class Bias:
    """Per-channel bias ``y = a + b`` (parameter ``<name>.b``, initialised to ``init``)."""

    def __init__(self, name: str, n: int, params: dict, init: float = 0.0):
        self.key = f"{name}.b"
        self.params = params
        params[self.key] = np.full(n, init, np.float32)

    def forward(self, a: np.ndarray, train: bool) -> np.ndarray:
        return a + self.params[self.key]

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return dy, {self.key: dy.reshape(-1, dy.shape[-1]).sum(0)}

    def eval64(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a, np.float64) + self.params[self.key].astype(np.float64)

    def integer_bias(self, pre_scale: np.ndarray) -> np.ndarray:
        """The bias in accumulator units, ``round(b / pre_scale)`` (exact when pre_scale is a
        power of two, as the lut tables' 1 / S): logits = acc + this."""
        return np.round(self.params[self.key].astype(np.float64) / pre_scale).astype(np.int64)


class OutScale:
    """Output layer scale ``y = exp(log_alpha) a`` (parameter ``<name>.log_alpha``, initialised to
    ``log(init)``): positive and common to every class, so argmax(y) == argmax(a)."""

    def __init__(self, name: str, params: dict, init: float):
        self.key = f"{name}.log_alpha"
        self.params = params
        params[self.key] = np.array([np.log(init)], np.float32)

    def _s(self) -> np.float32:
        return np.exp(self.params[self.key][0])

    def forward(self, a: np.ndarray, train: bool) -> np.ndarray:
        self._a = a
        return self._s() * a

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        s = self._s()
        return dy * s, {self.key: np.array([np.sum(dy * self._a) * s], np.float32)}

    def eval64(self, a: np.ndarray) -> np.ndarray:
        return np.exp(np.float64(self.params[self.key][0])) * np.asarray(a, np.float64)

    def integer_bias(self, pre_scale: np.ndarray) -> None:
        return None
