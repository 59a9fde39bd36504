"""Analytic area estimator (a MODEL) for one folded layer, calibrated against real Yosys runs.

``estimate(layer, folding, target)`` predicts LUT / FF / BRAM / DSP counts of the layer's
:class:`hw.mvu.MatrixVectorUnit` without synthesis, so a sweep can pre-screen points.
The model is linear in structural features that follow the unit's datapath (hw/mvu.py):

==========  ==================================================================
``const``   control logic, per kind
``lane``    per-lane work, per kind: XNOR; add/sub mux (ib + 2); shift_add barrel-shifter
            2:1 muxes + negation (term width); bit_serial ib:1 and wb:1 bit-select muxes
            + AND; lut_product: one LUT per table bit when ib + wb <= k, else a 2^wb:1
            weight mux per table bit; multiplier ib x wb (LUT mac); 0 with DSPs
``xdec``    lut_product with ib + wb > k: the table's 2^wb functions of the activation,
            per SIMD column (shared by the PEs that see the same activation)
``post``    per-PE work after the tree: bit_serial's plane shift (barrel shifter) + negation
``tree``    exact adder-tree bits: pe x sum of node widths of a balanced tree over simd
            terms of the term width (one bit wider per level), shared by every kind
``acc``     per-PE accumulator, pipeline and output registers: pe x acc width
``thr``     threshold comparators: pe x thresholds x acc width
``rom``     weight ROM held in LUTs: distinct non-trivial bit columns (not constant, not an
            address bit, not a duplicate) x LUTs of an arbitrary log2(depth)-input function
``romreg``  the ROM's read register: distinct columns (duplicate FFs merge)
``prom``    threshold/bias ROM (combinational read, LUTs): pe x values x acc width
            x ceil(depth / 2^k); 0 when it is marked for block RAM (then read synchronously)
``inb``     shifting input window (a 2:1 mux per bit): in_features x input bits when there
            is more than one column fold, else 0 (the window is dead logic)
``inbuf``   the input vector register: in_features x input bits
``outb``    result shift register + output register: out_features x output bits
==========  ==================================================================

The ``lane``, ``xdec`` and ``post`` coefficients are per unit kind, the others shared. LUT
counts of an n-input function (``fn_luts``) and an n:1 mux (``mux_luts``) follow the family:
k = 4 (6 on xilinx); the wide-function muxes of ecp5 (PFUMX, L6MUX21) and xilinx (MUXF7/8)
are not LUTs, ice40 builds every mux level from LUTs.

Coefficients live in one table, ``estimator_constants.json`` beside this module, written
by ``benchmarks/estimator_calibration.py`` (non-negative least squares over real syntheses
of many foldings per kind; its error table is in benchmarks/results/). DSPs follow a rule
(one multiplier block per mac lane when the product is wide enough, a fitted width), BRAM
a fitted threshold rule.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.folding import Folding
from hw.memstyle import MemStyle, parse_mem_style, resolve
from hw.mvu import acc_width, out_width, weight_code_bits, weight_codes
from quantmodels.errors import ConfigError
from quantmodels.ir import Layer, kind_spec

from .kind_costs import LUT_INPUTS, cost_spec, fn_luts, free_functions, lane_cost, pe_cost, term_width

CONSTANTS_FILE = Path(__file__).with_name("estimator_constants.json")
#: Targets with DSP multipliers (one per mac lane: measured, see the calibration table).
DSP_TARGETS = ("ice40", "ecp5", "xilinx")
SHARED = ("tree", "acc", "thr", "rom", "romreg", "prom", "inb", "inbuf", "outb")
METRICS = ("luts", "ffs")


def _family(target: str) -> str:
    return target.split("-")[0]


def _lut_cost(width: int, depth: int, k: int) -> float:
    """LUTs of a ``width`` x ``depth`` table in 2^k-input LUTs (one LUT per bit per 2^k words)."""
    return width * max(1.0, depth / (1 << k))


def adder_tree_bits(terms: int, width: int) -> int:
    """Adder bits of hw.arith.adder_tree over ``terms`` equal-width terms (each node one bit
    wider than its widest operand, an odd term passed up a level)."""
    ws, bits = [width] * terms, 0
    while len(ws) > 1:
        nxt = [max(ws[i], ws[i + 1]) + 1 for i in range(0, len(ws) - 1, 2)]
        bits += sum(nxt)
        ws = nxt + ([ws[-1]] if len(ws) % 2 else [])
    return bits


def rom_bits(layer: Layer, fold: Folding) -> np.ndarray:
    """The weight ROM's contents as a (columns x words) 0/1 array (hw.mvu.weight_codes' layout)."""
    codes = weight_codes(layer, fold)
    bits = (codes[:, :, None] >> np.arange(weight_code_bits(layer))) & 1
    return bits.reshape(len(codes), -1).T.astype(np.uint8)


def rom_live_columns(layer: Layer, fold: Folding) -> int:
    """ROM bit columns that are not constant: Yosys drops constant bits of a ROM before it maps
    the rest to block RAM (checked on the MNIST sweep: exact BRAM counts for 8 of 9 designs)."""
    bits = rom_bits(layer, fold)
    return int(np.sum(bits.min(axis=1) != bits.max(axis=1)))


def rom_columns(layer: Layer, fold: Folding) -> int:
    """Distinct weight-ROM bit columns (functions of the address) that need logic: constant
    columns, columns equal to one address bit or its complement, and duplicates of another
    column cost nothing once Yosys maps the constant ROM to LUTs."""
    bits = rom_bits(layer, fold)
    words = bits.shape[1]
    return len({c.tobytes() for c in np.ascontiguousarray(bits)} - free_functions(words))  # bytes: cheap to hash


def features(layer: Layer, fold: Folding, target: str, bram: bool | None = None,
             dsp: bool | None = None, mem_style: str = "auto") -> dict[str, float]:
    """Structural features of one folded layer on ``target`` (see the module table).

    ``bram`` / ``dsp``: whether the weight ROM sits in block RAM and the multipliers in DSPs
    (default: :func:`uses_bram`, :func:`uses_dsp` for ``mem_style``; the calibration passes what
    synthesis did). A threshold ROM in block RAM (``mem_style`` block, or auto on a large one)
    costs no LUTs (its blocks are in :func:`bram_blocks`)."""
    fam = _family(target)
    lanes = fold.lanes
    W = acc_width(layer)
    tw = term_width(layer)
    dsp = uses_dsp(layer, target) if dsp is None else dsp
    lane, shared = lane_cost(layer, fold, fam, dsp)
    words = fold.row_folds * fold.col_folds
    n_t = layer.n_thresholds if layer.output == "threshold" else (1 if layer.bias is not None else 0)
    in_bram = uses_bram(layer, fold, target, mem_style) if bram is None else bram
    prom_bram = param_rom_in_bram(layer, fold, target, mem_style)
    cols = 0 if in_bram else rom_columns(layer, fold)
    return {
        "const": 1.0,
        "lane": lanes * lane,
        "xdec": fold.simd * shared,
        "post": fold.pe * pe_cost(layer, fold),
        "tree": fold.pe * adder_tree_bits(fold.simd, tw),
        "acc": fold.pe * W,
        "thr": fold.pe * (layer.n_thresholds if layer.output == "threshold" else 1) * W,
        "rom": 0.0 if in_bram or words < 2 else cols * fn_luts((words - 1).bit_length(), fam),
        "romreg": 0.0 if in_bram else cols,  # the ROM's read register (one FF per distinct column)
        "prom": _lut_cost(fold.pe * n_t * W, fold.row_folds, LUT_INPUTS.get(fam, 4)) if n_t and not prom_bram else 0.0,
        # input window: a 2:1 mux per bit (fresh vector or shifted window); with one column fold
        # the window is dead logic and the buffer feeds the lanes directly
        "inb": layer.in_features * layer.input_bits if fold.col_folds > 1 else 0.0,
        "inbuf": layer.in_features * layer.input_bits,  # the input vector register itself
        "outb": layer.rows * out_width(layer),
    }


def uses_dsp(layer: Layer, target: str) -> bool:
    """Whether Yosys maps the layer's multipliers to DSP blocks: a mac layer on a DSP target whose
    product is at least ``dsp_min_product_bits`` wide (fitted; e.g. synth_ice40 -dsp leaves small
    products in LUTs). The product of a zero-extended input and a signed weight has
    input_bits + 1 + weight_bits bits."""
    if not cost_spec(layer.kind).multiplier or _family(target) not in DSP_TARGETS or target.endswith("-nodsp"):
        return False
    rule = _constants().get("dsp_min_product_bits", {}).get(_family(target), 0)
    return layer.input_bits + 1 + layer.weight_bits >= rule


def unit_kind(layer: Layer, target: str, dsp: bool | None = None) -> str:
    """Kind name of the per-kind coefficients: ``<kind>_nodsp`` (``mac_nodsp``) for multipliers built
    from LUTs."""
    if cost_spec(layer.kind).multiplier and not (uses_dsp(layer, target) if dsp is None else dsp):
        return f"{layer.kind}_nodsp"
    return str(layer.kind)


def design_row(layer: Layer, fold: Folding, target: str, bram: bool | None = None,
               dsp: bool | None = None, mem_style: str = "auto") -> dict[str, float]:
    """Features keyed by coefficient name (per-kind terms prefixed with the unit kind)."""
    f = features(layer, fold, target, bram, dsp, mem_style)
    uk = unit_kind(layer, target, dsp)
    row = {f"{uk}:const": f["const"], f"{uk}:lane": f["lane"], **{s: f[s] for s in SHARED}}
    for name in ("xdec", "post"):  # kinds with a shared activation decode / per-PE post-processing
        if f[name]:
            row[f"{uk}:{name}"] = f[name]
    return row


#: (block bits, widest port) per family: SB_RAM40_4K 4 kbit x16; DP16KD 18 kbit x36; RAMB18 x36
BLOCK_GEOMETRY = {"ice40": (4096, 16), "ecp5": (18432, 36), "xilinx": (18432, 36)}


def uses_bram(layer: Layer, fold: Folding, target: str, mem_style: str = "auto") -> bool:
    """Whether the weight ROM ends up in block RAM. ``block``: always (on a family with block RAM);
    ``distributed`` / ``logic``: never; ``auto``: when the generator marks it for block RAM
    (:func:`hw.memstyle.resolve`) or Yosys' own choice would put it there: at least
    ``bram_min_bits`` stored bits and ``bram_min_depth`` words (fitted thresholds in the constants
    file; never on generic)."""
    fam = _family(target)
    if fam not in BLOCK_GEOMETRY:
        return False
    words = fold.row_folds * fold.col_folds
    bits = words * fold.lanes * weight_code_bits(layer)
    style = resolve(parse_mem_style(mem_style), words, fold.lanes * weight_code_bits(layer))
    if style is not None:
        return style is MemStyle.BLOCK
    rules = _constants().get("bram_rule", {}).get(fam)
    return bool(rules) and words >= rules["min_depth"] and bits >= rules["min_bits"]


def param_rom_in_bram(layer: Layer, fold: Folding, target: str, mem_style: str = "auto") -> bool:
    """Whether the threshold/bias ROM is marked for block RAM (it is never inferred there
    unmarked: unmarked it is read combinationally)."""
    n_t = layer.n_thresholds if layer.output == "threshold" else (1 if layer.bias is not None else 0)
    if not n_t or _family(target) not in BLOCK_GEOMETRY:
        return False
    return resolve(parse_mem_style(mem_style), fold.row_folds, fold.pe * n_t * acc_width(layer)) is MemStyle.BLOCK


def _blocks(width: int, words: int, fam: str) -> int:
    """Blocks of ``fam`` holding ``words`` x ``width`` bits: columns split over the widest port
    that holds the depth."""
    block_bits, max_w = BLOCK_GEOMETRY[fam]
    port_w = max_w
    while port_w > 1 and block_bits // port_w < words:
        port_w //= 2
    depth_per = block_bits // port_w
    return math.ceil(width / port_w) * math.ceil(words / depth_per)


def bram_blocks(layer: Layer, fold: Folding, target: str, mem_style: str = "auto") -> int:
    """Block RAMs (RAMB18 equivalents on xilinx) of the weight ROM (its non-constant bit columns)
    and of the threshold ROM when that is in block RAM too."""
    fam = _family(target)
    n = 0
    if uses_bram(layer, fold, target, mem_style):
        n += _blocks(rom_live_columns(layer, fold), fold.row_folds * fold.col_folds, fam)
    if param_rom_in_bram(layer, fold, target, mem_style):
        n_t = layer.n_thresholds if layer.output == "threshold" else 1
        n += _blocks(fold.pe * n_t * acc_width(layer), fold.row_folds, fam)
    return n


@functools.cache
def _constants() -> dict:
    if not CONSTANTS_FILE.exists():
        return {}
    return json.loads(CONSTANTS_FILE.read_text())


def calibrated_unit_kinds(fam: str) -> set[str]:
    """Unit kinds (``mac_nodsp`` included) with fitted per-kind coefficients on family ``fam``."""
    c = _constants().get("coefficients", {}).get(fam, {})
    return {name.split(":")[0] for metric in METRICS for name in c.get(metric, {}) if ":" in name}


def calibrated_targets() -> tuple[str, ...]:
    """Targets the constants file covers: each calibrated family with and without DSPs."""
    return tuple(t for fam in _constants().get("coefficients", {}) for t in (fam, f"{fam}-nodsp"))


@dataclass(frozen=True)
class AreaEstimate:
    """MODEL: estimated cells of one folded layer on one target."""

    target: str
    kind: str
    luts: float
    ffs: float
    brams: int
    dsps: int


@dataclass(frozen=True)
class ModelEstimate:
    """MODEL: per-layer estimates of a folded model and their sums (layers only: no argmax)."""

    target: str
    layers: tuple[AreaEstimate, ...]
    luts: float
    ffs: float
    brams: int
    dsps: int


def estimate(layer: Layer, folding: Folding, target: str, mem_style: str = "auto") -> AreaEstimate:
    """MODEL: estimated cells of one folded layer on ``target`` with ROMs placed by ``mem_style``
    (hw.memstyle; ``distributed`` is estimated as logic: a ROM in LUT-RAM costs its LUTs too)."""
    coefs = _constants().get("coefficients", {})
    fam = _family(target)
    if fam not in coefs:
        known = [t for t in calibrated_targets()]
        raise ConfigError(f"estimator target: {target!r}, expected one of {', '.join(known) or '(none calibrated)'}"
                          f" (calibrate with benchmarks/estimator_calibration.py)")
    uk = unit_kind(layer, target)
    if uk not in calibrated_unit_kinds(fam):  # never a silent estimate from the shared terms alone
        raise ConfigError(f"{layer.name}: kind '{uk}' has no {fam} calibration "
                          f"(add its points to benchmarks/estimator_calibration.py and recalibrate)")
    if layer.op != "dense":  # calibrated on the dense matrix-vector unit only
        raise ConfigError(f"{layer.name}: op {layer.op!r}, the area estimator models dense layers only")
    row = design_row(layer, folding, target, mem_style=mem_style)
    fitted = {metric: float(sum(coefs[fam][metric].get(name, 0.0) * v for name, v in row.items()))
              for metric in METRICS}
    return AreaEstimate(target, layer.kind, fitted["luts"], fitted["ffs"], bram_blocks(layer, folding, target, mem_style),
                        folding.lanes if uses_dsp(layer, target) else 0)


def estimate_model(layers: list[Layer], foldings: list[Folding], target: str,
                   mem_style: str = "auto") -> ModelEstimate:
    """MODEL: per-layer estimates and their sums."""
    per = tuple(estimate(L, f, target, mem_style) for L, f in zip(layers, foldings))
    return ModelEstimate(target, per, *(sum(getattr(p, m) for p in per) for m in ("luts", "ffs", "brams", "dsps")))


def fit(points: list[dict]) -> dict[str, dict[str, float]]:
    """Non-negative least squares of every metric over calibration points of one family.

    Each point: ``{"row": design_row(...), "luts": measured, "ffs": measured}``. Rows are
    weighted by 1/measured so the fit minimises relative (percent) error.
    """
    from scipy.optimize import nnls

    names = sorted({n for p in points for n in p["row"]})
    X = np.array([[p["row"].get(n, 0.0) for n in names] for p in points])
    out = {}
    for metric in METRICS:
        y = np.array([float(p[metric]) for p in points])
        w = 1.0 / np.maximum(y, 1.0)
        coef, _ = nnls(X * w[:, None], y * w)
        out[metric] = {n: float(c) for n, c in zip(names, coef) if c != 0.0}
    return out


def probe_layer(kind: str, n_in: int, n_out: int, input_bits: int, weight_bits: int,
                rng: np.random.Generator, name: str = "probe", output_bits: int = 1) -> Layer:
    """A random hidden layer of ``kind`` (threshold output, ``output_bits`` wide: 2^b - 1 sorted
    thresholds per neuron) for calibration and tests."""
    w = kind_spec(kind).random_weights(rng, (n_out, n_in), weight_bits)
    products = rng.integers(-40, 41, (1 << weight_bits, 1 << input_bits)) if kind_spec(kind).needs_products else None
    L = Layer(name, kind, n_in, n_out, input_bits, weight_bits, "threshold", w, output_bits=output_bits,
              products=products)
    lo, hi = L.acc_range()
    L.thresholds = np.sort(rng.integers(lo // 4, hi // 4 + 1, (n_out, (1 << output_bits) - 1)), axis=1)
    return L


def mvu_verilog(layer: Layer, fold: Folding, top: str = "mvu") -> str:
    """Verilog of one layer's matrix-vector unit (what the estimator models)."""
    from amaranth.back import verilog

    from hw.mvu import MatrixVectorUnit

    return verilog.convert(MatrixVectorUnit(layer, fold), name=top, emit_src=False)
