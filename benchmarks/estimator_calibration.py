"""Benchmark: calibrate the analytic area estimator (reports/estimator.py) against real Yosys runs.

For every family (ice40, ecp5, xilinx) it synthesizes one matrix-vector unit per
calibration point (>= 12 foldings per unit kind: shapes, PE, SIMD and bit widths vary;
mac both with DSPs and in LUTs), fits the estimator's coefficients by non-negative least
squares on relative error, fits the BRAM threshold rule, writes the constants to
reports/estimator_constants.json (the file the estimator loads), and prints + writes the
error table (estimate vs synthesis, % per point, per kind) to
benchmarks/results/estimator_calibration.json. Also reports 5-fold cross-validated errors
(points predicted by a fit that did not see them), the honest figure for unseen designs.
Syntheses are cached (LOWBIT_CACHE), so a re-run on unchanged Verilog only refits. ``--refit``
skips synthesis altogether: it refits on the measured counts already stored in the results file,
each layer rebuilt from its seed for its features (for a change of the estimator's features; the
file's ``measured`` field keeps the date of the syntheses).

    python benchmarks/estimator_calibration.py [--jobs 2] [--families ice40,ecp5,xilinx] [--seed 0] [--refit]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: Calibration order (it seeds the points, so the stored measurements depend on it); every IR
#: kind must be here with its BITS: a kind added to the registry fails loudly until it is.
KINDS = ("xnor_popcount", "accumulate", "shift_add", "bit_serial", "lut_product", "mac")
#: (input_bits, weight_bits): the default and an alternative per kind, alternated over shapes.
BITS = {"xnor_popcount": [(1, 1), (1, 1)], "accumulate": [(4, 2), (2, 2)], "shift_add": [(4, 4), (3, 3)],
        "bit_serial": [(4, 4), (2, 2)], "lut_product": [(4, 3), (2, 2)], "mac": [(8, 8), (4, 4)]}
#: (in_features, out_features, [(pe, simd), ...]): 4 shapes x 3 foldings = 12 points per kind,
#: at most 64 lanes so that a full calibration stays within minutes on a shared 2-core machine.
GRID = [(32, 8, [(1, 8), (2, 16), (1, 32)]),
        (64, 16, [(1, 16), (4, 16), (2, 32)]),
        (48, 12, [(3, 16), (2, 24), (6, 8)]),
        (64, 32, [(4, 8), (8, 8), (2, 16)])]


#: Deep weight ROMs, where Yosys may pick block RAM (the grid above never does): the BRAM rule
#: is fitted on these, and they put network-sized layers (the TFC first layer is the last
#: xnor row) into the LUT fit. (kind, in, out, pe, simd), default bits of the kind.
BRAM_GRID = [("xnor_popcount", 128, 16, 1, 16), ("xnor_popcount", 256, 32, 2, 16),
             ("xnor_popcount", 256, 64, 4, 8), ("xnor_popcount", 784, 64, 16, 16),
             ("bit_serial", 64, 16, 1, 8), ("bit_serial", 128, 32, 2, 8),
             ("accumulate", 256, 32, 2, 16), ("lut_product", 128, 32, 2, 8)]


#: Bit widths real networks use beyond the grid's: 8-bit pixels into a bit_serial first layer,
#: dorefa's 3- and 5-bit weight codes on 4-bit activations, 4-bit inputs x 16-entry codebooks
#: for lut_product. (kind, ib, wb, in, out, pe, simd)
RANGE_GRID = [("bit_serial", 8, 3, 128, 32, 2, 16), ("bit_serial", 8, 3, 256, 16, 4, 16),
              ("bit_serial", 4, 3, 64, 64, 1, 16), ("bit_serial", 4, 5, 64, 64, 1, 16),
              ("lut_product", 4, 4, 64, 16, 1, 16), ("lut_product", 4, 4, 128, 32, 2, 16),
              ("lut_product", 4, 4, 64, 64, 1, 16)]


#: Multi-bit outputs (2^ob - 1 thresholds per neuron, compared in parallel): every point above
#: has 1-bit outputs, a network's hidden layers with 2- or 4-bit activations do not.
#: (kind, ib, wb, ob, in, out, pe, simd)
THRESHOLD_GRID = [("xnor_popcount", 1, 1, 2, 64, 32, 4, 16), ("accumulate", 4, 2, 2, 64, 32, 2, 16),
                  ("bit_serial", 4, 3, 2, 128, 32, 4, 16), ("bit_serial", 4, 3, 4, 64, 64, 1, 16),
                  ("bit_serial", 8, 3, 4, 256, 32, 4, 16)]


def points(seed: int) -> list[tuple]:
    """(kind, n_in, n_out, ib, wb, pe, simd, layer seed[, output bits]) of every calibration point."""
    from quantmodels.ir import Kind

    missing = set(Kind) - set(KINDS) | set(Kind) - set(BITS)
    if missing:
        raise SystemExit(f"estimator_calibration: no calibration points for kind(s) {', '.join(sorted(missing))}: "
                         f"add them to KINDS and BITS")
    out = []
    for kind in KINDS:
        for si, (n_in, n_out, folds) in enumerate(GRID):
            ib, wb = BITS[kind][si % 2]
            for pe, simd in folds:
                out.append((kind, n_in, n_out, ib, wb, pe, simd, seed + len(out)))
    for kind, n_in, n_out, pe, simd in BRAM_GRID:
        ib, wb = BITS[kind][0]
        out.append((kind, n_in, n_out, ib, wb, pe, simd, seed + len(out)))
    for kind, ib, wb, n_in, n_out, pe, simd in RANGE_GRID:
        out.append((kind, n_in, n_out, ib, wb, pe, simd, seed + len(out)))
    for kind, ib, wb, ob, n_in, n_out, pe, simd in THRESHOLD_GRID:
        out.append((kind, n_in, n_out, ib, wb, pe, simd, seed + len(out), ob))
    return out


def point_unit(kind: str, n_in: int, n_out: int, ib: int, wb: int, pe: int, simd: int, seed: int,
               ob: int = 1) -> tuple:
    """The (layer, folding) of one calibration point, rebuilt from its seed."""
    from hw.folding import Folding, planes_for
    from reports.estimator import probe_layer

    L = probe_layer(kind, n_in, n_out, ib, wb, np.random.default_rng(seed), output_bits=ob)
    return L, Folding(L.name, n_out, n_in, pe, simd, planes_for(L))


def synth_point(p: tuple, target: str, tmp: str) -> dict:
    """Generate one unit and synthesize it (cached); returns measured counts + features."""
    from reports.estimator import design_row, mvu_verilog
    from reports.synth import synthesize

    kind, n_in, n_out, ib, wb, pe, simd, s, *rest = p
    ob = rest[0] if rest else 1
    L, f = point_unit(*p)
    v = Path(tmp) / f"{kind}_{n_in}x{n_out}_{ib}{wb}{ob}_{pe}_{simd}_{target}.v"
    v.write_text(mvu_verilog(L, f))
    r = synthesize(v, "mvu", target)
    words = f.row_folds * f.col_folds
    from hw.mvu import weight_code_bits

    return {"kind": kind, "target": target, "n_in": n_in, "n_out": n_out, "input_bits": ib, "weight_bits": wb,
            "output_bits": ob, "pe": pe, "simd": simd, "rom_words": words,
            "rom_bits": words * f.lanes * weight_code_bits(L),
            "luts": r.luts, "ffs": r.ffs, "brams": r.brams, "dsps": r.dsps, "synth_seconds": r.seconds,
            "row": design_row(L, f, target, bram=r.brams > 0, dsp=r.dsps > 0), "layer_seed": s}


def refit_point(rec: dict) -> dict:
    """A stored calibration point (measured counts kept) with its features recomputed: the layer
    is rebuilt from its seed, so a feature change needs no new synthesis."""
    from reports.estimator import design_row

    ob = rec.get("output_bits", 1)
    L, f = point_unit(rec["kind"], rec["n_in"], rec["n_out"], rec["input_bits"], rec["weight_bits"], rec["pe"],
                      rec["simd"], rec["layer_seed"], ob)
    keep = ("kind", "target", "n_in", "n_out", "input_bits", "weight_bits", "pe", "simd", "rom_words", "rom_bits",
            "luts", "ffs", "brams", "dsps", "synth_seconds", "layer_seed")
    return {**{k: rec[k] for k in keep}, "output_bits": ob,
            "row": design_row(L, f, rec["target"], bram=rec["brams"] > 0, dsp=rec["dsps"] > 0)}


def fit_bram_rule(rows: list[dict]) -> dict | None:
    """Smallest (min_depth, min_bits) thresholds that best separate ROMs Yosys put in BRAM."""
    if not any(r["brams"] > 0 for r in rows):
        return None
    best = None
    depths = sorted({r["rom_words"] for r in rows})
    bits = sorted({r["rom_bits"] for r in rows})
    for d in depths:
        for b in bits:
            wrong = sum((r["rom_words"] >= d and r["rom_bits"] >= b) != (r["brams"] > 0) for r in rows)
            if best is None or wrong < best[0]:
                best = (wrong, d, b)
    return {"min_depth": best[1], "min_bits": best[2], "misclassified": best[0], "points": len(rows)}


def fit_dsp_rule(rows: list[dict]) -> int:
    """Narrowest multiplier product (input_bits + 1 + weight_bits) that synthesis put in DSPs."""
    widths = [r["input_bits"] + 1 + r["weight_bits"] for r in rows
              if r["kind"] == "mac" and not r["target"].endswith("-nodsp") and r["dsps"] > 0]
    return min(widths) if widths else 0


def predict(coefs: dict, row: dict, metric: str) -> float:
    return sum(coefs[metric].get(n, 0.0) * v for n, v in row.items())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2, help="parallel Yosys runs (default 2)")
    ap.add_argument("--families", default="ice40,ecp5,xilinx")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random calibration layers")
    ap.add_argument("--refit", action="store_true",
                    help="no synthesis: refit on the measured counts stored in "
                         "benchmarks/results/estimator_calibration.json (features recomputed)")
    args = ap.parse_args()
    from sim.provenance import provenance
    if args.jobs < 1:
        print(f"--jobs: {args.jobs}, expected >= 1", file=sys.stderr)
        return 2
    from joblib import Parallel, delayed

    from quantmodels.atomic import atomic_write_json
    from reports.estimator import CONSTANTS_FILE, fit
    from sim.tools import tool_versions

    fams = [f.strip() for f in args.families.split(",") if f.strip()]
    pts = points(args.seed)
    t0 = time.perf_counter()
    jobs = [(p, fam) for fam in fams for p in pts] + [(p, f"{fam}-nodsp") for fam in fams for p in pts
                                                       if p[0] == "mac"]
    prev_meta = {}
    if args.refit:
        prev = json.loads((REPO / "benchmarks/results/estimator_calibration.json").read_text())
        recs = [r for r in prev["points"] if r["target"].split("-")[0] in fams]
        rows = [refit_point(r) for r in recs]
        synth_wall = prev.get("synth_wall_seconds", 0.0)
        prev_meta = {"measured": prev.get("measured", prev.get("generated")),
                     "measured_tool_versions": prev.get("measured_tool_versions", prev.get("tool_versions"))}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows = Parallel(n_jobs=args.jobs, verbose=5)(delayed(synth_point)(p, t, tmp) for p, t in jobs)
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
        for r, c in zip(fr, cv):
            est = {m: predict(coefs, r["row"], m) for m in ("luts", "ffs")}
            kind = "mac_nodsp" if r["kind"] == "mac" and r["dsps"] == 0 else r["kind"]
            table.append({**{k: v for k, v in r.items() if k != "row"}, "unit_kind": kind,
                          "est_luts": est["luts"], "est_ffs": est["ffs"], "cv_luts": c["luts"], "cv_ffs": c["ffs"],
                          **{f"err_{m}_pct": 100 * (est[m] - r[m]) / max(r[m], 1) for m in ("luts", "ffs")},
                          **{f"cv_err_{m}_pct": 100 * (c[m] - r[m]) / max(r[m], 1) for m in ("luts", "ffs")}})
    print(f"\n{'family':>7} {'kind':>14} {'n':>3} {'LUT mean|%|':>11} {'LUT max|%|':>10} {'LUT cv mean|%|':>14} "
          f"{'FF mean|%|':>10} {'FF max|%|':>9} {'within 10%':>10}")
    for fam in fams:
        for kind in (*KINDS, "mac_nodsp"):
            t = [x for x in table if x["target"].split("-")[0] == fam and x["unit_kind"] == kind]
            if not t:
                continue
            le = np.abs([x["err_luts_pct"] for x in t])
            fe = np.abs([x["err_ffs_pct"] for x in t])
            cvl = np.abs([x["cv_err_luts_pct"] for x in t])
            within = int(np.sum((le <= 10) & (fe <= 10)))
            summary.append({"family": fam, "unit_kind": kind, "points": len(t), "lut_mean_abs_pct": float(le.mean()),
                            "lut_max_abs_pct": float(le.max()), "lut_cv_mean_abs_pct": float(cvl.mean()),
                            "ff_mean_abs_pct": float(fe.mean()), "ff_max_abs_pct": float(fe.max()),
                            "points_within_10pct": within})
            print(f"{fam:>7} {kind:>14} {len(t):3d} {le.mean():11.1f} {le.max():10.1f} {cvl.mean():14.1f} "
                  f"{fe.mean():10.1f} {fe.max():9.1f} {within:>6d}/{len(t)}")
    all_l = np.abs([x["err_luts_pct"] for x in table])
    all_f = np.abs([x["err_ffs_pct"] for x in table])
    print(f"all: {len(table)} points; LUT |err| mean {all_l.mean():.1f}%, median {np.median(all_l):.1f}%, "
          f"within 10%: {np.mean(all_l <= 10) * 100:.0f}%; FF |err| mean {all_f.mean():.1f}%, "
          f"within 10%: {np.mean(all_f <= 10) * 100:.0f}%; synthesis wall {synth_wall:.0f} s")
    for fam, w in dsp_rules.items():
        print(f"{fam}: multipliers in DSPs from a {w}-bit product up")
    for fam, rule in bram_rules.items():
        print(f"{fam}: weight ROM in BRAM when >= {rule['min_depth']} words and >= {rule['min_bits']} bits "
              f"({rule['misclassified']}/{rule['points']} points misclassified)")
    meta = {"generated": time.strftime("%Y-%m-%d %H:%M:%S"), "seed": args.seed, "tool_versions": tool_versions(),
            "provenance": provenance(seed=args.seed),
            "points_per_family": {f: sum(1 for r in rows if r["target"].split("-")[0] == f) for f in fams},
            # when the syntheses ran (a --refit keeps the stored measurements and their date)
            **(prev_meta or {"measured": time.strftime("%Y-%m-%d %H:%M:%S")})}
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
    out = REPO / "benchmarks/results/estimator_calibration.json"
    if out.exists():  # keep the other families' rows
        prev = json.loads(out.read_text())
        summary = [x for x in prev.get("summary", []) if x["family"] not in fams] + summary
        table = [x for x in prev.get("points", []) if x["target"].split("-")[0] not in fams] + table
    atomic_write_json(out, {**meta, "summary": summary, "points": table, "bram_rule": bram_rules,
                            "synth_wall_seconds": synth_wall})
    print(f"written {CONSTANTS_FILE} and {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
