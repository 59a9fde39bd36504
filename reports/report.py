"""Assemble measured (synthesis, place-and-route, simulation) and modelled (energy) figures
for one or more designs into CSV + JSON tables, PNG plots and one self-contained HTML page.
"""
from __future__ import annotations

import base64
import html
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from quantmodels.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from quantmodels.ir import IRModel
from sim.harness import HarnessPorts
from sim.tools import tool_versions

from .energy import energy_table, float32_energy, model_energy
from .energy_constants import CITATION, DERIVED_RULES, HOROWITZ_PJ, PJ_PER_TOGGLE
from .memory import model_memory
from .pnr import PNR_FAMILIES, place_and_route
from .synth import family, layer_area, synthesize

AREA_KEYS = ("luts", "ffs", "brams", "dsps", "carries")


@dataclass
class DesignInput:
    """One generated design to report on."""

    label: str  #: e.g. "W1A1 xnor_popcount"
    model: IRModel
    verilog: Path
    ports: HarnessPorts
    cycles_per_image: int  #: initiation interval from the hardware generator
    latency_cycles: int | None = None
    sim: dict | None = None  #: RegressionResult.to_json() if a simulation was run
    extra: dict = field(default_factory=dict)
    layer_cycles: list[int] | None = None  #: compute cycles per layer (hw.json layer_cycles)
    foldings: list | None = None  #: hw.folding.Folding per layer: enables the area estimator columns
    activity_samples: np.ndarray | None = None  #: raw uint8 images for the activity-energy run


def _default_progress(msg: str) -> None:
    print(msg, flush=True)


def pnr_families(targets: tuple[str, ...]) -> list[str]:
    """Families to place and route: those among the targets that nextpnr supports (ice40 if none)."""
    return [f for f in PNR_FAMILIES if any(family(t) == f for t in targets)] or ["ice40"]


def _timing(design: DesignInput, row: dict, raw: dict, targets: tuple[str, ...],
            progress: Callable[[str], None]) -> None:
    """fmax per family (measured) -> frames/s = fmax / cycles per image, latency in microseconds."""
    p = design.ports
    for fam in pnr_families(targets):
        progress(f"  place-and-route {design.label} (nextpnr-{fam}) ...")
        r = place_and_route(fam, design.verilog, p.dut, p.in_width, p.class_width, p.logits_width)
        raw["pnr"] = raw["pnr"] or r.to_json()  # the first family, as before
        raw["pnr_by_family"][fam] = r.to_json()
        row[f"measured_{fam}_device"] = r.device
        row[f"measured_{fam}_fmax_mhz"] = r.fmax_mhz
        row[f"measured_{fam}_frames_per_s"] = r.fmax_mhz * 1e6 / design.cycles_per_image if r.fmax_mhz else None
        row[f"measured_{fam}_latency_us"] = (design.latency_cycles / r.fmax_mhz
                                             if r.fmax_mhz and design.latency_cycles else None)
        row["pnr_note" if fam == "ice40" else f"pnr_{fam}_note"] = r.note


def _estimates(design: DesignInput, targets: tuple[str, ...]) -> dict[str, list[dict]]:
    """MODEL area per layer per calibrated target (empty without foldings or constants)."""
    from .estimator import calibrated_targets, estimate

    if not design.foldings:
        return {}
    ok = set(calibrated_targets())
    return {t: [estimate(L, f, t) for L, f in zip(design.model.layers, design.foldings)]
            for t in targets if t in ok}


def collect(design: DesignInput, targets: tuple[str, ...] = ("ice40", "xilinx"), pnr: bool = True,
            progress: Callable[[str], None] = _default_progress, per_layer_area: bool = True,
            synth: bool = True) -> dict:
    """All figures for one design: a flat summary row + per-layer rows + raw tool results.

    Measured columns start with ``measured_``, modelled ones with ``model_``. Per target:
    flattened cell counts (``measured_<t>_luts`` ...), per-layer counts with the hierarchy
    kept (layer rows; their sum is ``measured_<t>_luts_hier_sum``) and, where calibrated,
    the analytic estimate (``model_est_<t>_luts`` ...). Timing per nextpnr family among the
    targets. Activity energy when ``design.activity_samples`` is given. ``per_layer_area=False``
    skips the hierarchical Yosys run (one per target), e.g. for sweeps that need totals only.
    ``synth=False`` runs no Yosys/nextpnr at all (the estimate still is): a sweep's pre-screened point.
    """
    m = design.model
    lc = design.layer_cycles
    row: dict = {"design": design.label, "method": m.method,
                 "kinds": "+".join(sorted({L.kind for L in m.layers})),
                 "layers": "-".join([str(m.input.features)] + [str(L.out_features) for L in m.layers]),
                 "weight_bits": max(L.weight_bits for L in m.layers),
                 "act_bits": max(L.input_bits for L in m.layers),
                 "test_accuracy": m.meta.get("golden_test_accuracy"),
                 "seed": m.meta.get("seed"),
                 "cycles_per_image": design.cycles_per_image,
                 "latency_cycles": design.latency_cycles,
                 "slowest_layer_cycles": max(lc) if lc else None,
                 "synthesized": synth}
    raw: dict = {"synth": {}, "pnr": None, "pnr_by_family": {}, "layer_area": {}, "activity": None}
    per_layer: dict[str, dict] = {L.name: {} for L in m.layers}
    per_layer["argmax"] = {}
    for t in targets if synth else ():
        progress(f"  synthesizing {design.label} for {t} (yosys) ...")
        s = synthesize(design.verilog, design.ports.dut, t)
        raw["synth"][t] = s.to_json()
        for k in AREA_KEYS:
            row[f"measured_{t}_{k}"] = getattr(s, k)
        if not per_layer_area:
            continue
        la = layer_area(design.verilog, design.ports.dut, t)
        raw["layer_area"][t] = la
        row[f"measured_{t}_luts_hier_sum"] = sum(v["luts"] for v in la.values())
        for name, counts in la.items():
            if name in per_layer:
                per_layer[name].update({f"measured_{t}_{k}": counts[k] for k in AREA_KEYS})
    for t, ests in _estimates(design, targets).items():
        for L, e in zip(m.layers, ests):
            per_layer[L.name].update({f"model_est_{t}_{k}": e[k] for k in ("luts", "ffs", "brams", "dsps")})
        for k in ("luts", "ffs", "brams", "dsps"):  # layers only: the argmax stage is not modelled
            row[f"model_est_{t}_{k}"] = sum(e[k] for e in ests)
    if pnr and synth:
        _timing(design, row, raw, targets, progress)
    if design.sim:
        row["measured_sim_images"] = design.sim["n_images"]
        row["measured_sim_mismatches"] = design.sim["mismatches"]
        row["measured_sim_cycles_per_image"] = design.sim["cycles_per_image"]
    mem = model_memory(m)
    row["memory_bits"] = mem.total_bits
    row["memory_float32_bits"] = mem.float32_bits
    row["memory_int8_bits"] = mem.int8_bits
    row["memory_saving_vs_float32"] = mem.float32_bits / mem.total_bits
    energies = model_energy(m)
    row["model_energy_pj"] = sum(e.total_pj for e in energies)
    row["model_energy_compute_pj"] = sum(e.compute_pj for e in energies)
    row["model_energy_memory_pj"] = sum(e.memory_pj for e in energies)
    row["model_energy_ops_pj"] = row["model_energy_pj"]  # the op-count term, named beside the activity term
    row["model_energy_float32_pj"] = float32_energy(m)
    if design.activity_samples is not None and len(design.activity_samples):
        from .activity import measure_activity

        progress(f"  activity: traced Verilator run of {design.label} on {len(design.activity_samples)} images ...")
        act = measure_activity(m, design.verilog, design.ports, design.activity_samples,
                               expected_cycles=design.cycles_per_image + (design.latency_cycles or 0))
        raw["activity"] = act.to_json()
        row["measured_activity_images"] = act.n_images
        row["measured_activity_bit_exact"] = act.bit_exact
        row["measured_toggles_per_image"] = sum(act.toggles.values())
        row["model_energy_activity_pj"] = sum(act.energy_pj.values())
        for name, tog in act.toggles.items():
            if name in per_layer:
                per_layer[name]["measured_toggles_per_image"] = tog
                per_layer[name]["model_energy_activity_pj"] = act.energy_pj[name]
    layers = []
    for i, (L, lm, le) in enumerate(zip(m.layers, mem.layers, energy_table(m))):
        layers.append({"design": design.label, "layer": L.name, "op": L.op, "kind": L.kind,
                       "in": L.in_features, "out": L.out_features, "macs": L.macs,
                       "folding": str(design.foldings[i]) if design.foldings else None,
                       "cycles": lc[i] if lc else None,
                       "weight_bits": lm.weight_bits, "threshold_bits": lm.threshold_bits,
                       "bias_bits": lm.bias_bits, "table_bits": lm.table_bits,
                       **{k: v for k, v in le.items() if k not in ("layer", "kind")},
                       "model_energy_ops_pj": le["model_total_pj"], **per_layer[L.name]})
    if per_layer["argmax"]:  # the argmax stage's measured area, so per-layer rows add up
        layers.append({"design": design.label, "layer": "argmax", "kind": "argmax", **per_layer["argmax"]})
    return {"row": row, "layers": layers, "raw": raw}


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


def write_report(designs: list[DesignInput], out_dir: str | Path, targets: tuple[str, ...] = ("ice40", "xilinx"),
                 pnr: bool = True, progress: Callable[[str], None] = _default_progress) -> dict[str, Path]:
    """Collect every design's figures and write CSV, JSON, PNG and HTML into ``out_dir``."""
    out = Path(out_dir)
    results = [collect(d, targets, pnr, progress) for d in designs]
    df = pd.DataFrame([r["row"] for r in results])
    layers = pd.DataFrame([lr for r in results for lr in r["layers"]])
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
        {"summary": r["row"], "layers": r["layers"], "tools": r["raw"]} for r in results]})
    atomic_write_bytes(paths["png"], png)
    atomic_write_text(paths["html"], _html(df, layers, png, meta))
    return paths
