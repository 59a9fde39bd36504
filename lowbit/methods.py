"""The one place the sweep knows which weight/activation bit widths a training method takes.

Everything else in the sweep asks :func:`method_bits` whether a grid point is valid; the
method plug-ins (via :class:`quantmodels.train.TrainConfig` validation) decide.
"""
from __future__ import annotations

from quantmodels.errors import ConfigError


def known_methods() -> tuple[str, ...]:
    """Training methods the sweep accepts (``quantmodels.train.METHODS``)."""
    from quantmodels.train import METHODS

    return tuple(METHODS)


def method_bits(method: str, weight_bits: int | None, act_bits: int | None) -> tuple[dict, str | None]:
    """TrainConfig keyword arguments for ``method`` at these bits, or a reason to skip the point.

    Returns ``(kwargs, None)`` for a valid combination, ``({}, reason)`` otherwise. ``None`` bits
    mean "the method's default"; TrainConfig's own validation (before any training) decides.
    """
    from quantmodels.train import TrainConfig

    kw = {k: v for k, v in (("weight_bits", weight_bits), ("act_bits", act_bits)) if v is not None}
    try:
        TrainConfig(method=method, hidden=(1,), progress=False, **kw)
    except ConfigError as e:
        return {}, str(e)
    return kw, None


#: ``lowbit train`` flag of each TrainConfig bit-width field.
CLI_FLAGS = {"weight_bits": "--wbits", "act_bits": "--abits"}


def cli_flags(kwargs: dict) -> list[str]:
    """``lowbit train`` flags reproducing the adapter's TrainConfig keyword arguments."""
    return [t for k, flag in CLI_FLAGS.items() if k in kwargs for t in (flag, str(kwargs[k]))]
