"""Reproduction table: every registered training method on the MLP family (tfc/sfc/lfc) on MNIST.

For each (method, net, seed) one run: golden (integer IR) test accuracy, float model accuracy and
their agreement, epochs, wall time, seed, bits and memory; one atomic JSON per run under
``<out>/runs/`` (a rerun skips finished ones, so the table is resumable). Then mean / std over
seeds per (method, net), over every finished run of the protocol (not only the slice just run),
the paper / anchor figure beside it and whether it is met or missed by how much:
``<out>/reproduction.json`` and ``<out>/reproduction.md``.

    python benchmarks/reproduce.py [--data MNIST.npz] [--methods bnn,dorefa-w2a2,...]
        [--nets tfc,sfc,lfc] [--seeds 0,1,2] [--epochs N] [--dropout P] [--act-bits K]
        [--recipe sgd] [--train-subset N] [--out DIR]

``--train-subset``, or ``--epochs`` below a method's default, makes a reduced run; the table
labels it as such. ``--epochs`` above every selected method's default is an *extended* run
(e.g. BNN for longer than its 60-epoch default): those rows sit in the full-protocol table as
their own ``method (N ep)`` rows beside the default ones, never mixed into their mean.
``--dropout P`` (input and hidden dropout instead of the method's default) is a recipe
variant: its runs are tagged ``-dP`` and get their own ``method (dropout P)`` row; likewise
``--act-bits K`` (hidden activations of K bits instead of the method's default, e.g. to see
what BinaryConnect's 4-bit activations cost): tagged ``-aK``, row ``method (AK)``; and
``--recipe NAME`` (a named optimiser + schedule of :data:`RECIPES` instead of Adam + cosine, for
the method and its twin alike): tagged ``-rNAME``, row ``method (NAME recipe)``. Methods:
those of ``quantmodels.train.METHODS`` (generic runner) plus dorefa-w1a1, dorefa-w2a2, bitnet
(with its unregularised twin), lut (with its float twin) and lut-ae (the autoencoder, net "ae").
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# One BLAS thread: on a shared 2-core machine multi-threaded BLAS on these small matrices is
# about 5x slower (measured: 0.58 s vs 2.7 s for 50 TFC steps under load).
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quantmodels.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from quantmodels.datasets import Dataset, load_mnist_npz  # noqa: E402
from quantmodels.errors import ConfigError, LowbitError  # noqa: E402

NETS = {"tfc": (64, 64, 64), "sfc": (256, 256, 256), "lfc": (1024, 1024, 1024)}
AE_SIZES = (784, 256, 64, 256, 784)
AE_EPOCHS = 20
#: named training recipes (optimiser, schedule, peak lr) a variant row can use instead of the
#: methods' default Adam + cosine. "sgd": SGD with momentum 0.9 at a constant learning rate, the
#: plainer setting under which the BitNet paper compares against its unregularised twin.
RECIPES = {"sgd": {"optimizer": "sgd", "lr_schedule": "constant", "lr": 0.05}}
#: recipe variants, one place for each: (CLI dest == run-record field, run-file tag letter,
#: row-label text). A variant's runs are tagged ``-<letter><value>`` and get their own row.
VARIANTS = (("dropout", "d", lambda v: f"dropout {v}"),
            ("act_bits_variant", "a", lambda v: f"A{v}"),
            ("recipe", "r", lambda v: f"{v} recipe"))
MINE = {"dorefa-w1a1": ("dorefa", {"weight_bits": 1, "act_bits": 1}),
        "dorefa-w2a2": ("dorefa", {"weight_bits": 2, "act_bits": 2}),
        "bitnet": ("bitnet", {}), "lut": ("lut", {})}


def all_methods() -> list[str]:
    from quantmodels.train import METHODS

    # dorefa runs as its W1A1 and W2A2 rows; bitnet and lut run with their twins (MINE)
    return [m for m in METHODS if m not in MINE and m != "dorefa"] + list(MINE) + ["lut-ae"]


def optimiser(model) -> dict:
    """The optimiser settings the run trained with (recorded, so a recipe row shows what it ran)."""
    c = model.meta["config"]
    return {"optimizer": c["optimizer"], "lr_schedule": c["lr_schedule"], "lr": c["lr"]}


def memory(model) -> dict:
    from reports.memory import model_memory

    mm = model_memory(model)
    return {"memory_bits": mm.total_bits, "float32_bits": mm.float32_bits,
            "memory_ratio_vs_float32": mm.total_bits / mm.float32_bits}


def bits(model) -> dict:
    return {"weight_bits": [L.weight_bits for L in model.layers],
            "act_bits": [L.output_bits for L in model.layers[:-1]]}


def _dropout(p: float | None) -> dict:
    return {} if p is None else {"dropout_in": p, "dropout_hidden": p}


def run_generic(method: str, net: str, seed: int, data: Dataset, epochs: int | None,
                dropout: float | None = None, act_bits: int | None = None, recipe: str | None = None) -> dict:
    from quantmodels.train import TrainConfig, train

    res = train(TrainConfig(method=method, hidden=NETS[net], epochs=epochs, seed=seed, progress=False,
                            act_bits=act_bits, **_dropout(dropout), **RECIPES.get(recipe, {})), data,
                name=f"{net}-{method}")
    m = res.model
    return {"golden_test_accuracy": res.golden_test_accuracy, "float_test_accuracy": res.float_test_accuracy,
            "agreement": res.agreement, "epochs": m.meta["epochs_run"], "best_epoch": m.meta["best_epoch"],
            **bits(m), **memory(m), **optimiser(m),
            # ternary: the fraction of zero weights reached (what `accumulate` skips)
            **{k: m.meta[k] for k in ("sparsity", "sparsity_per_layer") if k in m.meta}}


def run_mine(method: str, net: str, seed: int, data: Dataset, epochs: int | None,
             dropout: float | None = None, recipe: str | None = None) -> dict:
    from quantmodels.train import DEFAULTS, TrainConfig, train

    base, opts = MINE[method]
    ep = epochs or DEFAULTS[base]["epochs"]
    res = train(TrainConfig(method=base, hidden=NETS[net], epochs=ep, seed=seed, progress=False,
                            weight_bits=opts.get("weight_bits"), act_bits=opts.get("act_bits"),
                            **_dropout(dropout), **RECIPES.get(recipe, {})), data,
                name=f"{net}-{method}")
    m = res.model
    row = {"golden_test_accuracy": res.golden_test_accuracy, "float_test_accuracy": res.float_test_accuracy,
           "agreement": res.agreement, "epochs": ep, "best_epoch": m.meta["best_epoch"], "options": opts,
           **bits(m), **memory(m), **optimiser(m), "history": res.history}
    if base in ("bitnet", "lut"):  # the twin: same net, same seed and epochs, unquantized
        twin = train(TrainConfig(method=base, hidden=NETS[net], epochs=ep, seed=seed, progress=False,
                                 options={"quantize": False}, **_dropout(dropout), **RECIPES.get(recipe, {})),
                     data, export=False)
        tbest = max(h["val_accuracy"] for h in twin.history)
        row["twin"] = {"float_test_accuracy": twin.float_test_accuracy, "best_val_accuracy": tbest,
                       "best_epoch": next(h["epoch"] for h in twin.history if h["val_accuracy"] == tbest),
                       "history": twin.history}
        if base == "bitnet":
            reach = [h["epoch"] for h in res.history if h["val_accuracy"] >= tbest]  # same val split
            row["epochs_to_twin_best"] = reach[0] if reach else None
            row["bits_per_layer"] = m.meta["bits_per_layer"]
            row["bits_per_weight"] = m.meta["bits_per_weight"]
            # the stored b-bit integers (zero point folded -> IR width may be one more)
            row["bitnet_memory_ratio_weights"] = m.meta["bits_per_weight"] / 32
    return row


#: the lut autoencoder's recipe (the one training loop, task "autoencode"): raw 8-bit pixels in,
#: Adam at a constant learning rate; the loop's 10% validation split picks the best-MSE epoch
AE_RECIPE = {"lr": 2e-3, "lr_schedule": "constant", "batch_size": 100}


def run_ae(seed: int, data: Dataset, epochs: int | None) -> dict:
    from quantmodels.arch import arch_from_hidden
    from quantmodels.train import TrainConfig, train

    ep = epochs or AE_EPOCHS
    out = {"epochs": ep, "sizes": list(AE_SIZES), "ae_recipe": AE_RECIPE}  # ("recipe" is the variant field)
    for q in (True, False):
        res = train(TrainConfig(method="lut", task="autoencode", arch=arch_from_hidden(AE_SIZES[1:-1]), epochs=ep,
                                seed=seed, options={"quantize": q, "input_bits": 8}, progress=False, **AE_RECIPE),
                    data, export=False)
        out["lut_mse" if q else "float_twin_mse"] = res.test_mse
        out["lut_best_epoch" if q else "float_twin_best_epoch"] = min(res.history, key=lambda h: h["val_mse"])["epoch"]
    out["mean_pixel_mse"] = float(np.var(data.x_test / 255.0))
    return out


# ------------------------------------------------------------------------------ anchors
def _pts(v: float) -> str:
    return f"{100 * v:+.2f} pts"


def _curve_mean(histories) -> float:
    """Mean validation accuracy (%) over every epoch of each history, averaged over histories."""
    return float(np.mean([np.mean([100 * h["val_accuracy"] for h in hist]) for hist in histories]))


#: accuracy anchors with a fixed target: (method, net) -> (anchor text, minimum test accuracy)
FIXED_ANCHORS = {("binaryconnect", "lfc"): ("error <= 1.5% (paper 1.29% det., 3x1024)", 0.985),
                 ("bnn", "lfc"): (">= 98.4% (Brevitas LFC W1A1 98.88%)", 0.984),
                 ("bnn", "sfc"): (">= 97.8% (Brevitas SFC W1A1 97.81%)", 0.978),
                 ("bnn", "tfc"): (">= 93% (Brevitas TFC W1A1 93.17%)", 0.93)}


def anchor(method: str, net: str, agg: dict, table: dict) -> tuple[str, str]:
    """(paper / anchor figure, status) for a (method, net) row."""
    acc = agg.get("acc_mean")
    if (method, net) in FIXED_ANCHORS:
        text, target = FIXED_ANCHORS[(method, net)]
        d = acc - target
        return text, f"met ({_pts(d)})" if d >= -1e-9 else f"missed by {-100 * d:.2f} pts"  # -1e-9: float means
    if method == "dorefa-w2a2":
        ref = table.get(("dorefa-w1a1", net), {}).get("acc_mean")
        if ref is None:
            return "above W1A1 (paper: more bits, higher accuracy)", "W1A1 not run"
        d = acc - ref
        return f"above dorefa-w1a1 {net} ({100 * ref:.2f}%)", f"met ({_pts(d)})" if d > 0 else f"missed by {-100 * d:.2f} pts"
    if method == "bitnet":
        runs = agg["runs"]
        fewer = [r["epochs_to_twin_best"] is not None and r["epochs_to_twin_best"] < r["twin"]["best_epoch"]
                 for r in runs]
        desc = "; ".join(f"s{r['seed']}: {r['epochs_to_twin_best']} vs {r['twin']['best_epoch']} ep" for r in runs)
        # a second, softer view of the same curves: mean val accuracy over all epochs (area under
        # the learning curve), higher = sooner on average
        auc_b = _curve_mean(r["history"] for r in runs)
        auc_t = _curve_mean(r["twin"]["history"] for r in runs)
        return ("fewer epochs than the unregularised twin to reach its best val accuracy (paper: faster "
                "convergence)", f"{'met' if all(fewer) else 'partly met' if any(fewer) else 'missed'}: sooner in "
                f"{sum(fewer)}/{len(fewer)} seeds ({desc}; None = never reached); mean val accuracy over "
                f"the epochs {auc_b:.2f} vs twin {auc_t:.2f}")
    if method == "ternary":
        sp = [r["sparsity"] for r in agg["runs"] if "sparsity" in r]
        return ("sparsity reached (zero weights, skipped in hardware)",
                f"{100 * np.mean(sp):.1f}% zero weights ({len(sp)}/{len(agg['runs'])} seeds recorded)" if sp
                else "not recorded (runs predate the field)")
    if method == "lut":
        twin = float(np.mean([r["twin"]["float_test_accuracy"] for r in agg["runs"]]))
        mem = agg["memory_ratio"]
        d = acc - (twin - 0.005)
        ok = d >= 0 and mem < 1 / 3
        return (f"within 0.5 pts of float twin ({100 * twin:.2f}%), memory < 1/3 float32",
                f"{'met' if ok else 'missed'}: accuracy {_pts(acc - twin)} vs twin, memory {mem:.3f} of float32")
    return "-", "-"


#: why a row misses its anchor, from what was measured (keyed by table label and net; net None:
#: every net). A missed row without an entry says so in the notes instead of guessing.
WHY_MISSED = {
    ("bnn", "sfc"): "the 60-epoch default is still improving (see its best validation epochs); the "
                    "same recipe trained longer reaches the anchor (rows `bnn (N ep)`).",
    ("bnn (200 ep)", "sfc"): "short by a fraction of the seed spread; the same recipe over 300 epochs "
                            "(cosine schedule stretched with it) reaches the anchor.",
    ("bnn", "lfc"): "the mean misses by less than the seed spread (per seed at the end). More "
                    "regularisation closes it: the default dropout 0.1 "
                    "was chosen on SFC (where 0.2 cost 0.4 pts in one probe), and on LFC (4x the SFC "
                    "width) the same recipe with dropout 0.2 meets the anchor over 3 seeds (row "
                    "`bnn (dropout 0.2)`).",
    ("binaryconnect", "lfc"): "the gap is smaller than the seed-to-seed spread (std in the row; per seed at "
                              "the end). The 4-bit hidden activations (what the `accumulate` "
                              "datapath adds; the paper's are real-valued) are ruled out as the cause on SFC: "
                              "8-bit activations score lower there (row `binaryconnect (A8)` sfc against "
                              "`binaryconnect` sfc), so coarse activations regularise rather than cost. "
                              "Training length is ruled out too: twice the epochs moves the mean by 0.02 pts "
                              "(row `binaryconnect (60 ep)`). Not measured: the paper's square-hinge output "
                              "layer and its exponentially decaying learning rate.",
    ("binaryconnect (60 ep)", "lfc"): "as the 30-epoch row, the gap is a fraction of the seed spread "
                                      "(per seed at the end); doubling the epochs (the cosine schedule "
                                      "stretched with them) gains 0.02 pts on the mean.",
    ("bitnet", None): "the twin is the same network and recipe with float weights (batch norm after every "
                      "layer, Adam, cosine schedule), a stronger baseline than plain unregularised "
                      "training. BitNet's learning curve tracks the twin's (the mean val accuracies in "
                      "the status) while it gives up some accuracy for ~4-5 bits/weight, so it seldom "
                      "reaches the twin's best sooner. The paper compares under a plainer recipe; the "
                      "rows `bitnet (sgd recipe)` rerun both nets under SGD with momentum at a constant "
                      "learning rate (see there).",
    ("bitnet (sgd recipe)", None): "under SGD with momentum 0.9 at a constant learning rate, for BitNet and its "
                                   "twin alike, the speed-up shows on SFC in most seeds (BitNet reaches the "
                                   "twin's best several epochs sooner and ends level with it; a seed whose "
                                   "first epoch diverged and recovered, visible in its run history, lags and "
                                   "pulls the curve mean down) but not on TFC, where the two curves coincide. "
                                   "So the paper's claim holds here only partly, on the wider net under the "
                                   "plainer recipe; both nets train to higher accuracy with the default Adam + "
                                   "cosine recipe (rows `bitnet`).",
}


def _seeds_meeting(runs: list[dict]) -> str:
    """`` Per seed: ...`` for a row with a fixed accuracy anchor (empty otherwise): each seed's test
    accuracy and how many of them meet the anchor on their own."""
    fixed = FIXED_ANCHORS.get((runs[0]["method"], runs[0]["net"]))
    if fixed is None:
        return ""
    accs = [r["golden_test_accuracy"] for r in runs]
    meet = sum(a >= fixed[1] - 1e-9 for a in accs)
    return (f" Per seed: {' / '.join(f'{100 * a:.2f}' for a in accs)} %, "
            f"{meet} of {len(accs)} meeting the anchor on their own.")


def missed_notes(statuses: dict, agg: dict) -> list[str]:
    """Markdown bullets for the rows whose anchor is missed or partly met: by how much, when
    the runs peaked (best validation epochs, read from the runs) and why."""
    out = []
    for (m, n), status in statuses.items():
        if status.startswith(("missed", "partly")):
            why = WHY_MISSED.get((m, n)) or WHY_MISSED.get((m, None)) or "no cause measured yet."
            best = sorted(r["best_epoch"] for r in agg[(m, n)]["runs"] if "best_epoch" in r)
            span = f"{best[0]}" if best and best[0] == best[-1] else f"{best[0]}-{best[-1]}" if best else ""
            peak = f" (best validation epoch {span} of {agg[(m, n)]['epochs'][-1]})" if best else ""
            out.append(f"- **{m} {n}**: {status}{peak}. Why: {why}{_seeds_meeting(agg[(m, n)]['runs'])}")
    return out


def default_epochs(method: str) -> int:
    """The epochs of ``method``'s default protocol (reproduce's own rows included)."""
    from quantmodels.train import DEFAULTS

    if method == "lut-ae":
        return AE_EPOCHS
    return DEFAULTS[MINE[method][0] if method in MINE else method]["epochs"]


def row_label(r: dict) -> str:
    """Table name of a run: the method, or ``method (N ep, dropout P, AK, NAME recipe)`` for an
    extended run or a recipe variant."""
    parts = ([f"{r['epochs']} ep"] if r.get("extended") else []) + \
        [text(r[field]) for field, _, text in VARIANTS if r.get(field) is not None]
    return f"{r['method']} ({', '.join(parts)})" if parts else r["method"]


def aggregate(rows: list[dict], reduced: str) -> tuple[dict, str]:
    table: dict = {}
    for r in rows:
        table.setdefault((row_label(r), r["net"]), []).append(r)
    agg = {}
    order = {n: i for i, n in enumerate(NETS)}  # tfc, sfc, lfc: small to large
    for key, runs in sorted(table.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], len(order)))):
        if key[0] == "lut-ae":
            continue
        accs = np.array([r["golden_test_accuracy"] for r in runs])
        agg[key] = {"runs": runs, "acc_mean": float(accs.mean()), "acc_std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
                    "seeds": [r["seed"] for r in runs], "epochs": sorted({r["epochs"] for r in runs}),
                    "wall_seconds_mean": float(np.mean([r["wall_seconds"] for r in runs])),
                    "agreement_min": float(min(r["agreement"] for r in runs)),
                    "memory_ratio": float(np.mean([r["memory_ratio_vs_float32"] for r in runs])),
                    "weight_bits": runs[0]["weight_bits"], "act_bits": runs[0]["act_bits"]}
    lines = [f"# Reproduction table (MNIST){' - REDUCED RUN: ' + reduced if reduced else ''}", "",
             "| method | net | golden test acc (mean ± std) | seeds | epochs | wall s/run | golden == quantized float | "
             "W bits | A bits | memory / float32 | paper / anchor | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    out, statuses = {}, {}
    for (m, n), a in agg.items():
        text, status = anchor(a["runs"][0]["method"], n, a, agg)
        statuses[(m, n)] = status
        extra = f" (bits/weight {np.mean([r['bits_per_weight'] for r in a['runs']]):.2f})" \
            if a["runs"][0]["method"] == "bitnet" else ""
        lines.append(f"| {m} | {n} | {100 * a['acc_mean']:.2f} ± {100 * a['acc_std']:.2f} | {a['seeds']} | {a['epochs']} | "
                     f"{a['wall_seconds_mean']:.0f} | {100 * a['agreement_min']:.2f}% | {a['weight_bits']}{extra} | "
                     f"{a['act_bits']} | {a['memory_ratio']:.3f} | {text} | {status} |")
        out[f"{m}/{n}"] = {k: v for k, v in a.items() if k != "runs"} | {"anchor": text, "status": status}
    notes = missed_notes(statuses, agg)
    if notes:
        lines += ["", "Anchors not met (by how much, and why):", ""] + notes
    ae = table.get(("lut-ae", "ae"), [])
    if ae:
        lines += ["", "Autoencoder (784-256-64-256-784, 32 levels, 64-entry codebooks, integer tables, raw 8-bit "
                  "pixels in; the one training loop with the reconstruction-MSE task: Adam at a constant lr 2e-3, "
                  "the best validation-MSE epoch of a 10% split restored; not expressible in the IR, which ends "
                  "in argmax):", "",
                  "| seed | epochs | LUT MSE | float twin MSE | mean-pixel MSE |", "|---|---|---|---|---|"]
        for r in ae:
            lines.append(f"| {r['seed']} | {r['epochs']} | {r['lut_mse']:.5f} | {r['float_twin_mse']:.5f} | "
                         f"{r['mean_pixel_mse']:.5f} |")
        out["lut-ae/ae"] = ae
    return out, "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/mnist.npz"))
    ap.add_argument("--methods", default=None, help="comma list (default: all registered)")
    ap.add_argument("--nets", default="tfc,sfc,lfc")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=None, help="override every method's default (reduced run)")
    ap.add_argument("--dropout", type=float, default=None,
                    help="input and hidden dropout for every selected method (a recipe variant: its own rows)")
    ap.add_argument("--act-bits", type=int, default=None, dest="act_bits_variant",
                    help="hidden activation bits for every selected method (a recipe variant: its own rows)")
    ap.add_argument("--recipe", default=None, choices=sorted(RECIPES),
                    help="training recipe variant for every selected method and twin (its own rows): "
                         + "; ".join(f"{k} = {v}" for k, v in RECIPES.items()))
    ap.add_argument("--train-subset", type=int, default=None, help="first N training images (reduced run)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    ap.add_argument("--table-only", action="store_true",
                    help="train nothing: rebuild the table from the finished runs under <out>/runs")
    a = ap.parse_args(argv)
    from sim.provenance import provenance

    prov = provenance()  # recorded in each run (runs resume across commits) and in the table's meta
    known = all_methods()
    methods = a.methods.split(",") if a.methods else known
    nets = a.nets.split(",")
    for m in methods:
        if m not in known:
            raise ConfigError(f"--methods: {m!r}, expected some of {', '.join(known)}")
    for n in nets:
        if n not in NETS:
            raise ConfigError(f"--nets: {n!r}, expected some of {', '.join(NETS)}")
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds: {a.seeds!r}, expected comma-separated integers") from None
    if a.epochs is not None and a.epochs < 1:
        raise ConfigError(f"--epochs: {a.epochs}, expected >= 1")
    if a.dropout is not None and not 0 <= a.dropout < 1:
        raise ConfigError(f"--dropout: {a.dropout}, expected in [0, 1)")
    if a.act_bits_variant is not None and set(MINE) & set(methods):
        raise ConfigError(f"--act-bits: {', '.join(sorted(set(MINE) & set(methods)))} fix their own activation "
                          "bits; pick other --methods")
    if a.dropout is not None and "lut-ae" in methods:
        raise ConfigError("--dropout: the lut-ae autoencoder runs its own recipe without dropout; "
                          "leave it out of --methods")
    data = None if a.table_only else load_mnist_npz(a.data)
    if a.train_subset and data is not None:
        data = Dataset(data.name, data.x_train[:a.train_subset], data.y_train[:a.train_subset], data.x_test, data.y_test)
    extended = a.epochs is not None and a.train_subset is None and all(a.epochs > default_epochs(m) for m in methods)
    variant = {field: getattr(a, field) for field, _, _ in VARIANTS}
    tag = f"e{a.epochs or 'def'}-n{a.train_subset or 'all'}" \
        + "".join(f"-{letter}{variant[field]}" for field, letter, _ in VARIANTS if variant[field] is not None)
    runs_dir = a.out / "runs"
    for m in ([] if a.table_only else methods):
        for n in (["ae"] if m == "lut-ae" else nets):
            for s in seeds:
                path = runs_dir / f"{m}_{n}_s{s}_{tag}.json"
                if path.exists():
                    print(f"skip {path.name} (done)")
                    continue
                t0 = time.perf_counter()
                if m == "lut-ae":
                    row = run_ae(s, data, a.epochs)
                elif m in MINE:
                    row = run_mine(m, n, s, data, a.epochs, a.dropout, a.recipe)
                else:
                    row = run_generic(m, n, s, data, a.epochs, a.dropout, a.act_bits_variant, a.recipe)
                row.update(method=m, net=n, seed=s, wall_seconds=round(time.perf_counter() - t0, 1),
                           train_images=len(data.x_train), data=str(Path(a.data).name), extended=extended,
                           provenance=prov, **variant)
                atomic_write_json(path, row)
                print(f"{m:>12} {n} seed {s}: " + (f"golden {row.get('golden_test_accuracy', float('nan')):.4f} "
                      f"agree {row.get('agreement', float('nan')):.4f} " if m != "lut-ae" else
                      f"mse {row['lut_mse']:.5f} twin {row['float_twin_mse']:.5f} ") + f"{row['wall_seconds']}s", flush=True)
    import json

    reduced = "" if (a.epochs is None or extended) and a.train_subset is None else \
        f"epochs={a.epochs or 'default'}, train images={a.train_subset or 'all'} (not the paper protocol)"
    # the full-protocol table: default runs plus every extended run beside them
    if reduced:
        rows = [json.loads(p.read_text()) for p in sorted(runs_dir.glob(f"*_{tag}.json"))]
    else:
        rows = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*_edef-nall.json"))]
        rows += [r for r in (json.loads(p.read_text()) for p in sorted(runs_dir.glob("*_e[0-9]*-nall.json")))
                 if r.get("extended")]
        # recipe variants (VARIANTS) of the default or an extended protocol
        variants = sorted({p for _, letter, _ in VARIANTS for p in runs_dir.glob(f"*-nall-{letter}*.json")})
        rows += [r for r in (json.loads(p.read_text()) for p in variants)
                 if r["epochs"] >= default_epochs(r["method"])]
    # the table covers every finished run of the protocol, not only this invocation's selection, so
    # that a run over one slice (say --nets lfc) never shrinks the committed table
    table, md = aggregate(rows, reduced)
    meta = {"reduced": reduced, "tag": tag, "runs": len(rows),
            "last_invocation": {"methods": methods, "nets": nets, "seeds": seeds},
            "cpus": os.cpu_count(), "provenance": prov}
    atomic_write_json(a.out / "reproduction.json", {"meta": meta, "rows": table})
    atomic_write_text(a.out / "reproduction.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LowbitError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
