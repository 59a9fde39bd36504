"""Assemble measured (synthesis, place-and-route, simulation) and modelled (energy) figures
for one or more designs into CSV + JSON tables, PNG plots and one self-contained HTML page.
"""
from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from quantmodels.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from sim.tools import tool_versions

from .activity import measure_activity
from .energy import float32_energy, model_energy
from .energy_constants import CITATION, DERIVED_RULES, HOROWITZ_PJ, PJ_PER_TOGGLE
from .estimator import ModelEstimate, calibrated_targets, estimate_model
from .memory import model_memory
from .pnr import PNR_FAMILIES, PnrFamily, place_and_route
from .records import DesignInput, DesignResult, Timing
from .synth import ModuleArea, SynthResult, Target, family, layer_area, synthesize
from .tables import layer_rows, summary_row, tool_results


def _default_progress(msg: str) -> None:
    print(msg, flush=True)


def pnr_families(targets: tuple[str, ...]) -> list[PnrFamily]:
    """Families to place and route: those among the targets that nextpnr supports (ice40 if none)."""
    return [f for f in PNR_FAMILIES if any(family(t) == f for t in targets)] or [PnrFamily.ICE40]


def _timing(design: DesignInput, fam: PnrFamily) -> Timing:
    """fmax of one family (measured) -> frames/s = fmax / cycles per image, latency in microseconds."""
    p = design.ports
    r = place_and_route(fam, design.verilog, p.dut, p.in_width, p.class_width, p.logits_width)
    fps = r.fmax_mhz * 1e6 / design.cycles_per_image if r.fmax_mhz else None
    lat = design.latency_cycles / r.fmax_mhz if r.fmax_mhz and design.latency_cycles else None
    return Timing(fam, r, fps, lat)


def _estimates(design: DesignInput, targets: tuple[Target, ...]) -> dict[Target, ModelEstimate]:
    """MODEL area per calibrated target (none without foldings or constants)."""
    if not design.foldings:
        return {}
    ok = set(calibrated_targets())
    return {t: estimate_model(design.model.layers, design.foldings, t) for t in targets if t in ok}


def collect(design: DesignInput, targets: tuple[str, ...] = (Target.ICE40, Target.XILINX), pnr: bool = True,
            progress: Callable[[str], None] = _default_progress, per_layer_area: bool = True,
            synth: bool = True) -> DesignResult:
    """Run every measurement and model on one design.

    Per target: Yosys cell counts, the per-layer counts with the hierarchy kept
    (``per_layer_area=False`` skips that second Yosys run, e.g. for sweeps that need totals
    only) and, where calibrated, the analytic estimate. Timing per nextpnr family among the
    targets. Activity energy when ``design.activity_samples`` is given. ``synth=False`` runs
    no Yosys/nextpnr at all (the estimate still is): a sweep's pre-screened point.
    """
    targets = tuple(Target(t) for t in targets)
    m = design.model
    synth_res: dict[Target, SynthResult] = {}
    areas: dict[Target, dict[str, ModuleArea]] = {}
    for t in targets if synth else ():
        progress(f"  synthesizing {design.label} for {t} (yosys) ...")
        synth_res[t] = synthesize(design.verilog, design.ports.dut, t)
        if per_layer_area:
            areas[t] = layer_area(design.verilog, design.ports.dut, t)
    timing = {}
    for fam in pnr_families(targets) if pnr and synth else ():
        progress(f"  place-and-route {design.label} (nextpnr-{fam}) ...")
        timing[fam] = _timing(design, fam)
    act = None
    if design.activity_samples is not None and len(design.activity_samples):
        progress(f"  activity: traced Verilator run of {design.label} on {len(design.activity_samples)} images ...")
        act = measure_activity(m, design.verilog, design.ports, design.activity_samples,
                               expected_cycles=design.cycles_per_image + (design.latency_cycles or 0))
    return DesignResult(design, synth, model_memory(m), tuple(model_energy(m)), float32_energy(m), synth_res, areas,
                        _estimates(design, targets), timing, act)


def _bar_plot(df: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [(c, t) for c, t in [
        ("measured_xilinx_luts", "LUT6 (Yosys xilinx, measured)"),
        ("measured_ice40_luts", "LUT4 (Yosys ice40, measured)"),
        ("measured_ecp5_luts", "LUT4 (Yosys ecp5, measured)"),
        ("model_energy_pj", "energy / inference, pJ (MODEL, Horowitz 45 nm)"),
        ("model_energy_activity_pj", "activity energy / inference, pJ (MODEL, toggles)"),
        ("memory_bits", "parameter memory, bits"),
    ] if c in df.columns and df[c].notna().any()]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8), squeeze=False)
    colors = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280"]
    for ax, (col, title) in zip(axes[0], metrics):
        vals = df[col].astype(float).fillna(0.0)
        bars = ax.bar(range(len(df)), vals, color=colors[: len(df)])
        ax.set_xticks(range(len(df)), df["design"], rotation=20, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_yscale("log" if vals.max() > 0 and vals.min() > 0 and vals.max() / vals.min() > 50 else "linear")
        for b, v in zip(bars, vals):
            ax.annotate(f"{v:,.0f}" if v >= 10 else f"{v:.3g}", (b.get_x() + b.get_width() / 2, v),
                        ha="center", va="bottom", fontsize=7)
    fig.suptitle("lowbit: low precision vs multiplier baseline", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _html(df: pd.DataFrame, layers: pd.DataFrame, png: bytes, meta: dict) -> str:
    img = base64.b64encode(png).decode()
    measured = [c for c in df.columns if c.startswith("measured_")]
    modelled = [c for c in df.columns if c.startswith("model_")]
    other = [c for c in df.columns if c not in measured + modelled]
    consts = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in HOROWITZ_PJ.items())
    rules = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in DERIVED_RULES.items())
    tools = ", ".join(f"{k} {v}" for k, v in meta["tool_versions"].items())

    def table(frame: pd.DataFrame) -> str:
        return frame.to_html(index=False, float_format=lambda v: f"{v:,.4g}", border=0, classes="t")

    ids = [c for c in ("design", "layer", "op", "kind", "in", "out", "folding", "cycles") if c in layers.columns]
    l_meas = [c for c in layers.columns if c.startswith("measured_")]
    l_model = [c for c in layers.columns if c.startswith("model_")]
    l_mem = [c for c in ("weight_bits", "threshold_bits", "bias_bits", "table_bits") if c in layers.columns]
    layer_tables = (f"<h3>Memory (counted from the IR)</h3>{table(layers[ids + l_mem])}"
                    f"<div class='meas'><h3>Measured per layer (Yosys cells, Verilator toggles)</h3>"
                    f"{table(layers[ids + l_meas])}</div>"
                    f"<div class='model'><h3>Modelled per layer (a MODEL: op-count energy, activity energy at "
                    f"{PJ_PER_TOGGLE * 1000:.2f} fJ per toggle, analytic area estimate)</h3>"
                    f"{table(layers[ids + l_model])}</div>")

    return f"""<!doctype html><html><head><meta charset="utf-8"><title>lowbit report</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}}
table.t{{border-collapse:collapse;font-size:12px;margin-bottom:1em}} .t td,.t th{{border:1px solid #ccc;padding:3px 6px}}
h2{{border-bottom:1px solid #ddd}} .model{{background:#fff8e6;padding:.5em}} .meas{{background:#eef6ff;padding:.5em}}</style>
</head><body><h1>lowbit report</h1>
<p>Generated {html.escape(meta['generated'])}. Tools: {html.escape(tools)}.</p>
<img alt="comparison plot" style="max-width:100%" src="data:image/png;base64,{img}">
<h2>Designs</h2>{table(df[other])}
<div class="meas"><h2>Measured (Yosys synthesis, nextpnr place-and-route, Verilator simulation)</h2>
{table(df[['design'] + measured])}</div>
<div class="model"><h2>Modelled energy (a MODEL, not a measurement)</h2>
{table(df[['design'] + modelled])}
<p>Per-operation energies from {html.escape(CITATION)}:</p><table class="t">{consts}</table>
<p>Derived rules:</p><ul>{rules}</ul></div>
<h2>Per layer</h2>
<p>Area per layer: Yosys with the module hierarchy kept (sum in <code>*_luts_hier_sum</code>; a few
percent above the flattened totals above, which optimise across layers).</p>
{layer_tables}
</body></html>"""


def write_report(designs: list[DesignInput], out_dir: str | Path,
                 targets: tuple[str, ...] = (Target.ICE40, Target.XILINX), pnr: bool = True,
                 progress: Callable[[str], None] = _default_progress) -> dict[str, Path]:
    """Collect every design's figures and write CSV, JSON, PNG and HTML into ``out_dir``."""
    out = Path(out_dir)
    results = [collect(d, targets, pnr, progress) for d in designs]
    rows = [summary_row(r) for r in results]
    layer_lists = [layer_rows(r) for r in results]
    df = pd.DataFrame(rows)
    layers = pd.DataFrame([lr for lrs in layer_lists for lr in lrs])
    if len(df) > 1:
        base = df.iloc[-1]  # the last design is the baseline (the int8 MAC net)
        for col in ("measured_xilinx_luts", "measured_ice40_luts", "measured_ecp5_luts", "model_energy_pj",
                    "model_energy_activity_pj", "memory_bits"):
            if col in df.columns and base.get(col):
                df[f"{col}_vs_{base['design']}"] = df[col] / base[col]
    meta = {"generated": time.strftime("%Y-%m-%d %H:%M:%S"), "tool_versions": tool_versions(),
            "energy_citation": CITATION, "energy_constants_pj": HOROWITZ_PJ,
            "energy_derived_rules": DERIVED_RULES}
    png = _bar_plot(df)
    paths = {"csv": out / "summary.csv", "layers_csv": out / "layers.csv", "json": out / "report.json",
             "png": out / "comparison.png", "html": out / "report.html"}
    atomic_write_text(paths["csv"], df.to_csv(index=False))
    atomic_write_text(paths["layers_csv"], layers.to_csv(index=False))
    atomic_write_json(paths["json"], {"meta": meta, "designs": [
        {"summary": row, "layers": lrs, "tools": tool_results(r)} for row, lrs, r in zip(rows, layer_lists, results)]})
    atomic_write_bytes(paths["png"], png)
    atomic_write_text(paths["html"], _html(df, layers, png, meta))
    return paths
