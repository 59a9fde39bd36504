"""The sweep's rows and written tables: one row per point (from the report's records, flattened
by :mod:`reports.tables` with one column per figure across targets), then ``sweep.csv``,
``sweep.json``, ``layers.csv``, ``timings.csv`` and the HTML report, in grid order."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd

from hw.verilog import VerilogDesign
from quantmodels.atomic import atomic_write_json, atomic_write_text
from reports.report import DesignResult
from reports.sweep_report import write_sweep_report
from reports.tables import layer_rows, summary_row
from sim.tools import tool_versions

from ..methods import cli_flags
from ..sweep_config import Point, SweepConfig
from .cache import point_file
from .plan import STAGE_CODE, code_version


def regenerate_commands(p: Point, tkey: str, hkey: str) -> tuple[str, str]:
    """``lowbit train`` / ``lowbit verilog`` commands (run in the sweep directory) that rebuild
    this point's model and Verilog."""
    ts = p.hw.train
    train = ["lowbit", "train", "--data", ts.dataset, "--hidden", ",".join(map(str, ts.hidden)),
             "--method", ts.method, *cli_flags(dict(ts.train_kwargs))]
    if ts.epochs is not None:
        train += ["--epochs", str(ts.epochs)]
    train += ["--seed", str(ts.seed), "--quiet", "--out", f"models/{tkey}"]
    # the sweep builds without a target clock (steps.make_hardware's default), the CLI's default is the
    # family's clock: say none, or the command would add register stages and give other Verilog
    verilog = ["lowbit", "verilog", f"models/{tkey}", "--fold", p.hw.fold, "--popcount", p.hw.popcount,
               "--clock-mhz", "none", "--out", f"hw/{hkey}"]
    return shlex.join(train), shlex.join(verilog)


def point_doc(p: Point, res: DesignResult, hwd: VerilogDesign, tkey: str, hkey: str, pkey: str) -> dict:
    """A point file's content: its sweep row, its layer rows and the raw Yosys cell counts."""
    ts = p.hw.train
    model = res.design.model
    sim = res.design.sim
    head = {"point": pkey, "design": res.design.label, "dataset": ts.dataset,
            "seed": ts.seed, "network": ts.network, "hidden": ",".join(map(str, ts.hidden)),
            "method": ts.method, "weight_bits_requested": ts.weight_bits, "act_bits_requested": ts.act_bits,
            "epochs": model.meta.get("epochs_run"), "fold": p.hw.fold, "foldings": ";".join(hwd.foldings),
            "popcount": p.hw.popcount, "target": p.target}
    row = {**head, **{k: v for k, v in summary_row(res, by_target=False).items()
                      if k not in ("design", "method", "seed")}}
    cmd_train, cmd_verilog = regenerate_commands(p, tkey, hkey)
    row.update(float_test_accuracy=model.meta.get("float_test_accuracy"),
               golden_float_agreement=model.meta.get("golden_float_agreement"),
               measured_sim_accuracy=sim.accuracy, measured_sim_bit_exact=sim.bit_exact,
               tool_versions="; ".join(f"{k} {v}" for k, v in sorted(tool_versions().items())),
               train_key=tkey, hw_key=hkey, cmd_train=cmd_train, cmd_verilog=cmd_verilog)
    return {"row": row, "layers": [{"point": pkey, **lr} for lr in layer_rows(res)],
            "synth_cells": {t: s.cells for t, s in res.synth.items()}}


def write_tables(cfg: SweepConfig, out: Path, points: list[Point], pkeys: dict[int, str], skipped: list[dict],
                 pnr: bool) -> tuple[dict[str, Path], pd.DataFrame, list[dict]]:
    """Rebuild every table from the point files, in grid order, and write the report.

    Returns the written paths, the sweep table and every skipped combination (grid and point)."""
    rows, layers = [], []
    skipped = list(skipped)
    for p in points:
        doc = json.loads(point_file(out, pkeys[p.index]).read_text())
        if "skipped" in doc:
            ts = p.hw.train
            skipped.append({"seed": ts.seed, "network": ts.network, "method": ts.method,
                            "weight_bits": ts.weight_bits, "act_bits": ts.act_bits, "fold": p.hw.fold,
                            "target": p.target, "reason": doc["skipped"]})
            continue
        rows.append(doc["row"])
        layers += [{"design": doc["row"]["design"], **lr} for lr in doc["layers"]]
    df = pd.DataFrame(rows)
    ldf = pd.DataFrame(layers)
    timings = [json.loads(f.read_text()) for f in sorted((out / "timings").glob("*.json"))] \
        if (out / "timings").exists() else []
    meta = {"config": str(cfg.path), "config_toml": cfg.raw, "seeds": list(cfg.seeds), "dataset": cfg.dataset,
            "sim_images": cfg.sim_images, "pnr": pnr, "activity_images": cfg.activity_images,
            "synthesize": cfg.synthesize, "prescreen_margin": cfg.prescreen_margin, "tool_versions": tool_versions(),
            "code_versions": {s: code_version(*pk) for s, pk in STAGE_CODE.items()},
            "n_points": len(df), "skipped": skipped}
    paths = {"csv": out / "sweep.csv", "json": out / "sweep.json", "layers_csv": out / "layers.csv",
             "timings_csv": out / "timings.csv"}
    atomic_write_text(paths["csv"], df.to_csv(index=False))
    atomic_write_text(paths["layers_csv"], ldf.to_csv(index=False))
    atomic_write_json(paths["json"], {"meta": meta, "points": json.loads(df.to_json(orient="records"))})
    atomic_write_text(paths["timings_csv"], pd.DataFrame(timings).to_csv(index=False))
    paths.update(write_sweep_report(df, ldf, meta, out))
    return paths, df, skipped
