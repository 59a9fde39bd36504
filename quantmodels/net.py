"""QuantNet: the one network class every method trains (float32, hand-written backward).

A block is one dense or conv (im2col) layer made of plug-ins, all chosen by the method
(:class:`~quantmodels.methods.base.Method`):

    x -> patches -> a = P . Wq^T  [x K]  -> y = norm(a) -> v = act(y) -> [max-pool]

* weight quantizer ``wq``: latent float ``W`` -> ``Wq`` with its STE backward (sign, ternary,
  power of two, DoReFa, BitNet, the lut codebook snap, identity for float nets);
* ``norm``: :class:`~quantmodels.layers.BatchNorm` (hidden layers of the quantized methods),
  :class:`~quantmodels.layers.Bias` (float baseline, lut) or
  :class:`~quantmodels.layers.OutScale` (the quantized methods' output layer);
* ``act``: an activation of :mod:`quantmodels.quantizers` (sign, uniform k-bit, lut levels,
  ReLU, clip; identity for an output layer that emits logits);
* (XNOR-Net) the input scale ``K``; the method may replace every block's pre-activation
  gradient in the backward pass (:meth:`~quantmodels.methods.base.Method.grad_quantizer`).

Two eval passes:

* :meth:`QuantNet.forward` with ``train=False`` (float32; the float networks predict with it);
* :meth:`QuantNet.eval_levels` (exact, every net whose activations have integer levels):
  integer input levels -> per layer the integer accumulator ``D`` of the quantizer
  (:meth:`WeightQuantizer.integer_dot`: ``u . codes`` in float64, exact for |D| < 2**53, or the
  lut product-table sums) -> the output level ``L = act.level(norm.eval64(pre_scale * D))`` via
  :meth:`Block.level_of_D`, the same function the export searches for thresholds, so float eval
  and golden agree exactly.
"""
from __future__ import annotations

import numpy as np

from .arch import ArchItem
from .layers import ArchLayer, arch_layers, eval_batches
from .quantizers import ap2

INPUT_THRESHOLD = 128  #: pixels >= 128 are 1 for the 1-bit threshold input


class Block:
    """One dense/conv layer: weight quantizer, norm, activation and (conv) fused pool."""

    def __init__(self, layer: ArchLayer, in_act, act, norm, wq, params: dict, state: dict,
                 W: np.ndarray, input_scale: bool):
        self.layer = layer  #: geometry (shapes, ConvGeom, fused pool) and patch plumbing
        self.name, self.out, self.geom, self.pool = layer.name, layer.out, layer.geom, layer.pool
        self.in_act, self.act, self.norm, self.wq = in_act, act, norm, wq
        self.params, self.state = params, state
        self.fan_in = layer.fan_in
        params[f"{self.name}.W"] = W
        wq.init_params(W, params)
        wq.init_state(W, state)
        self.input_scale = input_scale  # XNOR-Net K (hidden layers after the first)
        if input_scale:
            state[f"{self.name}.K"] = np.ones(1, np.float32)
        self.qbackprop = False  # pow2: round layer inputs to powers of two for the weight gradient
        self.grad_quant = None  # Method.grad_quantizer: map on the pre-activation gradient (DoReFa)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.layer.out_shape

    @property
    def W(self) -> np.ndarray:
        return self.params[f"{self.name}.W"]

    # ------------------------------------------------------------------ training
    def forward(self, x: np.ndarray, K: np.ndarray | None, train: bool) -> np.ndarray:
        n = len(x)
        P = self.layer.patches(x, self.in_act.zero)
        Wq = self.wq.forward(self.W, self.params, train)
        a = P @ Wq.T
        rowK = None
        if K is not None:
            rowK = np.repeat(K, len(P) // n).astype(np.float32)[:, None]
            a = a * rowK
        self._cache = (x.shape, P, Wq, rowK)
        if self.geom is not None:
            a = a.reshape(n, *self.geom.out_hw, self.out)
        y = self.norm.forward(a, train)
        self.y = y
        v = self.act.forward(y)
        return self.pool.forward(v, train=True) if self.pool else v

    def backward(self, dv: np.ndarray, need_dx: bool) -> tuple[np.ndarray | None, dict]:
        xshape, P, Wq, rowK = self._cache
        if self.pool:
            dv = self.pool.backward(dv)
        da, grads = self.norm.backward(self.act.backward(dv))
        if self.grad_quant is not None:  # per sample: (N, out) or (N, OH, OW, out)
            da = self.grad_quant(da)
        da = da.reshape(-1, self.out)
        if rowK is not None:
            da = da * rowK
        Pg = ap2(P) if self.qbackprop else P  # few multiplications: shifts only for dW
        grads.update(self.wq.grad(self.W, da.T @ Pg, self.params))
        if not need_dx:
            return None, grads
        return self.layer.input_grad(da @ Wq, xshape), grads

    # ------------------------------------------------------------------ exact eval
    def pre_scale(self) -> np.ndarray:
        """float64 (out,): pre-activation = pre_scale * D (the quantizer's scale, times K)."""
        s = self.wq.dot_scale(self.W, self.params, self.in_act)
        if self.input_scale:
            s = s * np.float64(self.state[f"{self.name}.K"][0])
        return s

    def level_of_D(self, D: np.ndarray, pre_scale: np.ndarray) -> np.ndarray:
        """THE output-level function of the integer accumulator D (..., out), float64 throughout."""
        return self.act.level(self.norm.eval64(pre_scale * np.asarray(D, np.float64)))

    def eval_D(self, L: np.ndarray) -> np.ndarray:
        """Integer accumulators of integer input levels ``L``, shape (N, [OH, OW,] out)."""
        D = self.wq.integer_dot(self.W, self.params, self.in_act, self.layer.patches(L, 0))
        if self.geom is not None:
            D = D.reshape(len(L), *self.geom.out_hw, self.out)
        return D


class QuantNet:
    """A network built from parsed arch items for one method (see the module docstring).

    ``n_out``: output units (classes, or reconstructed features for ``cfg.task == "autoencode"``)."""

    def __init__(self, items: list[ArchItem], method, cfg, image_shape: tuple[int, ...], n_out: int,
                 rng: np.random.Generator):
        self.method, self.rng = method, rng
        self.steps = 0  #: optimizer steps taken (post_step calls)
        self.dropout = (cfg.dropout_in, cfg.dropout_hidden)
        self.params: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.image_shape = tuple(image_shape)
        opts = self.opts = cfg.options
        self.kind = method.kind_for(cfg)  #: IR kind of every layer but possibly the first
        self.first_kind = method.first_kind(cfg)  #: the first layer's (K-bit pixels may need another)
        self.ir_weight_bits = method.ir_weight_bits(cfg)
        self.input_q = method.input_quant(cfg)
        layers = arch_layers(items, image_shape, n_out)
        self.layers = layers
        self.in_shape = layers[0].in_shape
        in_act = self.input_q
        self.blocks: list[Block] = []
        for i, lay in enumerate(layers):
            last = i == len(layers) - 1
            # draw order (one W per layer, nothing else) keeps every method's runs reproducible
            W = method.init_weights(rng, lay.out, lay.fan_in)
            act = method.act(cfg, last)
            b = Block(lay, in_act, act, method.norm(lay.name, lay.out, lay.fan_in, self.params, self.state, cfg, last),
                      method.quantizer(lay.name, cfg, not last, rng), self.params, self.state, W,
                      method.input_scale_for(opts) and bool(self.blocks))
            self.blocks.append(b)
            in_act = act
        #: exact integer eval when every hidden activation has levels (float nets: the float forward)
        self.exact = all(b.act.levels for b in self.blocks[:-1])
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

    def forward(self, x: np.ndarray, train: bool = True, outputs: list | None = None) -> np.ndarray:
        """Float32 forward (``train``: batch statistics, dropout, STE caches); ``outputs``
        collects every block's output (hidden: after the pool, what the next layer reads)."""
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
            if outputs is not None:
                outputs.append(x)
        return x

    def backward(self, dout: np.ndarray) -> dict[str, np.ndarray]:
        grads: dict[str, np.ndarray] = {}
        d = dout
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

    # ------------------------------------------------------------------ eval
    def block_outputs(self, samples: np.ndarray) -> list[np.ndarray]:
        """Every block's float32 eval-mode output on raw ``samples`` (int8 calibration reads it)."""
        parts = []
        for s in eval_batches(samples, self.layers):
            outs: list[np.ndarray] = []
            self.forward(self.prepare(s), train=False, outputs=outs)
            parts.append(outs)
        return [np.concatenate(p) for p in zip(*parts)]

    def eval_levels(self, samples: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Exact eval: per hidden block the integer output levels, and the last block's integer
        accumulator D (N, out), or its levels when the output layer emits levels (autoencoder)."""
        L = self.input_q.level(samples).reshape(len(samples), *self.in_shape)
        levels = []
        for b in self.blocks[:-1]:
            L = b.level_of_D(b.eval_D(L), b.pre_scale())
            if b.pool:
                L = b.pool.forward(L)
            levels.append(L)
        last = self.blocks[-1]
        D = last.eval_D(L)
        return levels, last.level_of_D(D, last.pre_scale()) if last.act.levels else D

    def outputs(self, samples: np.ndarray) -> np.ndarray:
        """The network's eval output, batched: exact nets the integer logits of the IR's last
        layer (``D``, plus the output norm's integer bias) or output levels; float nets the float32
        forward pass."""
        return np.concatenate([self._outputs(s) for s in eval_batches(samples, self.layers)])

    def _outputs(self, samples: np.ndarray) -> np.ndarray:
        if not self.exact:
            return self.forward(self.prepare(samples), train=False)
        out = self.eval_levels(samples)[1]
        last = self.blocks[-1]
        if last.act.levels:
            return out
        bias = last.norm.integer_bias(last.pre_scale())
        return out if bias is None else out + bias

    def logits(self, samples: np.ndarray) -> np.ndarray:
        """float64 class scores whose first maximum is the predicted class."""
        return self.outputs(samples).astype(np.float64)

    def predict(self, samples: np.ndarray) -> np.ndarray:
        """Classes of the eval-mode model: first index of the maximum of :meth:`logits`."""
        return np.argmax(self.logits(samples), axis=1)

    def reconstruct(self, samples: np.ndarray) -> np.ndarray:
        """Autoencoder output in [0, 1]: integer levels as values (exact) or the float forward."""
        out = self.outputs(samples)
        return self.blocks[-1].act.value(out) if self.exact else out
