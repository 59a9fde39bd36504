"""Benchmark: calibrate the analytic area estimator (reports/estimator.py) against real Yosys runs.

For every family (ice40, ecp5, xilinx) it synthesizes one matrix-vector unit per calibration
point (>= 8 points per unit kind and family: shapes, PE, SIMD and bit widths vary; padded
foldings; one row fold and many; one column fold (the vector registers); 4 to 256 lanes; every
--mem-style; no target clock and the register stages of target clocks (tree_every 1, 2, 4:
hw.pipeline.core_stages' boundary registers, and tree stages where the tree is deep enough); the
1-bit code of +-1 accumulate weights; mac both with DSPs and in LUTs), fits the estimator's
coefficients on relative error (non-negative; FFs least squares, LUTs minimax + mean: an LP), fits the
rule for where Yosys puts an unmarked, synchronously read ROM, checks the block RAM count derived from the memory shapes
(reports.estimator.block_rams) against synthesis, writes the constants to
reports/estimator_constants.json (the file the estimator loads), and prints + writes the error
table (estimate vs synthesis, % per point, per family x kind; 5-fold cross-validated errors: points
predicted by a fit that did not see them, the honest figure for unseen designs) to
benchmarks/results/estimator_calibration.json, with the calibration's wall time.

Each point's Verilog is generated once and synthesized for every family by one worker. Syntheses
are cached (LOWBIT_CACHE): a re-run on unchanged Verilog only refits; a changed generator (e.g. a
new input-bank read or lane structure in hw/) re-synthesizes the points whose Verilog changed and
re-fits without code changes. ``--budget-minutes`` starts no synthesis after that many minutes and
fits on what was measured (the results say how many); ``--partial`` fits on what an interrupted run
measured; ``--refit`` skips synthesis altogether: it refits on the measured counts stored in the
results file. In all three the layers are rebuilt from their seeds and the features recomputed by
this code (for a change of the estimator's features; the file's ``measured`` field keeps the date of
the syntheses).

Then the whole-network check (``network_check`` in the results; ``--no-network`` skips it): the
committed SFC W1A1 at its regression folding, built as ``lowbit report --targets ice40,ecp5,xilinx``
builds it, synthesized once per family (cached) and compared with reports.network_estimate (layer
units + converters + argmax), per module on xilinx.

The one command (re-runnable; cached points are free):

    LOWBIT_CACHE=... nice -n 10 python benchmarks/estimator_calibration.py --jobs 1 [--budget-minutes M]
        [--families ice40,ecp5,xilinx] [--seed 0] [--refit | --partial] [--no-network]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reports.synth import family  # noqa: E402  (a target's family: every unit is built for its target's)

#: Calibration order (it seeds the points, so the stored measurements depend on it); every IR
#: kind must be here with its BITS: a kind added to the registry fails loudly until it is.
KINDS = ("xnor_popcount", "accumulate", "shift_add", "bit_serial", "lut_product", "mac")
#: (input_bits, weight_bits) per kind, cycled over the grid (mac 4x4 stays in LUTs on ice40, which
#: maps only 8x8 products to SB_MAC16).
BITS = {"xnor_popcount": [(1, 1)], "accumulate": [(4, 2), (2, 2)], "shift_add": [(4, 4), (3, 3)],
        "bit_serial": [(4, 4), (2, 2)], "lut_product": [(2, 2), (4, 2)], "mac": [(8, 8), (4, 4)]}
#: (in, out, pe, simd, mem_style, tree_every) per kind: plain, padded (pe/simd not dividing),
#: target-clock pipelines (--clock-mhz: tree_every 1, 2 = ECP5's 125 MHz, 4 = iCE40's 80 MHz and
#: xilinx's 200 MHz, where a <= 16-term tree gets no stage of its own but every boundary register of
#: hw.pipeline.core_stages does) and every memory style; at most 32 lanes a point (WIDE has more).
GRID = [(32, 8, 1, 8, "auto", 0),
        (64, 16, 2, 16, "auto", 0),
        (64, 32, 4, 8, "auto", 2),  # clocked, 8 row folds (input banks) and thresholds read ahead
        (50, 10, 3, 8, "auto", 0),  # padded: 12 x 56
        (40, 12, 5, 6, "logic", 0),  # padded: 15 x 42
        (48, 16, 2, 16, "auto", 1),  # a register after every tree level
        (48, 12, 3, 8, "auto", 2),
        (45, 14, 3, 10, "auto", 4),  # padded and clocked: boundary registers only (2-level stages)
        (64, 16, 1, 8, "block", 0),  # 128 words: weights and thresholds in block RAM
        (96, 16, 2, 8, "distributed", 0)]  # ROMs in LUTs; input banks in LUT-RAM (ecp5, xilinx)

#: Synthesis order of each kind's GRID rows (plain, block, clocked, distributed, logic, clocked again
#: first; extras after): an interrupted run has covered every style and the clocked stages on every kind.
ORDER = [0, 8, 7, 9, 4, 6, 3, 5, 1, 2]

#: Extra points per kind: a ROM the generator marks for block RAM, network bit widths (8-bit pixels
#: into bit_serial, dorefa 3-bit weights, 8-entry codebooks), multi-bit outputs, the 1-bit code of
#: +-1 accumulate weights (BinaryConnect), more mac points (>= 8 with DSPs on ice40, which maps only
#: 8x8 products to SB_MAC16). Block RAM points are few and small: Yosys takes 1-2 minutes on each.
#: (kind, ib, wb, ob, in, out, pe, simd, mem_style, tree_every, one_bit_code)
EXTRA = [("xnor_popcount", 1, 1, 1, 256, 32, 2, 16, "auto", 0, False),  # 256 words x 32: marked for BRAM
         ("xnor_popcount", 1, 1, 2, 64, 32, 4, 16, "auto", 0, False),
         ("bit_serial", 8, 3, 1, 64, 16, 2, 16, "auto", 0, False),
         ("bit_serial", 4, 3, 4, 64, 32, 1, 16, "auto", 0, False),
         ("accumulate", 4, 2, 1, 64, 32, 2, 16, "auto", 0, True),
         ("accumulate", 8, 2, 1, 100, 20, 3, 16, "auto", 1, True),
         ("accumulate", 4, 2, 2, 64, 16, 1, 8, "block", 0, True),
         ("lut_product", 4, 3, 1, 48, 12, 1, 12, "auto", 0, False),
         ("shift_add", 4, 4, 2, 64, 32, 2, 16, "auto", 0, False),
         ("mac", 8, 8, 1, 32, 16, 2, 8, "logic", 1, False),
         ("mac", 8, 8, 1, 32, 8, 1, 8, "auto", 2, False),
         ("mac", 8, 8, 1, 24, 8, 1, 8, "distributed", 0, False),
         # one row fold (no input banks: the unit steps on the stream), clocked, block and distributed
         ("xnor_popcount", 1, 1, 1, 64, 8, 8, 16, "auto", 2, False),
         ("accumulate", 4, 2, 1, 32, 4, 4, 8, "auto", 0, False),
         ("xnor_popcount", 1, 1, 1, 64, 16, 1, 8, "block", 2, False),
         ("bit_serial", 4, 4, 1, 64, 16, 2, 8, "distributed", 4, False),
         ("shift_add", 4, 4, 1, 64, 16, 2, 8, "distributed", 2, False),
         # unmarked ROMs deep enough for the tool's own block RAM choice (the SFC's): a 640 x 4 weight
         # ROM, and a 256-word threshold ROM read a row fold ahead under a target clock
         ("xnor_popcount", 1, 1, 1, 256, 10, 1, 4, "auto", 4, False),
         ("xnor_popcount", 1, 1, 1, 32, 256, 1, 16, "auto", 4, False)]

#: One column fold and more row folds: the vector kept in two registers (fill_vec, step_vec:
#: hw.mvu.MatrixVectorUnit.in_registers), no input memory; one point per kind, plain and clocked.
ONE_COLUMN = [("xnor_popcount", 1, 1, 1, 64, 16, 2, 64, "auto", 0, False),
              ("accumulate", 4, 2, 1, 32, 16, 2, 32, "auto", 2, False),
              ("shift_add", 4, 4, 1, 32, 8, 1, 32, "auto", 0, False),
              ("bit_serial", 4, 4, 1, 32, 16, 2, 32, "auto", 4, False),
              ("lut_product", 2, 2, 1, 32, 8, 2, 32, "auto", 0, False),
              ("mac", 8, 8, 1, 16, 8, 1, 16, "auto", 2, False),
              ("mac", 4, 4, 1, 16, 8, 2, 16, "auto", 0, False)]
#: Wide units (64-256 lanes, past GRID's 32): the adder trees and ROM words of real layers, measured
#: rather than extrapolated.
WIDE = [("xnor_popcount", 1, 1, 1, 256, 32, 4, 64, "auto", 2, False),
        ("xnor_popcount", 1, 1, 1, 128, 16, 1, 128, "auto", 0, False),
        ("accumulate", 4, 2, 1, 128, 16, 2, 64, "auto", 0, False),
        ("shift_add", 4, 4, 1, 128, 16, 2, 32, "auto", 4, False),
        ("bit_serial", 4, 4, 1, 256, 16, 2, 64, "auto", 0, False),
        ("lut_product", 2, 2, 1, 128, 16, 2, 32, "auto", 0, False),
        ("mac", 8, 8, 1, 64, 16, 2, 32, "auto", 0, False),
        ("mac", 4, 4, 1, 64, 16, 2, 32, "auto", 2, False)]


@dataclass(frozen=True)
class CalPoint:
    """One calibration unit: a random layer (rebuilt from ``seed``) and how it is folded and built."""

    kind: str
    n_in: int
    n_out: int
    input_bits: int
    weight_bits: int
    pe: int
    simd: int
    layer_seed: int
    output_bits: int = 1
    mem_style: str = "auto"
    tree_every: int = 0
    one_bit_code: bool = False  #: accumulate without zero weights: stored in 1 bit (the sign)


def points(seed: int) -> list[CalPoint]:
    """Every calibration point, seeded in order."""
    from quantmodels.ir import Kind

    missing = set(Kind) - set(KINDS) | set(Kind) - set(BITS)
    if missing:
        raise SystemExit(f"estimator_calibration: no calibration points for kind(s) {', '.join(sorted(missing))}: "
                         f"add them to KINDS and BITS")
    out: list[CalPoint] = []
    for kind in KINDS:
        for i, (n_in, n_out, pe, simd, style, every) in enumerate(GRID):
            ib, wb = BITS[kind][i % len(BITS[kind])]
            out.append(CalPoint(kind, n_in, n_out, ib, wb, pe, simd, seed + len(out), 1, style, every))
    for kind, ib, wb, ob, n_in, n_out, pe, simd, style, every, one in EXTRA + ONE_COLUMN + WIDE:
        out.append(CalPoint(kind, n_in, n_out, ib, wb, pe, simd, seed + len(out), ob, style, every, one))
    return out


def point_unit(p: CalPoint) -> tuple:
    """The (layer, folding) of one calibration point, rebuilt from its seed."""
    from hw.folding import Folding, planes_for
    from hw.mvu import weight_code_bits
    from quantmodels.ir import kind_spec
    from reports.estimator import probe_layer

    L = probe_layer(p.kind, p.n_in, p.n_out, p.input_bits, p.weight_bits, np.random.default_rng(p.layer_seed),
                    output_bits=p.output_bits)
    if p.one_bit_code:  # no zero weights: the kind stores the sign only
        L.weights = np.where(L.weights == 0, 1, L.weights)
        assert weight_code_bits(L) == 1, "accumulate without zeros must use the 1-bit code"
    f = Folding(L.name, p.n_out, p.n_in, p.pe, p.simd, planes_for(L))
    if (f.rows_padded, f.cols_padded) != (f.rows, f.cols) and kind_spec(p.kind).pad_weight(L) is None:
        L.products[0, 0] = 0  # a codebook entry whose product with level 0 is 0 pads the matrix
    return L, f


#: mac points also synthesized without DSPs up to this many lanes x product bits (8 lanes of 8x8, 32 of 4x4):
#: a wider LUT multiplier array takes Yosys minutes and adds nothing the smaller ones do not fit.
NODSP_MAX_PRODUCT_BITS = 32 * 16


def targets_of(p: CalPoint, fams: list[str]) -> list[str]:
    """Targets a point is synthesized for: each family (mac also without DSPs); no distributed
    memory on ice40 (it has no LUT-RAM: Yosys finds no mapping for the marked ROM)."""
    out = []
    for fam in fams:
        if p.mem_style == "distributed" and fam == "ice40":
            continue
        out.append(fam)
        if p.kind == "mac" and p.pe * p.simd * p.input_bits * p.weight_bits <= NODSP_MAX_PRODUCT_BITS:
            out.append(f"{fam}-nodsp")
    return out


def measured_row(p: CalPoint, target: str, r: dict) -> dict:
    """A point's record on one target: the point, what synthesis measured, the estimator's features."""
    from reports.estimator import design_row, unit_memories

    L, f = point_unit(p)
    fam_built = family(target)  # built for the target's family, as the generator builds every design
    mems = unit_memories(L, f, target, p.mem_style, tree_every=p.tree_every, family=fam_built)
    # which ROM synthesis put in block RAM: the weight ROM if more blocks than the other memories'
    from reports.estimator import block_rams
    fam = target.split("-")[0]
    param_blocks = sum(block_rams(m.depth, m.live, fam) for m in mems[1:] if m.style == "block")
    bram = r["brams"] > param_blocks if p.mem_style == "auto" else None
    return {**asdict(p), "target": target, "rom_words": f.row_folds * f.col_folds,
            "rom_bits": f.row_folds * f.col_folds * f.lanes * _code_bits(L), **r,
            "weights_in_bram": bool(r["brams"] > param_blocks),
            "row": design_row(L, f, target, bram=bram, dsp=r["dsps"] > 0, mem_style=p.mem_style,
                              tree_every=p.tree_every, family=fam_built)}


def _code_bits(L) -> int:
    from hw.mvu import weight_code_bits

    return weight_code_bits(L)


def synth_point(p: CalPoint, targets: list[str], tmp: str, stop_at: float = float("inf")) -> list[dict]:
    """Generate one unit's Verilog once per family (built for it as the generator builds it: on iCE40 input
    banks in block RAM where cheaper, mac products unregistered) and synthesize it
    for every target (cached); nothing once the wall clock has passed ``stop_at`` (``--budget-minutes``)."""
    if time.time() > stop_at:
        return []
    from reports.estimator import mvu_verilog
    from reports.synth import synthesize
    from sim.tools import ToolError

    L, f = point_unit(p)
    t0 = time.perf_counter()
    built = {t: family(t) for t in targets}
    files = {}
    for fam in dict.fromkeys(built.values()):
        files[fam] = Path(tmp) / f"{p.kind}_{p.layer_seed}_{fam or 'any'}.v"
        files[fam].write_text(mvu_verilog(L, f, mem_style=p.mem_style, tree_every=p.tree_every, family=fam))
    gen = time.perf_counter() - t0
    out = []
    for t in targets:
        v = files[built[t]]
        try:
            r = synthesize(v, "mvu", t)
        except ToolError as e:  # one failed synthesis must not sink the calibration: reported, left out
            print(f"estimator_calibration: {p.kind} seed {p.layer_seed} on {t}: {str(e).splitlines()[0][:200]}",
                  file=sys.stderr, flush=True)
            out.append({**asdict(p), "target": t, "failed": str(e).splitlines()[0][:300]})
            continue
        out.append(measured_row(p, t, {"luts": r.luts, "ffs": r.ffs, "brams": r.brams, "dsps": r.dsps,
                                       "lutrams": r.lutrams, "synth_seconds": r.seconds,
                                       "verilog_seconds": round(gen, 2)}))
    return out


def refit_point(rec: dict) -> dict:
    """A stored calibration point (measured counts kept) with its features recomputed: the layer
    is rebuilt from its seed, so a feature change needs no new synthesis."""
    p = CalPoint(**{k: rec[k] for k in CalPoint.__dataclass_fields__})
    keep = ("luts", "ffs", "brams", "dsps", "lutrams", "synth_seconds", "verilog_seconds")
    return measured_row(p, rec["target"], {k: rec.get(k, 0) for k in keep})


def fit_bram_rule(rows: list[dict]) -> dict | None:
    """Smallest (min_depth, min_bits) thresholds under which the unmarked, synchronously read ROMs
    (the weight ROM, and the threshold ROM under a target clock, which the generator did not mark)
    go to block RAM in the estimator so that most points' block RAM count is exact; None when no
    point needs the rule (every count already exact without it)."""
    from reports.estimator import _constants, bram_blocks, unit_memories

    base = {**_constants(), "bram_rule": {}}
    cands, fixed, measured = [], [], []
    for r in rows:
        L, f = point_unit(CalPoint(**{k: r[k] for k in CalPoint.__dataclass_fields__}))
        fam = r["target"].split("-")[0]
        fb = family(r["target"])
        off = _with_constants(base, lambda: unit_memories(L, f, r["target"], r["mem_style"], tree_every=r["tree_every"],
                                                          family=fb))
        on = _with_constants({**base, "bram_rule": {fam: {"min_depth": 0, "min_bits": 0}}},
                             lambda: unit_memories(L, f, r["target"], r["mem_style"], tree_every=r["tree_every"],
                                                   family=fb))
        fixed.append(_with_constants(base, lambda: bram_blocks(L, f, r["target"], r["mem_style"],
                                                               tree_every=r["tree_every"], family=fb)))
        cands.append([m for m, o in zip(on, off) if m.style == "block" and o.style != "block"])
        measured.append(r["brams"])
    if all(b == m for b, m in zip(fixed, measured)):
        return None
    from reports.estimator import block_rams
    fam = rows[0]["target"].split("-")[0]
    mems = [m for c in cands for m in c]
    best = None
    for d in sorted({m.depth for m in mems}):
        for b in sorted({m.depth * m.live for m in mems}):
            exact = sum(fx + sum(block_rams(m.depth, m.live, fam) for m in c if m.depth >= d and m.depth * m.live >= b)
                        == ms for fx, c, ms in zip(fixed, cands, measured))
            if best is None or exact >= best[0]:  # ties: the tightest rule (no bigger ROM than seen)
                best = (exact, d, b)
    if best is None:
        return None
    return {"min_depth": best[1], "min_bits": best[2], "misclassified": len(rows) - best[0], "points": len(rows)}


def fit_dsp_rule(rows: list[dict]) -> int:
    """Narrowest multiplier product (input_bits + 1 + weight_bits) that synthesis put in DSPs."""
    widths = [r["input_bits"] + 1 + r["weight_bits"] for r in rows
              if r["kind"] == "mac" and not r["target"].endswith("-nodsp") and r["dsps"] > 0]
    return min(widths) if widths else 0


#: The whole-network check: the committed SFC W1A1 at the folding of the 10k regression, built as
#: `lowbit report --targets ice40,ecp5,xilinx` builds it (the first target's family sets the clock).
NETWORK_MODEL = REPO / "benchmarks/results/mnist_sfc_bnn"
NETWORK_FOLD = "fc0:pe=16,simd=16;fc1:pe=1,simd=128;fc2:pe=1,simd=128;fc3:pe=1,simd=4"
NETWORK_CLOCK = ("auto", "ice40")  #: --clock-mhz, --family


def network_check(fams: list[str], tmp: str) -> dict:
    """The whole-network estimate (reports.network_estimate: layer units + converters + argmax) against
    one real synthesis of the SFC per family; on xilinx (hierarchy kept) also per module: the layer
    units, the converters, the argmax."""
    from hw.folding import parse_folding
    from hw.verilog import generate_verilog
    from lowbit.steps import target_clock
    from quantmodels.ir import load_model
    from reports.network_estimate import estimate_network
    from reports.synth import module_area, synthesize

    model = load_model(NETWORK_MODEL)
    folds = parse_folding(model, NETWORK_FOLD)
    clock = target_clock(NETWORK_CLOCK[0], NETWORK_CLOCK[1])
    d = generate_verilog(model, folds, tmp, clock_mhz=clock, family=NETWORK_CLOCK[1])
    v = Path(d.verilog_path)
    out = {"model": str(NETWORK_MODEL.relative_to(REPO)), "folding": NETWORK_FOLD, "clock_mhz": clock,
           "family_of_clock": NETWORK_CLOCK[1], "mem_style": d.mem_style, "verilog_sha256": d.sha256, "targets": {}}
    for fam in fams:
        r = synthesize(v, d.top_name, fam)
        e = estimate_network(model, folds, fam, d.mem_style, clock, NETWORK_CLOCK[1], d.popcount)
        row = {"measured": {"luts": r.luts, "ffs": r.ffs, "brams": r.brams, "lutrams": r.lutrams},
               "estimated": {"luts": e.estimate.luts, "ffs": e.estimate.ffs, "brams": e.estimate.brams,
                             "lutrams": e.estimate.lutrams},
               "estimated_layer_units_only": {"luts": sum(u.luts for u in e.layer_units),
                                              "ffs": sum(u.ffs for u in e.layer_units)},
               "synth_seconds": r.seconds}
        row["err_pct"] = {k: 100 * (row["estimated"][k] - row["measured"][k]) / max(row["measured"][k], 1)
                          for k in ("luts", "ffs")}
        if fam == "xilinx":  # synth_xilinx keeps the hierarchy: the per-module counts come with the run
            mods = module_area(v, d.top_name, fam)
            names = [L.name for L in model.layers]
            unit = {n: sum(a.luts for k, a in mods.items() if k == n or k.startswith(n + ".")) for n in names}
            unit_ff = {n: sum(a.ffs for k, a in mods.items() if k == n or k.startswith(n + ".")) for n in names}
            conv_names = [f"{n}__stream" for n in names] + ["argmax__stream"]
            row["modules"] = {
                "units": [{"layer": n, "measured_luts": unit[n], "measured_ffs": unit_ff[n],
                           "est_luts": u.luts, "est_ffs": u.ffs} for n, u in zip(names, e.layer_units)],
                "converters": [{"module": c, "measured_luts": mods[c].luts if c in mods else 0,
                                "measured_ffs": mods[c].ffs if c in mods else 0, "est_luts": k.luts, "est_ffs": k.ffs}
                               for c, k in zip(conv_names, e.converters)],
                "argmax": {"measured_luts": mods["argmax"].luts, "measured_ffs": mods["argmax"].ffs,
                           "est_luts": e.argmax.luts, "est_ffs": e.argmax.ffs}}
        out["targets"][fam] = row
        print(f"network check {fam}: LUT {e.estimate.luts:.0f} est vs {r.luts} measured "
              f"({row['err_pct']['luts']:+.1f} %), FF {e.estimate.ffs:.0f} vs {r.ffs} ({row['err_pct']['ffs']:+.1f} %), "
              f"BRAM {e.estimate.brams} vs {r.brams:g}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2, help="parallel workers, one Yosys run each (default 2)")
    ap.add_argument("--families", default="ice40,ecp5,xilinx")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random calibration layers")
    ap.add_argument("--refit", action="store_true",
                    help="no synthesis: refit on the measured counts stored in "
                         "benchmarks/results/estimator_calibration.json (features recomputed)")
    ap.add_argument("--budget-minutes", type=float, default=None,
                    help="start no synthesis after this many minutes; fit on what was measured "
                         "(the results then say how many of the points were measured)")
    ap.add_argument("--no-network", action="store_true",
                    help="skip the whole-network check (the SFC synthesized per family, cached)")
    ap.add_argument("--partial", action="store_true",
                    help="no synthesis: fit on the syntheses an interrupted run measured (LOWBIT_CACHE)")
    args = ap.parse_args()
    if args.jobs < 1:
        print(f"--jobs: {args.jobs}, expected >= 1", file=sys.stderr)
        return 2
    fams = [f.strip() for f in args.families.split(",") if f.strip()]
    bad = [f for f in fams if f not in ("ice40", "ecp5", "xilinx")]
    if bad or not fams:
        print(f"--families: {args.families!r}, expected a comma-separated subset of ice40, ecp5, xilinx",
              file=sys.stderr)
        return 2
    from joblib import Parallel, delayed

    from quantmodels.atomic import atomic_write_json
    from reports.estimator import CONSTANTS_FILE, _constants, bram_blocks, fit, predict
    from sim.provenance import provenance

    prov = provenance(seed=args.seed)  # before the run: the code the figures were measured with
    out_file = REPO / "benchmarks/results/estimator_calibration.json"
    t0 = time.perf_counter()
    prev_meta = {}
    from sim.tools import cache_dir

    partial_file = cache_dir() / "estimator_calibration_partial.json"  # measured rows as they arrive
    if args.refit:
        prev = json.loads(out_file.read_text())
        recs = [r for r in prev["points"] if r["target"].split("-")[0] in fams]
        if not recs or "mem_style" not in recs[0]:
            print(f"--refit: {out_file} holds no points of this calibration's format for {', '.join(fams)}; "
                  f"expected a full run first", file=sys.stderr)
            return 2
        rows = [refit_point(r) for r in recs]
        failed = prev.get("failed", [])
        synth_wall = prev.get("synth_wall_seconds", 0.0)
        prev_meta = {"measured": prev.get("measured", prev.get("generated")),
                     "measured_provenance": prev.get("measured_provenance", prev.get("provenance"))}
    elif args.partial:
        if not partial_file.exists():
            print(f"--partial: {partial_file} does not exist; expected an interrupted run first", file=sys.stderr)
            return 2
        done = json.loads(partial_file.read_text())
        # the features recomputed by this code (the file keeps what the syntheses measured)
        rows = [refit_point(r) for r in done["rows"] if r["target"].split("-")[0] in fams and "failed" not in r]
        failed = [r for r in done["rows"] if "failed" in r]
        synth_wall = done["wall_seconds"]
        if "provenance" in done:  # the code the syntheses ran on (older partial files do not say)
            prev_meta = {"measured": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(partial_file.stat().st_mtime)),
                         "measured_provenance": done["provenance"]}
        n_all = sum(len(targets_of(p, fams)) for p in points(args.seed))
        print(f"estimator_calibration --partial: {len(rows)} of {n_all} syntheses measured "
              f"(an interrupted run, {synth_wall:.0f} s)", flush=True)
    else:
        pts = points(args.seed)
        print(f"estimator_calibration: {len(pts)} points, "
              f"{sum(len(targets_of(p, fams)) for p in pts)} syntheses on {args.jobs} worker(s)", flush=True)
        from quantmodels.atomic import atomic_write_json as _write
        rows, failed = [], []
        stop_at = time.time() + 60 * args.budget_minutes if args.budget_minutes else float("inf")
        with tempfile.TemporaryDirectory() as tmp:
            # round robin over the kinds (each kind's i-th point before any kind's i+1-th): an
            # interrupted run still covers every kind (--partial fits on what it measured)
            early = {(e[0], e[4], e[5]) for e in EXTRA[-2:]}  # (kind, in, out) of the block RAM rule's points

            def shape(e) -> tuple:  # (kind, in, out, pe, simd) of an EXTRA-style tuple
                return (e[0], e[4], e[5], e[6], e[7])

            one_col, wide = {shape(e) for e in ONE_COLUMN}, {shape(e) for e in WIDE}

            def rank(p: CalPoint) -> tuple[int, int]:
                at = (p.kind, p.n_in, p.n_out, p.pe, p.simd)
                if at in one_col:  # the vector registers: with the early rows
                    return (ORDER.index(7), KINDS.index(p.kind))
                if at in wide:  # wide units: after the first half of every kind's rows
                    return (len(ORDER) // 2 + 1, KINDS.index(p.kind))
                if (p.kind, p.n_in, p.n_out) in early:  # the tool's block RAM rule: measured with the block rows
                    return (ORDER.index(8), -1)
                if p.one_bit_code and p.tree_every == 0 and p.mem_style == "auto":
                    return (len(ORDER) // 2, -1)  # the 1-bit accumulate code with the early rows
                i = [q for q in pts if q.kind == p.kind].index(p)
                return (ORDER.index(i) if i in ORDER else i, KINDS.index(p.kind))

            order = sorted(pts, key=rank)
            for rs in Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
                    delayed(synth_point)(p, targets_of(p, fams), tmp, stop_at) for p in order):
                rows += [r for r in rs if "failed" not in r]
                failed += [r for r in rs if "failed" in r]
                _write(partial_file, {"rows": rows + failed, "wall_seconds": time.perf_counter() - t0,
                                      "provenance": prov})
                print(f"  {len(rows) + len(failed)} syntheses, {time.perf_counter() - t0:.0f} s", flush=True)
        synth_wall = time.perf_counter() - t0
    coefficients, bram_rules, dsp_rules, table, summary = {}, {}, {}, [], []
    rng = np.random.default_rng(args.seed)
    for fam in fams:
        fr = [r for r in rows if r["target"].split("-")[0] == fam]
        coefs = fit(fr)
        coefficients[fam] = coefs
        dsp_rules[fam] = fit_dsp_rule(fr)
        rule = fit_bram_rule(fr)
        if rule:
            bram_rules[fam] = rule
        # 5-fold cross-validation: each point predicted by a fit without its fold
        folds = rng.permutation(len(fr)) % 5
        cv = [None] * len(fr)
        for k in range(5):
            c = fit([r for r, g in zip(fr, folds) if g != k])
            for i, (r, g) in enumerate(zip(fr, folds)):
                if g == k:
                    cv[i] = {m: predict(c, r["row"], m) for m in ("luts", "ffs")}
        _constants.cache_clear()
        consts = {**_constants(), "bram_rule": {**_constants().get("bram_rule", {}), **({fam: rule} if rule else {})}}
        for r, c in zip(fr, cv):
            L, f = point_unit(CalPoint(**{k: r[k] for k in CalPoint.__dataclass_fields__}))
            est = {m: predict(coefs, r["row"], m) for m in ("luts", "ffs", "lutrams")}
            # BRAM: the geometry alone (where the ROMs went taken from synthesis) and the whole
            # rule (the generator's mark or the fitted Yosys rule, as `lowbit fit` uses it)
            fb = family(r["target"])
            geo = bram_blocks(L, f, r["target"], r["mem_style"], bram=r["weights_in_bram"], tree_every=r["tree_every"],
                              family=fb)
            whole = _with_constants(consts, lambda: bram_blocks(L, f, r["target"], r["mem_style"],
                                                                tree_every=r["tree_every"], family=fb))
            kind = "mac_nodsp" if r["kind"] == "mac" and r["dsps"] == 0 else r["kind"]
            table.append({**{k: v for k, v in r.items() if k != "row"}, "unit_kind": kind,
                          "est_luts": est["luts"], "est_ffs": est["ffs"], "est_lutrams": est["lutrams"],
                          "est_brams": whole, "est_brams_geometry": geo,
                          "cv_luts": c["luts"], "cv_ffs": c["ffs"],
                          **{f"err_{m}_pct": 100 * (est[m] - r[m]) / max(r[m], 1) for m in ("luts", "ffs")},
                          **{f"cv_err_{m}_pct": 100 * (c[m] - r[m]) / max(r[m], 1) for m in ("luts", "ffs")}})
    print(f"\n{'family':>7} {'kind':>14} {'n':>3} {'LUT mean|%|':>11} {'LUT max|%|':>10} {'LUT cv mean|%|':>14} "
          f"{'FF mean|%|':>10} {'FF max|%|':>9} {'BRAM exact':>10}")
    for fam in fams:
        for kind in (*KINDS, "mac_nodsp"):
            t = [x for x in table if x["target"].split("-")[0] == fam and x["unit_kind"] == kind]
            if not t:
                continue
            le = np.abs([x["err_luts_pct"] for x in t])
            fe = np.abs([x["err_ffs_pct"] for x in t])
            cvl = np.abs([x["cv_err_luts_pct"] for x in t])
            exact = sum(x["est_brams"] == x["brams"] for x in t)
            summary.append({"family": fam, "unit_kind": kind, "points": len(t), "lut_mean_abs_pct": float(le.mean()),
                            "lut_max_abs_pct": float(le.max()), "lut_cv_mean_abs_pct": float(cvl.mean()),
                            "lut_cv_max_abs_pct": float(cvl.max()),
                            "ff_mean_abs_pct": float(fe.mean()), "ff_max_abs_pct": float(fe.max()),
                            "points_lut_within_10pct": int(np.sum(le <= 10)),
                            "brams_exact": int(exact),
                            "brams_geometry_exact": int(sum(x["est_brams_geometry"] == x["brams"] for x in t))})
            print(f"{fam:>7} {kind:>14} {len(t):3d} {le.mean():11.1f} {le.max():10.1f} {cvl.mean():14.1f} "
                  f"{fe.mean():10.1f} {fe.max():9.1f} {exact:>6d}/{len(t)}")
    all_l = np.abs([x["err_luts_pct"] for x in table])
    all_f = np.abs([x["err_ffs_pct"] for x in table])
    wall = time.perf_counter() - t0
    print(f"all: {len(table)} points; LUT |err| mean {all_l.mean():.1f}%, median {np.median(all_l):.1f}%, "
          f"within 10%: {np.mean(all_l <= 10) * 100:.0f}%; FF |err| mean {all_f.mean():.1f}%; "
          f"BRAM exact {sum(x['est_brams'] == x['brams'] for x in table)}/{len(table)} "
          f"(geometry alone {sum(x['est_brams_geometry'] == x['brams'] for x in table)}/{len(table)})")
    dram = [x for x in table if x["mem_style"] == "distributed"]
    if dram:
        le = np.abs([100 * (x["est_lutrams"] - x["lutrams"]) / max(x["lutrams"], 1) for x in dram])
        print(f"LUT-RAM cells ({len(dram)} distributed points): |err| mean {le.mean():.1f}%, max {le.max():.1f}%")
    for fam, w in dsp_rules.items():
        print(f"{fam}: multipliers in DSPs from a {w}-bit product up")
    for fam, rule in bram_rules.items():
        print(f"{fam}: unmarked weight ROM in BRAM when >= {rule['min_depth']} words and >= {rule['min_bits']} bits "
              f"({rule['misclassified']}/{rule['points']} points misclassified)")
    mode = "refit only" if args.refit else ("fit on an interrupted run" if args.partial else "synthesis + fit")
    print(f"calibration wall time: {wall:.0f} s ({mode}; "
          f"synthesis {synth_wall:.0f} s)")
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    meta = {"generated": now, "seed": args.seed, "provenance": prov,
            "points_per_family": {f: sum(1 for r in rows if r["target"].split("-")[0] == f) for f in fams},
            "syntheses_planned": sum(len(targets_of(q, fams)) for q in points(args.seed)),
            "syntheses_measured": len(rows),
            # when the syntheses ran (a --refit keeps the stored measurements and their provenance)
            **(prev_meta or {"measured": now, "measured_provenance": prov})}
    # merge: a run over some families keeps the others' constants
    old = json.loads(CONSTANTS_FILE.read_text()) if CONSTANTS_FILE.exists() else {}
    coefficients = {**old.get("coefficients", {}), **coefficients}
    bram_rules = {**{f: r for f, r in old.get("bram_rule", {}).items() if f not in fams}, **bram_rules}
    meta["points_per_family"] = {**old.get("points_per_family", {}), **meta["points_per_family"]}
    dsp_rules = {**old.get("dsp_min_product_bits", {}), **dsp_rules}
    atomic_write_json(CONSTANTS_FILE, {"coefficients": coefficients, "bram_rule": bram_rules,
                                       "dsp_min_product_bits": dsp_rules,
                                       "dsp_rule": "one DSP block per mac lane (pe*simd) when the product "
                                                   "(input_bits + 1 + weight_bits) is >= dsp_min_product_bits",
                                       **meta})
    _constants.cache_clear()
    if out_file.exists():  # keep the other families' rows (same format only)
        prev = json.loads(out_file.read_text())
        keep = [x for x in prev.get("points", []) if x["target"].split("-")[0] not in fams and "mem_style" in x]
        summary = [x for x in prev.get("summary", []) if x["family"] in {k["target"].split("-")[0] for k in keep}] \
            + summary
        table = keep + table
    network = None
    if not args.no_network:
        with tempfile.TemporaryDirectory() as tmp:
            network = network_check(fams, tmp)
    elif out_file.exists():
        network = json.loads(out_file.read_text()).get("network_check")
    atomic_write_json(out_file, {**meta, "summary": summary, "points": table, "bram_rule": bram_rules,
                                 "network_check": network,
                                 "synth_wall_seconds": synth_wall, "calibration_wall_seconds": wall,
                                 "failed": failed,
                                 "jobs": args.jobs})
    print(f"written {CONSTANTS_FILE} and {out_file}")
    return 0


def _with_constants(consts: dict, fn):
    """``fn()`` with the estimator reading ``consts`` (the rules just fitted) instead of the file."""
    import reports.estimator as est

    saved = est._constants
    est._constants = lambda: consts
    try:
        return fn()
    finally:
        est._constants = saved


if __name__ == "__main__":
    sys.exit(main())
