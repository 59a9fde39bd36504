"""Baluja et al. 2018 style network (dense and conv layers): codebook weights, level activations,
product-table inference.

Every layer (dense, or conv over :func:`~quantmodels.layers.im2col` patches, optionally followed
by a max-pool) follows the same rules. Training forward (layer i): ``z = x . C_i[idx(W_i)] + b_i``
per input vector or patch, with latent float weights ``W_i`` snapped to the nearest entry of the
layer codebook ``C_i`` (STE: the gradient reaches ``W_i`` unchanged); hidden layers emit
``level_index(z) / (L - 1)`` (STE: gradient where 0 <= z <= 1). Every ``cluster_every`` steps the
codebook is re-fitted to the latent weights by warm-started 1-D k-means (the periodic adaptive
clustering).

Eval forward (the float model, identical arithmetic to the IR's ``lut_product``)::

    acc   = sum_j P_i[idx_ij, x_j]                 integer table lookups + adds
    level = level_index(acc / S_i + b_i, L)        hidden: folded into integer thresholds
    logit = acc + round(S_i b_i)                   last layer: integer bias, argmax

``P_i = round(S_i C_i (x) levels)`` (:func:`quantmodels.discretize.product_table`), ``S_i`` a
power of two (so ``acc / S_i`` is exact). Layer 0 reads input codes ``c = pixel >> (8 - k)``
(``input_bits`` k, the IR's ``truncate`` input quantizer; k = 8 is the raw pixel) standing for
``c / (2**k - 1)``. Fewer input bits shrink the first layer's product table 2**(8-k)-fold.
Conv padding reads code 0, whose value (and every product ``P[:, 0]``) is 0: the IR's conv2d rule.

Max-pool: ``level_index`` is non-decreasing, so ``max(level(z)) == level(max(z))``: pooling the
integer output levels (eval, IR, hardware) equals pooling the activations (training) and even
the pre-activations. Hence the pool is fused after the threshold stage without changing anything.

``task="autoencode"`` (dense layers only): the last layer also emits levels (reconstruction =
level / (L - 1)) and the loss is the mean squared error. The IR ends in argmax, so an
autoencoder is not exported: it runs in NumPy with the same integer tables
(:meth:`LutNet.reconstruct`).
``quantize=False`` gives the float twin (float weights, continuous clip(z, 0, 1) activations).
"""
from __future__ import annotations

import numpy as np

from . import discretize as dz
from .arch import ArchItem, Dense
from .errors import ConfigError
from .ir import InputSpec, IRModel, Layer
from .layers import arch_layers, eval_batches
from .thresholds import exact_thresholds

TASKS = ("classify", "autoencode")


class LutNet:
    """Codebook-weight / level-activation network (dense + conv) with integer product tables."""

    method = "lut"

    def __init__(self, items: list[ArchItem], image_shape: tuple[int, ...], n_out: int, rng: np.random.Generator,
                 codebook_bits: int = 6, level_bits: int = 5, table_bits: int = 16, cluster_every: int = 100,
                 task: str = "classify", quantize: bool = True, input_bits: int = 8):
        checks = (("codebook_bits", codebook_bits, 1, 8), ("level_bits", level_bits, 1, 8),
                  ("table_bits", table_bits, 4, 24), ("cluster_every", cluster_every, 1, 10 ** 9),
                  ("input_bits", input_bits, 1, 8))
        for k, v, lo, hi in checks:
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(f"{k}: {v!r}, expected an integer {lo}..{hi}")
        if task not in TASKS:
            raise ConfigError(f"task: {task!r}, expected one of {', '.join(TASKS)}")
        if task == "autoencode" and not all(isinstance(i, Dense) for i in items):
            raise ConfigError("lut: task 'autoencode' takes dense layers only (fN,...), got conv/pool layers")
        self.rng, self.task, self.quantize = rng, task, quantize
        self.cb_bits, self.lv_bits, self.table_bits, self.cluster_every = codebook_bits, level_bits, table_bits, cluster_every
        self.n_levels = 1 << level_bits
        self.input_bits = input_bits
        self.layers = arch_layers(items, image_shape, n_out)
        self.in_shape = self.layers[0].in_shape
        self.n_layers = len(self.layers)
        self.params: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        for i, L in enumerate(self.layers):
            lim = np.sqrt(6.0 / L.fan_in)
            self.params[f"W{i}"] = rng.uniform(-lim, lim, (L.out, L.fan_in)).astype(np.float32)
            self.params[f"b{i}"] = np.full(L.out, 0.1, np.float32)
        self.steps = 0
        self.recluster()

    # -------------------------------------------------------------------- clustering
    def recluster(self) -> None:
        """Re-fit each layer's codebook to its latent weights (warm start from the last one)."""
        for i in range(self.n_layers):
            old = self.state.get(f"codebook{i}")
            self.state[f"codebook{i}"] = dz.kmeans_1d(self.params[f"W{i}"], 1 << self.cb_bits, init=old,
                                                      iters=30 if old is None else 5)

    def weight_index(self, i: int) -> np.ndarray:
        return dz.nearest_index(self.params[f"W{i}"], self.state[f"codebook{i}"])

    def levels_in(self, i: int) -> np.ndarray:
        return dz.input_levels(self.input_bits) if i == 0 else dz.act_levels(self.n_levels)

    def tables(self, i: int) -> tuple[np.ndarray, float]:
        """Layer i's integer product table and its power-of-two scale."""
        cb, lv = self.state[f"codebook{i}"], self.levels_in(i)
        s = dz.table_scale(cb, lv, self.table_bits)
        return dz.product_table(cb, lv, s), s

    # ---------------------------------------------------------------------- training
    def prepare(self, samples: np.ndarray) -> np.ndarray:
        """Training input (N, *in_shape): each input code's level value (pixel / 255 when input_bits = 8)."""
        codes = self._codes(samples)
        return (codes / np.float32((1 << self.input_bits) - 1)).astype(np.float32)

    def _codes(self, samples: np.ndarray) -> np.ndarray:
        return dz.input_codes(samples, self.input_bits).reshape(len(samples), *self.in_shape)

    def latent_weights(self) -> list[str]:
        return [f"W{i}" for i in range(self.n_layers)]

    def _emits_levels(self, i: int) -> bool:
        return i < self.n_layers - 1 or self.task == "autoencode"

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """Training forward (STE through the codebook and the levels); the float twin's eval too."""
        self.cache = []
        for i, L in enumerate(self.layers):
            w = self.params[f"W{i}"]
            wq = self.state[f"codebook{i}"][self.weight_index(i)].astype(np.float32) if self.quantize else w
            P = L.patches(x)
            z = P @ wq.T + self.params[f"b{i}"]
            self.cache.append((P, wq, z, x.shape))
            if not self._emits_levels(i):
                return z
            if self.quantize:
                v = (dz.level_index(z, self.n_levels) / np.float32(self.n_levels - 1)).astype(np.float32)
            else:
                v = np.clip(z, 0, 1)
            x = L.outputs(v, len(x), train=train)  # train: the pool keeps its argmax for backward
        return x

    def backward(self, dout: np.ndarray) -> dict[str, np.ndarray]:
        grads = {}
        for i in range(self.n_layers - 1, -1, -1):
            L = self.layers[i]
            P, wq, z, xshape = self.cache[i]
            if L.pool:
                dout = L.pool.backward(dout)
            dout = dout.reshape(z.shape)
            dz_ = dout * ((z >= 0) & (z <= 1)) if self._emits_levels(i) else dout
            grads[f"W{i}"] = dz_.T @ P
            grads[f"b{i}"] = dz_.sum(0)
            if i:
                dout = L.input_grad(dz_ @ wq, xshape)
        return grads

    def post_step(self) -> None:
        self.steps += 1
        if self.quantize and self.steps % self.cluster_every == 0:
            self.recluster()

    # --------------------------------------------------------- eval (integer tables)
    def _eval(self, samples: np.ndarray) -> np.ndarray:
        """Last layer integer logits (classify) or output levels (autoencode)."""
        return np.concatenate([self._eval_batch(b) for b in eval_batches(samples, self.layers)])

    def _eval_batch(self, samples: np.ndarray) -> np.ndarray:
        x = self._codes(samples)
        for i, L in enumerate(self.layers):
            table, s = self.tables(i)
            acc = dz.table_accumulate(table, self.weight_index(i), L.patches(x))
            if not self._emits_levels(i):
                return acc + np.round(s * self.params[f"b{i}"].astype(np.float64)).astype(np.int64)
            x = L.outputs(self.level(i, s, acc), len(x))  # pooling levels == pooling activations
        return x

    def level(self, i: int, s: float, acc: np.ndarray) -> np.ndarray:
        """level_index(acc / S + b): the folded non-linearity, float64 (acc / S exact)."""
        return dz.level_index(acc / s + self.params[f"b{i}"].astype(np.float64), self.n_levels)

    def _float_eval(self, samples: np.ndarray) -> np.ndarray:
        batches = eval_batches(samples, self.layers)
        return np.concatenate([self.forward(self.prepare(b), train=False) for b in batches])

    def logits(self, samples: np.ndarray) -> np.ndarray:
        return (self._eval(samples) if self.quantize else self._float_eval(samples)).astype(np.float64)

    def predict(self, samples: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(samples), axis=1)

    def reconstruct(self, samples: np.ndarray) -> np.ndarray:
        """Autoencoder output in [0, 1]: integer-table levels (quantized) or the float twin's."""
        if not self.quantize:
            return self._float_eval(samples)
        return self._eval(samples) / (self.n_levels - 1)

    # ------------------------------------------------------------------------ export
    def export(self, name: str, image_shape: tuple[int, ...], meta: dict) -> IRModel:
        if self.task != "classify" or not self.quantize:
            raise ConfigError("lut: only the quantized classifier has an IR export "
                              "(the IR ends in argmax; an autoencoder runs in NumPy with the same tables)")
        layers = []
        in_features = int(np.prod(self.in_shape))
        for i, L in enumerate(self.layers):
            table, s = self.tables(i)
            idx = self.weight_index(i)
            in_bits = self.input_bits if i == 0 else self.lv_bits
            out_features = int(np.prod(L.out_shape))
            common = dict(conv=L.conv_spec(), products=table)
            if i == self.n_layers - 1:
                bias = np.round(s * self.params[f"b{i}"].astype(np.float64)).astype(np.int64)
                layers.append(Layer(L.name, "lut_product", in_features, out_features, in_bits, self.cb_bits,
                                    "argmax", idx, bias=bias, **common))
                break
            # every patch element is some input code: code 0 (padding too) included, P[:, 0] = 0
            lo = table.min(1)[idx].sum(1)
            hi = table.max(1)[idx].sum(1)
            t, _ = exact_thresholds(lambda a, i=i, s=s: self.level(i, s, a), lo, hi, self.n_levels, 0, name=L.name)
            layers.append(Layer(L.name, "lut_product", in_features, out_features, in_bits, self.cb_bits, "threshold",
                                idx, output_bits=self.lv_bits, thresholds=t, **common))
            in_features = out_features
        meta = dict(meta, codebook_size=1 << self.cb_bits, levels=self.n_levels, table_bits=self.table_bits)
        quantizer = "identity" if self.input_bits == 8 else "truncate"
        inp = InputSpec(int(np.prod(self.in_shape)), self.input_bits, quantizer, None, tuple(image_shape))
        return IRModel(name, "lut", inp, layers, meta).validate()


def train_autoencoder(net: LutNet, x_train: np.ndarray, epochs: int, lr: float, seed: int,
                      batch_size: int = 100) -> list[float]:
    """Seeded minibatch Adam on the mean squared reconstruction error; returns per-epoch loss.

    (The classification training loop is the generic one; this regression loop is the
    autoencoder's own.)"""
    from .optim import Adam

    rng = np.random.default_rng(seed)
    x = net.prepare(x_train)
    opt = Adam()
    hist = []
    for _ in range(epochs):
        perm = rng.permutation(len(x))
        losses = []
        for s in range(0, len(x), batch_size):
            xb = x[perm[s:s + batch_size]]
            y = net.forward(xb)
            d = y - xb
            losses.append(float(np.mean(d * d)))
            opt.step(net.params, net.backward((2 * d / d.size).astype(np.float32)), lr)
            net.post_step()
        hist.append(float(np.mean(losses)))
    return hist
