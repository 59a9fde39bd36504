"""Quantizers as named forward / straight-through-estimator (STE) pairs, plus the activation
and input quantizers of :class:`quantmodels.net.QuantNet` (every method's one network class).

``sign``: forward sign(x) with sign(0) = +1 (the bit 1 encodes +1); backward the
"hard tanh" STE of Courbariaux/Hubara et al., "Binarized Neural Networks" (NIPS 2016):
the gradient passes unchanged where |x| <= 1 and is cancelled elsewhere.

``ap2``: the power-of-two approximation AP2(x) = sign(x) 2**round(log2|x|) of the same paper
(shift-based batch norm and AdaMax) and of Lin et al., "Neural networks with few
multiplications" (ICLR 2016), where it rounds layer inputs in the backward pass.

Activation quantizers map a real pre-activation ``y`` to an integer **level** ``L`` (what the
IR carries between layers) and a real **value** ``v = scale * u(L)`` (what the next float layer
multiplies), where ``u(L)`` is an integer. Exact rounding rules (also used by export):

* :class:`SignAct` (1 bit, bipolar): ``L = 1 if y >= 0 else 0``, ``u = 2L - 1``, scale 1.
* :class:`UniformAct` (k bits, unsigned; DoReFa-style clipped ReLU, Zhou et al. 2016):
  ``L = floor(clip(y, 0, 1) * n + 1/2)`` with ``n = 2**k - 1`` (halves round up), ``u = L``,
  scale ``1/n``; STE passes the gradient where ``0 <= y <= 1``. Also for k = 1 (levels {0, 1})
  when a method asks for unsigned 1-bit activations (``bipolar_1bit = False``).
* :class:`LevelAct` (k bits, the ``lut`` method; Baluja et al. 2018): ``L = round(clip(y, 0, 1)
  * (2**k - 1))`` (half to even, :func:`quantmodels.discretize.level_index`), value
  ``L / (2**k - 1)``; STE as UniformAct.

Activations without integer levels (the float networks; ``levels = False``, no exact eval):
:class:`ReLUAct` (the float32 baseline of ``int8``), :class:`ClipAct` (``clip(y, 0, 1)``, the
``lut`` float twin) and :class:`IdentityAct` (an output layer's raw pre-activation).
"""
from __future__ import annotations

import numpy as np

from .discretize import act_levels, input_codes, input_levels, level_index


def sign(x: np.ndarray) -> np.ndarray:
    """sign(x) in {-1, +1}, with sign(0) = +1 (matches the IR's threshold rule acc >= T)."""
    # 2*[x >= 0] - 1 in x's dtype: about 15x faster than np.where with scalar branches, which
    # dominated a binary-weight training step (same values, no float64 temporary)
    s = (x >= 0).astype(x.dtype)
    s *= 2
    s -= 1
    return s


def ste_sign_grad(x: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """STE for sign: d sign(x)/dx ~ 1_{|x| <= 1} (BNN gradient cancelling)."""
    return grad * (np.abs(x) <= 1)


def ap2(x: np.ndarray) -> np.ndarray:
    """AP2(x) = sign(x) * 2**round(log2|x|); AP2(0) = 0 (power-of-two approximation)."""
    x = np.asarray(x)
    mag = np.abs(x)
    with np.errstate(divide="ignore"):
        e = np.round(np.log2(np.where(mag > 0, mag, 1)))
    return np.where(mag > 0, np.sign(x) * np.exp2(e), 0).astype(x.dtype, copy=False)


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """clip((x + 1) / 2, 0, 1): BinaryConnect's probability of sampling +1."""
    return np.clip((x + 1) * 0.5, 0, 1)


def binarize_input(samples: np.ndarray, threshold: int) -> np.ndarray:
    """Raw uint8 samples -> {-1, +1} float32 (pixel >= threshold -> +1), flattened."""
    x = samples.reshape(len(samples), -1)
    return np.where(x >= threshold, 1.0, -1.0).astype(np.float32)


QUANTIZERS = {"sign": (sign, ste_sign_grad)}


class SignAct:
    """1-bit bipolar activation: level ``y >= 0``, value ``2L - 1``; STE cancels where |y| > 1."""

    levels = True  #: has integer output levels (exact eval and threshold export)
    bits = 1
    scale = 1.0
    bipolar = True
    zero = -1.0  #: the value of level 0 (what conv padding reads)

    def u(self, level: np.ndarray) -> np.ndarray:
        return 2 * level - 1

    def level(self, y: np.ndarray) -> np.ndarray:
        return (y >= 0).astype(np.int64)

    def forward(self, y: np.ndarray) -> np.ndarray:
        self._y = y
        return sign(y)

    def backward(self, dv: np.ndarray) -> np.ndarray:
        return ste_sign_grad(self._y, dv)


class UniformAct:
    """k-bit unsigned activation on [0, 1]: ``L = floor(clip(y,0,1)*n + 1/2)``, value ``L/n``."""

    bipolar = False
    levels = True
    zero = 0.0

    def __init__(self, bits: int):
        self.bits = bits
        self.n = (1 << bits) - 1
        self.scale = 1.0 / self.n

    def u(self, level: np.ndarray) -> np.ndarray:
        return level

    def level(self, y: np.ndarray) -> np.ndarray:
        return np.floor(np.clip(y, 0.0, 1.0) * self.n + 0.5).astype(np.int64)

    def forward(self, y: np.ndarray) -> np.ndarray:
        self._y = y
        return (np.floor(np.clip(y, 0, 1) * self.n + 0.5) / self.n).astype(y.dtype, copy=False)

    def backward(self, dv: np.ndarray) -> np.ndarray:
        return dv * ((self._y >= 0) & (self._y <= 1))


class LevelAct:
    """k-bit level activation of the lut method: ``L = round(clip(y, 0, 1) * (2**k - 1))`` (half
    to even), value ``L / (2**k - 1)``; STE passes the gradient where ``0 <= y <= 1``."""

    bipolar = False
    levels = True
    zero = 0.0

    def __init__(self, bits: int):
        self.bits = bits
        self.n_levels = 1 << bits
        self.scale = 1.0 / (self.n_levels - 1)

    def u(self, level: np.ndarray) -> np.ndarray:
        return level

    def level(self, y: np.ndarray) -> np.ndarray:
        return level_index(y, self.n_levels)

    def values(self) -> np.ndarray:
        """float64 value of every level (the product tables' input axis)."""
        return act_levels(self.n_levels)

    def value(self, level: np.ndarray) -> np.ndarray:
        """float64 values of integer levels (an autoencoder's reconstruction)."""
        return level / (self.n_levels - 1)

    def forward(self, y: np.ndarray) -> np.ndarray:
        self._y = y
        return (self.level(y) / np.float32(self.n_levels - 1)).astype(np.float32)

    def backward(self, dv: np.ndarray) -> np.ndarray:
        return dv * ((self._y >= 0) & (self._y <= 1))


class ClipAct(LevelAct):
    """``clip(y, 0, 1)`` without levels: the lut float twin (same STE window, exact gradient)."""

    levels = False

    def forward(self, y: np.ndarray) -> np.ndarray:
        self._y = y
        return np.clip(y, 0, 1)


class ReLUAct:
    """``max(y, 0)`` without levels: the float32 baseline network (gradient where y > 0)."""

    levels = False
    bipolar = False
    zero = 0.0

    def forward(self, y: np.ndarray) -> np.ndarray:
        self._y = y
        return np.maximum(y, 0)

    def backward(self, dv: np.ndarray) -> np.ndarray:
        return dv * (self._y > 0)


class IdentityAct:
    """No activation: an output layer's pre-activation (logits) passes unchanged."""

    levels = False
    bipolar = False
    zero = 0.0

    def forward(self, y: np.ndarray) -> np.ndarray:
        return y

    def backward(self, dv: np.ndarray) -> np.ndarray:
        return dv


def make_act(bits: int, bipolar: bool = True):
    """The activation quantizer for ``bits``: sign for 1 bit (``bipolar``), uniform [0, 1] otherwise."""
    return SignAct() if bits == 1 and bipolar else UniformAct(bits)


class InputQuant:
    """Raw uint8 pixels -> first-layer levels: ``threshold`` (bit b = pixel >= threshold, as the
    IR's threshold input; value 2b - 1 if ``bipolar``, else b), ``identity`` (8-bit level =
    pixel, value pixel / 255) or ``truncate`` (``bits``-bit code c = pixel >> (8 - bits), value
    c / (2**bits - 1); the IR calls 8 kept bits ``identity``)."""

    levels = True

    def __init__(self, kind: str, threshold: int = 128, bipolar: bool = True, bits: int = 8):
        self.threshold = threshold
        self.bits = 1 if kind == "threshold" else 8 if kind == "identity" else bits
        self.kind = "identity" if kind == "truncate" and bits == 8 else kind  #: the IR's input quantizer
        self.bipolar = kind == "threshold" and bipolar
        self.scale = 1.0 if kind == "threshold" else 1.0 / ((1 << self.bits) - 1)
        self.zero = self.scale * float(self.u(0))

    def level(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples)
        if self.kind == "threshold":
            return (x >= self.threshold).astype(np.int64)
        return input_codes(x, self.bits).reshape(x.shape) if self.kind == "truncate" else x.astype(np.int64)

    def values(self) -> np.ndarray:
        """float64 value of every input level (the lut product tables' input axis)."""
        return input_levels(self.bits)

    def u(self, level: np.ndarray) -> np.ndarray:
        return 2 * level - 1 if self.bipolar else level
