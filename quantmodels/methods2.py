"""The ``dorefa``, ``bitnet`` and ``lut`` methods: build a net from a config, train it with a
seeded best-validation-epoch loop, export it to the IR and measure golden vs float agreement.

Each method is a :class:`MethodPlugin` (factory + defaults + per-epoch hook). The loop is the
same minibatch Adam / cosine schedule / best-epoch checkpoint as :mod:`quantmodels.train`.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .coded_mlp import BitNetMLP, DoReFaMLP
from .datasets import Dataset
from .errors import ConfigError
from .golden import golden_predict
from .ir import IRModel
from .lut_mlp import LutMLP
from .optim import Adam


@dataclass(frozen=True)
class MethodPlugin:
    """A training method: ``build(sizes, rng, **options) -> net`` and its defaults."""

    name: str
    build: Callable[..., Any]
    defaults: dict[str, Any]  #: epochs, lr, batch_size
    options: dict[str, Any]  #: method options with their defaults (checked by the net)
    doc: str


PLUGINS: dict[str, MethodPlugin] = {
    "dorefa": MethodPlugin("dorefa", DoReFaMLP, {"epochs": 20, "lr": 3e-3, "batch_size": 100},
                           {"weight_bits": 2, "act_bits": 2, "grad_bits": None},
                           "DoReFa-Net k-bit weights / activations (/ gradients), arXiv:1606.06160"),
    "bitnet": MethodPlugin("bitnet", BitNetMLP, {"epochs": 20, "lr": 3e-3, "batch_size": 100},
                           {"act_bits": 4, "init_bits": 8, "lam_q": 1.0, "lam_b": 0.01, "quantize": True,
                            "bits_every": 500},
                           "BitNet bit-regularised integer weights, per-layer bits, arXiv:1708.04788"),
    "lut": MethodPlugin("lut", LutMLP, {"epochs": 20, "lr": 2e-3, "batch_size": 100},
                        {"codebook_bits": 6, "level_bits": 5, "table_bits": 16, "cluster_every": 100,
                         "quantize": True},
                        "Baluja et al. 2018 codebook weights, level activations, product tables"),
}


@dataclass
class FitResult:
    """A trained net with its per-epoch history (and, when exportable, IR and agreement)."""

    net: Any
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    model: IRModel | None = None
    float_test_accuracy: float = float("nan")
    golden_test_accuracy: float = float("nan")
    agreement: float = float("nan")


def build(method: str, sizes: tuple[int, ...], seed: int, **options) -> Any:
    """Check the method and its options before any work, then construct the net."""
    if method not in PLUGINS:
        raise ConfigError(f"method: {method!r}, expected one of {', '.join(PLUGINS)}")
    plug = PLUGINS[method]
    bad = sorted(set(options) - set(plug.options))
    if bad:
        raise ConfigError(f"{method}: option {bad[0]!r}, expected one of {', '.join(plug.options)}")
    return plug.build(sizes, np.random.default_rng(seed), **{**plug.options, **options})


def _snapshot(net) -> tuple:
    return copy.deepcopy(net.params), copy.deepcopy(net.state), list(getattr(net, "bits", []))


def _restore(net, snap) -> None:
    net.params, net.state = snap[0], snap[1]
    if hasattr(net, "bits"):
        net.bits = list(snap[2])


def val_predict(net, samples: np.ndarray) -> np.ndarray:
    """Fast per-epoch validation classes (LUT: codebook/level float forward, not the tables)."""
    if isinstance(net, LutMLP):
        return np.argmax(net.forward(net.prepare(samples), train=False), axis=1)
    return net.predict(samples)


def fit(net, data: Dataset, epochs: int, lr: float, batch_size: int, seed: int,
        val_fraction: float = 0.1, name: str = "model", meta: dict | None = None,
        export: bool = True) -> FitResult:
    """Seeded training; restores the best validation epoch; exports and checks golden == float."""
    if epochs < 1:
        raise ConfigError(f"epochs: {epochs}, expected >= 1")
    if not lr > 0:
        raise ConfigError(f"lr: {lr}, expected > 0")
    if batch_size < 2:
        raise ConfigError(f"batch_size: {batch_size}, expected >= 2 (batch norm needs a batch)")
    rng = net.rng  # as quantmodels.train: the init generator, then the split (same split for a twin)
    order = rng.permutation(len(data.x_train))
    n_val = int(round(len(order) * val_fraction))
    val_idx, tr_idx = order[:n_val], order[n_val:]
    x_tr, y_tr = net.prepare(data.x_train[tr_idx]), data.y_train[tr_idx]
    steps = (len(tr_idx) + batch_size - 1) // batch_size
    total = epochs * steps
    opt, step, best, hist = Adam(), 0, (-1.0, None, 0), []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        perm = rng.permutation(len(tr_idx))
        losses = []
        for s in range(steps):
            idx = perm[s * batch_size:(s + 1) * batch_size]
            if len(idx) < 2:
                continue
            cur = lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * step / total)))  # cosine to lr/100
            z = net.forward(x_tr[idx], train=True).astype(np.float64)
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            losses.append(float(-np.log(p[np.arange(len(idx)), y_tr[idx]] + 1e-12).mean()))
            p[np.arange(len(idx)), y_tr[idx]] -= 1
            opt.step(net.params, net.backward((p / len(idx)).astype(np.float32)), cur)
            net.post_step()
            step += 1
        net.cache = []
        val = float(np.mean(val_predict(net, data.x_train[val_idx]) == data.y_train[val_idx]))
        rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_accuracy": val}
        if isinstance(net, BitNetMLP) and net.quantize:
            rec["bits"] = list(net.bits)
        hist.append(rec)
        if val > best[0]:
            best = (val, _snapshot(net), epoch + 1)
    _restore(net, best[1])
    res = FitResult(net, hist, best[2], time.perf_counter() - t0)
    float_pred = net.predict(data.x_test)
    res.float_test_accuracy = float(np.mean(float_pred == data.y_test))
    if export:
        meta = dict(meta or {}, seed=seed, dataset=data.name, best_epoch=best[2], epochs_run=epochs,
                    val_accuracy=best[0], train_seconds=round(res.seconds, 2), history=hist)
        res.model = net.export(name, data.image_shape, meta)
        gold = golden_predict(res.model, data.x_test)
        res.golden_test_accuracy = float(np.mean(gold == data.y_test))
        res.agreement = float(np.mean(gold == float_pred))
        res.model.meta.update(float_test_accuracy=res.float_test_accuracy,
                              golden_test_accuracy=res.golden_test_accuracy, golden_float_agreement=res.agreement)
    return res
