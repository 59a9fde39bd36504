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

import pandas as pd

from quantmodels.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from quantmodels.ir import IRModel
from sim.harness import HarnessPorts
from sim.tools import tool_versions

from .energy import energy_table, float32_energy, model_energy
from .energy_constants import CITATION, DERIVED_RULES, HOROWITZ_PJ
from .memory import model_memory
from .pnr import place_and_route_ice40
from .synth import synthesize


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


def _default_progress(msg: str) -> None:
    print(msg, flush=True)


def collect(design: DesignInput, targets: tuple[str, ...] = ("ice40", "xilinx"), pnr: bool = True,
            progress: Callable[[str], None] = _default_progress) -> dict:
    """All figures for one design: a flat summary row + per-layer rows + raw tool results."""
    m = design.model
    row: dict = {"design": design.label, "method": m.method,
                 "kinds": "+".join(sorted({L.kind for L in m.layers})),
                 "layers": "-".join([str(m.input.features)] + [str(L.out_features) for L in m.layers]),
                 "weight_bits": max(L.weight_bits for L in m.layers),
                 "act_bits": max(L.input_bits for L in m.layers),
                 "test_accuracy": m.meta.get("golden_test_accuracy"),
                 "seed": m.meta.get("seed"),
                 "cycles_per_image": design.cycles_per_image,
                 "latency_cycles": design.latency_cycles}
    raw: dict = {"synth": {}, "pnr": None}
    for t in targets:
        progress(f"  synthesizing {design.label} for {t} (yosys) ...")
        s = synthesize(design.verilog, design.ports.dut, t)
        raw["synth"][t] = s.to_json()
        for k in ("luts", "ffs", "brams", "dsps", "carries"):
            row[f"measured_{t}_{k}"] = getattr(s, k)
    if pnr:
        progress(f"  place-and-route {design.label} (nextpnr-ice40) ...")
        p = place_and_route_ice40(design.verilog, design.ports.dut, design.ports.in_width,
                                  design.ports.class_width, design.ports.logits_width)
        raw["pnr"] = p.to_json()
        row["measured_ice40_device"] = p.device
        row["measured_ice40_fmax_mhz"] = p.fmax_mhz
        row["measured_ice40_frames_per_s"] = (p.fmax_mhz * 1e6 / design.cycles_per_image
                                              if p.fmax_mhz else None)
        row["pnr_note"] = p.note
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
    row["model_energy_float32_pj"] = float32_energy(m)
    layers = []
    for L, lm, le in zip(m.layers, mem.layers, energy_table(m)):
        layers.append({"design": design.label, "layer": L.name, "kind": L.kind,
                       "in": L.in_features, "out": L.out_features,
                       "weight_bits": lm.weight_bits, "threshold_bits": lm.threshold_bits,
                       "bias_bits": lm.bias_bits, "table_bits": lm.table_bits, **{k: v for k, v in le.items() if k not in ("layer", "kind")}})
    return {"row": row, "layers": layers, "raw": raw}


def _bar_plot(df: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [(c, t) for c, t in [
        ("measured_xilinx_luts", "LUT6 (Yosys xilinx, measured)"),
        ("measured_ice40_luts", "LUT4 (Yosys ice40, measured)"),
        ("model_energy_pj", "energy / inference, pJ (MODEL, Horowitz 45 nm)"),
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
<h2>Per layer</h2>{table(layers)}
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
        for col in ("measured_xilinx_luts", "measured_ice40_luts", "model_energy_pj", "memory_bits"):
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
