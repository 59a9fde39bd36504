"""Assemble measured (synthesis, place-and-route, simulation) and modelled (energy) figures
for one or more designs into CSV + JSON tables, PNG plots and one self-contained HTML page.
"""
from __future__ import annotations

import base64
import html
import io
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, TypeVar

import pandas as pd

from quantmodels.errors import ConfigError
from quantmodels.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from sim.provenance import git_commit
from sim.tools import ToolError, tool_versions

from .activity import measure_activity
from .energy import float32_energy, model_energy
from .energy_constants import CITATION, DERIVED_RULES, HOROWITZ_PJ, PJ_PER_TOGGLE
from .estimator import ModelEstimate, calibrated_targets, estimate_model
from .network_estimate import estimate_network
from .memory import model_memory
from .pnr import PNR_FAMILIES, PnrFamily, place_and_route
from .records import DesignInput, DesignResult, StepFailure, Timing
from .synth import ModuleArea, SynthResult, Target, family, layer_area, synthesize
from .present import DASH, WHERE, headline, headline_html as html_headline, html_table, missing
from .tables import layer_rows, summary_row, tool_results


T = TypeVar("T")


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
    """MODEL area per calibrated target (none without foldings or constants): the whole network as
    built (its memory style and target clock's register stages, converters and argmax) when the
    generator's record is known, else the layers' units with default options."""
    if not design.foldings:
        return {}
    ok = set(calibrated_targets())
    b = design.build
    try:
        if b is None:
            return {t: estimate_model(design.model.layers, design.foldings, t) for t in targets if t in ok}
        return {t: estimate_network(design.model, design.foldings, t, b.mem_style, b.clock_mhz, b.family,
                                    b.popcount).estimate for t in targets if t in ok}
    except ConfigError:  # not estimable (e.g. conv layers: the estimator models dense units): no columns
        return {}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "design"


def _keep_log(src: str | None, text: str, log_dir: Path | None, name: str) -> str | None:
    """The tool's whole output where the report can link it: ``src`` (the tool's log) copied into
    ``log_dir`` as ``name``, or ``text`` written there when the tool left no log."""
    if log_dir is None:
        return src
    dest = log_dir / name
    if src and Path(src).is_file():
        atomic_write_bytes(dest, Path(src).read_bytes())
    else:
        atomic_write_text(dest, text + "\n")
    return str(dest)


def _attempt(fn: Callable[[], T], step: str, where: str, label: str, failures: list[StepFailure],
             log_dir: Path | None, progress: Callable[[str], None]) -> T | None:
    """Run one tool step; a ToolError becomes a recorded StepFailure (status + log), not an abort."""
    try:
        return fn()
    except ToolError as e:
        msg = (str(e).splitlines() or [type(e).__name__])[0]
        name = f"{_slug(label)}-{_slug(step)}{'-' + _slug(where) if where else ''}.log"
        log = _keep_log(getattr(e, "log", None), str(e), log_dir, name)
        failures.append(StepFailure(step, where, msg, log))
        progress(f"  {step} {where} of {label} FAILED (recorded in the report, log {log}): {msg[:200]}")
        return None


def collect(design: DesignInput, targets: tuple[str, ...] = (Target.ICE40, Target.XILINX), pnr: bool = True,
            progress: Callable[[str], None] = _default_progress, per_layer_area: bool = True,
            synth: bool = True, log_dir: str | Path | None = None) -> DesignResult:
    """Run every measurement and model on one design.

    Per target: Yosys cell counts, the per-layer counts with the hierarchy kept
    (``per_layer_area=False`` skips that second Yosys run, e.g. for sweeps that need totals
    only) and, where calibrated, the analytic estimate. Timing per nextpnr family among the
    targets. Activity energy when ``design.activity_samples`` is given. ``synth=False`` runs
    no Yosys/nextpnr at all (the estimate still is): a sweep's pre-screened point.
    A tool step that fails is recorded in ``failures`` (its log kept in ``log_dir`` when given)
    and the other steps still run: one crash does not lose the other figures.
    """
    targets = tuple(Target(t) for t in targets)
    log_dir = Path(log_dir) if log_dir is not None else None
    m = design.model
    failures: list[StepFailure] = []
    synth_res: dict[Target, SynthResult] = {}
    areas: dict[Target, dict[str, ModuleArea]] = {}

    def attempt(fn, step, where):
        return _attempt(fn, step, str(where), design.label, failures, log_dir, progress)

    for t in targets if synth else ():
        progress(f"  synthesizing {design.label} for {t} (yosys) ...")
        s = attempt(lambda: synthesize(design.verilog, design.ports.dut, t), "synthesis", t)
        if s is None:
            continue
        synth_res[t] = s
        if per_layer_area:
            la = attempt(lambda: layer_area(design.verilog, design.ports.dut, t), "per-layer area", t)
            if la is not None:
                areas[t] = la
    timing = {}
    for fam in pnr_families(targets) if pnr and synth else ():
        if fam in targets and fam not in synth_res:  # its synthesis failed: the status says so already
            continue
        progress(f"  place-and-route {design.label} (nextpnr-{fam}) ...")
        tm = attempt(lambda: _timing(design, fam), "place-and-route", fam)
        if tm is not None:
            if tm.pnr.log:  # nextpnr's output of devices it could not place on, beside the report
                log = _keep_log(tm.pnr.log, "", log_dir, f"{_slug(design.label)}-nextpnr-{fam}.log")
                tm = replace(tm, pnr=replace(tm.pnr, log=log))
            timing[fam] = tm
    act = None
    if design.activity_samples is not None and len(design.activity_samples):
        progress(f"  activity: traced Verilator run of {design.label} on {len(design.activity_samples)} images ...")
        act = attempt(lambda: measure_activity(m, design.verilog, design.ports, design.activity_samples,
                                               expected_cycles=design.cycles_per_image + (design.latency_cycles or 0)),
                      "activity", "")
    return DesignResult(design, synth, model_memory(m), tuple(model_energy(m)), float32_energy(m), synth_res, areas,
                        _estimates(design, targets), timing, act, tuple(failures), pnr_requested=pnr)


def _plot_metrics(df: pd.DataFrame, targets: tuple[str, ...]) -> list[tuple[str, str]]:
    """Bar panels: per target the LUTs and every other resource some design uses (DSP, BRAM: what
    the multiplier baseline needs), then modelled energy and memory."""
    out = []
    for t in targets:
        where = WHERE.get(t, t)
        for k, name in (("luts", "LUTs"), ("dsps", "DSP blocks"), ("brams", "BRAM blocks")):
            col = f"measured_{t}_{k}"
            if col in df.columns and df[col].notna().any() and (k == "luts" or df[col].fillna(0).gt(0).any()):
                out.append((col, f"{name}, {where} (Yosys, measured)"))
    out += [(c, t) for c, t in (("model_energy_pj", "energy/frame, pJ (MODEL: op counts)"),
                                ("model_energy_activity_pj", "energy/frame, pJ (MODEL: toggles)"),
                                ("memory_bits", "parameter memory, bits (counted)"))
            if c in df.columns and df[c].notna().any()]
    return out


def _bar_plot(df: pd.DataFrame, targets: tuple[str, ...]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    metrics = _plot_metrics(df, targets)
    ncol = min(4, len(metrics) + 1)
    nrow = -(-(len(metrics) + 1) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.0 * ncol, 3.6 * nrow), squeeze=False)
    axes = list(axes.flat)
    colors = [f"C{i}" for i in range(len(df))]
    for ax, (col, title) in zip(axes, metrics):
        vals = df[col].astype(float)
        shown = vals.fillna(0.0)
        bars = ax.bar(range(len(df)), shown, color=colors)
        ax.set_xticks(range(len(df)), df["design"], rotation=20, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9, color="#8a5a00" if col.startswith("model_") else "black")
        if shown.min() > 0 and shown.max() / shown.min() > 50:
            ax.set_yscale("log")
        for b, v in zip(bars, vals):
            ax.annotate(DASH if pd.isna(v) else f"{v:,.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:,.2f}",
                        (b.get_x() + b.get_width() / 2, 0 if pd.isna(v) else v), ha="center", va="bottom", fontsize=7)
    ax = axes[len(metrics)]  # accuracy against modelled energy: what each design buys
    for i, r in enumerate(df.to_dict("records")):
        e, a = r.get("model_energy_pj"), r.get("test_accuracy")
        if not (missing(e) or missing(a)):
            ax.scatter([e], [100 * a], color=colors[i], s=50, label=r["design"])
            ax.annotate(r["design"], (e, 100 * a), fontsize=7, xytext=(4, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap on a short decade
    ax.tick_params(labelsize=8)
    ax.set_xlabel("energy/frame, pJ (MODEL)", fontsize=8)
    ax.set_ylabel("test accuracy, %", fontsize=8)
    ax.set_title("accuracy vs energy (MODEL; up and left is better)", fontsize=9, color="#8a5a00")
    ax.grid(alpha=0.3)
    for extra in axes[len(metrics) + 1:]:
        extra.axis("off")
    fig.suptitle("lowbit: low precision vs multiplier baseline (black titles measured, brown modelled)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _failures_html(results: list[DesignResult], out: Path) -> str:
    """Each failed tool step: design, step, the tool's error line and a link to its whole log."""
    items = []
    for r in results:
        for f in r.failures:
            link = ""
            if f.log:
                href = os.path.relpath(f.log, out)
                link = f' (<a href="{html.escape(href)}">log</a>)'
            items.append(f"<li><b>{html.escape(r.design.label)}</b>: {html.escape(f.step)} "
                         f"{html.escape(f.where)} failed{link}: <code>{html.escape(f.message[:300])}</code></li>")
        for fam, tm in r.timing.items():
            if tm.pnr.log:
                href = os.path.relpath(tm.pnr.log, out)
                items.append(f"<li><b>{html.escape(r.design.label)}</b>: nextpnr-{fam} on the parts it could not "
                             f"place on (<a href=\"{html.escape(href)}\">log</a>)</li>")
    return f"<h2>Tool logs</h2><ul>{''.join(items)}</ul>" if items else ""


def _html(df: pd.DataFrame, layers: pd.DataFrame, png: bytes, meta: dict, head: dict, logs: str) -> str:
    img = base64.b64encode(png).decode()
    measured = [c for c in df.columns if c.startswith("measured_")]
    modelled = [c for c in df.columns if c.startswith("model_")]
    status = [c for c in df.columns if c.startswith("status_")]
    ratios = [c for c in df.columns if "_vs_" in c and not c.startswith("memory_saving")]
    other = [c for c in df.columns if c not in measured + modelled + status + ratios + ["failed_steps"]]
    consts = "".join(f"<tr><td>{html.escape(k)}</td><td class='n'>{v:,.2f}</td></tr>" for k, v in HOROWITZ_PJ.items())
    rules = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in DERIVED_RULES.items())
    tools = ", ".join(f"{k} {v}" for k, v in meta["tool_versions"].items())
    ids = [c for c in ("design", "layer", "op", "kind", "in", "out", "folding", "cycles") if c in layers.columns]
    l_meas = [c for c in layers.columns if c.startswith("measured_")]
    l_model = [c for c in layers.columns if c.startswith("model_")]
    l_mem = [c for c in ("weight_bits", "threshold_bits", "bias_bits", "table_bits") if c in layers.columns]
    layer_tables = (f"<h3>Memory (counted from the IR)</h3>{html_table(layers, ids + l_mem)}"
                    f"<div class='meas'><h3>Measured per layer (Yosys cells, Verilator toggles)</h3>"
                    f"{html_table(layers, ids + l_meas)}</div>"
                    f"<div class='model'><h3>Modelled per layer (a MODEL: op-count energy, activity energy at "
                    f"{PJ_PER_TOGGLE * 1000:.2f} fJ per toggle, analytic area estimate)</h3>"
                    f"{html_table(layers, ids + l_model)}</div>")
    empty = "".join(f"<p class='bad'>Nothing produced: {html.escape(x)}</p>" for x in meta["nothing_produced"])
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>lowbit report</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}}
table.t{{border-collapse:collapse;font-size:12px;margin-bottom:.3em}} .t td,.t th{{border:1px solid #ccc;padding:3px 6px}}
.t td.n{{text-align:right;font-variant-numeric:tabular-nums}} .r{{color:#666;font-size:11px}} .foot{{font-size:11px;color:#555}}
h2{{border-bottom:1px solid #ddd}} .model{{background:#fff8e6;padding:.5em}} .meas{{background:#eef6ff;padding:.5em}}
.bad{{color:#c53030;font-weight:bold}}</style>
</head><body><h1>lowbit report</h1>
<p>Generated {html.escape(meta['generated'])} from lowbit commit {html.escape(meta['git_commit'])};
model seeds {html.escape(', '.join(map(str, meta['seeds'])))}. Tools: {html.escape(tools)}.</p>{empty}
<h2>Headline</h2>{html_headline(head)}
<h2>Status per design and target</h2>{html_table(df, ['design'] + status)}
{logs}
<img alt="comparison plot" style="max-width:100%" src="data:image/png;base64,{img}">
<h2>Designs</h2>{html_table(df, other)}
<div class="meas"><h2>Measured (Yosys synthesis, nextpnr place-and-route, Verilator simulation)</h2>
{html_table(df, ['design'] + measured)}</div>
<div class="model"><h2>Modelled energy (a MODEL, not a measurement)</h2>
{html_table(df, ['design'] + modelled)}
<p>Per-operation energies (pJ) from {html.escape(CITATION)}:</p><table class="t">{consts}</table>
<p>Derived rules:</p><ul>{rules}</ul></div>
{f"<h2>Ratios to the baseline</h2>{html_table(df, ['design'] + ratios)}" if ratios else ""}
<h2>Per layer</h2>
<p>Area per layer: Yosys with the module hierarchy kept (their sum is the "per-layer sum" column; a few
percent above the flattened totals above, which optimise across layers).</p>
{layer_tables}
</body></html>"""


def nothing_produced(results: list[DesignResult], targets: tuple[str, ...], pnr: bool) -> list[str]:
    """What the user asked for that gave no figure for any design, one line each: a target no design
    synthesized on, a family no design got a place-and-route answer for (placed or does not fit)."""
    out = []
    for t in targets:
        if not any(t in r.synth for r in results):
            out.append(f"target {t}: synthesis failed for every design")
    for fam in pnr_families(targets) if pnr else ():
        if not any(fam in r.timing for r in results) and any(r.synth for r in results):
            out.append(f"place-and-route {fam}: failed for every design")
    return out


def write_report(designs: list[DesignInput], out_dir: str | Path,
                 targets: tuple[str, ...] = (Target.ICE40, Target.XILINX), pnr: bool = True,
                 progress: Callable[[str], None] = _default_progress) -> dict[str, Path]:
    """Collect every design's figures and write CSV, JSON, PNG and HTML into ``out_dir``.

    A failed tool step is a status in the tables with its log under ``out_dir/logs``; everything
    else is still written. report.json's ``meta.nothing_produced`` lists requests that gave nothing."""
    out = Path(out_dir)
    targets = tuple(Target(t) for t in targets)
    results = [collect(d, targets, pnr, progress, log_dir=out / "logs") for d in designs]
    rows = [summary_row(r) for r in results]
    layer_lists = [layer_rows(r) for r in results]
    df = pd.DataFrame(rows)
    layers = pd.DataFrame([lr for lrs in layer_lists for lr in lrs])
    if len(df) > 1:
        base = df.iloc[-1]  # the last design is the baseline (the int8 MAC net)
        for col in [f"measured_{t}_{k}" for t in targets for k in ("luts", "dsps", "brams")] + [
                "model_energy_pj", "model_energy_activity_pj", "memory_bits"]:
            if col in df.columns and not missing(base.get(col)) and base.get(col):
                df[f"{col}_vs_{base['design']}"] = df[col] / base[col]
    fams = [f for f in pnr_families(targets) if f == family(targets[0])] if pnr else []
    head = headline(rows, targets[0], fams[0] if fams else None)
    meta = {"generated": time.strftime("%Y-%m-%d %H:%M:%S"), "git_commit": git_commit(),
            "seeds": [d.model.meta.get("seed") for d in designs], "tool_versions": tool_versions(),
            "targets": list(targets), "pnr": pnr, "nothing_produced": nothing_produced(results, targets, pnr),
            "energy_citation": CITATION, "energy_constants_pj": HOROWITZ_PJ,
            "energy_derived_rules": DERIVED_RULES}
    png = _bar_plot(df, targets)
    paths = {"csv": out / "summary.csv", "layers_csv": out / "layers.csv", "json": out / "report.json",
             "png": out / "comparison.png", "html": out / "report.html"}
    atomic_write_text(paths["csv"], df.to_csv(index=False))
    atomic_write_text(paths["layers_csv"], layers.to_csv(index=False))
    atomic_write_json(paths["json"], {"meta": meta, "headline": head, "designs": [
        {"summary": row, "layers": lrs, "tools": tool_results(r)} for row, lrs, r in zip(rows, layer_lists, results)]})
    atomic_write_bytes(paths["png"], png)
    atomic_write_text(paths["html"], _html(df, layers, png, meta, head, _failures_html(results, out)))
    return paths
