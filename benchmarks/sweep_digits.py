"""Run examples/sweep_digits.toml cold (fresh build caches), then again (everything cached),
and print the wall times side by side with the sweep's Pareto-optimal designs.

    python benchmarks/sweep_digits.py [--jobs N] [--out DIR]

Writes benchmarks/results/sweep_digits.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=0, help="parallel tasks (0 = every core)")
    ap.add_argument("--out", type=Path, default=None, help="sweep directory (default: a temp dir)")
    args = ap.parse_args()
    from sim.provenance import provenance

    prov = provenance(seed=None)  # before the run: the code the figures were measured with
    tmp = Path(tempfile.mkdtemp(prefix="lowbit-sweep-bench-"))
    os.environ["LOWBIT_CACHE"] = str(tmp / "cache")  # cold Verilator / Yosys caches
    out = args.out or tmp / "sweep"

    import pandas as pd

    from lowbit.sweep import run_sweep
    from lowbit.sweep_config import load_sweep_config
    from reports.sweep_report import front_masks

    cfg = load_sweep_config(REPO / "examples" / "sweep_digits.toml")
    t0 = time.perf_counter()
    cold = run_sweep(cfg, out, jobs=args.jobs)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = run_sweep(cfg, out, jobs=args.jobs)
    t_warm = time.perf_counter() - t0
    df = pd.read_csv(out / "sweep.csv")
    fronts = front_masks(df)
    on = fronts["energy"] | fronts["luts"] | fronts["memory"]
    cols = ["design", "test_accuracy", "measured_luts", "measured_dsps", "model_energy_pj", "memory_bits",
            "measured_sim_images", "measured_sim_mismatches"]
    print(df.loc[on, cols].to_string(index=False))
    print(f"\ncold sweep {t_cold:.1f} s | resumed with everything cached {t_warm:.1f} s | "
          f"ratio {t_cold / t_warm:.1f}x  ({cold.n_points} points, jobs={args.jobs or os.cpu_count()})")
    res = {"provenance": prov, "config": "examples/sweep_digits.toml", "jobs": args.jobs or os.cpu_count(),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.1f}",
           "cold_seconds": round(t_cold, 1), "cached_rerun_seconds": round(t_warm, 1),
           "cold_stats": cold.stats, "rerun_stats": warm.stats, "n_points": cold.n_points,
           "all_bit_exact": bool(df["measured_sim_bit_exact"].all()),
           "pareto_optimal": json.loads(df.loc[on, cols].to_json(orient="records")),
           "timings": json.loads(pd.read_csv(out / "timings.csv").to_json(orient="records"))}
    dest = REPO / "benchmarks" / "results" / "sweep_digits.json"
    from quantmodels.atomic import atomic_write_json

    atomic_write_json(dest, res)
    print(f"results written to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
