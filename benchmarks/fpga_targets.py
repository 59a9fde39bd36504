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
  HX8K and ECP5 (slow: use ``--only fmax`` alone).

    python benchmarks/fpga_targets.py [--only tfc_xilinx,memory,padding,fmax] [--images N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "fpga_targets" / "fpga_targets.json"
SECTIONS = ("tfc_xilinx", "memory", "padding", "fmax")
#: The committed MNIST sweep's TFC W1A1 point (benchmarks/results/sweep_mnist_quick/sweep.csv).
TFC_FOLD = "fc0:pe=16,simd=16;fc1:pe=1,simd=32;fc2:pe=1,simd=32;fc3:pe=1,simd=4"
SEED = 0


def _row(name: str, target: str, before: str, measured, ok: bool | None) -> dict:
    flag = "" if ok is None else ("MET" if ok else "NOT MET")
    print(f"  {name:<46} target {target:<22} before {before:<22} measured {measured!s:<28} {flag}", flush=True)
    return {"name": name, "target": target, "before": before, "measured": measured, "met": ok}


def _tfc_model(cache: Path):
    from lowbit.steps import train_and_save
    from quantmodels.datasets import load_mnist_npz
    from quantmodels.ir import load_model

    mdir = cache / "tfc-bnn-e4-s0"
    if not (mdir / "model.json").exists():
        data = load_mnist_npz(REPO.parent / "shared" / "data" / "mnist.npz")
        train_and_save("bnn", (64, 64, 64), data, "mnist.npz", mdir, seed=SEED, epochs=4, progress=False)
    return load_model(mdir)


def tfc_xilinx(cache: Path) -> list[dict]:
    from lowbit.steps import make_hardware
    from reports.synth import synthesize

    model = _tfc_model(cache)
    rows = []
    for style in ("auto", "logic"):
        h = make_hardware(model, TFC_FOLD, cache / f"tfc-hw-{style}", mem_style=style)
        t0 = time.perf_counter()
        r = synthesize(h.verilog, h.ports.dut, "xilinx")
        print(f"  synth_xilinx ({style}): {time.perf_counter() - t0:.0f} s", flush=True)
        lanes = sum(f.lanes for f in h.foldings)
        meas = {"mem_style": style, "lut6": r.luts, "ffs": r.ffs, "ramb18_equiv": r.brams, "lutram": r.lutrams,
                "lut6_per_lane": round(r.luts / lanes, 2), "rom_styles": h.design.rom_styles}
        rows.append(_row(f"TFC W1A1 xilinx LUT6 (mem-style {style})", "<= 2,500 LUT6 + BRAM",
                         "6,223 LUT6, 0 BRAM", meas, r.luts <= 2500))
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


def fmax(cache: Path) -> list[dict]:
    from lowbit.steps import make_hardware
    from quantmodels.datasets import load_digits
    from quantmodels.train import TrainConfig, train
    from hw.pipeline import DEFAULT_CLOCK_MHZ
    from reports.pnr import place_and_route
    from reports.synth import synthesize

    model = train(TrainConfig(method="bnn", hidden=(64, 64, 64), epochs=20, seed=SEED, progress=False),
                  load_digits()).model
    rows = []
    for fam, goal, before in (("ice40", 80.0, "23.8 MHz (70 argmax-free)"), ("ecp5", 125.0, "20.0 MHz (83 argmax-free)")):
        # pipelined for the family's target clock (hw.pipeline's delay model)
        h = make_hardware(model, None, cache / f"digits-w1a1-{fam}", clock_mhz=DEFAULT_CLOCK_MHZ[fam], family=fam)
        syn = synthesize(h.verilog, h.ports.dut, fam)
        f = []
        for seed in (1, 2, 3):
            p = place_and_route(fam, h.verilog, h.ports.dut, h.design.in_width, h.design.class_width,
                                h.design.logit_width * h.design.n_classes, seed=seed)
            f.append(p.fmax_mhz or 0.0)  # 0: did not fit or route
            print(f"  {fam} seed {seed}: {p.device} {p.fmax_mhz} MHz {p.note}", flush=True)
        med = statistics.median(f)
        rows.append(_row(f"digits W1A1 fmax {fam} (median of 3 seeds)", f">= {goal:g} MHz", before,
                         {"fmax_mhz": round(med, 1), "seeds": f, "luts": syn.luts, "brams": syn.brams,
                          "clock_mhz_asked": DEFAULT_CLOCK_MHZ[fam], "pipeline_stages": h.design.pipeline_stages,
                          "cycles_per_image": h.cycles_per_image,
                          "frames_per_s": round(med * 1e6 / h.cycles_per_image)}, med >= goal))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="tfc_xilinx,memory,padding", help=f"comma-separated subset of {SECTIONS}")
    ap.add_argument("--images", type=int, default=1000, help="MNIST test images for the padding check")
    args = ap.parse_args()
    from quantmodels.atomic import atomic_write_json
    from sim.provenance import provenance
    from sim.tools import cache_dir

    prov = provenance(seed=SEED)  # before the run: what the figures were measured with
    commit = prov["git_commit"]
    cache = cache_dir() / "fpga_targets"
    cache.mkdir(parents=True, exist_ok=True)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        print(f"fpga_targets: --only: {bad[0]!r}, expected a subset of {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    doc = {"provenance": prov, "sections": {}}
    if OUT.exists():  # sections not rerun keep their last figures (each records its own commit)
        import json

        doc["sections"] = json.loads(OUT.read_text()).get("sections", {})
    for s in only:
        print(f"== {s}", flush=True)
        t0 = time.perf_counter()
        rows = {"tfc_xilinx": lambda: tfc_xilinx(cache), "memory": memory,
                "padding": lambda: padding(cache, args.images), "fmax": lambda: fmax(cache)}[s]()
        doc["sections"][s] = {"git_commit": commit, "seconds": round(time.perf_counter() - t0, 1), "rows": rows}
    atomic_write_json(OUT, doc)
    print(f"results written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
