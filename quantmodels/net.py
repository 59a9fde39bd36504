"""QuantNet: the generic quantized network every method trains (float32, hand-written backward).

Hidden block = dense or conv (im2col) with the method's quantized weights ``Wq = alpha * codes``
-> (XNOR-Net: times K) -> batch norm -> activation quantizer -> optional max-pool.
Output block = dense with quantized weights times one positive learned scalar
``exp(log_alpha)`` (no bias, no per-class scale: the integer argmax is then exact).
The method may replace every block's pre-activation gradient in the backward pass
(:meth:`~quantmodels.methods.base.Method.grad_quantizer`, e.g. DoReFa's k-bit gradients).

Two forward passes:

* :meth:`QuantNet.forward` (training, float32, batch statistics, STE backward);
* :meth:`QuantNet.eval_levels` (eval, exact): integer input levels -> per layer the integer
  dot product ``D = u . codes`` (computed in float64, exact for |D| < 2**53) -> the output
  level ``L = act.level(bn.eval64(pre_scale * D))`` via :meth:`Block.level_of_D`, the same
  function the export searches for thresholds, so float eval and golden agree exactly.
"""
from __future__ import annotations

import numpy as np

from .arch import ArchItem
from .layers import ArchLayer, BatchNorm, arch_layers
from .quantizers import InputQuant, ap2, make_act

INPUT_THRESHOLD = 128  #: pixels >= 128 are 1 for the 1-bit threshold input


class Block:
    """One dense/conv layer with its weight quantizer, batch norm, activation and pool."""

    def __init__(self, layer: ArchLayer, in_act, act, bn: BatchNorm | None, wq, params: dict,
                 state: dict, rng: np.random.Generator, input_scale: bool):
        self.layer = layer  #: geometry (shapes, ConvGeom, fused pool) and patch plumbing
        name, out = layer.name, layer.out
        self.name, self.in_shape, self.out, self.geom, self.pool = name, layer.in_shape, out, layer.geom, layer.pool
        self.in_act, self.act, self.bn, self.wq = in_act, act, bn, wq
        self.params, self.state = params, state
        self.last = bn is None
        self.fan_in = layer.fan_in
        lim = np.sqrt(6.0 / (self.fan_in + out))  # Glorot uniform
        params[f"{name}.W"] = rng.uniform(-lim, lim, (out, self.fan_in)).astype(np.float32)
        wq.init_params(params[f"{name}.W"], params)
        wq.init_state(state)
        if self.last:
            params[f"{name}.log_alpha"] = np.array([np.log(1.0 / np.sqrt(self.fan_in))], np.float32)
        self.input_scale = input_scale  # XNOR-Net K (hidden layers after the first)
        if input_scale:
            state[f"{name}.K"] = np.ones(1, np.float32)
        self.qbackprop = False  # pow2: round layer inputs to powers of two for the weight gradient
        self.grad_quant = None  # Method.grad_quantizer: map on the pre-activation gradient (DoReFa)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.layer.out_shape

    # ------------------------------------------------------------------ training
    def forward(self, x: np.ndarray, K: np.ndarray | None, train: bool) -> np.ndarray:
        n = len(x)
        P = self.layer.patches(x, self.in_act.scale * float(self.in_act.u(0)))
        Wq = self.wq.forward(self.params[f"{self.name}.W"], self.params, train)
        a = P @ Wq.T
        rowK = None
        if K is not None:
            rowK = np.repeat(K, len(P) // n).astype(np.float32)[:, None]
            a = a * rowK
        self._cache = (x.shape, P, Wq, rowK)
        if self.last:
            s = np.exp(self.params[f"{self.name}.log_alpha"][0])
            self._a = a
            return s * a
        if self.geom is not None:
            a = a.reshape(n, *self.geom.out_hw, self.out)
        y = self.bn.forward(a, train)
        self.y = y
        v = self.act.forward(y)
        return self.pool.forward(v, train=True) if self.pool else v

    def backward(self, dv: np.ndarray, need_dx: bool) -> tuple[np.ndarray | None, dict]:
        xshape, P, Wq, rowK = self._cache
        grads: dict[str, np.ndarray] = {}
        if self.last:
            s = np.exp(self.params[f"{self.name}.log_alpha"][0])
            grads[f"{self.name}.log_alpha"] = np.array([np.sum(dv * self._a) * s], np.float32)
            da = dv * s
        else:
            if self.pool:
                dv = self.pool.backward(dv)
            dy = self.act.backward(dv)
            da, g = self.bn.backward(dy)
            grads.update(g)
        if self.grad_quant is not None:  # per sample: (N, out) or (N, OH, OW, out)
            da = self.grad_quant(da)
        da = da.reshape(-1, self.out)
        if rowK is not None:
            da = da * rowK
        Pg = ap2(P) if self.qbackprop else P  # few multiplications: shifts only for dW
        grads.update(self.wq.grad(self.params[f"{self.name}.W"], da.T @ Pg, self.params))
        if not need_dx:
            return None, grads
        return self.layer.input_grad(da @ Wq, xshape), grads

    # ------------------------------------------------------------------ exact eval
    def pre_scale(self) -> np.ndarray:
        """float64 (out,): pre-activation = pre_scale * D (alpha * input value scale * K)."""
        _, alpha = self.wq.codes(self.params[f"{self.name}.W"], self.params)
        s = alpha * np.float64(self.in_act.scale)
        if self.input_scale:
            s = s * np.float64(self.state[f"{self.name}.K"][0])
        return s

    def level_of_D(self, D: np.ndarray, pre_scale: np.ndarray) -> np.ndarray:
        """THE output-level function of the integer dot product D (..., out), float64 throughout."""
        return self.act.level(self.bn.eval64(pre_scale * np.asarray(D, np.float64)))

    def eval_D(self, L: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Integer dot products D = u(L) . codes, float64 (exact), shape (N, [OH, OW,] out)."""
        u = self.in_act.u(L).astype(np.float64)
        P = self.layer.patches(u, float(self.in_act.u(0)))
        D = P @ codes.T.astype(np.float64)
        if self.geom is not None:
            D = D.reshape(len(L), *self.geom.out_hw, self.out)
        return D


class QuantNet:
    """A quantized network built from parsed arch items for one method (see module docstring)."""

    def __init__(self, items: list[ArchItem], method, cfg, image_shape: tuple[int, ...], n_classes: int,
                 rng: np.random.Generator):
        self.method, self.rng = method, rng
        self.steps = 0  #: optimizer steps taken (post_step calls)
        self.dropout = (cfg.dropout_in, cfg.dropout_hidden)
        self.params: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.image_shape = tuple(image_shape)
        opts = self.opts = cfg.options
        self.kind = method.kind_for(cfg)
        self.ir_weight_bits = method.ir_weight_bits(cfg)
        self.input_q = InputQuant(method.input_for(cfg), INPUT_THRESHOLD, method.bipolar_1bit)
        layers = arch_layers(items, image_shape, n_classes)
        self.in_shape = layers[0].in_shape
        in_act = self.input_q
        self.blocks: list[Block] = []
        shift_bn = bool(opts.get("shift_bn", False))
        for lay in layers[:-1]:
            name = lay.name
            act = make_act(cfg.act_bits, method.bipolar_1bit)
            b = Block(lay, in_act, act,
                      BatchNorm(name, lay.out, self.params, self.state, shift_bn, method.bn_beta_init),
                      method.quantizer(name, cfg, True, rng), self.params, self.state, rng,
                      method.input_scale_for(opts) and bool(self.blocks))
            self.blocks.append(b)
            in_act = act
        name = layers[-1].name
        self.blocks.append(Block(layers[-1], in_act, None, None,
                                 method.quantizer(name, cfg, False, rng), self.params, self.state, rng,
                                 method.input_scale_for(opts) and bool(self.blocks)))
        if method.out_scale_init is not None:
            self.params[f"{name}.log_alpha"][:] = np.log(method.out_scale_init)
        gq = method.grad_quantizer(cfg, rng)
        for b in self.blocks:
            b.qbackprop = bool(opts.get("qbackprop"))
            b.grad_quant = gq

    # ------------------------------------------------------------------ training
    def prepare(self, samples: np.ndarray) -> np.ndarray:
        """Raw uint8 samples -> float32 input values in the network's input shape."""
        L = self.input_q.level(samples).reshape(len(samples), *self.in_shape)
        return (self.input_q.scale * self.input_q.u(L)).astype(np.float32)

    def latent_weights(self) -> list[str]:
        return [f"{b.name}.W" for b in self.blocks]

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.masks = []
        K = None
        for i, b in enumerate(self.blocks):
            p = self.dropout[0 if i == 0 else 1] if train else 0.0
            mask = None
            if p > 0:  # inverted dropout on the block's input values
                mask = (self.rng.random(x.shape, dtype=np.float32) >= p).astype(np.float32) / np.float32(1 - p)
                x = x * mask
            self.masks.append(mask)
            if b.input_scale:  # XNOR-Net K = mean |pre-sign input| per sample; running mean for eval
                prev = self.blocks[i - 1].y
                K = np.abs(prev).reshape(len(prev), -1).mean(1).astype(np.float32)
                if train:
                    st = self.state[f"{b.name}.K"]
                    st[:] = 0.9 * st + 0.1 * K.mean()
                else:
                    K = np.full(len(x), self.state[f"{b.name}.K"][0], np.float32)
            x = b.forward(x, K if b.input_scale else None, train)
        return x

    def backward(self, dlogits: np.ndarray) -> dict[str, np.ndarray]:
        grads: dict[str, np.ndarray] = {}
        d = dlogits
        for i in range(len(self.blocks) - 1, -1, -1):
            d, g = self.blocks[i].backward(d, need_dx=i > 0)
            grads.update(g)
            if i > 0 and self.masks[i] is not None:
                d = d * self.masks[i]
        return grads

    def post_step(self) -> None:
        """After each optimizer step: BinaryConnect/BNN keep latent weights in [-1, 1]; then the
        method's hook (:meth:`~quantmodels.methods.base.Method.post_step`)."""
        self.steps += 1
        if self.method.clip_weights:
            for k in self.latent_weights():
                np.clip(self.params[k], -1.0, 1.0, out=self.params[k])
        self.method.post_step(self)

    # ------------------------------------------------------------------ exact eval
    def eval_levels(self, samples: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Per hidden block the integer output levels, and the last layer's D (N, classes)."""
        L = self.input_q.level(samples).reshape(len(samples), *self.in_shape)
        levels = []
        for b in self.blocks:
            codes, _ = b.wq.codes(self.params[f"{b.name}.W"], self.params)
            D = b.eval_D(L, codes)
            if b.last:
                return levels, D
            L = b.level_of_D(D, b.pre_scale())
            if b.pool:
                L = b.pool.forward(L)
            levels.append(L)
        raise AssertionError("unreachable")

    def logits(self, samples: np.ndarray) -> np.ndarray:
        last = self.blocks[-1]
        s = np.exp(np.float64(self.params[f"{last.name}.log_alpha"][0])) * last.pre_scale()
        return s * self.eval_levels(samples)[1]

    def predict(self, samples: np.ndarray, batch: int = 2000) -> np.ndarray:
        """Classes of the eval-mode quantized model: first index of the maximum of D."""
        return np.concatenate([np.argmax(self.eval_levels(samples[i:i + batch])[1], axis=1)
                               for i in range(0, len(samples), batch)])
