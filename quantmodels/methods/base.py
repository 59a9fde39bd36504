"""The method plug-in interface: what a low-precision training method must say.

How a method plugs in
---------------------
Write ``quantmodels/methods/<name>.py`` with a subclass of :class:`Method` and register an
instance in ``quantmodels/methods/__init__.py`` (``REGISTRY``). A method declares

* ``name``, ``doc`` (one line for ``--method`` help);
* the IR ``kind`` of its layers and the ``input`` quantizer ("threshold": 1 bit, bipolar;
  "identity": raw 8-bit pixels as value/255), both possibly depending on its options and bit
  widths (override :meth:`Method.kind_for` / :meth:`Method.input_for`, which get the
  configured :class:`~quantmodels.train.TrainConfig`);
* ``bipolar_1bit``: whether 1-bit activations and thresholded input pixels are the values
  {-1, +1} (True, the default: BNN's sign) or {0, 1} (False: DoReFa's 1-bit quantize_k of a
  clipped [0, 1] value; ``xnor_popcount`` export then adds the per-neuron count of -1 weights,
  see :mod:`quantmodels.export`);
* the ``weight_bits`` and ``act_bits`` it supports (tuples; the first entry or
  ``default_act_bits`` is the default), checked by :meth:`Method.configure` before training;
* ``options``: typed :class:`Option` entries (CLI ``--opt name=value``), validated up front;
* ``defaults``: epochs, lr, batch size, dropout;
* :meth:`Method.quantizer`: a :class:`WeightQuantizer` per layer that maps latent float weights
  ``W`` to ``Wq = alpha[:, None] * codes`` (forward, training) with an STE backward, and to the
  integer ``codes`` + float64 ``alpha`` used by the exact eval pass and the export;
* ``clip_weights`` (BinaryConnect's [-1, 1] clipping after each update),
  ``input_scale`` (XNOR-Net's activation scale K), ``bn_beta_init`` (initial batch norm
  shift, e.g. 0.5 = the centre of a [0, 1] activation) and ``out_scale_init`` (initial value of
  the output layer's learned logit scale; None = 1/sqrt(fan-in), right for +-1 weights);
* :meth:`Method.ir_weight_bits`: the IR weight width when the codes need more than
  ``weight_bits`` (DoReFa's odd codes: k + 1 signed bits); a quantizer whose width differs per
  layer says so itself (:meth:`WeightQuantizer.ir_weight_bits`, BitNet's learned bit widths);
* :meth:`Method.post_step`: a hook after every optimizer step (``net.steps`` counts them;
  BitNet's periodic MDL bit-width step);
* :meth:`Method.grad_quantizer`: an optional map applied to every layer's pre-activation
  gradient in the backward pass (DoReFa's k-bit noisy gradients; None = off).

Every method trains the one network class :class:`~quantmodels.net.QuantNet`; a method picks
its blocks' plug-ins with :meth:`Method.init_weights` (Glorot uniform by default),
:meth:`Method.input_quant`, :meth:`Method.act` (:func:`quantmodels.quantizers.make_act` on
hidden layers: sign for 1 bit unless ``bipolar_1bit`` is False, uniform [0, 1] for k bits; the
output layer emits raw logits), :meth:`Method.norm` (batch norm on hidden layers, one learned
positive scale on the output layer) and :meth:`Method.quantizer`; ``tasks`` lists the training
tasks it supports (``classify``; the lut method also ``autoencode``). Export is generic
(:mod:`quantmodels.export`): per-channel scales, K and batch norm fold into exact integer
thresholds. ``int8`` (float network, then post-training quantization) overrides
:meth:`Method.export`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arch import parse_arch
from ..errors import ConfigError
from ..ir import kind_spec
from ..layers import BatchNorm, OutScale
from ..net import INPUT_THRESHOLD, QuantNet
from ..quantizers import IdentityAct, InputQuant, make_act, sign, ste_sign_grad



@dataclass(frozen=True)
class Option:
    """A typed method option; the default's type is the option's type."""

    name: str
    default: Any
    doc: str
    choices: tuple | None = None
    lo: float | None = None  #: inclusive bounds for numbers
    hi: float | None = None

    def parse(self, value: Any, method: str) -> Any:
        """Convert (CLI strings too) and check ``value``; ConfigError with one line otherwise."""
        where = f"option {self.name!r} of method {method!r}"
        typ = type(self.default)
        try:
            if typ is bool and isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError
                v: Any = value.lower() in ("1", "true", "yes", "on")
            elif typ is bool:
                if value not in (0, 1, True, False):
                    raise ValueError
                v = bool(value)
            else:
                v = typ(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {value!r}, expected a {typ.__name__}") from None
        if self.choices is not None and v not in self.choices:
            raise ConfigError(f"{where}: {v!r}, expected one of {', '.join(map(str, self.choices))}")
        if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
            raise ConfigError(f"{where}: {v!r}, expected in [{self.lo}, {self.hi}]")
        return v


class WeightQuantizer:
    """Latent weights ``W`` (out, fan_in) -> ``Wq = alpha[:, None] * codes``.

    The base class is the binary sign quantizer with unit scale and the BNN STE (gradient
    passes where |W| <= 1). Subclasses override :meth:`quantize` (codes and alpha, float) and
    :meth:`grad` (the STE); ``init_params`` may add trainable parameters (names prefixed with
    the layer name) whose gradients ``grad`` returns as well, ``init_state`` non-trainable ones
    (restored with the best epoch, like the batch norm statistics).
    """

    def __init__(self, name: str, opts: dict[str, Any], per_channel: bool, bits: int,
                 rng: np.random.Generator):
        self.name, self.opts, self.per_channel, self.bits, self.rng = name, opts, per_channel, bits, rng

    def init_params(self, W: np.ndarray, params: dict[str, np.ndarray]) -> None:
        """Add extra trainable parameters to ``params`` (none by default)."""

    def init_state(self, W: np.ndarray, state: dict[str, np.ndarray]) -> None:
        """Add non-trainable per-layer values to the network's ``state`` (none by default)."""

    def quantize(self, W: np.ndarray, params: dict, train: bool) -> tuple[np.ndarray, np.ndarray]:
        """(codes, alpha (out,)) with ``codes`` integer-valued; ``train`` may sample stochastically."""
        return sign(W), np.ones(len(W), W.dtype)

    #: STE flavour: True cancels the gradient where |W| > 1 (BNN); False passes it unchanged
    #: (BinaryConnect, pow2: their latent weights are clipped or unbounded by design)
    ste_cancel = True

    def grad(self, W: np.ndarray, dWq: np.ndarray, params: dict) -> dict[str, np.ndarray]:
        """STE: gradients of latent W (and extra parameters) from the gradient of Wq."""
        return {f"{self.name}.W": ste_sign_grad(W, dWq) if self.ste_cancel else dWq}

    # -- shared plumbing
    def forward(self, W: np.ndarray, params: dict, train: bool) -> np.ndarray:
        codes, alpha = self.quantize(W, params, train)
        self._cache = (codes, alpha)
        return (alpha[:, None] * codes).astype(np.float32, copy=False)

    def codes(self, W: np.ndarray, params: dict) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic integer codes (int64) and float64 scales for eval and export."""
        c, a = self.quantize(W, params, False)
        return np.rint(c).astype(np.int64), np.asarray(a, np.float64)

    # -- exact eval and export: the integer accumulator of integer input levels
    #: export may negate a row's codes to flip a decreasing channel (False: codes are indices)
    negatable = True

    def dot_scale(self, W: np.ndarray, params: dict, in_act) -> np.ndarray:
        """float64 (out,): pre-activation = dot_scale * :meth:`integer_dot` (before XNOR-Net's K)."""
        _, alpha = self.codes(W, params)
        return alpha * np.float64(in_act.scale)

    def integer_dot(self, W: np.ndarray, params: dict, in_act, P: np.ndarray) -> np.ndarray:
        """Accumulators (rows, out) of integer input-level patches ``P`` (rows, fan_in):
        ``u(P) . codes`` in float64 (exact for |D| < 2**53)."""
        codes, _ = self.codes(W, params)
        return in_act.u(P).astype(np.float64) @ codes.T.astype(np.float64)

    def acc_range(self, W: np.ndarray, params: dict, in_act) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (lo, hi) of :meth:`integer_dot` over unsigned inputs of ``in_act.bits``."""
        codes, _ = self.codes(W, params)
        xmax = (1 << in_act.bits) - 1
        return np.minimum(codes, 0).sum(1) * xmax, np.maximum(codes, 0).sum(1) * xmax

    def ir_fields(self, W: np.ndarray, params: dict, in_act) -> dict[str, Any]:
        """Extra IR layer fields (the lut product table); none by default."""
        return {}

    def ir_weight_bits(self, W: np.ndarray, params: dict, negated: bool) -> int | None:
        """This layer's IR weight width (``negated``: export negates some rows' codes), or None
        for the method's fixed width (:meth:`Method.ir_weight_bits`)."""
        return None

    def layer_alpha(self, a: np.ndarray) -> np.ndarray:
        """Per-channel scale, or its mean broadcast when the layer needs one shared scale."""
        return a if self.per_channel else np.full_like(a, a.mean())


class IdentityQuantizer(WeightQuantizer):
    """The latent float weights as they are, identity gradient: float networks and float twins.
    Their "codes" are the float weights (the eval pass then computes the float model; no export)."""

    def quantize(self, W, params, train):
        return W, np.ones(len(W), W.dtype)

    def forward(self, W, params, train):
        return W

    def grad(self, W, dWq, params):
        return {f"{self.name}.W": dWq}

    def codes(self, W, params):
        return W.astype(np.float64), np.ones(len(W))


class Method:
    """Base class of the method plug-ins (see the module docstring)."""

    name = ""
    doc = ""
    kind = "accumulate"
    input = "identity"
    weight_bits: tuple[int, ...] = (1,)
    act_bits: tuple[int, ...] = tuple(range(2, 9))
    default_act_bits = 4
    options: tuple[Option, ...] = ()
    defaults = {"epochs": 30, "lr": 3e-3, "batch_size": 100, "dropout_in": 0.0, "dropout_hidden": 0.0}
    clip_weights = False
    input_scale = False
    bipolar_1bit = True
    bn_beta_init = 0.0
    out_scale_init: float | None = None
    quantizer_class: type[WeightQuantizer] = WeightQuantizer
    tasks: tuple[str, ...] = ("classify",)  #: training tasks (``TrainConfig.task``) it supports

    # -- what may depend on options (kind and input also on the configured bit widths)
    def kind_for(self, cfg) -> str:
        """IR kind of every layer for the configured ``cfg`` (options, weight_bits, act_bits)."""
        return self.kind

    def input_for(self, cfg) -> str:
        """Input quantizer ("threshold" or "identity") for the configured ``cfg``."""
        return self.input

    def input_scale_for(self, opts: dict[str, Any]) -> bool:
        """XNOR-Net activation scale K on hidden layers after the first."""
        return self.input_scale

    def act_bits_for(self, opts: dict[str, Any]) -> tuple[tuple[int, ...], int]:
        """(allowed act_bits, default)."""
        return self.act_bits, self.default_act_bits

    def ir_weight_bits(self, cfg) -> int:
        """The IR's weight_bits: fixed by the kind where it fixes one (its KindSpec), else the method's."""
        return kind_spec(self.kind_for(cfg)).fixed_weight_bits or cfg.weight_bits

    def quantized_predict(self, net, samples: np.ndarray, calib: np.ndarray) -> np.ndarray | None:
        """Classes from the method's own quantized float forward pass, which the golden model must
        match; None: the network's float eval pass already is that pass (every QAT method)."""
        return None

    def post_step(self, net) -> None:
        """Called after every optimizer step, ``net.steps`` counting them (nothing by default)."""

    def ir_weights(self, codes: np.ndarray, kind: str) -> np.ndarray:
        """Integer codes -> the IR's weight encoding for ``kind`` (bipolar kinds: bit 1 = +1)."""
        return kind_spec(kind).store_codes(codes)

    def grad_quantizer(self, cfg, rng: np.random.Generator):
        """None, or a function ``g -> g'`` applied in the backward pass to each layer's gradient
        of its pre-activation (shape (N, out) or (N, OH, OW, out), before the weight and input
        gradients are formed from it)."""
        return None

    # -- configuration, checked before any training
    def configure(self, cfg) -> None:
        """Fill defaults into ``cfg`` (options, weight_bits, act_bits) and check them."""
        known = {o.name: o for o in self.options}
        for k in cfg.options:
            if k not in known:
                names = ", ".join(known) or "none"
                raise ConfigError(f"option {k!r}: unknown for method {self.name!r}, expected one of {names}")
        cfg.options = {o.name: o.parse(cfg.options.get(o.name, o.default), self.name) for o in self.options}
        if cfg.weight_bits is None:
            cfg.weight_bits = self.weight_bits[0]
        if cfg.weight_bits not in self.weight_bits:
            raise ConfigError(f"weight_bits: {cfg.weight_bits}, expected {_set(self.weight_bits)} "
                              f"for method {self.name!r}")
        allowed, default = self.act_bits_for(cfg.options)
        if cfg.act_bits is None:
            cfg.act_bits = default
        if cfg.act_bits not in allowed:
            raise ConfigError(f"act_bits: {cfg.act_bits}, expected {_set(allowed)} for method {self.name!r}"
                              + (" with these options" if self.options else ""))
        if cfg.input_bits is None:
            cfg.input_bits = self.native_input_bits(cfg)

    def native_input_bits(self, cfg) -> int:
        """Input pixel bits of the method's own input quantizer (:meth:`input_for`): 1 thresholded, 8 raw."""
        return 1 if self.input_for(cfg) == "threshold" else 8

    # -- the network's plug-ins, per block (``last``: the output layer)
    def quantizer(self, name: str, cfg, per_channel: bool, rng: np.random.Generator) -> WeightQuantizer:
        return self.quantizer_class(name, cfg.options, per_channel, cfg.weight_bits, rng)

    def init_weights(self, rng: np.random.Generator, out: int, fan_in: int) -> np.ndarray:
        """Initial latent weights (out, fan_in) float32: Glorot uniform (one draw per layer)."""
        lim = np.sqrt(6.0 / (fan_in + out))
        return rng.uniform(-lim, lim, (out, fan_in)).astype(np.float32)

    def input_quant(self, cfg) -> InputQuant:
        """Raw pixels -> first-layer levels and values: the method's own quantizer (:meth:`input_for`)
        at its native width, else ``cfg.input_bits`` (``--input-bits K``): the top K bits of each
        pixel as unsigned levels c / (2**K - 1) (K = 8: the raw pixels)."""
        k = cfg.input_bits
        if k is None or k == self.native_input_bits(cfg):
            return InputQuant(self.input_for(cfg), INPUT_THRESHOLD, self.bipolar_1bit)
        return InputQuant("truncate", bits=k)

    def first_kind(self, cfg) -> str:
        """IR kind of the first layer: :meth:`kind_for`, unless that kind fixes an input width the
        configured ``input_bits`` differs from (``xnor_popcount`` needs 1-bit inputs): then binary
        +-1 weight codes times unsigned K-bit pixels are add / subtract, i.e. ``accumulate`` (the BNN
        paper's fixed-point first layer)."""
        kind = self.kind_for(cfg)
        need = kind_spec(kind).fixed_input_bits
        if need is None or cfg.input_bits in (None, need):
            return kind
        if kind_spec(kind).bipolar:  # +-1 weight codes: the accumulate kind's {-1, +1} subset
            return "accumulate"
        raise ConfigError(f"input_bits: {cfg.input_bits}, kind {kind!r} of method {self.name!r} "
                          f"takes {need}-bit inputs only")

    def act(self, cfg, last: bool):
        """The block's activation: k-bit levels on hidden layers, raw logits out."""
        return IdentityAct() if last else make_act(cfg.act_bits, self.bipolar_1bit)

    def norm(self, name: str, out: int, fan_in: int, params: dict, state: dict, cfg, last: bool):
        """Batch norm on hidden layers; one positive learned scale on the output layer."""
        if last:
            return OutScale(name, params, 1.0 / np.sqrt(fan_in) if self.out_scale_init is None else self.out_scale_init)
        return BatchNorm(name, out, params, state, bool(cfg.options.get("shift_bn", False)), self.bn_beta_init)

    # -- network and export (generic; int8 overrides the export)
    def build(self, cfg, image_shape: tuple[int, ...], n_out: int, rng: np.random.Generator) -> QuantNet:
        """The :class:`~quantmodels.net.QuantNet` of this method for ``cfg`` (``n_out`` output units)."""
        return QuantNet(parse_arch(cfg.arch, image_shape), self, cfg, image_shape, n_out, rng)

    def export(self, net, cfg, name: str, image_shape: tuple[int, ...], meta: dict, calib: np.ndarray):
        from ..export import export_quantnet

        return export_quantnet(net, name, image_shape, meta)

    def extra_meta(self, net) -> dict[str, Any]:
        """Method-specific facts for model.json meta (e.g. the sparsity reached)."""
        return {}


def _set(values: tuple[int, ...]) -> str:
    v = sorted(values)
    if len(v) > 2 and v == list(range(v[0], v[-1] + 1)):
        return f"{v[0]}..{v[-1]}"
    return " or ".join(map(str, v))
