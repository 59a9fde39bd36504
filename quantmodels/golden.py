"""Golden integer inference: re-exported from :mod:`quantmodels.ir.golden`, where it sits beside the
schema and the kind registry it executes (kept here so ``quantmodels.golden`` imports keep working)."""
from .ir.golden import (GoldenResult, accumulate, golden_forward, golden_predict, im2col, layer_forward, max_pool,
                        output_stage, quantize_input)

__all__ = ["GoldenResult", "accumulate", "golden_forward", "golden_predict", "im2col", "layer_forward", "max_pool",
           "output_stage", "quantize_input"]
