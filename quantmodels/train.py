"""The one training loop: seeded minibatch training with a progress bar, best-epoch checkpoint
and early stopping, followed by export to the integer IR and a golden-vs-float agreement check.

The method (``TrainConfig.method``) is a plug-in from :mod:`quantmodels.methods`; it builds the
network (:class:`quantmodels.net.QuantNet`, every method) and exports it. The task
(``TrainConfig.task``, :data:`TASKS`) is the loss plug-in: ``classify`` (softmax cross-entropy,
validation accuracy, IR export) or ``autoencode`` (mean squared reconstruction error of the
network's input values, validation MSE; dense nets of methods that support it, no IR export).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .arch import Dense, arch_from_hidden, parse_arch
from .checkpoint import save_checkpoint
from .datasets import Dataset
from .errors import ConfigError
from .golden import golden_predict
from .ir import MAX_BITS, IRModel
from .methods import REGISTRY, get_method
from .net import QuantNet
from .optim import OPTIMIZERS

METHODS = tuple(REGISTRY)
#: Per-method defaults (epochs, lr, batch, dropout), declared by each method plug-in.
DEFAULTS = {name: m.defaults for name, m in REGISTRY.items()}


#: learning-rate factor at ``step`` of ``total`` (the cosine's operations in this order: runs
#: stay bit-identical to earlier releases)
LR_SCHEDULES = {"cosine": lambda step, total: 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * step / total)),  # to lr/100
                "constant": lambda step, total: 1.0}


def _softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = len(y)
    loss = float(-np.log(p[np.arange(n), y] + 1e-12).mean())
    p[np.arange(n), y] -= 1
    return loss, (p / n).astype(np.float32)


def _mse(out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    d = out - target
    return float(np.mean(d * d)), (2 * d / d.size).astype(np.float32)


def reconstruction_mse(net: QuantNet, samples: np.ndarray) -> float:
    """Mean squared error of the autoencoder's eval output against the pixels / 255 (its
    training targets are the network's input values: the same with ``input_bits`` 8)."""
    rec = net.reconstruct(samples)
    return float(np.mean((rec - samples.reshape(len(rec), -1) / 255.0) ** 2))


@dataclass(frozen=True)
class Task:
    """A loss plug-in of the training loop."""

    name: str
    n_out: Callable[[Dataset], int]  #: output units of the network
    targets: Callable[[np.ndarray, np.ndarray], np.ndarray]  #: (prepared inputs, labels) -> targets
    loss: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]  #: (outputs, targets) -> (loss, d outputs)
    metric: str  #: name of the validation figure in the history
    score: Callable[[QuantNet, np.ndarray, np.ndarray], float]  #: (net, raw samples, labels) -> metric
    higher_is_better: bool
    exports: bool  #: has an IR export (the IR ends in argmax)


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("classify", lambda d: d.n_classes, lambda x, y: y, _softmax_xent, "val_accuracy",
         lambda net, x, y: float(np.mean(net.predict(x) == y)), True, True),
    Task("autoencode", lambda d: int(np.prod(d.image_shape)), lambda x, y: x.reshape(len(x), -1), _mse, "val_mse",
         lambda net, x, y: reconstruction_mse(net, x), False, False))}


@dataclass
class TrainConfig:
    """Training hyper-parameters; validated on construction, before any training starts."""

    method: str = "bnn"  #: one of METHODS
    #: hidden layer sizes (None: 256,256,256 unless arch is given); after validation, the dense
    #: hidden sizes actually trained (derived from arch when arch is given; None for a conv net)
    hidden: tuple[int, ...] | None = None
    arch: str | None = None  #: preset (tfc, sfc, lfc, cnn) or tokens like "c16k3p1,p2,f64"; overrides hidden
    weight_bits: int | None = None  #: None: the method's default
    act_bits: int | None = None  #: hidden activation bits; None: the method's default
    #: bits of each input pixel the first layer reads (1..8; 1 = the method's 1-bit input, 8 = raw
    #: pixels, else the top K bits); None: the method's default. Filled in by validation.
    input_bits: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  #: method options (see the method's docs)
    epochs: int | None = None  #: None: the method's default
    batch_size: int | None = None
    lr: float | None = None  #: peak learning rate (see lr_schedule)
    lr_schedule: str = "cosine"  #: cosine (decay to lr/100 over the run) or constant
    task: str = "classify"  #: one of TASKS (the loss): classify, or autoencode (methods whose tasks include it)
    seed: int = 0  #: seeds init, shuffling, dropout, stochastic quantizers and the validation split
    optimizer: str = "adam"  #: adam, adamax, shift_adamax or sgd (momentum 0.9)
    val_fraction: float = 0.1  #: carved from train for the best-epoch checkpoint
    patience: int = 0  #: early stopping after this many epochs without improvement (0 = off)
    dropout_in: float | None = None  #: dropout on the input (None: method default)
    dropout_hidden: float | None = None  #: dropout on hidden activations
    checkpoint_dir: str | None = None  #: write the best epoch here (checkpoint.npz + .json) as it improves
    blas_threads: int | None = 1  #: BLAS threads while training (None: library default); batch-100 layers
    #: are small, so one thread is fastest and avoids oversubscription on a shared machine
    progress: bool = True

    def __post_init__(self) -> None:
        method = get_method(self.method)
        d = method.defaults
        self.epochs = d["epochs"] if self.epochs is None else self.epochs
        self.lr = d["lr"] if self.lr is None else self.lr
        self.batch_size = d["batch_size"] if self.batch_size is None else self.batch_size
        self.dropout_in = d["dropout_in"] if self.dropout_in is None else self.dropout_in
        self.dropout_hidden = d["dropout_hidden"] if self.dropout_hidden is None else self.dropout_hidden
        for k in ("dropout_in", "dropout_hidden"):
            if not 0 <= getattr(self, k) < 1:
                raise ConfigError(f"{k}: {getattr(self, k)}, expected in [0, 1)")
        if self.arch is None:
            self.hidden = (256, 256, 256) if self.hidden is None else tuple(int(h) for h in self.hidden)
            if not self.hidden or min(self.hidden) < 1:
                raise ConfigError(f"hidden: {self.hidden}, expected one or more positive layer sizes")
            self.arch = arch_from_hidden(self.hidden)
        items = parse_arch(self.arch)
        # the recorded config says what is trained: the arch's own sizes, never a stale default
        self.hidden = tuple(i.out for i in items) if all(isinstance(i, Dense) for i in items) else None
        if self.task not in TASKS:
            raise ConfigError(f"task: {self.task!r}, expected one of {', '.join(TASKS)}")
        if self.task not in method.tasks:
            raise ConfigError(f"task: {self.task!r}, expected {' or '.join(method.tasks)} for method {self.method!r}")
        if self.task == "autoencode" and not all(isinstance(i, Dense) for i in items):
            raise ConfigError(f"task: 'autoencode' takes dense layers only (fN,...), got arch {self.arch!r}")
        for k in ("weight_bits", "act_bits", "input_bits"):
            v = getattr(self, k)
            hi = 8 if k == "input_bits" else MAX_BITS  # pixels are uint8
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi):
                raise ConfigError(f"{k}: {v!r}, expected an integer in 1..{hi}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"epochs: {self.epochs}, expected >= 1")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size: {self.batch_size}, expected >= 2 (batch norm needs a batch)")
        if not self.lr > 0:
            raise ConfigError(f"lr: {self.lr}, expected > 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule: {self.lr_schedule!r}, expected one of {', '.join(LR_SCHEDULES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: {self.optimizer!r}, expected one of {', '.join(OPTIMIZERS)}")
        if not 0 < self.val_fraction < 0.5:
            raise ConfigError(f"val_fraction: {self.val_fraction}, expected in (0, 0.5)")
        if self.blas_threads is not None and self.blas_threads < 1:
            raise ConfigError(f"blas_threads: {self.blas_threads}, expected >= 1 or None")
        if self.patience < 0:
            raise ConfigError(f"patience: {self.patience}, expected >= 0")
        self.options = dict(self.options)
        method.configure(self)  # method options, weight/act bits (fills defaults)

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if k != "progress"}


@dataclass
class TrainResult:
    """A trained network, its IR export and the measured accuracies."""

    model: IRModel | None  #: None when trained with export=False (float twins, autoencoders)
    net: QuantNet  #: with predict(samples) (classify) / reconstruct(samples) (autoencode)
    float_test_accuracy: float  #: NaN for an autoencoder
    golden_test_accuracy: float
    agreement: float  #: fraction of test samples where golden class == the method's quantized float
    #: forward pass class (the float eval pass; for int8 PTQ its fake-quantized simulation)
    seconds: float
    history: list[dict] = field(default_factory=list)
    test_mse: float = float("nan")  #: autoencode: mean squared error of reconstruct(x_test) vs x_test / 255


def train(cfg: TrainConfig, data: Dataset, name: str = "model", export: bool = True) -> TrainResult:
    """Train ``cfg.method`` on ``data`` for ``cfg.task``, restore the best validation epoch,
    export to the IR.

    ``export=False`` stops after training (for float twins and autoencoders, which have no
    integer form): the result has ``model=None`` and NaN golden figures."""
    from threadpoolctl import threadpool_limits

    if export and not TASKS[cfg.task].exports:
        raise ConfigError(f"task: {cfg.task!r} has no IR export (the IR ends in argmax), expected export=False")
    with threadpool_limits(cfg.blas_threads, user_api="blas"):
        return _train(cfg, data, name, export)


def _train(cfg: TrainConfig, data: Dataset, name: str, export: bool) -> TrainResult:
    from tqdm import tqdm

    method, task = get_method(cfg.method), TASKS[cfg.task]
    parse_arch(cfg.arch, data.image_shape)  # geometry errors before any work
    rng = np.random.default_rng(cfg.seed)
    net = method.build(cfg, data.image_shape, task.n_out(data), rng)
    opt = OPTIMIZERS[cfg.optimizer]()
    order = rng.permutation(len(data.x_train))
    n_val = int(round(len(order) * cfg.val_fraction))
    val_idx, tr_idx = order[:n_val], order[n_val:]
    x_tr = net.prepare(data.x_train[tr_idx])
    t_tr = task.targets(x_tr, data.y_train[tr_idx])
    x_val_raw, y_val = data.x_train[val_idx], data.y_train[val_idx]
    steps = (len(tr_idx) + cfg.batch_size - 1) // cfg.batch_size
    total = cfg.epochs * steps
    sign = 1.0 if task.higher_is_better else -1.0  # best = largest sign * metric
    best_score, best_val, best_epoch, best = -np.inf, float("nan"), 0, None
    history = []
    t0 = time.perf_counter()
    bar = tqdm(total=total, disable=None if cfg.progress else True, desc=f"train {cfg.method}", unit="step", leave=False)
    # tqdm draws on a terminal only: with stdout redirected (``lowbit train ... > log``) or no bar,
    # one plain line per epoch instead, so a log shows progress rather than silence until the end
    epoch_lines = cfg.progress and (bar.disable or not sys.stdout.isatty())
    step = 0
    for epoch in range(cfg.epochs):
        perm = rng.permutation(len(tr_idx))
        losses = []
        t_epoch = time.perf_counter()
        for s in range(steps):
            idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            if len(idx) < 2:
                continue
            lr = cfg.lr * LR_SCHEDULES[cfg.lr_schedule](step, total)
            loss, dout = task.loss(net.forward(x_tr[idx], train=True), t_tr[idx])
            opt.step(net.params, net.backward(dout), lr)
            net.post_step()
            losses.append(loss)
            step += 1
            bar.update(1)
        t_epoch = time.perf_counter() - t_epoch  # the training steps alone, without validation
        val = task.score(net, x_val_raw, y_val)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), task.metric: val,
                        "train_seconds": round(t_epoch, 3), "train_images": int(len(tr_idx))})
        bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses):.3f}", val=f"{val:.4f}")
        if epoch_lines:
            print(f"epoch {epoch + 1}/{cfg.epochs}: loss {np.mean(losses):.4f}, {task.metric} {val:.4f}, "
                  f"{t_epoch:.1f} s", flush=True)
        if sign * val > best_score:
            best_score, best_val, best_epoch = sign * val, val, epoch + 1
            best = ({k: v.copy() for k, v in net.params.items()}, {k: v.copy() for k, v in net.state.items()})
            if cfg.checkpoint_dir:
                save_checkpoint(cfg.checkpoint_dir, *best, {"method": cfg.method, "seed": cfg.seed, "epoch": epoch + 1,
                                                            task.metric: val, "config": cfg.to_json()})
        elif cfg.patience and epoch + 1 - best_epoch >= cfg.patience:
            break
    bar.close()
    for k, v in best[0].items():  # in place: layers hold references to the parameter dicts
        net.params[k][...] = v
    for k, v in best[1].items():
        net.state[k][...] = v
    seconds = time.perf_counter() - t0
    if not task.exports:
        return TrainResult(None, net, float("nan"), float("nan"), float("nan"), seconds, history,
                           test_mse=reconstruction_mse(net, data.x_test))
    float_pred = net.predict(data.x_test)
    meta = {"method": cfg.method, "seed": cfg.seed, "dataset": data.name, "epochs": cfg.epochs,
            "best_epoch": best_epoch, "epochs_run": len(history), task.metric: best_val,
            "train_seconds": round(seconds, 2), "config": cfg.to_json()}
    meta.update(method.extra_meta(net))
    if not export:
        return TrainResult(None, net, float(np.mean(float_pred == data.y_test)), float("nan"), float("nan"),
                           seconds, history)
    calib = data.x_train[tr_idx[:5000]]
    model = method.export(net, cfg, name, data.image_shape, meta, calib)
    gold_pred = golden_predict(model, data.x_test)
    q_pred = method.quantized_predict(net, data.x_test, calib)
    q_pred = float_pred if q_pred is None else q_pred
    res = TrainResult(model, net, float(np.mean(float_pred == data.y_test)),
                      float(np.mean(gold_pred == data.y_test)), float(np.mean(gold_pred == q_pred)),
                      seconds, history)
    model.meta.update(float_test_accuracy=res.float_test_accuracy, golden_test_accuracy=res.golden_test_accuracy,
                      golden_float_agreement=res.agreement, history=history,
                      wall_seconds=round(time.perf_counter() - t0, 2))
    return res
