"""Sweep outputs: Pareto plots (PNG + SVG) and one self-contained HTML report.

Input is the sweep table (one row per design point) and its per-layer table; nothing here
runs a tool. Measured columns (``measured_*``: Yosys, nextpnr, Verilator) and modelled
columns (``model_*``: the energy MODEL of ``energy_constants.py``) are shown apart.
"""
from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd

from quantmodels.atomic import atomic_write_bytes, atomic_write_text

from .energy_constants import CITATION
from .pareto import pareto_front_order, pareto_mask
from .present import html_table

#: The Pareto plots: (name, cost column, x label, what the cost is).
PLOTS = (
    ("energy", "model_energy_pj", "energy per inference, pJ (MODEL: Horowitz ISSCC 2014, 45 nm)", "modelled"),
    ("luts", "measured_luts", "LUTs (Yosys, MEASURED; LUT4 on ice40, LUT6 on xilinx)", "measured"),
    ("memory", "memory_bits", "parameter memory, bits (weights + thresholds + tables)", "counted"),
)
#: Methods drawn as the multiplier baseline.
BASELINE_METHODS = ("int8",)
_MARKERS = "osD^v<>pPX*h"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _model_representatives(df: pd.DataFrame) -> np.ndarray:
    """One row per trained model (its fewest-LUT hardware): energy and memory are properties of
    the model, so its fold/target variants would otherwise all tie on those fronts."""
    if "train_key" not in df.columns:
        return np.arange(len(df))
    luts = df["measured_luts"].astype(float).fillna(np.inf) if "measured_luts" in df else pd.Series(0.0, df.index)
    reps = [int(np.asarray(idx)[np.argmin(luts.to_numpy()[idx])]) for idx in df.groupby("train_key", sort=False).indices.values()]
    return np.array(sorted(reps), dtype=int)


def front_masks(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per plot, which rows are Pareto-optimal: LUT fronts per target (LUT4 != LUT6) over every
    hardware variant; energy and memory fronts over one representative row per model."""
    out: dict[str, np.ndarray] = {}
    acc = df["test_accuracy"].astype(float).to_numpy() if len(df) else np.zeros(0)
    for name, col, _, _ in PLOTS:
        m = np.zeros(len(df), dtype=bool)
        if col in df.columns and len(df):
            groups = df.groupby("target").indices if name == "luts" else {"models": _model_representatives(df)}
            for idx in groups.values():
                idx = np.asarray(idx)
                m[idx] = pareto_mask(df[col].astype(float).to_numpy()[idx], acc[idx])
        out[name] = m
    return out


def _scatter(df: pd.DataFrame, name: str, col: str, xlabel: str, mask: np.ndarray):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    acc = 100 * df["test_accuracy"].astype(float)
    cost = df[col].astype(float)
    methods = list(dict.fromkeys(df["method"]))
    colour_by = "target" if name == "luts" else "method"
    colours = {v: f"C{i}" for i, v in enumerate(dict.fromkeys(df[colour_by]))}
    for i, m in enumerate(methods):
        sel = (df["method"] == m).to_numpy()
        base = m in BASELINE_METHODS
        ax.scatter(cost[sel], acc[sel], marker=_MARKERS[i % len(_MARKERS)], s=60 if base else 36,
                   c=[colours[v] for v in df.loc[sel, colour_by]], edgecolors="k" if base else "none",
                   alpha=0.85, label=f"{m} (multiplier baseline)" if base else m)
    est = _prescreened(df)
    if name == "luts" and est.any() and "model_est_luts" in df:
        ax.scatter(df.loc[est, "model_est_luts"].astype(float), acc[est], marker="x", s=30, c="grey",
                   label="pre-screened out, not synthesized (estimator LUTs, MODEL)")
    groups = df.groupby("target").indices if name == "luts" else {None: _model_representatives(df)}
    for g, idx in groups.items():
        idx = np.asarray(idx)
        order = idx[pareto_front_order(cost.to_numpy()[idx], acc.to_numpy()[idx])]
        if len(order):
            ax.step(cost.to_numpy()[order], acc.to_numpy()[order], where="post", lw=1.2,
                    color=colours.get(g, "k") if g else "k", ls="--",
                    label=f"Pareto front ({g})" if g else "Pareto front")
    ax.scatter(cost[mask], acc[mask], s=140, facecolors="none", edgecolors="crimson", lw=1.3,
               label="Pareto-optimal")
    # float32 / int8 references that need no hardware: the same network in float32 / int8
    refs = {"energy": [("model_energy_float32_pj", "float32 multiplier (model)")],
            "memory": [("memory_float32_bits", "float32"), ("memory_int8_bits", "int8")]}.get(name, [])
    for rcol, rlabel in refs:
        if rcol in df.columns:
            for net, v in df.groupby("network")[rcol].first().items():
                ax.axvline(float(v), color="grey", ls=":" if "int8" in rlabel else "-.", lw=1)
                ax.text(float(v), 0.03, f" {rlabel} {net}", rotation=90, fontsize=7, va="bottom", ha="right",
                        color="dimgrey", transform=ax.get_xaxis_transform())
    if (cost > 0).all() and len(cost) and cost.max() / max(cost.min(), 1e-12) > 20 or refs:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("test accuracy, % (golden integer model)", fontsize=9)
    ax.set_title(f"accuracy vs {name}: higher and further left is better", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _prescreened(df: pd.DataFrame) -> np.ndarray:
    """Rows the sweep's estimator pre-screen left unsynthesized."""
    if "synthesized" not in df or not len(df):
        return np.zeros(len(df), dtype=bool)
    return ~df["synthesized"].fillna(True).astype(bool).to_numpy()


def estimator_check(df: pd.DataFrame) -> pd.DataFrame:
    """Synthesized points the estimator also covers: estimated vs measured cells and the LUT error
    in % of the measurement (the whole-design check of the MODEL, beside its calibration table)."""
    need = {"measured_luts", "model_est_luts"}
    if not need <= set(df.columns) or not len(df):
        return pd.DataFrame()
    synth = ~_prescreened(df)
    rows = df[synth & df["model_est_luts"].notna() & df["measured_luts"].notna()]
    out = pd.DataFrame({"design": rows["design"], "target": rows["target"],
                        "measured_luts": rows["measured_luts"], "model_est_luts": rows["model_est_luts"],
                        "lut_error_pct": 100 * (rows["model_est_luts"] - rows["measured_luts"])
                        / rows["measured_luts"].clip(lower=1)})
    for m in ("ffs", "brams", "dsps"):
        if f"measured_{m}" in rows and f"model_est_{m}" in rows:
            out[f"measured_{m}"], out[f"model_est_{m}"] = rows[f"measured_{m}"], rows[f"model_est_{m}"]
    return out


def _layer_bars(df: pd.DataFrame, layers: pd.DataFrame, designs: list[str]):
    """Stacked per-layer modelled energy and memory bits of the given designs."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * max(3, len(designs)) + 1.5), squeeze=False)
    sub = layers[layers["design"].isin(designs)]
    for ax, (col, title) in zip(axes[0], (("model_total_pj", "energy per inference, pJ (MODEL)"),
                                          ("memory_bits_layer", "parameter memory, bits"))):
        pivot = sub.pivot_table(index="design", columns="layer", values=col, aggfunc="first").reindex(designs)
        left = np.zeros(len(pivot))
        for i, layer in enumerate(pivot.columns):
            vals = pivot[layer].fillna(0).to_numpy(dtype=float)
            ax.barh(range(len(pivot)), vals, left=left, color=f"C{i}", label=layer)
            left += vals
        ax.set_yticks(range(len(pivot)), pivot.index, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("per-layer breakdown of the Pareto-optimal designs", fontsize=10)
    fig.tight_layout()
    return fig


def _save(fig, out: Path, stem: str) -> tuple[Path, Path, bytes]:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    png = buf.getvalue()
    sbuf = io.BytesIO()
    fig.savefig(sbuf, format="svg")
    plt.close(fig)
    p1 = atomic_write_bytes(out / "plots" / f"{stem}.png", png)
    p2 = atomic_write_bytes(out / "plots" / f"{stem}.svg", sbuf.getvalue())
    return p1, p2, png


def _table(frame: pd.DataFrame) -> str:
    return html_table(frame)


def simulated(df: pd.DataFrame) -> tuple[int, int, int]:
    """(simulations, simulated images, mismatching images), each hardware variant counted once: the
    points of one variant on several synthesis targets share its one simulation."""
    if "measured_sim_images" not in df or not len(df):
        return 0, 0, 0
    sims = df.drop_duplicates("hw_key") if "hw_key" in df else df
    sims = sims[sims["measured_sim_images"].notna()]
    bad = int(sims["measured_sim_mismatches"].fillna(0).sum()) if "measured_sim_mismatches" in sims else 0
    return len(sims), int(sims["measured_sim_images"].sum()), bad


def _html(df: pd.DataFrame, layers: pd.DataFrame, meta: dict, pngs: dict[str, bytes], fronts: dict) -> str:
    on_any = np.zeros(len(df), dtype=bool)
    for m in fronts.values():
        on_any |= m
    par = df[on_any].copy()
    par.insert(1, "front", [", ".join(n for n, m in fronts.items() if m[i]) for i in np.flatnonzero(on_any)])
    pcols = [c for c in ("design", "front", "target", "status", "test_accuracy", "measured_luts", "measured_dsps",
                         "measured_brams", "measured_fmax_mhz", "model_energy_pj", "memory_bits") if c in par]
    cmds = "".join(
        f"<li><b>{html.escape(r['design'])}</b><pre>cd {html.escape(meta.get('out', '.'))}\n"
        f"{html.escape(r['cmd_train'])}\n{html.escape(r['cmd_verilog'])}</pre></li>"
        for _, r in par.iterrows())
    ident = [c for c in ("design", "method", "network", "fold", "foldings", "target", "status", "seed", "kinds",
                         "weight_bits", "act_bits", "test_accuracy", "float_test_accuracy") if c in df]
    measured = ["design"] + [c for c in df.columns if c.startswith("measured_")]
    modelled = ["design"] + [c for c in df.columns if c.startswith("model_")]
    memory = ["design"] + [c for c in df.columns if c.startswith("memory_")]
    imgs = "".join(f'<figure><img alt="{k}" src="data:image/png;base64,{base64.b64encode(v).decode()}">'
                   f"</figure>" for k, v in pngs.items())
    n_runs, n_sim, n_bad = simulated(df)
    exact = (f'<p class="ok">Every point bit-exact: {n_sim:,} simulated images in {n_runs:,} simulations, one per '
             f"hardware variant (Verilator RTL vs golden integer model, classes and logits), 0 mismatches.</p>"
             if n_bad == 0 else
             f'<p class="bad">{n_bad:,} MISMATCHING images over {n_sim:,} simulated: see the mismatches column.</p>')
    skipped = pd.DataFrame(meta.get("skipped", []))
    pre = _prescreened(df)
    ecols = [c for c in ("design", "target", "test_accuracy", "model_est_luts", "model_est_ffs", "model_est_dsps",
                         "model_energy_pj", "memory_bits") if c in df]
    prescreen = (f"<h2>Pre-screened out (estimated, not synthesized)</h2><p>The sweep ran with "
                 f"<code>synthesize = \"promising\"</code>: the analytic area estimator (a MODEL calibrated "
                 f"against Yosys) showed these {int(pre.sum())} points dominated by a point at least as accurate "
                 f"and cheaper by more than the {meta.get('prescreen_margin', 0):.0%} margin, so they were not "
                 f"synthesized. They were still trained and simulated bit-exact.</p>{_table(df.loc[pre, ecols])}"
                 if pre.any() else "")
    chk = estimator_check(df)
    estimator = (f"<h2>Area estimator vs synthesis (whole designs)</h2><p>The analytic estimator (a MODEL, "
                 f"calibrated per matrix-vector unit: benchmarks/estimator_calibration.py) against Yosys on "
                 f"every synthesized point of a calibrated target: mean |LUT error| "
                 f"{chk['lut_error_pct'].abs().mean():.1f} %, max {chk['lut_error_pct'].abs().max():.1f} %. "
                 f"It models the layers' units, not the glue between them.</p>{_table(chk)}" if len(chk) else "")
    tools = ", ".join(f"{k} {v}" for k, v in meta.get("tool_versions", {}).items())
    failed = ""
    if "failed_steps" in df and df["failed_steps"].notna().any():
        items = []
        for r in df[df["failed_steps"].notna()].to_dict("records"):
            logs = [x for x in str(r.get("failure_logs") or "").split("; ") if x]
            links = ", ".join(f'<a href="{html.escape(x)}">log</a>' for x in logs)
            items.append(f"<li><b>{html.escape(r['design'])}</b>: {html.escape(r['failed_steps'])} failed "
                         f"({links or 'no log'})</li>")
        failed = f"<h2>Tool steps that failed (recorded as a status, the rest of the sweep is complete)</h2><ul>{''.join(items)}</ul>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>lowbit sweep</title>
<style>body{{font-family:sans-serif;max-width:1300px;margin:2em auto;color:#222}}
table.t{{border-collapse:collapse;font-size:11px;margin-bottom:1em}} .t td,.t th{{border:1px solid #ccc;padding:2px 5px}}
h2{{border-bottom:1px solid #ddd}} .model{{background:#fff8e6;padding:.5em}} .meas{{background:#eef6ff;padding:.5em}}
figure{{display:inline-block;margin:.3em}} img{{max-width:620px}} pre{{background:#f4f4f4;padding:.4em;font-size:11px}}
.ok{{color:#276749}} .bad{{color:#c53030;font-weight:bold}}</style></head><body>
<h1>lowbit design-space sweep</h1>
<p>Config <code>{html.escape(meta.get('config', ''))}</code>; dataset {html.escape(str(meta.get('dataset')))};
seeds {meta.get('seeds')}; {len(df)} design points; {len(skipped)} skipped combinations;
bit-exactness sample {meta.get('sim_images')} test images per hardware variant;
place-and-route {'on (iCE40)' if meta.get('pnr') else 'off'}. Generated {time.strftime('%Y-%m-%d %H:%M:%S')}.</p>
<p>Tools: {html.escape(tools)}.</p>{exact}
<p>Accuracy is the golden integer model on the whole test set (the RTL equals it bit for bit on
the simulated sample). Energy is a <b>MODEL</b> ({html.escape(CITATION)}), not a measurement;
LUT/DSP/BRAM counts and fmax are <b>measured</b> by Yosys/nextpnr on the generated Verilog.</p>
{failed}<h2>Pareto plots</h2>{imgs}
<h2>Pareto-optimal designs</h2>{_table(par[pcols]) if len(par) else '<p>none</p>'}
<p>Each is rebuilt by these commands, run in the sweep directory:</p><ul>{cmds}</ul>
<h2>All design points</h2>{_table(df[ident])}
<div class="meas"><h2>Measured (Yosys synthesis, nextpnr place-and-route, Verilator simulation)</h2>
{_table(df[measured])}</div>
<div class="model"><h2>Modelled energy (a MODEL, not a measurement)</h2>{_table(df[modelled])}</div>
<h2>Memory (counted from the IR)</h2>{_table(df[memory])}
<h2>Per layer</h2>{_table(layers)}
{estimator}
{prescreen}
<h2>Skipped combinations</h2>{_table(skipped) if len(skipped) else '<p>none</p>'}
</body></html>"""


def write_sweep_report(df: pd.DataFrame, layers: pd.DataFrame, meta: dict, out_dir: str | Path) -> dict[str, Path]:
    """Plots (PNG + SVG under ``plots/``) and ``report.html`` for a sweep table."""
    out = Path(out_dir)
    meta = {**meta, "out": str(out)}
    paths: dict[str, Path] = {}
    pngs: dict[str, bytes] = {}
    fronts = front_masks(df)
    if len(df):
        for name, col, xlabel, _ in PLOTS:
            if col in df.columns and df[col].notna().any():
                p1, p2, png = _save(_scatter(df, name, col, xlabel, fronts[name]), out, f"accuracy_vs_{name}")
                paths[f"plot_{name}"], paths[f"plot_{name}_svg"], pngs[name] = p1, p2, png
        on_any = np.logical_or.reduce(list(fronts.values()))
        designs = list(dict.fromkeys(df.loc[on_any, "design"]))[:12]
        if len(layers) and designs:
            lay = layers.assign(memory_bits_layer=layers[[c for c in ("weight_bits", "threshold_bits", "bias_bits",
                                                                         "table_bits") if c in layers]].sum(axis=1))
            p1, p2, png = _save(_layer_bars(df, lay, designs), out, "per_layer")
            paths["plot_layers"], paths["plot_layers_svg"], pngs["layers"] = p1, p2, png
    paths["html"] = atomic_write_text(out / "report.html", _html(df, layers, meta, pngs, fronts))
    return paths
