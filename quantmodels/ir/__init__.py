"""The integer IR: the one contract between training (quantmodels) and hardware (hw).

This package is the contract in one place: the schema and its validation (:mod:`.constants`,
:mod:`.schema`), reading and writing (:mod:`.io`), the kind registry
(:mod:`.kinds`: one :class:`KindSpec` per :class:`Kind`) and the golden integer model
(:mod:`.golden`, the executable definition of the arithmetic below).

A model directory holds

* ``model.json``: schema version, input quantizer, the layer list (kind, shapes, bit
  widths, output stage) and free-form training metadata (method, seed, metrics);
* ``weights.npz``: integer arrays only, loaded with ``allow_pickle=False``:
  ``<layer>.weights`` (out, in), and per output stage ``<layer>.thresholds``
  (out, 2**bits - 1) or ``<layer>.bias`` (out,).

Arithmetic per layer kind (what the hardware must compute; each kind's ``KindSpec`` in
:mod:`.kinds` holds it, :mod:`.golden` executes it):

``xnor_popcount``
    weights and inputs are bits, 1 encodes +1 and 0 encodes -1;
    ``acc = popcount(xnor(x, w))`` in ``[0, in_features]`` (so the +-1 dot product
    is ``2*acc - in_features``).
``mac``
    signed ``weight_bits`` weights, unsigned ``input_bits`` inputs, ``acc = w . x``
    (multiplier + accumulator hardware).
``accumulate``
    ternary weights in {-1, 0, +1} (``weight_bits`` = 2), unsigned inputs, ``acc = w . x``
    computed by adding, subtracting or skipping each input (no multiplier).
``shift_add``
    weights in {0} U {+-2**e : 0 <= e <= weight_bits - 2} stored as their integer
    values (``weight_bits`` signed bits); ``acc = w . x`` by barrel shift + add.
``bit_serial``
    signed ``weight_bits`` weights x unsigned ``input_bits`` inputs, ``acc = w . x``, computed
    one (activation bit, weight bit) plane pair per cycle: AND + popcount + shift.
``lut_product``
    weights are codebook indices (``weight_bits``), inputs are level indices
    (``input_bits``); ``acc = sum_j P[w_j, x_j]`` with the integer product table
    ``<layer>.products`` of shape (2**weight_bits, 2**input_bits): lookups and adds only.

Output stages:

``threshold``
    FINN-style multi-threshold: ``y = sum_k (acc >= T[k])``, ``2**bits - 1``
    ascending thresholds per channel (batch norm, scales and sign folded in).
``requantize``
    ``y = clip((acc + bias) >> shift, 0, 2**bits - 1)`` (arithmetic shift = floor).
``argmax``
    last layer only: ``logits = acc (+ bias if present)``, class = first index of the maximum.

Layer ops (schema v3):

``dense`` (default)
    the weight matrix (rows = out_features, cols = in_features) acts on the whole input vector.
``conv2d``
    the input vector is an image ``conv.in_shape = (H, W, C)`` flattened channels-last
    (index ``(y*W + x)*C + c``). Every output position ``(oy, ox)`` applies the weight matrix
    (rows = out channels, cols = kh*kw*C) to the patch starting at
    ``(oy*stride - padding, ox*stride - padding)``, flattened in ``(ky, kx, c)`` order;
    positions outside the image read the input **code 0** (for xnor_popcount that is -1, for
    unsigned activations 0: training pads the same way). The output stage is per channel;
    then an optional max-pool (``conv.pool``: window and stride, no padding, floor size) takes
    the maximum of the integer output levels, which equals pooling before a monotone output stage.
    The output vector is ``(PH, PW, out_channels)`` flattened channels-last.
"""
from .constants import (FORMAT, MAX_BITS, MODEL_FILE, READABLE_VERSIONS, SCHEMA_VERSION, WEIGHTS_FILE, InputQuantizer,
                        Op, OutputType, choices)
from .golden import GoldenResult, accumulate, golden_forward, golden_predict, im2col, layer_forward, max_pool, \
    output_stage, quantize_input
from .io import load_model, model_from_json, save_model
from .kinds import KINDS, Kind, KindSpec, OpCost, OpCount, as_kind, kind_spec
from .schema import ConvSpec, InputSpec, IRModel, Layer, validate_model

__all__ = ["FORMAT", "MAX_BITS", "MODEL_FILE", "READABLE_VERSIONS", "SCHEMA_VERSION", "WEIGHTS_FILE", "InputQuantizer",
           "Op", "OutputType", "choices", "GoldenResult", "accumulate", "golden_forward", "golden_predict", "im2col",
           "layer_forward", "max_pool", "output_stage", "quantize_input", "load_model", "model_from_json", "save_model",
           "KINDS", "Kind", "KindSpec", "OpCost", "OpCount", "as_kind", "kind_spec", "ConvSpec", "InputSpec", "IRModel", "Layer", "validate_model"]
