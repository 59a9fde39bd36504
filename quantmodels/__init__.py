"""quantmodels: NumPy training of low-precision networks, the integer IR and its golden model.

This package never imports amaranth or cocotb (dependency direction
quantmodels <- hw <- sim <- reports <- lowbit).
"""
from .errors import ConfigError, DataError, IRError, LowbitError
from .ir import IRModel, Layer, load_model, save_model
from .golden import golden_forward, golden_predict

__all__ = [
    "ConfigError", "DataError", "IRError", "LowbitError",
    "IRModel", "Layer", "load_model", "save_model",
    "golden_forward", "golden_predict",
]
