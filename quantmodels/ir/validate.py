"""Every cross-field rule of the IR, checked once: :func:`validate_model` raises an IRError whose
one line names the file or field and what was expected."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import IRError, clip
import re

from ..bitwidth import signed_bits
from .constants import LAYER_NAME, MAX_ACC_BITS, MAX_BITS, MAX_FEATURES, WEIGHTS_FILE, InputQuantizer, choices
from .kinds import KindSpec, kind_spec

if TYPE_CHECKING:  # pragma: no cover - typing only; schema imports this module
    from .schema import IRModel, Layer


def validate_model(m: "IRModel", where: str, wfile: str = WEIGHTS_FILE) -> None:
    """Check the input spec, then every layer against its predecessor and its kind's rules."""
    _validate_input(m, where)
    if not m.layers:
        raise IRError(f"{where}: layers: empty, expected at least one layer")
    names = [layer.name for layer in m.layers]
    for i, n in enumerate(names):
        if not isinstance(n, str) or not re.match(LAYER_NAME, n):
            raise IRError(f"{where}: layers[{i}].name: {clip(n)}, expected a name of letters, digits and '_' "
                          f"(not starting with a digit, at most 63 characters)")
    if len(set(names)) != len(names):
        raise IRError(f"{where}: layers: duplicate layer names {names}")
    prev_features, prev_bits, prev_name = m.input.features, m.input.bits, "input"
    for i, L in enumerate(m.layers):
        lw = f"{where}: layers[{i}]"
        last = i == len(m.layers) - 1
        spec = kind_spec(L.kind)
        for fld in ("in_features", "out_features", "input_bits", "weight_bits"):
            v = getattr(L, fld)
            if v < 1:
                raise IRError(f"{lw}.{fld}: {v}, expected >= 1")
            if fld.endswith("features") and v > MAX_FEATURES:
                raise IRError(f"{lw}.{fld}: {v}, expected <= {MAX_FEATURES}")
        for fld in ("input_bits", "weight_bits"):
            if getattr(L, fld) > MAX_BITS:
                raise IRError(f"{lw}.{fld}: {getattr(L, fld)}, expected <= {MAX_BITS}")
        if L.conv is not None:
            _validate_conv(L, lw, last)
        if L.in_features != prev_features:
            raise IRError(f"{lw}.in_features: {L.in_features}, expected {prev_features} "
                          f"(= {prev_name} {'features' if i == 0 else 'out_features'})")
        if L.input_bits != prev_bits:
            raise IRError(f"{lw}.input_bits: {L.input_bits}, expected {prev_bits} (= {prev_name} output bits)")
        _validate_kind_bits(L, spec, lw, wfile)
        _validate_output(L, lw, last)
        shape = (L.rows, L.cols)
        if L.weights.ndim != 2 or (L.conv is None and L.weights.shape != shape) or L.weights.shape[1] != L.cols:
            raise IRError(f"{wfile}: {L.name}.weights: shape {L.weights.shape}, expected {shape}")
        lo, hi = L.weight_range()
        if L.weights.size and (L.weights.min() < lo or L.weights.max() > hi):
            raise IRError(f"{wfile}: {L.name}.weights: values in [{L.weights.min()}, {L.weights.max()}], "
                          f"expected [{lo}, {hi}] for kind '{L.kind}' with weight_bits={L.weight_bits}")
        if spec.check_weights is not None:
            spec.check_weights(L, wfile)
        _validate_arrays(L, wfile)
        _validate_widths(L, wfile)
        prev_features, prev_bits, prev_name = L.out_features, (L.output_bits or 0), f"layers[{i}]"


def _validate_input(m: "IRModel", where: str) -> None:
    inp = m.input
    if inp.quantizer not in tuple(InputQuantizer):
        raise IRError(f"{where}: input.quantizer: {inp.quantizer!r}, expected one of {choices(InputQuantizer)}")
    if inp.quantizer == "threshold" and (inp.bits != 1 or not isinstance(inp.threshold, int)):
        raise IRError(f"{where}: input: quantizer 'threshold' needs bits=1 and an integer threshold")
    if inp.quantizer == "identity" and inp.bits != 8:
        raise IRError(f"{where}: input.bits: {inp.bits}, expected 8 for quantizer 'identity' (raw uint8)")
    if inp.quantizer == "truncate" and not 1 <= inp.bits <= 8:
        raise IRError(f"{where}: input.bits: {inp.bits}, expected 1..8 for quantizer 'truncate' (top bits of a uint8)")
    if inp.source_shape and int(np.prod(inp.source_shape)) != inp.features:
        raise IRError(f"{where}: input.source_shape: {list(inp.source_shape)} has "
                      f"{int(np.prod(inp.source_shape))} elements, expected input.features={inp.features}")


def _validate_conv(L: "Layer", lw: str, last: bool) -> None:
    c = L.conv
    if int(np.prod(c.in_shape)) != L.in_features:
        raise IRError(f"{lw}.conv.in_shape: {list(c.in_shape)} has {int(np.prod(c.in_shape))} elements, "
                      f"expected in_features={L.in_features}")
    ph, pw = c.out_hw
    if L.out_features != ph * pw * L.rows:
        raise IRError(f"{lw}.out_features: {L.out_features}, expected {ph * pw * L.rows} "
                      f"(= {ph}x{pw} positions x {L.rows} channels)")
    if last:
        raise IRError(f"{lw}.op: 'conv2d', expected 'dense' for the last (argmax) layer")


def _validate_kind_bits(L: "Layer", spec: KindSpec, lw: str, wfile: str) -> None:
    """The bit widths and tables the layer's kind requires (its :class:`KindSpec`)."""
    for fld, need in (("input_bits", spec.fixed_input_bits), ("weight_bits", spec.fixed_weight_bits)):
        if need is not None and getattr(L, fld) != need:
            raise IRError(f"{lw}.{fld}: {getattr(L, fld)}, expected {need} for kind '{L.kind}'")
    if L.weight_bits < spec.min_weight_bits:
        raise IRError(f"{lw}.weight_bits: {L.weight_bits}, expected >= {spec.min_weight_bits} for kind '{L.kind}'")
    if spec.needs_products:
        pshape = (1 << L.weight_bits, 1 << L.input_bits)
        got = None if L.products is None else L.products.shape
        if got != pshape:
            raise IRError(f"{wfile}: {L.name}.products: shape {got}, expected {pshape} "
                          f"(2**weight_bits x 2**input_bits)")
        if np.abs(L.products).max(initial=0) >= 1 << 24:
            raise IRError(f"{wfile}: {L.name}.products: values exceed +-2**24")


def _validate_output(L: "Layer", lw: str, last: bool) -> None:
    if (L.output == "argmax") != last:
        raise IRError(f"{lw}.output.type: {L.output!r}, expected "
                      f"{'argmax' if last else 'threshold or requantize'} for "
                      f"{'the last' if last else 'a hidden'} layer")
    if L.output != "argmax" and not 1 <= (L.output_bits or 0) <= MAX_BITS:
        raise IRError(f"{lw}.output.bits: {L.output_bits}, expected 1..{MAX_BITS}")
    if L.output == "threshold" and (L.output_bits or 0) > 8:
        raise IRError(f"{lw}.output.bits: {L.output_bits}, expected <= 8 for a multi-threshold stage")
    if L.output == "requantize" and not 0 <= L.shift <= 62:
        raise IRError(f"{lw}.output.shift: {L.shift}, expected 0..62")


def _validate_arrays(L: "Layer", wfile: str) -> None:
    if L.output == "threshold":
        tshape = (L.rows, L.n_thresholds)
        if L.thresholds is None or L.thresholds.shape != tshape:
            got = None if L.thresholds is None else L.thresholds.shape
            raise IRError(f"{wfile}: {L.name}.thresholds: shape {got}, expected {tshape}")
        if L.n_thresholds > 1 and np.any(np.diff(L.thresholds, axis=1) < 0):
            raise IRError(f"{wfile}: {L.name}.thresholds: not ascending along each row")
    if L.bias is not None and L.bias.shape != (L.rows,):
        raise IRError(f"{wfile}: {L.name}.bias: shape {L.bias.shape}, expected ({L.rows},)")


def _validate_widths(L: "Layer", wfile: str) -> None:
    """Accumulator, bias and thresholds within MAX_ACC_BITS: the hardware derives its register widths
    from them, and the golden model's int64 arithmetic must not wrap where the RTL would not."""
    lo, hi = L.logit_range()
    what = "accumulator + bias"
    if L.thresholds is not None and L.thresholds.size:
        tlo, thi = int(L.thresholds.min()), int(L.thresholds.max())
        if signed_bits(tlo, thi) > MAX_ACC_BITS:
            lo, hi, what = tlo, thi, "thresholds"
    if signed_bits(lo, hi) > MAX_ACC_BITS:
        raise IRError(f"{wfile}: {L.name}: {what} span [{lo}, {hi}], {signed_bits(lo, hi)} bits; "
                      f"expected at most {MAX_ACC_BITS} bits")
