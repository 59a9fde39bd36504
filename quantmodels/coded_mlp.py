"""MLPs whose weights are ``scale * integer codes`` and whose hidden activations are k-bit
DoReFa levels: the BitNet method and its unregularised float twin. (DoReFa itself is a plug-in
of the generic :class:`~quantmodels.net.QuantNet`: :mod:`quantmodels.methods.dorefa`.)

Layer i (hidden)::

    acc   = codes_i . x_i                      integers (x_i = input codes of the layer)
    level = round((2**A - 1) clip(bn_eval(acc * scale_i * in_scale_i), 0, 1))

with ``in_scale`` = 1/255 for raw uint8 pixels, 1/(2**A - 1) for hidden levels. Training uses batch statistics and the STE of :mod:`quantmodels.dorefa`; the
eval forward computes exactly the formula above in float64 (acc is an exact small integer),
and export folds it into integer thresholds by exact search
(:mod:`quantmodels.thresholds`), so golden == float model on every sample. The last
layer's logits are ``alpha * scale * in_scale * acc`` with a positive multiplier, so the class
is the argmax of the integer ``acc`` (first index on ties, as in the golden model).

IR mapping: ``bit_serial`` with raw uint8 input; ``weight_bits`` = the signed width of the
codes' range. A neuron with negative BN gamma has its codes negated.
"""
from __future__ import annotations

import numpy as np

from . import bitnet, dorefa
from .errors import ConfigError
from .ir import InputSpec, IRModel, Layer
from .layers import BN_EPS, BN_MOMENTUM
from .nets import bn_eval
from .thresholds import exact_thresholds


class CodedMLP:
    """Shared forward / backward / eval / export; subclasses define the weight quantizer."""

    method = "coded"

    def __init__(self, sizes: tuple[int, ...], rng: np.random.Generator, weight_bits: int, act_bits: int):
        self.sizes = tuple(sizes)
        self.rng = rng
        self.wb, self.ab = weight_bits, act_bits
        self.n_layers = len(sizes) - 1
        self.params: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            lim = np.sqrt(6.0 / (n_in + n_out))
            self.params[f"W{i}"] = rng.uniform(-lim, lim, (n_out, n_in)).astype(np.float32)
            if i < self.n_layers - 1:
                self.params[f"gamma{i}"] = np.ones(n_out, np.float32)
                self.params[f"beta{i}"] = np.full(n_out, 0.5, np.float32)  # centre of [0, 1]
                self.state[f"mean{i}"] = np.zeros(n_out, np.float32)
                self.state[f"var{i}"] = np.ones(n_out, np.float32)
        self.params["log_alpha"] = np.array([0.0], np.float32)

    # ------------------------------------------------------------ weight quantizer hooks
    def weight_codes(self, i: int) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    def weight_backward(self, i: int, g: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def extra_grads(self) -> dict[str, np.ndarray]:
        """Regulariser gradients added to the data gradients (none by default)."""
        return {}

    def code_range(self, i: int) -> tuple[int, int]:
        """Inclusive range the layer's codes may take (the stored integer format)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------ training
    def prepare(self, samples: np.ndarray) -> np.ndarray:
        x = samples.reshape(len(samples), -1)
        return (x / np.float32(255.0)).astype(np.float32)

    def latent_weights(self) -> list[str]:
        return [f"W{i}" for i in range(self.n_layers)]

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.cache = []
        for i in range(self.n_layers):
            codes, s = self.weight_codes(i)
            wt = (codes * s).astype(np.float32)
            a = x @ wt.T
            if i == self.n_layers - 1:
                alpha = np.float32(np.exp(self.params["log_alpha"][0]))
                self.cache.append((x, wt, a, alpha))
                return alpha * a
            mu, var = a.mean(0), a.var(0)
            inv = 1.0 / np.sqrt(var + BN_EPS)
            ahat = (a - mu) * inv
            y = self.params[f"gamma{i}"] * ahat + self.params[f"beta{i}"]
            if train:
                n = len(a)
                self.state[f"mean{i}"] = ((1 - BN_MOMENTUM) * self.state[f"mean{i}"] + BN_MOMENTUM * mu).astype(np.float32)
                self.state[f"var{i}"] = ((1 - BN_MOMENTUM) * self.state[f"var{i}"]
                                         + BN_MOMENTUM * var * n / max(n - 1, 1)).astype(np.float32)
            self.cache.append((x, wt, ahat, inv, y))
            x = dorefa.quantize_act(y, self.ab)
        raise AssertionError("unreachable")

    def backward(self, dlogits: np.ndarray) -> dict[str, np.ndarray]:
        grads: dict[str, np.ndarray] = {}
        L = self.n_layers - 1
        x, wt, a, alpha = self.cache[-1]
        grads["log_alpha"] = np.array([np.sum(dlogits * a) * alpha], np.float32)
        da = dlogits * alpha
        grads.update(self.weight_backward(L, da.T @ x))
        dx = da @ wt
        for i in range(L - 1, -1, -1):
            x, wt, ahat, inv, y = self.cache[i]
            dy = dorefa.quantize_act_grad(y, dx)
            grads[f"gamma{i}"] = np.sum(dy * ahat, 0)
            grads[f"beta{i}"] = np.sum(dy, 0)
            dah = dy * self.params[f"gamma{i}"]
            n = len(dah)
            da = inv / n * (n * dah - dah.sum(0) - ahat * np.sum(dah * ahat, 0))
            for k, v in self.weight_backward(i, da.T @ x).items():
                grads[k] = grads.get(k, 0) + v
            if i > 0:
                dx = da @ wt
        for k, v in self.extra_grads().items():
            grads[k] = (grads[k] + v).astype(np.float32)
        return grads

    def post_step(self) -> None:
        pass

    # ------------------------------------------------------------- eval (the float model)
    def input_codes(self, samples: np.ndarray) -> np.ndarray:
        x = samples.reshape(len(samples), -1)
        return x.astype(np.int64)

    def in_scale(self, i: int) -> float:
        if i > 0:
            return 1.0 / ((1 << self.ab) - 1)
        return 1.0 / 255.0

    def in_max(self, i: int) -> int:
        if i > 0:
            return (1 << self.ab) - 1
        return 255

    def level(self, i: int, s: float, acc: np.ndarray) -> np.ndarray:
        """Hidden layer i's output level for accumulator values acc (..., out), in float64."""
        y = bn_eval(acc * (float(s) * self.in_scale(i)), self.params[f"gamma{i}"], self.params[f"beta{i}"],
                    self.state[f"mean{i}"], self.state[f"var{i}"])
        return dorefa.act_codes(y, self.ab)

    def eval_acc(self, samples: np.ndarray) -> np.ndarray:
        """Integer accumulators of the last layer in the eval-mode float model."""
        x = self.input_codes(samples).astype(np.float64)
        for i in range(self.n_layers):
            codes, s = self.weight_codes(i)
            acc = x @ np.asarray(codes, np.float64).T  # exact: small integers in float64
            if i == self.n_layers - 1:
                return acc
            x = self.level(i, s, acc).astype(np.float64)
        raise AssertionError("unreachable")

    def predict(self, samples: np.ndarray) -> np.ndarray:
        """Classes of the eval-mode float model (the positive logit scale does not change argmax)."""
        return np.argmax(self.eval_acc(samples), axis=1)

    # -------------------------------------------------------------------------- export
    def export(self, name: str, image_shape: tuple[int, ...], meta: dict) -> IRModel:
        layers = []
        for i in range(self.n_layers):
            codes, s = self.weight_codes(i)
            codes = np.asarray(codes, np.int64)
            n_out, n_in = codes.shape
            last = i == self.n_layers - 1
            in_bits = 8 if i == 0 else self.ab
            if not last:
                flip = np.where(self.params[f"gamma{i}"] < 0, -1, 1).astype(np.int64)
                codes = codes * flip[:, None]
            xm = self.in_max(i)
            lo = (np.minimum(codes, 0).sum(1) * xm).astype(np.int64)
            hi = (np.maximum(codes, 0).sum(1) * xm).astype(np.int64)
            out = dict(output="argmax") if last else dict(output="threshold", output_bits=self.ab)
            if not last:
                fl = flip

                def f(acc: np.ndarray, i=i, s=s, fl=fl) -> np.ndarray:  # (m, out) -> levels
                    return self.level(i, s, (fl[None, :] * acc).astype(np.float64))
                # f is non-decreasing by construction (fl oriented each row), so no flip comes back
                out["thresholds"], _ = exact_thresholds(f, lo, hi, 1 << self.ab, 0, name=f"fc{i}")
            clo, chi = self.code_range(i)
            if not last and np.any(flip < 0):
                clo, chi = min(clo, -chi), max(chi, -clo)
            wbits = bitnet.signed_width(clo, chi)
            layers.append(Layer(f"fc{i}", "bit_serial", n_in, n_out, in_bits, wbits, weights=codes, **out))
        inp = InputSpec(self.sizes[0], 8, "identity", None, tuple(image_shape))
        return IRModel(name, self.method, inp, layers, meta).validate()


class BitNetMLP(CodedMLP):
    """BitNet (arXiv:1708.04788) MLP: per-layer scale, translation and bit width under the MDL
    regulariser of :mod:`quantmodels.bitnet`; ``quantize=False`` gives the unregularised twin
    (same net, float weights, no regulariser; not exportable)."""

    method = "bitnet"

    def __init__(self, sizes, rng, act_bits: int = 4, init_bits: int = 8, lam_q: float = 1.0,
                 lam_b: float = 0.01, quantize: bool = True, bits_every: int = 500):
        dorefa.check_bits(act_bits, "act_bits")
        dorefa.check_bits(init_bits, "init_bits")
        for k, v in (("lam_q", lam_q), ("lam_b", lam_b)):
            if not v >= 0:
                raise ConfigError(f"{k}: {v}, expected >= 0")
        super().__init__(sizes, rng, init_bits, act_bits)
        self.quantize, self.lam_q, self.lam_b, self.bits_every = quantize, lam_q, lam_b, bits_every
        self.steps = 0
        # bit widths live in ``state`` so that best-epoch checkpoints restore them with the weights
        self.state["bits"] = np.full(self.n_layers, init_bits, np.int64)
        self.n_total = sum(a * b for a, b in zip(sizes, sizes[1:]))
        self._qz: dict[int, bitnet.Quantized] = {}
        for i in range(self.n_layers):
            w = self.params[f"W{i}"]
            lo, hi = float(w.min()), float(w.max())
            self.params[f"log_s{i}"] = np.array([np.log((hi - lo) / ((1 << init_bits) - 1))], np.float32)
            self.params[f"t{i}"] = np.array([lo], np.float32)

    @property
    def bits(self) -> list[int]:
        return [int(b) for b in self.state["bits"]]

    @bits.setter
    def bits(self, value: list[int]) -> None:
        self.state["bits"][...] = value

    def post_step(self) -> None:
        """The MDL step on the bit widths every ``bits_every`` optimizer steps."""
        self.steps += 1
        if self.steps % self.bits_every == 0:
            self.update_bits()

    def scale(self, i: int) -> float:
        return float(np.exp(np.float64(self.params[f"log_s{i}"][0])))

    def weight_codes(self, i):
        w = self.params[f"W{i}"].astype(np.float64)
        if not self.quantize:
            return w, 1.0
        qz = bitnet.quantize(w, self.scale(i), float(self.params[f"t{i}"][0]), self.bits[i])
        self._qz[i] = qz
        return qz.codes, self.scale(i)

    def weight_backward(self, i, g):
        if not self.quantize:
            return {f"W{i}": g.astype(np.float32)}
        s = self.scale(i)
        dw, ds, dt = bitnet.ste_grads(self.params[f"W{i}"].astype(np.float64), s, self._qz[i], g)
        return {f"W{i}": dw.astype(np.float32), f"log_s{i}": np.array([ds * s], np.float32),
                f"t{i}": np.array([dt], np.float32)}

    def extra_grads(self):
        if not self.quantize or self.lam_q == 0:
            return {}
        out = {}
        for i in range(self.n_layers):
            s = self.scale(i)
            dw, ds = bitnet.relerr_grads(self.params[f"W{i}"].astype(np.float64), s, self._qz[i].codes)
            out[f"W{i}"] = (self.lam_q * dw).astype(np.float32)
            out[f"log_s{i}"] = np.array([self.lam_q * ds * s], np.float32)
        return out

    def regulariser(self) -> float:
        """lam_q * sum relerr + lam_b * bits/weight (the MDL terms, for logging)."""
        if not self.quantize:
            return 0.0
        err = sum(bitnet.relerr(self.params[f"W{i}"].astype(np.float64), self.scale(i), self.weight_codes(i)[0])
                  for i in range(self.n_layers))
        return self.lam_q * err + self.lam_b * self.bits_per_weight()

    def update_bits(self) -> None:
        """One MDL step per layer on the integer bit width (range-preserving scale)."""
        if not self.quantize:
            return
        for i in range(self.n_layers):
            nb, ns = bitnet.choose_bits(self.params[f"W{i}"].astype(np.float64), self.scale(i),
                                        float(self.params[f"t{i}"][0]), self.bits[i], self.n_total,
                                        self.lam_q, self.lam_b)
            self.state["bits"][i] = nb
            self.params[f"log_s{i}"][0] = np.float32(np.log(ns))

    def bits_per_weight(self) -> float:
        return bitnet.bits_penalty(self.bits, [a * b for a, b in zip(self.sizes, self.sizes[1:])])

    def code_range(self, i):
        z = bitnet.zero_point(self.scale(i), float(self.params[f"t{i}"][0]), self.bits[i])
        return -z, (1 << self.bits[i]) - 1 - z

    def export(self, name, image_shape, meta):
        if not self.quantize:
            raise ConfigError("bitnet: the unregularised float twin (quantize=False) has no integer export")
        meta = dict(meta, bits_per_layer=list(self.bits), bits_per_weight=self.bits_per_weight())
        return super().export(name, image_shape, meta)
