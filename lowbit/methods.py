"""The one place the sweep knows which weight/activation bit widths a training method takes.

Rewire this module when ``quantmodels.train.TrainConfig`` gains or changes bit-width fields:
everything else in the sweep asks :func:`method_bits` whether a grid point is valid.
"""
from __future__ import annotations

import dataclasses

from quantmodels.errors import ConfigError

#: Bit widths of methods whose precision is fixed by the method itself (W bits, A bits).
FIXED_BITS = {"bnn": (1, 1), "int8": (8, 8)}


def known_methods() -> tuple[str, ...]:
    """Training methods the sweep accepts (``quantmodels.train.METHODS``)."""
    from quantmodels.train import METHODS

    return tuple(METHODS)


def _has_bit_fields() -> bool:
    from quantmodels.train import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return {"weight_bits", "act_bits"} <= names


def method_bits(method: str, weight_bits: int | None, act_bits: int | None) -> tuple[dict, str | None]:
    """TrainConfig keyword arguments for ``method`` at these bits, or a reason to skip the point.

    Returns ``(kwargs, None)`` for a valid combination, ``({}, reason)`` otherwise. ``None`` bits
    mean "the method's default". When TrainConfig has ``weight_bits``/``act_bits`` fields the
    bits are passed through and TrainConfig's own validation decides; otherwise a point is valid
    only at the method's fixed bits (:data:`FIXED_BITS`).
    """
    if _has_bit_fields():
        from quantmodels.train import TrainConfig

        kw = {k: v for k, v in (("weight_bits", weight_bits), ("act_bits", act_bits)) if v is not None}
        try:
            TrainConfig(method=method, hidden=(1,), progress=False, **kw)
        except ConfigError as e:
            return {}, str(e)
        return kw, None
    fixed = FIXED_BITS.get(method)
    if fixed is None:
        return {}, None if weight_bits is None and act_bits is None else \
            (f"{method}: bit widths are not configurable in this version of quantmodels.train")
    if weight_bits not in (None, fixed[0]) or act_bits not in (None, fixed[1]):
        return {}, (f"{method} trains W{fixed[0]}A{fixed[1]} only "
                    f"(asked W{weight_bits or fixed[0]}A{act_bits or fixed[1]})")
    return {}, None


def cli_flags(kwargs: dict) -> list[str]:
    """``lowbit train`` flags reproducing the adapter's TrainConfig keyword arguments."""
    out: list[str] = []
    for k in ("weight_bits", "act_bits"):
        if k in kwargs:
            out += [f"--{k.replace('_', '-')}", str(kwargs[k])]
    return out
