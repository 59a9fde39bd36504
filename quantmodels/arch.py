"""Network architectures from a short config string, and the named presets.

Grammar (comma-separated tokens, hidden layers only; the classifier layer is implicit):

* ``f<N>``: dense layer with N outputs;
* ``c<N>k<K>[s<S>][p<P>]``: K x K convolution, N output channels, stride S (1), zero-code padding P (0);
* ``p<K>[s<S>]``: max-pool, window K, stride S (default K); must follow a convolution (the IR
  fuses it into the conv layer).

Every hidden layer is followed by the method's norm (batch norm, or a bias for the float and lut
networks) and activation; convolutions must come before dense layers. Example: ``c16k3p1,p2,c32k3p1,p2,f64``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError

#: Named architectures: the FINN/Brevitas MLP family and a small CNN.
PRESETS = {"tfc": "f64,f64,f64", "sfc": "f256,f256,f256", "lfc": "f1024,f1024,f1024",
           "cnn": "c16k3p1,p2,c32k3p1,p2,f64"}

_DENSE = re.compile(r"^f(\d+)$")
_CONV = re.compile(r"^c(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?$")
_POOL = re.compile(r"^p(\d+)(?:s(\d+))?$")
MAX_UNITS = 1 << 16


@dataclass(frozen=True)
class Dense:
    out: int


@dataclass(frozen=True)
class Conv:
    out: int
    k: int
    stride: int = 1
    pad: int = 0


@dataclass(frozen=True)
class Pool:
    k: int
    stride: int


ArchItem = Dense | Conv | Pool


def arch_from_hidden(hidden: tuple[int, ...]) -> str:
    """The arch string of an MLP with these hidden sizes."""
    return ",".join(f"f{h}" for h in hidden)


def parse_arch(spec: str, image_shape: tuple[int, ...] | None = None) -> list[ArchItem]:
    """Parse and validate ``spec`` (a preset name or token string); with ``image_shape`` also check
    that every convolution and pool fits its input. Raises ConfigError with one line."""
    text = PRESETS.get(spec, spec)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"arch: {spec!r}, expected a preset ({', '.join(PRESETS)}) or tokens like 'c16k3,p2,f64'")
    items: list[ArchItem] = []
    for tok in (t.strip() for t in text.split(",")):
        if m := _DENSE.match(tok):
            items.append(Dense(int(m[1])))
        elif m := _CONV.match(tok):
            if any(isinstance(i, Dense) for i in items):
                raise ConfigError(f"arch: {tok!r} in {spec!r} follows a dense layer, expected convolutions first")
            items.append(Conv(int(m[1]), int(m[2]), int(m[3] or 1), int(m[4] or 0)))
        elif m := _POOL.match(tok):
            if not items or not isinstance(items[-1], Conv):
                raise ConfigError(f"arch: {tok!r} in {spec!r} does not follow a convolution, "
                                  "expected max-pool right after a conv layer")
            items.append(Pool(int(m[1]), int(m[2] or m[1])))
        else:
            raise ConfigError(f"arch: token {tok!r} in {spec!r}, expected fN, cNkK[sS][pP] or pK[sS]")
        sizes = vars(items[-1])
        if any(not (0 if k == "pad" else 1) <= v <= MAX_UNITS for k, v in sizes.items()):
            raise ConfigError(f"arch: {tok!r} in {spec!r}, expected sizes in 1..{MAX_UNITS}")
    if image_shape is not None:
        check_fits(items, image_shape, spec)
    return items


def check_fits(items: list[ArchItem], image_shape: tuple[int, ...], spec: str = "") -> None:
    """Raise ConfigError if a conv or pool window does not fit its input image."""
    h, w = (image_shape[0], image_shape[1]) if len(image_shape) >= 2 else (1, 1)
    for it in items:
        if isinstance(it, Conv):
            h, w = (h + 2 * it.pad - it.k) // it.stride + 1, (w + 2 * it.pad - it.k) // it.stride + 1
        elif isinstance(it, Pool):
            h, w = (h - it.k) // it.stride + 1, (w - it.k) // it.stride + 1
        else:
            continue
        if h < 1 or w < 1:
            raise ConfigError(f"arch: {spec!r} does not fit {'x'.join(map(str, image_shape))} images "
                              f"(output of {it} would be empty)")
