"""Flow orchestration behind the CLI: each ``cmd_*`` reads the previous step's files.

The heavy lifting lives in the layers below (quantmodels <- hw <- sim <- reports) and in
:mod:`lowbit.steps` (train, make hardware, simulate: shared with the sweep); this module only
resolves paths, chains the steps and prints where outputs went. It imports the sweep; the
sweep never imports it.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from hw.lanes import UNREGISTERED_DSP_PRODUCT_FAMILIES, lane_spec
from hw.pipeline import NS_PER_LEVEL
from quantmodels.atomic import atomic_write_json
from quantmodels.datasets import Dataset, load_dataset, load_digits
from quantmodels.errors import ConfigError, DataError
from quantmodels.ir import IRModel, load_model
from reports.activity import ACTIVITY_DEPTH
from reports.gatelevel import gate_level_netlist
from reports.present import DASH
from reports.report import DesignInput, write_report
from reports.synth import family as target_family
from reports.synth import parse_targets
from sim.build import check_simulator
from sim.regression import RegressionResult

from .steps import PRESETS, make_hardware, simulate, target_clock, train_and_save
from .sweep import run_sweep
from .sweep_config import load_sweep_config

#: Test images `lowbit sim` runs without --images (the whole test set when it is smaller).
DEFAULT_SIM_IMAGES = 1000
#: Test images the traced (activity-energy) simulation of `lowbit report` and the demo runs by default.
ACTIVITY_IMAGES = 8


# ----------------------------------------------------------------------------------- helpers

def _arch(args: argparse.Namespace, data: Dataset) -> str | tuple[int, ...]:
    """--arch (preset or tokens), else --hidden sizes, else the --model preset (tfc on digits, sfc otherwise)."""
    if args.arch:
        return args.arch
    if args.hidden:
        try:
            sizes = tuple(int(s) for s in args.hidden.split(",") if s.strip())
        except ValueError:
            raise ConfigError(f"--hidden: {args.hidden!r}, expected comma-separated integers like 256,256,256") from None
        if not sizes or min(sizes) < 1:
            raise ConfigError(f"--hidden: {args.hidden!r}, expected positive layer sizes")
        return sizes
    return args.model or ("tfc" if data.name == "digits" else "sfc")


def _options(specs: list[str] | None) -> dict[str, str]:
    """--opt name=value pairs -> dict (values are parsed and checked by the method)."""
    opts = {}
    for spec in specs or ():
        name, eq, value = spec.partition("=")
        if not eq or not name.strip():
            raise ConfigError(f"--opt: {spec!r}, expected name=value, e.g. stochastic=1")
        opts[name.strip()] = value.strip()
    return opts


def _grey(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(H, W, 1) channels-last and (H, W) are the same greyscale images (a CNN's input vs MNIST)."""
    return tuple(shape[:-1]) if len(shape) == 3 and shape[-1] == 1 else tuple(shape)


def dataset_for(model: IRModel, data: str | None) -> Dataset:
    """The dataset given on the command line, or the one recorded at training time."""
    spec = data or model.meta.get("data_source")
    if not spec:
        raise DataError("no dataset: pass --data (the model does not record meta.data_source)")
    ds = load_dataset(spec)
    shape = tuple(model.input.source_shape)
    if shape and _grey(ds.image_shape) != _grey(shape):
        raise DataError(f"{spec}: images of shape {ds.image_shape}, but the model expects {shape}")
    return ds


def folding_lines(model: IRModel, h) -> list[str]:
    """One line per layer: kind, shape, the folding chosen (PE x SIMD) and its cycles per image."""
    cycles = list(h.design.layer_cycles) or [f.cycles for f in h.foldings]
    return [f"  {L.name} ({L.kind}, {L.in_features}->{L.out_features}): pe={f.pe}, simd={f.simd}, "
            f"{c} cycles/image" for L, f, c in zip(model.layers, h.foldings, cycles)]


def _print_hardware(model: IRModel, h, fold: str | None) -> None:
    how = f"--fold {fold!r}" if fold else "automatic, balanced (no --fold)"
    print(f"folding: {how}")
    print("\n".join(folding_lines(model, h)))
    d = h.design
    if d.clock_mhz is None:
        print("register stages: none in the adder trees (--clock-mhz none)")
    else:
        print(f"register stages for {d.clock_mhz:g} MHz on {d.family} (delay model, hw.pipeline): "
              + ", ".join(f"{L.name} {k}" for L, k in zip(model.layers, d.pipeline_stages)))
    print(f"Verilog written to {h.verilog} (top module {h.ports.dut}); "
          f"{h.cycles_per_image} cycles/image initiation interval", flush=True)


def _print_sim(r, label: str = "") -> None:
    status = "BIT-EXACT" if r.bit_exact else f"MISMATCH ({r.mismatches} images, first at index {r.first_bad})"
    acc = f", RTL accuracy {100 * r.accuracy:.2f}%" if r.accuracy is not None else ""
    print(f"{label}{status}: {r.n_images - r.mismatches}/{r.n_images} images match golden classes and logits{acc}; "
          f"{r.steady_cycles_per_image:.1f} cycles/image, first result after {r.first_latency} cycles; "
          f"simulated in {r.sim_seconds:.1f} s")


# ----------------------------------------------------------------------------------- commands

def cmd_train(args: argparse.Namespace) -> int:
    data = load_dataset(args.data)
    if args.name is not None:
        if not args.name.strip() or len(args.name) > 100 or any(not c.isprintable() for c in args.name):
            raise ConfigError(f"--name: {args.name[:40]!r}, expected 1..100 printable characters")
        data = replace(data, name=args.name)
    src = args.data if args.data == "digits" else str(Path(args.data).resolve())
    arch = _arch(args, data)
    options = _options(args.opt)
    label = args.model or ("custom" if args.arch or args.hidden else ("tfc" if data.name == "digits" else "sfc"))
    out = args.out or Path("runs") / f"{label}-{args.method}"
    train_and_save(args.method, arch, data, src, out, args.seed, args.epochs, args.batch_size, args.lr,
                   progress=not args.quiet, dropout=args.dropout, weight_bits=args.wbits, act_bits=args.abits,
                   options=options, optimizer=args.optimizer, patience=args.patience, checkpoint=args.checkpoint,
                   lr_schedule=args.lr_schedule, input_bits=args.input_bits)
    return 0


def cmd_verilog(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    out = args.out or args.model / "hw"
    h = _hardware(model, args, out)
    _print_hardware(model, h, args.fold)
    return 0


def _clock(args: argparse.Namespace, family: str | None = None) -> tuple[float | None, str]:
    """(target clock, family) from --clock-mhz and --family; ``family`` is the command's default
    (lowbit report: its first target's), else ice40. Raises the one-line error for a bad clock."""
    fam = args.family or family or "ice40"
    return target_clock(args.clock_mhz, fam), fam


def _hardware(model: IRModel, args: argparse.Namespace, out: Path, family: str | None = None):
    """make_hardware with the fold options of ``args`` (--fold, --popcount, --mem-style, --clock-mhz, --family)."""
    clock, fam = _clock(args, family)
    return make_hardware(model, args.fold, out, args.popcount, args.mem_style, clock, fam)


def cmd_sim(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    if args.images is not None and args.images < 0:
        raise ConfigError(f"--images: {args.images}, expected >= 0 (0 = the whole test set)")
    if not 0 <= args.stall < 100:
        raise ConfigError(f"--stall: {args.stall}, expected a percentage 0..99")
    simulator = check_simulator(args.simulator)  # a missing iverilog fails before any work
    _clock(args)  # a bad clock fails before the dataset loads
    data = dataset_for(model, args.data)
    n_test = len(data.x_test)
    if args.images is not None and args.images > n_test:  # never a silent clamp
        raise ConfigError(f"--images: {args.images}, expected at most {n_test} (the test set of {data.name}; "
                          "0 = all of it)")
    n = n_test if args.images == 0 else min(DEFAULT_SIM_IMAGES, n_test) if args.images is None else args.images
    out = args.out or args.model / "hw"
    print(f"generating Verilog for {args.model} into {out} (lowbit sim simulates the design it generates):")
    h = _hardware(model, args, out)
    _print_hardware(model, h, args.fold)
    print(f"simulating {n} of the {n_test} test images of {data.name}", flush=True)
    if args.gate_level:
        print("  yosys: synthesizing a generic gate-level netlist to simulate ...", flush=True)
        h = replace(h, verilog=gate_level_netlist(h.verilog, h.ports.dut))
    r = simulate(model, h, data.x_test[:n], data.y_test[:n], args.stall, simulator)
    _print_sim(r)
    doc = {**r.to_json(), "model": str(args.model), "verilog_sha256": h.design.sha256,
           "seed": model.meta.get("seed"), "gate_level": bool(args.gate_level), "simulator": simulator,
           "popcount": args.popcount}
    atomic_write_json(out / "sim.json", doc)
    print(f"results written to {out / 'sim.json'}")
    return 0 if r.bit_exact else 1


def _activity_samples(model: IRModel, data: str | None, n: int) -> np.ndarray | None:
    """The first ``n`` test images for the activity run; None (with a note) if no dataset is known."""
    if n == 0:
        return None
    if not (data or model.meta.get("data_source")):
        print(f"  {model.name}: no dataset recorded (pass --data) - activity energy skipped", flush=True)
        return None
    return dataset_for(model, data).x_test[:n]


def _design_input(model_dir: Path, model: IRModel, args: argparse.Namespace, family: str) -> DesignInput:
    samples = _activity_samples(model, args.data, args.activity_images)  # data errors surface before any build
    h = _hardware(model, args, args.out / "designs" / model_dir.name, family)
    sim = None
    sj = model_dir / "hw" / "sim.json"
    if sj.exists():
        doc = json.loads(sj.read_text())
        if doc.get("verilog_sha256") == h.design.sha256:
            sim = RegressionResult.from_json(doc)
    label = f"{model.name} ({'+'.join(sorted({L.kind for L in model.layers}))})"
    return DesignInput(label, model, h.verilog, h.ports, h.cycles_per_image, h.latency_cycles, sim,
                       layer_cycles=list(h.design.layer_cycles), foldings=h.foldings, activity_samples=samples,
                       build=h.design)


def cmd_report(args: argparse.Namespace) -> int:
    targets = parse_targets(args.targets, "--targets")
    if args.activity_images < 0:
        raise ConfigError(f"--activity-images: {args.activity_images}, expected >= 0 (0 = no activity run)")
    if args.activity_images > ACTIVITY_DEPTH:
        raise ConfigError(f"--activity-images: {args.activity_images}, expected at most {ACTIVITY_DEPTH}")
    # one design serves every target: its register stages follow the first FPGA target's family, except
    # that an iCE40 target with DSPs needs the iCE40 build (hw.lanes.UNREGISTERED_DSP_PRODUCT_FAMILIES:
    # Yosys maps another family's registered multipliers into SB_MAC16s wrongly)
    fam = next((target_family(t) for t in targets if target_family(t) in NS_PER_LEVEL), "ice40")
    models = [(m, load_model(m)) for m in args.models]  # loaded once: the DSP rule below and the designs
    dsp_rule = [t for t in targets if t in UNREGISTERED_DSP_PRODUCT_FAMILIES]
    if dsp_rule and any(lane_spec(L.kind).dsp_product for _, model in models for L in model.layers):
        if args.family is not None and args.family not in UNREGISTERED_DSP_PRODUCT_FAMILIES:
            raise ConfigError(f"--family {args.family} with target {dsp_rule[0]}: Yosys maps the {args.family} build's "
                              f"registered multipliers into {dsp_rule[0]} DSPs wrongly; expected target "
                              f"{dsp_rule[0]}-nodsp, or no --family")
        fam = dsp_rule[0]
    designs = [_design_input(m, model, args, fam) for m, model in models]
    paths = write_report(designs, args.out, targets, pnr=not args.no_pnr)
    return _print_report(paths)


def _print_report(paths: dict) -> int:
    """Print the summary, each design's status and the files; 1 if a request produced nothing at all."""
    df = pd.read_csv(paths["csv"])
    cols = [c for c in ("design", "test_accuracy", "measured_ice40_luts", "measured_ecp5_luts",
                        "measured_xilinx_luts", "measured_xilinx_dsps", "measured_ice40_fmax_mhz",
                        "measured_ecp5_fmax_mhz", "model_energy_pj", "model_energy_activity_pj",
                        "memory_bits") if c in df.columns]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df[cols].to_string(index=False, na_rep=DASH))  # no NaN on screen either: see the statuses
    print("(energy is MODELLED from op counts x Horowitz ISSCC 2014 45 nm, and from simulated toggles; "
          "LUT/fmax are MEASURED by Yosys/nextpnr)")
    for k in ("html", "csv", "json", "png"):
        print(f"  {k}: {paths[k]}")
    doc = json.loads(Path(paths["json"]).read_text())
    for d in doc["designs"]:
        for k, v in d["summary"].items():
            if k.startswith("status_"):
                print(f"  {d['summary']['design']} on {k.removeprefix('status_')}: {v}")
    empty = doc["meta"].get("nothing_produced", [])
    if empty:
        print(f"lowbit report: nothing produced for {'; '.join(empty)} (tool logs under {Path(paths['html']).parent / 'logs'})")
        return 1
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Validate the sweep config (and options) completely, then run or resume the sweep."""
    if args.jobs is not None and args.jobs < 0:
        raise ConfigError(f"--jobs: {args.jobs}, expected >= 0 (0 = every core)")
    cfg = load_sweep_config(args.config, out_given=args.out is not None)
    out = args.out or cfg.out or Path("runs") / "sweep" / args.config.stem
    r = run_sweep(cfg, out, jobs=args.jobs, dask=args.dask, pnr=False if args.no_pnr else None,
                  progress=not args.quiet)
    for k in ("csv", "json", "layers_csv", "timings_csv", "html"):
        print(f"  {k}: {r.paths[k]}")
    if r.mismatching_points:
        print(f"sweep: {r.mismatching_points} design point(s) NOT bit-exact against the golden model")
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    out: Path = args.out
    data = load_digits()
    print(f"[1/4] training on the embedded 8x8 digits ({len(data.x_train)} train / {len(data.x_test)} test)")
    models = {}
    for method in ("bnn", "int8"):
        # the 1797-image digits set: more epochs and no dropout suit it better than MNIST defaults
        extra = {"epochs": 150, "dropout": 0.0} if method == "bnn" else {}
        models[method] = train_and_save(method, PRESETS["tfc"], data, "digits", out / f"tfc-{method}",
                                        args.seed, name=f"tfc-{method}", **extra)
    print("[2/4] generating Verilog")
    # the default target clock for iCE40 (the demo's place-and-route target) sets the register stages
    hws = {m: make_hardware(models[m], None, out / f"tfc-{m}" / "hw", clock_mhz=target_clock("auto", "ice40"))
           for m in models}
    for m, h in hws.items():
        print(f"  {m}: {h.verilog} ({h.cycles_per_image} cycles/image)")
    print(f"[3/4] bit-exact Verilator regression on all {len(data.x_test)} test images")
    sims = {}
    for m, h in hws.items():
        r = simulate(models[m], h, data.x_test, data.y_test)
        _print_sim(r, label=f"  {m}: ")
        sims[m] = r
        atomic_write_json(out / f"tfc-{m}" / "hw" / "sim.json",
                          {**r.to_json(), "verilog_sha256": h.design.sha256, "seed": args.seed})
    print("[4/4] synthesis (Yosys ice40 + xilinx), place-and-route (nextpnr-ice40), energy and memory report")
    designs = [DesignInput(f"W1A1 {m}" if m == "bnn" else "int8 MAC baseline", models[m], hws[m].verilog,
                           hws[m].ports, hws[m].cycles_per_image, hws[m].latency_cycles, sims[m],
                           layer_cycles=list(hws[m].design.layer_cycles), foldings=hws[m].foldings,
                           activity_samples=data.x_test[:ACTIVITY_IMAGES], build=hws[m].design)
               for m in ("bnn", "int8")]
    paths = write_report(designs, out / "report", parse_targets("ice40,xilinx", "demo"), pnr=not args.no_pnr)
    rc = _print_report(paths)
    bad = [m for m, r in sims.items() if not r.bit_exact]
    if bad:
        print(f"demo: RTL mismatches in {', '.join(bad)}")
        return 1
    return rc
