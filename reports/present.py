"""How report tables read in HTML: human headers with units, one number format, an em dash for a
missing figure, and the short headline table. CSV and JSON keep the machine keys of
:mod:`reports.tables`; only the HTML goes through here."""
from __future__ import annotations

import html
import math
import re

import pandas as pd

DASH = "\u2014"
#: The footnote under every table that shows a dash.
DASH_NOTE = (f"{DASH} no figure: the step was not run or produced none (not placed, so no fmax; no "
             f"activity run; a failed tool step); the design's status says which.")

#: Readable names of targets and families.
WHERE = {"ice40": "iCE40", "ice40-nodsp": "iCE40 no DSP", "xilinx": "Xilinx 7", "xilinx-nodsp": "Xilinx 7 no DSP",
         "ecp5": "ECP5", "ecp5-nodsp": "ECP5 no DSP", "generic": "generic gates", "sim": "simulation"}
#: Figure key -> (header, decimals; None = text). The unit is in the header.
FIGURES = {
    "luts": ("LUTs", 0), "ffs": ("flip-flops", 0), "brams": ("BRAM blocks", 1), "dsps": ("DSP blocks", 0),
    "carries": ("carry cells", 0), "lutrams": ("LUT-RAM cells", 0), "luts_hier_sum": ("LUTs, per-layer sum", 0), "device": ("device", None),
    "fmax_mhz": ("fmax (MHz)", 1), "frames_per_s": ("frames/s", 0), "latency_us": ("latency (\u00b5s)", 2),
    "images": ("images", 0), "mismatches": ("mismatches", 0), "cycles_per_image": ("cycles/image", 0),
    "toggles_per_image": ("toggles/image", 0), "activity_bit_exact": ("bit-exact", None),
    "energy_pj": ("energy/frame (pJ, model)", 1), "energy_compute_pj": ("compute energy (pJ, model)", 1),
    "energy_memory_pj": ("memory energy (pJ, model)", 1), "energy_ops_pj": ("op-count energy (pJ, model)", 1),
    "energy_float32_pj": ("float32 energy (pJ, model)", 1),
    "energy_activity_pj": ("activity energy/frame (pJ, model)", 1),
    "compute_pj": ("compute energy (pJ, model)", 1), "memory_pj": ("memory energy (pJ, model)", 1),
    "total_pj": ("energy (pJ, model)", 1),
    "test_accuracy": ("accuracy (%)", 2), "float_test_accuracy": ("float accuracy (%)", 2),
    "sim_accuracy": ("simulated accuracy (%)", 2), "memory_bits": ("parameter memory (bits)", 0),
    "memory_float32_bits": ("float32 memory (bits)", 0), "memory_int8_bits": ("int8 memory (bits)", 0),
    "memory_saving_vs_float32": ("memory saving vs float32 (\u00d7)", 2), "weight_bits": ("weight bits", 0),
    "act_bits": ("activation bits", 0), "threshold_bits": ("threshold bits", 0), "bias_bits": ("bias bits", 0),
    "table_bits": ("table bits", 0), "latency_cycles": ("latency (cycles)", 0),
    "slowest_layer_cycles": ("slowest layer (cycles)", 0), "cycles": ("cycles", 0), "macs": ("MACs", 0),
    "est_luts": ("LUTs, estimate (model)", 0), "est_ffs": ("flip-flops, estimate (model)", 0),
    "est_brams": ("BRAM, estimate (model)", 1), "est_dsps": ("DSP, estimate (model)", 0),
    "lut_error_pct": ("LUT error (%)", 1), "seed": ("seed", None), "in": ("inputs", 0), "out": ("outputs", 0),
}
_PCT = ("test_accuracy", "float_test_accuracy", "sim_accuracy")


def _split(col: str) -> tuple[str, str | None, str]:
    """'measured_ice40_fmax_mhz' -> ('measured', 'ice40', 'fmax_mhz'); 'model_est_xilinx_luts' -> ('model',
    'xilinx', 'est_luts'); 'status_ice40' -> ('', 'ice40', 'status')."""
    m = re.fullmatch(r"(measured|model)_(est_)?(ice40-nodsp|xilinx-nodsp|ecp5-nodsp|ice40|xilinx|ecp5|generic|sim)_(.+)",
                     col)
    if m:
        return m.group(1), m.group(3), (m.group(2) or "") + m.group(4)
    m = re.fullmatch(r"status_(.+)", col)
    if m:
        return "", m.group(1), "status"
    m = re.fullmatch(r"(measured|model)_(.+)", col)
    return (m.group(1), None, m.group(2)) if m else ("", None, col)


def _vs(col: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"(.+)_vs_(.+)", col)
    return (m.group(1), m.group(2)) if m and m.group(1) != "memory_saving" else None


def header(col: str) -> str:
    """The human header of a machine column key, with its unit."""
    vs = _vs(col)
    if vs:
        return f"{header(vs[0])} vs {vs[1]} (\u00d7)"
    _, where, key = _split(col)
    name = "status" if key == "status" else FIGURES.get(key, (key.replace("_", " "), None))[0]
    return f"{name}, {WHERE.get(where, where)}" if where else name


def decimals(col: str) -> int | None:
    """Fixed decimals of a column's numbers (None: not a number column)."""
    if _vs(col):
        return 2
    return FIGURES.get(_split(col)[2], (None, 2))[1]


def missing(v) -> bool:
    """A figure that is not there: None or NaN."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt(col: str, v) -> str:
    """One number format: thousands separators, the column's fixed decimals, accuracy in percent,
    an em dash for a missing figure."""
    if missing(v):
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        key = _split(col)[2]
        d = decimals(col)
        if key in _PCT and not _vs(col):
            v = 100 * v
        if d is None:
            return f"{v:,}" if isinstance(v, int) else f"{v:,.2f}"
        return f"{v:,.{d}f}"
    return str(v)


def html_table(frame: pd.DataFrame, cols: list[str] | None = None, links: dict[str, str] | None = None,
               table_id: str | None = None) -> str:
    """``frame`` as an HTML table with human headers and formatted cells (the machine key of each
    cell in ``data-key``); an em dash footnote when a figure is missing. ``links``: cell text -> href."""
    cols = [c for c in (cols or list(frame.columns)) if c in frame.columns]
    head = "".join(f'<th title="{html.escape(c)}">{html.escape(header(c))}</th>' for c in cols)
    body, dash = [], False
    for rec in frame[cols].to_dict("records"):
        cells = []
        for c in cols:
            text = fmt(c, rec[c])
            dash |= text == DASH
            cell = html.escape(text)
            if links and text in links:
                cell = f'<a href="{html.escape(links[text])}">{cell}</a>'
            num = " class='n'" if isinstance(rec[c], (int, float)) and not isinstance(rec[c], bool) else ""
            cells.append(f'<td data-key="{html.escape(c)}"{num}>{cell}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    tid = f' id="{table_id}"' if table_id else ""
    note = f'<p class="foot">{html.escape(DASH_NOTE)}</p>' if dash else ""
    return f'<table class="t"{tid}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{note}'


#: The headline's figures: (key, header, decimals); the values come from the summary row.
HEADLINE = (("test_accuracy_pct", "accuracy (%)", 2), ("luts", "LUTs", 0), ("brams", "BRAM blocks", 1),
            ("dsps", "DSP blocks", 0), ("fmax_mhz", "fmax (MHz)", 1), ("frames_per_s", "frames/s", 0),
            ("energy_pj", "energy/frame (pJ, MODEL)", 1), ("memory_bits", "parameter memory (bits)", 0))


def _num(v) -> float | None:
    return None if missing(v) else float(v)


def headline(rows: list[dict], target: str, fam: str | None) -> dict:
    """The short table above the detail: per design the key figures on the first ``target`` (timing
    of its place-and-route family ``fam``), each as a ratio to the last design (the baseline).
    Returned as plain data: report.json holds it and the HTML draws it, so the two agree."""
    def figures(r: dict) -> dict:
        acc = _num(r.get("test_accuracy"))
        return {"test_accuracy_pct": None if acc is None else 100 * acc,
                "luts": _num(r.get(f"measured_{target}_luts")), "brams": _num(r.get(f"measured_{target}_brams")),
                "dsps": _num(r.get(f"measured_{target}_dsps")),
                "fmax_mhz": _num(r.get(f"measured_{fam}_fmax_mhz")) if fam else None,
                "frames_per_s": _num(r.get(f"measured_{fam}_frames_per_s")) if fam else None,
                "energy_pj": _num(r.get("model_energy_pj")), "memory_bits": _num(r.get("memory_bits"))}
    figs = [figures(r) for r in rows]
    base = figs[-1] if len(figs) > 1 else None
    out = []
    for r, f in zip(rows, figs):
        ratios = {k: (None if base is None or f[k] is None or not base[k] else round(f[k] / base[k], 2))
                  for k, _, _ in HEADLINE}
        out.append({"design": r["design"], "status": r.get(f"status_{target}"),
                    **{k: None if f[k] is None else round(f[k], d) for k, _, d in HEADLINE}, "vs_baseline": ratios})
    return {"target": target, "family": fam, "baseline": rows[-1]["design"] if len(rows) > 1 else None,
            "columns": [{"key": k, "header": h, "decimals": d} for k, h, d in HEADLINE], "rows": out}


def headline_html(h: dict) -> str:
    """The headline as an HTML table: each cell holds the value (``span.v``) and its ratio to the
    baseline (``span.r``), the machine key in ``data-key``."""
    where = WHERE.get(h["target"], h["target"])
    timing = f", fmax and frames/s from {WHERE.get(h['family'], h['family'])} place-and-route" if h["family"] else ""
    heads = "".join(f"<th>{html.escape(c['header'])}</th>" for c in h["columns"])
    body, dash = [], False
    for r in h["rows"]:
        cells = [f'<td data-key="design">{html.escape(r["design"])}</td>',
                 f'<td data-key="status">{html.escape(r["status"] or DASH)}</td>']
        for c in h["columns"]:
            v, ratio = r[c["key"]], r["vs_baseline"][c["key"]]
            dash |= v is None
            val = DASH if v is None else f"{v:,.{c['decimals']}f}"
            rat = "" if ratio is None or h["baseline"] is None else f'<br><span class="r">{ratio:,.2f}\u00d7</span>'
            cells.append(f'<td data-key="{c["key"]}" class="n"><span class="v">{val}</span>{rat}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    base = (f" Under each figure: its ratio to the baseline, {html.escape(h['baseline'])}."
            if h["baseline"] else "")
    note = f'<p class="foot">{html.escape(DASH_NOTE)}</p>' if dash else ""
    return (f'<p>Cells on {html.escape(where)} (Yosys, measured){html.escape(timing)}; energy is a MODEL.{base}</p>'
            f'<table class="t" id="headline"><thead><tr><th>design</th><th>status, {html.escape(where)}</th>{heads}'
            f'</tr></thead><tbody>{"".join(body)}</tbody></table>{note}')
