"""Benchmark: issue 18's FPGA targets beside what lowbit's own flow measures today.

Each section prints ``target | issue's "before" figure | measured now`` and goes into
benchmarks/results/fpga_targets/fpga_targets.json with the git commit, seeds and tool versions. Sections:

* ``tfc_xilinx``: the TFC W1A1 design of the committed MNIST sweep (784-64-64-64-10, bnn,
  4 epochs, seed 0, the sweep's automatic folding) through ``synth_xilinx``: LUT6 and block RAM
  with ``--mem-style auto`` (weight ROMs in block RAM) and ``logic`` (the old ROMs-as-LUTs);
* ``memory``: weight memory of a BNN-PYNQ-style W1A2 LFC (784-1024-1024-1024-10, +-1 weights,
  2-bit activations; weights drawn at random: memory depends on shapes and codes only);
* ``padding``: the SFC W1A1 model with ``simd=64`` on 784 inputs (padded to 832) under Verilator
  on MNIST test images, bit-exact and measured cycles = estimate;
* ``fmax``: nextpnr fmax (median over 3 placement seeds) of the digits W1A1 demo net on iCE40
  HX8K and ECP5, pipelined with ``--clock-mhz`` at hw.pipeline.DEFAULT_CLOCK_MHZ;
* ``lanes_xilinx``: whole-design LUT6 per XNOR lane (synth_xilinx) of the committed SFC W1A1 at 256
  cycles/image, folded by lowbit (``--fold cycles=256``, 1,306 lanes) and by hand (16 PEs a layer, 1,376
  lanes), ``--popcount xilinx`` and the default ``tree``, ``--mem-style auto`` (BRAM beside);
* ``ratio_int8``: TFC W1A1 vs int8 MAC at the same folding, both ``xilinx-nodsp`` (synth_xilinx -nodsp):
  the whole design, and the lane arithmetic alone (:func:`lane_probe`), block RAM beside;
* ``sfc_fmax``: the committed SFC W1A1 placed on iCE40 HX8K (if the capacity pre-check lets it) and
  ECP5-25k/85k, pipelined for the family's target clock;
* ``kinds_fmax``: every other kind (accumulate, shift_add, lut_product, bit_serial, mac) on a digits
  64-64-64-64-10 net at a narrow folding (``KIND_FOLDS``, ``KIND_FAMILY_FOLDS``), placed on HX8K and
  ECP5-25k (the heaviest section);
* ``sfc_regression``: benchmarks/sim_regression.py on all 10,000 MNIST test images with a fresh cache,
  so the Verilator build is in the wall time (results/sim_sfc-bnn.json is left as that benchmark wrote it);
* ``elsewhere``: the targets measured by their own benchmarks, read (not re-measured) from their results
  files with the commit those record: the CNN on ECP5-85k (cnn4_ecp5.py) and the estimator
  (estimator_calibration.py).

Each section records its git commit, wall time, load average and (place-and-route) seeds, and can be
rerun alone; NOT MET rows carry a one-line ``limit``. The final table lists every stored section.

    python benchmarks/fpga_targets.py [--only SECTION,...] [--images N] [--seeds 1..3] [--kinds KIND,...]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "fpga_targets" / "fpga_targets.json"
SECTIONS = ("tfc_xilinx", "memory", "padding", "fmax", "lanes_xilinx", "ratio_int8", "sfc_fmax", "kinds_fmax",
            "sfc_regression", "elsewhere")
#: The committed MNIST sweep's TFC W1A1 point (benchmarks/results/sweep_mnist_quick/sweep.csv).
TFC_FOLD = "fc0:pe=16,simd=16;fc1:pe=1,simd=32;fc2:pe=1,simd=32;fc3:pe=1,simd=4"
SEED = 0
PNR_SECTIONS = ("fmax", "sfc_fmax", "kinds_fmax")  #: the sections that place and route
#: nextpnr placement seeds: the issue asks for the median over 3.
PNR_SEEDS = (1, 2, 3)


def _row(name: str, target: str, before: str, measured, ok: bool | None, limit: str | None = None,
         **extra) -> dict:
    """Print one ``target | before | measured`` line and return it as a results row; ``limit`` says in
    one line what keeps a NOT MET figure from the target."""
    flag = "" if ok is None else ("MET" if ok else "NOT MET")
    head = measured.get("headline", measured) if isinstance(measured, dict) else measured
    print(f"  {name:<46} target {target:<22} before {before:<22} measured {head!s:<28} {flag}", flush=True)
    row = {"name": name, "target": target, "before": before, "measured": measured, "met": ok, **extra}
    if limit and ok is False:
        print(f"    limit: {limit}", flush=True)
        row["limit"] = limit
    return row


def _trained_tfc(cache: Path, method: str = "bnn", epochs: int = 4):
    """TFC 784-64-64-64-10 trained on MNIST (seed SEED), cached under ``cache``; for the int8 baseline
    one epoch does: area depends on shapes and codes, not accuracy."""
    from lowbit.steps import train_and_save
    from quantmodels.datasets import load_mnist_npz
    from quantmodels.ir import load_model

    mdir = cache / f"tfc-{method}-e{epochs}-s{SEED}"
    if not (mdir / "model.json").exists():
        data = load_mnist_npz(REPO.parent / "shared" / "data" / "mnist.npz")
        train_and_save(method, (64, 64, 64), data, "mnist.npz", mdir, seed=SEED, epochs=epochs, progress=False)
    return load_model(mdir)


def tfc_xilinx(cache: Path) -> list[dict]:
    from lowbit.steps import make_hardware
    from reports.synth import synthesize

    model = _trained_tfc(cache)
    rows = []
    for style in ("auto", "logic"):
        h = make_hardware(model, TFC_FOLD, cache / f"tfc-hw-{style}", mem_style=style)
        t0 = time.perf_counter()
        r = synthesize(h.verilog, h.ports.dut, "xilinx")
        print(f"  synth_xilinx ({style}): {time.perf_counter() - t0:.0f} s", flush=True)
        lanes = sum(f.lanes for f in h.foldings)
        total = r.luts + r.lutram_luts  # LUT6 as logic + LUT6 holding LUT-RAM (the input banks)
        meas = {"headline": f"{total:,} LUT6", "mem_style": style, "lut6": total, "lut6_logic": r.luts,
                "lut6_as_lutram": r.lutram_luts, "ffs": r.ffs, "ramb18_equiv": r.brams, "lutram": r.lutrams,
                "lut6_per_lane": round(total / lanes, 2), "rom_styles": h.design.rom_styles}
        rows.append(_row(f"TFC W1A1 xilinx LUT6 (mem-style {style})", "<= 2,500 LUT6 + BRAM",
                         "6,223 LUT6, 0 BRAM", meas, total <= 2500))
    return rows


def memory() -> list[dict]:
    from quantmodels.ir import InputSpec, IRModel, Layer
    from reports.memory import model_memory

    rng = np.random.default_rng(SEED)
    sizes = (784, 1024, 1024, 1024, 10)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(Layer(f"fc{i}", "accumulate", a, b, 1 if i == 0 else 2, 2,
                            "argmax" if last else "threshold", rng.choice([-1, 1], (b, a)),
                            output_bits=None if last else 2,
                            thresholds=None if last else np.sort(rng.integers(-20, 20, (b, 3)), axis=1)))
    model = IRModel("lfc-w1a2", "test", InputSpec(784, 1, "threshold", 128, (784,)), layers).validate()
    wbits = sum(m.weight_bits for m in model_memory(model).layers)
    return [_row("W1A2 LFC weight memory (Mbit)", "1 bit per +-1 weight", "5.1 Mbit incl. 2-bit codes",
                 round(wbits / 1e6, 3), wbits == sum(L.rows * L.cols for L in layers))]


def padding(cache: Path, images: int) -> list[dict]:
    from lowbit.steps import make_hardware, simulate
    from quantmodels.datasets import load_mnist_npz
    from quantmodels.ir import load_model

    model = load_model(REPO / "benchmarks" / "results" / "mnist_sfc_bnn")
    d = load_mnist_npz(REPO.parent / "shared" / "data" / "mnist.npz")
    h = make_hardware(model, "fc0:simd=64,pe=16", cache / "sfc-pad")
    r = simulate(model, h, d.x_test[:images], d.y_test[:images])
    meas = {"images": r.n_images, "mismatches": r.mismatches, "cycles_per_image": r.steady_cycles_per_image,
            "estimate": h.cycles_per_image, "foldings": [str(f) for f in h.foldings]}
    ok = r.mismatches == 0 and abs(r.steady_cycles_per_image - h.cycles_per_image) <= 1
    return [_row("SFC W1A1 simd=64 on 784 inputs (Verilator)", "legal, bit-exact", "refused", meas, ok)]


def _placed(h, fam: str, seeds: tuple[int, ...], devices: tuple[str, ...] | None = None) -> dict:
    """nextpnr fmax of ``h`` on ``fam`` over placement ``seeds`` (median; 0 for a seed that did not
    fit or route), with the synthesis area and the flow's plain status line (the capacity pre-check's
    line when nothing fits)."""
    from reports.pnr import describe_critical_path, place_and_route, synth_target
    from reports.synth import synthesize

    syn = synthesize(h.verilog, h.ports.dut, synth_target(fam, devices))  # what place_and_route synthesizes
    f, status, device, note, paths, outreg = [], "", None, "", [], None
    for seed in seeds:
        t0 = time.perf_counter()
        p = place_and_route(fam, h.verilog, h.ports.dut, h.design.in_width, h.design.class_width,
                            h.design.logit_width * h.design.n_classes, devices=devices, seed=seed)
        f.append(round(p.fmax_mhz or 0.0, 2))  # 0: did not fit or route
        status, device, note, outreg = p.status, p.device, p.note, p.bram_outreg or outreg
        paths.append(p.critical_path)
        print(f"  {fam} seed {seed}: {p.status} ({time.perf_counter() - t0:.0f} s)", flush=True)
        if p.critical_path:
            print(f"    critical path: {describe_critical_path(p.critical_path)}", flush=True)
        if not p.fits:  # the pre-check or nextpnr said no: other seeds would say the same
            break
    med = statistics.median(f)
    # the path of the median seed (the seed whose fmax is the median, or the nearest below it)
    at = min(range(len(f)), key=lambda i: (abs(f[i] - med), f[i]))
    return {"fmax_mhz": round(med, 1), "seeds": list(seeds[:len(f)]), "fmax_per_seed": f, "device": device,
            "critical_path": paths[at], "critical_path_per_seed": [describe_critical_path(c) if c else None for c in paths],
            "status": status, "note": note, "luts": syn.luts, "ffs": syn.ffs, "brams": syn.brams, "dsps": syn.dsps,
            "bram_outreg": outreg, "clock_mhz_asked": h.design.clock_mhz, "pipeline_stages": h.design.pipeline_stages,
            "folding": [str(x) for x in h.foldings], "cycles_per_image": h.cycles_per_image,
            "frames_per_s": round(med * 1e6 / h.cycles_per_image) if med else None}


def _fmax_limit(m: dict) -> str:
    """What keeps an fmax row from its target, from what the flow measured."""
    if not m["fmax_mhz"]:
        note = m.get("note", "")
        need = re.search(r"of (\d+) ICESTORM_LCs", note)  # the packer's region: the cells the design needs
        if "no BELs remaining" in note or need:  # nextpnr ran out of logic cells (LUT + FF pairs)
            cells = f" ({int(need.group(1)):,} logic cells needed)" if need else ""
            return (f"does not fit {m['device'].upper()}: nextpnr ran out of logic cells{cells} for {m['luts']:,} "
                    f"LUT4 + {m['ffs']:,} FF + {m['brams']} block RAMs at {', '.join(m['folding'])}")
        return m["status"]
    from reports.pnr import describe_critical_path

    return (f"nextpnr's critical path at {m['fmax_mhz']} MHz (median seed): "
            f"{describe_critical_path(m.get('critical_path'))}; register stages per layer {m['pipeline_stages']} "
            f"chosen by hw.pipeline for {m['clock_mhz_asked']:g} MHz")


def _seeds_label(seeds: tuple[int, ...]) -> str:
    return f"median of {len(seeds)} seeds" if len(seeds) > 1 else "1 seed only"


def _digits_model(method: str, epochs: int = 20):
    from quantmodels.datasets import load_digits
    from quantmodels.train import TrainConfig, train

    return train(TrainConfig(method=method, hidden=(64, 64, 64), epochs=epochs, seed=SEED, progress=False),
                 load_digits()).model


def fmax(cache: Path, seeds: tuple[int, ...] = PNR_SEEDS) -> list[dict]:
    from hw.pipeline import DEFAULT_CLOCK_MHZ
    from lowbit.steps import make_hardware

    model = _digits_model("bnn")
    rows = []
    for fam, goal, before in (("ice40", 80.0, "23.8 MHz (70 argmax-free)"), ("ecp5", 125.0, "20.0 MHz (83 argmax-free)")):
        # pipelined for the family's target clock (hw.pipeline's delay model)
        h = make_hardware(model, None, cache / f"digits-w1a1-{fam}", clock_mhz=DEFAULT_CLOCK_MHZ[fam], family=fam)
        m = _placed(h, fam, seeds)
        m["headline"] = f"{m['fmax_mhz']} MHz" if m["fmax_mhz"] else m["status"][:40]
        rows.append(_row(f"digits W1A1 fmax {fam} ({_seeds_label(seeds)})", f">= {goal:g} MHz", before,
                         m, m["fmax_mhz"] >= goal, _fmax_limit(m)))
    return rows


#: kind -> the training method that yields it (quantmodels.methods.REGISTRY), for every kind but W1A1.
KIND_METHODS = {"accumulate": "binaryconnect", "shift_add": "pow2", "lut_product": "lut",
                "bit_serial": "dorefa", "mac": "int8"}
#: At the automatic folding (808 lanes) the other kinds do not fit the small parts (accumulate: 20,706 LUT4
#: against HX8K's 7,680; int8 MAC: 808 multipliers), so each kind gets a narrow folding that fits them:
#: 16 lanes per layer (the int8 MAC 4, so its 16 multipliers fit ECP5-25k's 28 MULT18X18D).
KIND_FOLDS = {"accumulate": "pe=2,simd=8", "shift_add": "pe=2,simd=8", "lut_product": "pe=2,simd=8",
              "bit_serial": "pe=2,simd=8", "mac": "pe=2,simd=2"}
#: Narrower foldings where a family needs one (fallbacks, each for a measured reason):
#: - lut_product: the trained digits lut net's product tables are 64 codes x 16 (fc0) / 32 levels x 16 bits,
#:   about 1,700 LUT4 a lane as logic (106,946 LUT4 at 16 lanes a layer), so with a target clock they are
#:   product ROMs in block RAM (hw.arith.lut_product_lanes), 2 lanes a dual-port DP16KD (1 for fc0's 1,024
#:   words, 2 for the others' 2,048): 16 lanes a layer would need all of ECP5-25k's 56, 8 lanes need 28.
#:   pe=2 keeps the threshold ROMs 32 words deep (logic; at pe=1 they are 64 deep and go to block RAM,
#:   10 DP16KD a layer). iCE40 (one read port, 4 kbit blocks: 4 SB_RAM40_4K a lane for fc0, 8 for the
#:   others) fits it at no folding: even 1 lane a layer needs 28 of HX8K's 32 blocks before the weight ROMs.
#: - mac on iCE40: no DSPs, each int8 product about 290 LUT4: 4 multipliers, not 16.
#: - accumulate and shift_add on iCE40: with the input banks in block RAM (hw.memstyle) the 16-lane designs
#:   still needed 8,846 (accumulate) of HX8K's 7,680 logic cells, shift_add 8,647 at simd=4 and 7,767 at
#:   simd=2; what dominates each hidden core is its 15-threshold output stage (2 PEs x 15 compares and a
#:   32 x 480-bit threshold ROM in LUTs, about 1,000 cells a core, hw.mvu), which a narrower simd does not
#:   change: fewer lanes make the room (accumulate at simd=4 placed at 100.2 MHz in 5,242 LUT4 + 3,558 FF).
#:   pe stays 2: at pe=1 the threshold ROMs are 64 deep and go to block RAM, 15 SB_RAM40_4K a layer.
KIND_FAMILY_FOLDS = {("lut_product", "ecp5"): "pe=2,simd=4", ("lut_product", "ice40"): "pe=2,simd=4",
                     ("mac", "ice40"): "pe=1,simd=1", ("accumulate", "ice40"): "pe=2,simd=4",
                     ("shift_add", "ice40"): "pe=2,simd=1"}
#: iCE40 HX8K and ECP5-25k: the parts the issue names for "every other kind".
KIND_DEVICES = {"ice40": ("hx8k",), "ecp5": ("25k",)}
KIND_GOALS = {"ice40": 60.0, "ecp5": 90.0}


def kinds_fmax(cache: Path, seeds: tuple[int, ...] = PNR_SEEDS, kinds: tuple[str, ...] = tuple(KIND_METHODS),
               families: tuple[str, ...] = ("ice40", "ecp5")) -> list[dict]:
    from hw.pipeline import DEFAULT_CLOCK_MHZ
    from lowbit.steps import make_hardware
    from quantmodels.ir import Kind

    # every kind of the IR registry except W1A1 (the fmax section's) must have a method here
    missing = {str(k) for k in Kind} - set(KIND_METHODS) - {"xnor_popcount"}
    if missing:
        raise SystemExit(f"fpga_targets: kinds_fmax: no training method for kind(s) {sorted(missing)}")
    rows = []
    for kind in kinds:
        model = _digits_model(KIND_METHODS[kind])
        assert {L.kind for L in model.layers} == {kind}, (kind, [L.kind for L in model.layers])
        for fam in families:
            t0 = time.perf_counter()
            h = make_hardware(model, KIND_FAMILY_FOLDS.get((kind, fam), KIND_FOLDS.get(kind)), cache / f"digits-{kind}-{fam}",
                              clock_mhz=DEFAULT_CLOCK_MHZ[fam], family=fam)
            m = _placed(h, fam, seeds, KIND_DEVICES[fam])
            m["method"] = KIND_METHODS[kind]
            m["seconds"] = round(time.perf_counter() - t0, 1)
            goal = KIND_GOALS[fam]
            m["headline"] = f"{m['fmax_mhz']} MHz" if m["fmax_mhz"] else m["status"][:40]
            part = {"ice40": "iCE40 HX8K", "ecp5": "ECP5-25k"}[fam]
            rows.append(_row(f"digits {kind} fmax {part} ({_seeds_label(seeds)})",
                             f">= {goal:g} MHz", "not measured", m, m["fmax_mhz"] >= goal,
                             _fmax_limit(m), kind=kind, family=fam))
    return rows


#: SFC W1A1 folded by hand to >= 1,000 XNOR lanes (784 + 256 + 256 + 80 = 1,376), every layer 256 cycles or fewer.
SFC_FOLD = "fc0:pe=16,simd=49;fc1:pe=16,simd=16;fc2:pe=16,simd=16;fc3:pe=5,simd=16"
#: The same 256 cycles/image as lowbit folds it (hw.folding.folding_for_cycles: fewest lanes, then the widest
#: SIMD): fc0 pe=1 simd=784, fc1/fc2 pe=1 simd=256, fc3 pe=5 simd=2, 1,306 XNOR lanes.
SFC_LANES_FOLD = "cycles=256"
SFC_DIR = REPO / "benchmarks" / "results" / "mnist_sfc_bnn"  #: the committed trained SFC W1A1 (model.json)
#: What keeps whole-design ratios above the lane figures: measured per module below (lanes_xilinx).
WHOLE_VECTOR_LIMIT = ("the rest of the design (each core's accumulators, threshold compares and threshold-ROM "
                      "reads, the converters, the argmax) does not shrink with lanes or precision")
#: Module groups of the whole-design breakdown (reports.synth.module_area names): what each costs.
BREAKDOWN_GROUPS = (("cores (lanes + accumulators, thresholds, ROM reads, control)", lambda n: n.endswith(".core")),
                    ("input banks + unit control", lambda n: n.startswith("fc") and "." not in n and "__" not in n),
                    ("output FIFOs", lambda n: n.endswith(".fifo")),
                    ("stream converters", lambda n: n.endswith("__stream")),
                    ("argmax", lambda n: n == "argmax"))


def _lanes(h) -> int:
    return sum(f.pe * f.simd for f in h.foldings)


def _breakdown(h, target: str) -> dict:
    """LUT6 (logic + LUT-RAM) per module instance and per group, from one hierarchical synth_xilinx run
    (synth_xilinx keeps the hierarchy anyway: the sum equals the flat count)."""
    from reports.synth import module_area

    mods = module_area(h.verilog, h.ports.dut, target)
    per = {k: v.luts + v.lutram_luts for k, v in sorted(mods.items()) if v.luts + v.lutram_luts}
    groups = {g: sum(v for k, v in per.items() if pred(k)) for g, pred in BREAKDOWN_GROUPS}
    return {"modules": per, "groups": groups, "sum": sum(per.values())}


def lanes_xilinx(cache: Path) -> list[dict]:
    """Whole-design LUT6 per XNOR lane of the SFC W1A1 on xilinx, at two foldings of 256 cycles/image:
    the one lowbit picks for that budget (``--fold cycles=256``: fewest lanes, then widest SIMD, so
    few PEs) and the hand folding of the earlier runs (16 PEs a layer: the per-PE accumulators,
    compares and threshold reads counted 53 times), each with a per-module breakdown."""
    from lowbit.steps import make_hardware
    from quantmodels.ir import load_model
    from reports.synth import synthesize

    model = load_model(SFC_DIR)
    rows = []
    # before: the pre-streaming hardware, and the streaming hardware before its input banks went to LUT-RAM
    # and its input converter to a mux (241f099, same benchmark, hand folding)
    befores = {"xilinx": "3.15 (old); 3.79 (241f099)", "tree": "4.13 (old hardware)"}
    # the last run: --mem-style block also puts the threshold ROMs in block RAM (synchronous read): what
    # their LUT reads cost, with the block RAM it takes instead beside
    runs = (("lowbit's", SFC_LANES_FOLD, "xilinx", 2.0, "auto"), ("lowbit's", SFC_LANES_FOLD, "tree", 3.0, "auto"),
            ("hand", SFC_FOLD, "xilinx", 2.0, "auto"), ("hand", SFC_FOLD, "tree", 3.0, "auto"),
            ("hand", SFC_FOLD, "xilinx", 2.0, "block"))
    for who, fold, popcount, goal, style in runs:
        sub = f"sfc-lanes-{popcount}" + ("" if style == "auto" else f"-{style}") + ("" if who == "hand" else "-c256")
        h = make_hardware(model, fold, cache / sub, popcount=popcount, mem_style=style, family="xilinx")
        t0 = time.perf_counter()
        r = synthesize(h.verilog, h.ports.dut, "xilinx")
        print(f"  synth_xilinx ({who} folding, popcount {popcount}): {time.perf_counter() - t0:.0f} s", flush=True)
        lanes = _lanes(h)
        total = r.luts + r.lutram_luts  # the LUT-RAM cells of the input banks are LUT6 too
        per = total / lanes
        # the lanes alone (XNOR + popcount trees, runtime weights): the rest of the whole design is overhead
        la = _lane_area(model, h.foldings, cache / sub / "lanes", "xilinx", popcount)  # style-free
        bd = _breakdown(h, "xilinx")
        meas = {"headline": f"{per:.2f} LUT6/lane", "lut6_per_lane": round(per, 3), "lanes": lanes, "lut6": total,
                "lut6_logic": r.luts, "lut6_as_lutram": r.lutram_luts,
                "lane_arithmetic_lut6": la["luts"], "lane_arithmetic_lut6_per_lane": round(la["luts"] / lanes, 3),
                "breakdown_lut6": bd, "ffs": r.ffs, "ramb18_equiv": r.brams, "lutram": r.lutrams, "carry4": r.carries,
                "popcount": popcount, "mem_style": style, "rom_styles": h.design.rom_styles, "fold_spec": fold,
                "folding": [str(f) for f in h.foldings], "clock_mhz_asked": None, "cycles_per_image": h.cycles_per_image}
        label = ("--popcount xilinx" if popcount == "xilinx" else "default popcount (tree)") + (
            "" if style == "auto" else f", --mem-style {style} (RAMB18 beside: {r.brams:g})")
        g = bd["groups"]
        core_rest = g[BREAKDOWN_GROUPS[0][0]] - la["luts"]
        limit = (f"the lanes alone are {la['luts'] / lanes:.2f} LUT6/lane; the other {total - la['luts']:,} LUT6 "
                 f"({(total - la['luts']) / lanes:.2f}/lane): cores outside the lanes {core_rest:,} (accumulators, "
                 f"threshold compares and threshold-ROM reads), converters {g['stream converters']:,}, argmax "
                 f"{g['argmax']:,}, banks+control {g['input banks + unit control']:,}, FIFOs {g['output FIFOs']:,}; "
                 f"{WHOLE_VECTOR_LIMIT}")
        fold_label = ("--fold cycles=256" if who != "hand" else "hand folding, 16 PEs a layer")
        rows.append(_row(f"SFC W1A1 xilinx LUT6/lane, {label}, {fold_label}", f"<= {goal:g} LUT6/lane",
                         befores[popcount] if style == "auto" and who == "hand" else "not measured", meas,
                         per <= goal, limit))
    return rows


def lane_probe(layer, fold, popcount: str = "tree"):
    """The lane arithmetic of one PE of ``layer`` at ``fold``, alone: the kind's lane builder (hw.lanes,
    the call hw.mvu makes for each PE) on a SIMD chunk and runtime weights, flip-flops on both sides,
    so only the products and the adder tree are counted (no ROM, control, thresholds or argmax).
    A wiring.Component; amaranth is imported only when a section needs it."""
    from amaranth.hdl import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hw.lanes import LaneContext, lane_spec

    spec = lane_spec(layer.kind)
    wb = spec.code_bits(layer)
    xw, ww = fold.simd * layer.input_bits, fold.simd * wb

    class _Probe(wiring.Component):
        def __init__(self):
            super().__init__({"x": In(xw + ww), "y": Out(1)})

        def elaborate(self, platform):
            m = Module()
            xr = Signal(xw + ww)
            m.d.sync += xr.eq(self.x)
            ctx = LaneContext(popcount, Signal(name="pa"), Signal(name="pb"))
            acc = spec.build(m, xr[:xw], xr[xw:], layer, fold.simd, wb, ctx, "pe")
            r = Signal(len(acc))
            m.d.sync += r.eq(acc)
            # every sum bit reaches the one output pin, so nothing is optimised away; the XOR (a LUT6 or
            # two per PE) is counted with the lanes, which lowers the W1A1-vs-int8 ratio slightly
            m.d.sync += self.y.eq(r.xor())
            return m

    return _Probe()


def _lane_area(model, foldings, out_dir: Path, target: str, popcount: str = "tree") -> dict:
    """LUT6 of every layer's lane arithmetic: one PE synthesized per layer, times the layer's PE
    (the PEs of a layer are identical circuits on their own weights), summed."""
    from amaranth.back import verilog

    from reports.synth import synthesize

    out_dir.mkdir(parents=True, exist_ok=True)
    per_layer = {}
    for L, f in zip(model.layers, foldings):
        path = out_dir / f"lanes_{L.name}.v"
        path.write_text(verilog.convert(lane_probe(L, f, popcount), name="lanes", emit_src=False))
        r = synthesize(path, "lanes", target)
        per_layer[L.name] = {"pe": f.pe, "simd": f.simd, "lut6_per_pe": r.luts, "dsps_per_pe": r.dsps}
    return {"luts": sum(v["pe"] * v["lut6_per_pe"] for v in per_layer.values()), "layers": per_layer}


#: The int8 whole-design synthesis: how it was measured (the Yosys run takes about an hour on the shared
#: machine, so it ran once in the background under ``nice`` with a generous timeout into the synthesis
#: cache (reports.synth caches by the Verilog's hash); this section then reads it back from the cache.
INT8_HOW = ("one synth_xilinx -nodsp run of the int8 TFC (same Verilog, hash-cached by reports.synth), run once in "
            "the background under nice with a 5,100 s timeout (it took 4,337 s on the loaded 2-core machine)")


def ratio_int8(cache: Path, synth_timeout: float = 3600) -> list[dict]:
    """W1A1 vs int8 MAC, both synthesized with reports.synth's ``xilinx-nodsp`` target (synth_xilinx
    -nodsp), at the TFC sweep folding: whole design, and the lane arithmetic alone (lane_probe). The W1A1
    side twice: the default popcount (tree) and ``--popcount xilinx``; LUT6 counts include LUT-RAM."""
    from lowbit.steps import make_hardware
    from reports.synth import synthesize
    from sim.tools import ToolError

    tfc = _trained_tfc(cache)
    designs = {"w1a1": (tfc, "tree"), "w1a1-xpop": (tfc, "xilinx"), "int8": (_trained_tfc(cache, "int8", epochs=1), "tree")}
    whole, lanes, hw = {}, {}, {}
    for name, (model, popcount) in designs.items():
        h = make_hardware(model, TFC_FOLD, cache / f"tfc-ratio-{name}", popcount=popcount, mem_style="auto",
                          family="xilinx")
        hw[name] = h
        t0 = time.perf_counter()
        try:
            whole[name] = synthesize(h.verilog, h.ports.dut, "xilinx-nodsp", timeout=synth_timeout)
        except ToolError as e:  # the int8 design without DSPs is the largest synthesis here
            whole[name] = str(e).splitlines()[0]
        lanes[name] = _lane_area(model, h.foldings, cache / f"tfc-ratio-{name}" / "lanes", "xilinx-nodsp", popcount)
        w = whole[name]
        print(f"  {name}: whole {w if isinstance(w, str) else f'{w.luts + w.lutram_luts} LUT6 + {w.brams} RAMB18'}, "
              f"lanes {lanes[name]['luts']} LUT6 ({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = []
    for w1 in ("w1a1", "w1a1-xpop"):
        pop = "default popcount (tree)" if w1 == "w1a1" else "W1A1 with --popcount xilinx"
        for what, goal, before in (("whole design", 30, "12-14x (old hardware)"), ("lane arithmetic", 100, "36x; 86.8x (tree)")):
            name = f"TFC W1A1 vs int8 (no DSP) LUT6, {what}, {pop}"
            if what == "whole design" and any(isinstance(whole[k], str) for k in (w1, "int8")):
                why = next(whole[k] for k in (w1, "int8") if isinstance(whole[k], str))
                lw = lanes["int8"]["luts"]
                ww = whole[w1].luts + whole[w1].lutram_luts if not isinstance(whole[w1], str) else None
                meas = {"headline": "not measured", "error": why, "folding": TFC_FOLD, "int8_how": INT8_HOW,
                        # the int8 whole design holds at least its lanes: a lower bound on the ratio
                        "ratio_lower_bound": round(lw / ww, 1) if ww else None, "int8_lane_lut6": lw, "w1a1_lut6": ww}
                rows.append(_row(name, f">= {goal}x fewer", before, meas, None, popcount=hw[w1].design.popcount))
                continue
            if what == "whole design":
                a, b = whole[w1], whole["int8"]
                w, i = a.luts + a.lutram_luts, b.luts + b.lutram_luts
                meas = {"w1a1_ramb18_equiv": a.brams, "int8_ramb18_equiv": b.brams, "w1a1_ffs": a.ffs, "int8_ffs": b.ffs,
                        "w1a1_lutram": a.lutrams, "int8_lutram": b.lutrams, "dsps": [a.dsps, b.dsps],
                        "int8_synth_seconds": b.seconds, "int8_how": INT8_HOW}
            else:
                w, i = lanes[w1]["luts"], lanes["int8"]["luts"]
                meas = {"w1a1_layers": lanes[w1]["layers"], "int8_layers": lanes["int8"]["layers"],
                        "method": "one PE per layer synthesized alone (runtime weights, registered), times PE"}
            ratio = i / max(w, 1)
            meas = {"headline": f"{ratio:.1f}x", "ratio": round(ratio, 2), "w1a1_lut6": w, "int8_lut6": i, **meas,
                    "target": "xilinx-nodsp", "folding": TFC_FOLD, "lanes": _lanes(hw[w1]), "clock_mhz_asked": None,
                    "mem_style": "auto", "w1a1_popcount": hw[w1].design.popcount}
            lw = lanes[w1]["luts"]
            limit = (f"W1A1: {w - lw:,} of its {w:,} LUT6 are outside the lanes: " + WHOLE_VECTOR_LIMIT
                     if what == "whole design" else
                     "an int8 product without DSPs is about 190 LUT6 while a W1A1 lane is 1-2 LUT6 plus its adder-tree "
                     "share; the tree's registers and wider sums bound the ratio")
            rows.append(_row(name, f">= {goal}x fewer", before, meas, ratio >= goal, limit,
                             popcount=hw[w1].design.popcount))
    return rows


def sfc_fmax(cache: Path, seeds: tuple[int, ...] = PNR_SEEDS) -> list[dict]:
    """The committed SFC W1A1 at its automatic folding, pipelined for each family's target clock."""
    from hw.pipeline import DEFAULT_CLOCK_MHZ
    from lowbit.steps import make_hardware
    from quantmodels.ir import load_model

    model = load_model(SFC_DIR)
    rows = []
    for fam, goal, devices in (("ice40", 80.0, ("hx8k",)), ("ecp5", 125.0, ("25k", "85k"))):
        h = make_hardware(model, None, cache / f"sfc-fmax-{fam}", clock_mhz=DEFAULT_CLOCK_MHZ[fam], family=fam)
        m = _placed(h, fam, seeds, devices)
        m["headline"] = f"{m['fmax_mhz']} MHz" if m["fmax_mhz"] else m["status"][:40]
        rows.append(_row(f"SFC W1A1 fmax {fam} ({_seeds_label(seeds)})", f">= {goal:g} MHz", "not measured", m,
                         m["fmax_mhz"] >= goal, _fmax_limit(m)))
    return rows


def sfc_regression() -> list[dict]:
    """benchmarks/sim_regression.py on the committed SFC W1A1, all 10,000 MNIST test images, in a fresh
    cache so the Verilator build is part of the wall time (its results/sim_sfc-bnn.json is put back after)."""
    import subprocess
    import tempfile

    res = REPO / "benchmarks" / "results" / "sim_sfc-bnn.json"
    kept = res.read_bytes() if res.exists() else None  # that benchmark's own record (with its naive comparison)
    with tempfile.TemporaryDirectory(prefix="lowbit-sfc-reg-") as tmp:
        env = {**os.environ, "LOWBIT_CACHE": tmp}
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "sim_regression.py"), str(SFC_DIR),
                            "--images", "10000", "--naive-images", "0"], env=env, cwd=REPO, capture_output=True,
                           text=True)
        total = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"fpga_targets: sfc_regression: sim_regression.py exited {r.returncode}: "
                         f"{(r.stderr or r.stdout).strip().splitlines()[-1][:200]}")
    doc = json.loads(res.read_text())
    if kept is not None:  # this section's figures go into fpga_targets.json; sim_regression's file stays its own
        from quantmodels.atomic import atomic_write_bytes

        atomic_write_bytes(res, kept)
    wall = doc["verilog_generation_s"] + doc["wall_s_including_build"]
    meas = {"headline": f"{wall:.1f} s", "wall_s": round(wall, 1), "build_s": doc["build_s"],
            "build_cached": doc["build_cached"], "sim_s": doc["sim_s"], "verilog_generation_s": doc["verilog_generation_s"],
            "process_wall_s": round(total, 1), "images": doc["images"], "mismatches": doc["mismatches"],
            "folding": doc["folding"], "cycles_per_image": doc["cycles_per_image"], "rtl_accuracy": doc["rtl_accuracy"],
            "load_avg_after": [round(x, 1) for x in os.getloadavg()]}
    ok = wall < 60 and doc["bit_exact"] and not doc["build_cached"] and doc["images"] == 10000
    load = meas["load_avg_after"][0]
    limit = (f"measured at load average {load} on 2 shared cores (build {doc['build_s']:.0f} s, simulation "
             f"{doc['sim_s']:.0f} s): CPU contention; rerun with --only sfc_regression on a quiet machine"
             if load > 2 else f"Verilator build {doc['build_s']:.0f} s + simulation {doc['sim_s']:.0f} s")
    return [_row("SFC W1A1 10k-image Verilator regression incl. build", "< 60 s", "32.7 s (build 13.4 s)", meas, ok,
                 limit)]


def elsewhere() -> list[dict]:
    """Issue 18's targets that other benchmarks measure, read from their results files (a measurement is
    counted once: the row carries that file's commit and names it)."""
    res = REPO / "benchmarks" / "results"
    cnn = json.loads((res / "cnn4_ecp5.json").read_text())["sections"]
    pnr, sim = cnn["pnr"], cnn["sim_placed_design"]
    rows = [_row("4-conv W1A1 MNIST CNN on ECP5-85k, bit-exact", "placed, 10k bit-exact", "does not fit",
                 {"headline": f"{pnr['fmax_mhz_median']:.1f} MHz, {pnr['frames_per_s_at_fmax']:,} frames/s, "
                              f"{sim['mismatches']}/{sim['images']} mismatches",
                  "file": "benchmarks/results/cnn4_ecp5.json", "placement_seeds": len(pnr["runs"])},
                 sim["bit_exact"] and sim["images"] >= 10000 and any(r["fits"] for r in pnr["runs"]),
                 git_commit=pnr["git_commit"])]
    cal = json.loads((res / "estimator_calibration.json").read_text())
    cells = {(c["family"], c["unit_kind"]): c["lut_max_abs_pct"] for c in cal["summary"]}
    misses = {f"{f} {k}": round(v, 1) for (f, k), v in sorted(cells.items(), key=lambda kv: -kv[1]) if v > 10.0}
    brams = sum(c["brams_exact"] for c in cal["summary"])
    points = sum(c["points"] for c in cal["summary"])
    rows.append(_row("estimator LUT within 10 % per family x kind (max)", "+-10 % LUT, BRAM exact",
                     "ice40/ecp5 only", {"headline": f"{len(cells) - len(misses)}/{len(cells)} cells, BRAM {brams}/{points}",
                                         "misses_max_pct": misses, "file": "benchmarks/results/estimator_calibration.json",
                                         "network_check_lut_pct": {f: round(t["err_pct"]["luts"], 1) for f, t
                                                                   in cal["network_check"]["targets"].items()}},
                     not misses and brams == points, limit="max |LUT error| per point above 10 % in: "
                     + ", ".join(f"{k} {v}" for k, v in misses.items()), git_commit=cal["provenance"]["git_commit"]))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description="Issue 18's FPGA targets: target | before | measured, per section.")
    ap.add_argument("--only", default="tfc_xilinx,memory,padding", help=f"comma-separated subset of {SECTIONS}")
    ap.add_argument("--images", type=int, default=1000, help="MNIST test images for the padding check")
    ap.add_argument("--seeds", type=int, default=len(PNR_SEEDS),
                    help="nextpnr placement seeds per design (1..3; the issue asks for the median of 3)")
    ap.add_argument("--kinds", default=",".join(KIND_METHODS),
                    help=f"kinds_fmax: comma-separated subset of {','.join(KIND_METHODS)}")
    ap.add_argument("--families", default="ice40,ecp5", help="kinds_fmax: ice40, ecp5 or both")
    ap.add_argument("--synth-timeout", type=float, default=3600,
                    help="ratio_int8: seconds allowed for each whole-design synthesis (the int8 one is the longest)")
    args = ap.parse_args()
    from quantmodels.atomic import atomic_write_json
    from sim.provenance import provenance
    from sim.tools import cache_dir

    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        print(f"fpga_targets: --only: {bad[0][:60]!r}, expected a subset of {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    if not 1 <= args.seeds <= len(PNR_SEEDS):
        print(f"fpga_targets: --seeds: {args.seeds}, expected 1..{len(PNR_SEEDS)}", file=sys.stderr)
        return 2
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    badk = [k for k in kinds if k not in KIND_METHODS]
    if badk or not kinds:
        print(f"fpga_targets: --kinds: {(badk or [''])[0][:60]!r}, expected a subset of {','.join(KIND_METHODS)}",
              file=sys.stderr)
        return 2
    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    badf = [f for f in families if f not in ("ice40", "ecp5")]
    if badf or not families:
        print(f"fpga_targets: --families: {(badf or [''])[0][:60]!r}, expected ice40, ecp5 or both", file=sys.stderr)
        return 2
    seeds = PNR_SEEDS[:args.seeds]
    prov = provenance(seed=SEED)  # before the run: what the figures were measured with
    commit = prov["git_commit"]
    cache = cache_dir() / "fpga_targets"
    cache.mkdir(parents=True, exist_ok=True)
    runs = {"tfc_xilinx": lambda: tfc_xilinx(cache), "memory": memory,
            "padding": lambda: padding(cache, args.images), "fmax": lambda: fmax(cache, seeds),
            "lanes_xilinx": lambda: lanes_xilinx(cache), "ratio_int8": lambda: ratio_int8(cache, args.synth_timeout),
            "sfc_fmax": lambda: sfc_fmax(cache, seeds), "kinds_fmax": lambda: kinds_fmax(cache, seeds, kinds, families),
            "sfc_regression": sfc_regression, "elsewhere": elsewhere}
    for s in only:
        print(f"== {s}", flush=True)
        load = [round(x, 1) for x in os.getloadavg()]  # 2 shared cores: wall times scale with the load
        t0 = time.perf_counter()
        rows = runs[s]()
        secs = round(time.perf_counter() - t0, 1)
        print(f"== {s}: {secs:.0f} s wall (rerun alone with --only {s})", flush=True)
        # read-modify-write per section: two runs of different sections (one in the background) both keep theirs
        for r in rows:  # per row: a --kinds subset keeps rows measured on other commits (elsewhere: its file's)
            r.setdefault("git_commit", commit)
        doc = json.loads(OUT.read_text()) if OUT.exists() else {}
        doc.setdefault("sections", {})
        if s == "kinds_fmax":  # a --kinds / --families subset replaces only its own rows
            new = {(r["kind"], r["family"]) for r in rows}
            kept = [r for r in doc["sections"].get(s, {}).get("rows", []) if (r.get("kind"), r.get("family")) not in new]
            order = {k: i for i, k in enumerate(KIND_METHODS)}
            rows = sorted(kept + rows, key=lambda r: (order.get(r.get("kind"), 99), r.get("family", "")))
        doc["provenance"] = prov
        doc["sections"][s] = {"git_commit": commit, "seconds": secs, "seeds": list(seeds) if s in PNR_SECTIONS else None,
                              "load_avg_at_start": load, "rows": rows}
        atomic_write_json(OUT, doc)
    table(json.loads(OUT.read_text()))
    print(f"results written to {OUT}")
    return 0


def table(doc: dict) -> None:
    """The final table: every section's rows, target beside before and measured, with the commit."""
    print(f"\n{'section':<15}{'row':<52}{'target':<22}{'before':<26}{'measured':<22}{'met':<9}commit")
    for name, sec in doc.get("sections", {}).items():
        for r in sec["rows"]:
            m = r["measured"]
            short = m.get("headline", m.get("fmax_mhz", m.get("lut6", m))) if isinstance(m, dict) else m
            met = "" if r["met"] is None else ("MET" if r["met"] else "NOT MET")
            print(f"{name:<15}{r['name'][:51]:<52}{r['target'][:21]:<22}{r['before'][:25]:<26}{str(short)[:21]:<22}"
                  f"{met:<9}{r.get('git_commit', sec['git_commit'])[:10]}")
            if r.get("limit"):
                print(f"{'':<15}  limit: {r['limit']}")


if __name__ == "__main__":
    raise SystemExit(main())
