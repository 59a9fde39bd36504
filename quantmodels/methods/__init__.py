"""Registry of the low-precision training methods (``--method`` choices).

A method is a :class:`~quantmodels.methods.base.Method` plug-in (see that module's docstring
for what it declares and how the generic network, training loop and exact export use it).
To add one: subclass ``Method`` in ``methods/<name>.py`` and :func:`register` an instance
(add it to ``_BUILTIN`` below for a built-in method).
"""
from __future__ import annotations

from ..errors import ConfigError
from .base import IdentityQuantizer, Method, Option, WeightQuantizer
from .binaryconnect import BinaryConnect
from .bitnet import BitNet
from .bnn import BNN
from .int8 import Int8
from .dorefa import DoReFa
from .lut import Lut
from .pow2 import Pow2
from .ternary import Ternary
from .xnor import XNOR

REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to the registry (name must be new)."""
    if not method.name or method.name in REGISTRY:
        raise ValueError(f"method name {method.name!r} is empty or already registered")
    REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method ``name``; ConfigError naming the choices otherwise."""
    if name not in REGISTRY:
        raise ConfigError(f"method: {name!r}, expected one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


_BUILTIN = (BNN(), BinaryConnect(), XNOR(), Ternary(), Pow2(), Int8(), DoReFa(), BitNet(), Lut())
for _m in _BUILTIN:
    register(_m)

__all__ = ["Method", "Option", "WeightQuantizer", "IdentityQuantizer", "REGISTRY", "register", "get_method"]
