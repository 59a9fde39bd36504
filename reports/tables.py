"""Flatten a :class:`reports.report.DesignResult` into table rows: the one place column names are made.

Measured columns start with ``measured_``, modelled ones with ``model_``. A report over several
targets names each figure by its target (``measured_<t>_luts``, ``model_est_<t>_luts``,
``measured_<family>_fmax_mhz``); a sweep row holds one target, so its columns drop the target
(``measured_luts``; the row's ``target`` column says which): ``by_target=False``.
"""
from __future__ import annotations

from dataclasses import asdict

from .pnr import DEVICES, PnrFamily, fits_nowhere
from .records import DesignResult
from .synth import Target, family

#: Synthesis figures per target (reports.synth.SynthResult fields).
AREA_KEYS = ("luts", "ffs", "brams", "dsps", "carries", "lutrams")
#: Estimated figures per target (reports.estimator.AreaEstimate fields).
ESTIMATE_KEYS = ("luts", "ffs", "brams", "dsps")


def _name(prefix: str, where: str, key: str, by_target: bool) -> str:
    return f"{prefix}_{where}_{key}" if by_target else f"{prefix}_{key}"


def _failure(r: DesignResult, step: str, where: str):
    return next((f for f in r.failures if f.step == step and f.where == where), None)


def target_status(r: DesignResult, t: Target) -> str:
    """One plain status of the design on target ``t``: whether it was synthesized, whether it fits a
    part of the family and at what fmax it placed; a failed tool step says so (its log is linked
    from the report's tool-log list, never pasted here)."""
    if _failure(r, "synthesis", t):
        return "synthesis failed, see the tool log"
    if t not in r.synth:
        return "estimated only (pre-screened, not synthesized)" if not r.synthesized else "not synthesized"
    fam = family(t)
    if fam not in tuple(PnrFamily):
        return f"synthesized; not placed: no open place-and-route for {fam}"
    fam = PnrFamily(fam)
    if t == fam and fam in r.timing and r.timing[fam].pnr.status:
        return r.timing[fam].pnr.status
    nowhere = fits_nowhere(fam, tuple(DEVICES[fam]), r.synth[t])  # cell counts alone can say it
    if nowhere:
        return nowhere
    if t != fam:
        return f"synthesized; place-and-route runs on the {t.split('-')[0]} mapping"
    if _failure(r, "place-and-route", fam):
        return "synthesized; place-and-route failed, see the tool log"
    if not r.pnr_requested:
        return "synthesized; not placed (place-and-route off)"
    return "synthesized; not placed"


def summary_row(r: DesignResult, by_target: bool = True) -> dict:
    """One flat row of every figure of the design (see the module docstring for the names)."""
    d = r.design
    m = d.model
    lc = d.layer_cycles
    row: dict = {"design": d.label, "method": m.method,
                 "kinds": "+".join(sorted({L.kind for L in m.layers})),
                 "layers": "-".join([str(m.input.features)] + [str(L.out_features) for L in m.layers]),
                 "weight_bits": max(L.weight_bits for L in m.layers),
                 "act_bits": max(L.input_bits for L in m.layers),
                 "test_accuracy": m.meta.get("golden_test_accuracy"),
                 "seed": m.meta.get("seed"),
                 "cycles_per_image": d.cycles_per_image,
                 "latency_cycles": d.latency_cycles,
                 "slowest_layer_cycles": max(lc) if lc else None,
                 "synthesized": r.synthesized}
    for t, s in r.synth.items():
        row.update({_name("measured", t, k, by_target): getattr(s, k) for k in AREA_KEYS})
        if t in r.layer_area:
            row[_name("measured", t, "luts_hier_sum", by_target)] = sum(v.luts for v in r.layer_area[t].values())
    for t in dict.fromkeys([*r.synth, *(f.where for f in r.failures if f.step == "synthesis")]):
        row["status_" + t if by_target else "status"] = target_status(r, Target(t))
    if not r.synthesized and not by_target:
        row["status"] = "estimated only (pre-screened, not synthesized)"
    if r.failures:  # which steps failed (their whole output: the logs named in report.json)
        row["failed_steps"] = "; ".join(f"{f.step} {f.where}".strip() for f in r.failures)
        row["failure_logs"] = "; ".join(f.log or "" for f in r.failures)
    for t, e in r.estimates.items():  # layers only: the argmax stage is not modelled
        row.update({_name("model_est", t, k, by_target): getattr(e, k) for k in ESTIMATE_KEYS})
    for fam, tm in r.timing.items():
        row[_name("measured", fam, "device", by_target)] = tm.pnr.device
        row[_name("measured", fam, "fmax_mhz", by_target)] = tm.pnr.fmax_mhz
        row[_name("measured", fam, "frames_per_s", by_target)] = tm.frames_per_s
        row[_name("measured", fam, "latency_us", by_target)] = tm.latency_us
    if d.sim:
        row["measured_sim_images"] = d.sim.n_images
        row["measured_sim_mismatches"] = d.sim.mismatches
        row["measured_sim_cycles_per_image"] = d.sim.cycles_per_image
    mem = r.memory
    row["memory_bits"] = mem.total_bits
    row["memory_float32_bits"] = mem.float32_bits
    row["memory_int8_bits"] = mem.int8_bits
    row["memory_saving_vs_float32"] = mem.float32_bits / mem.total_bits
    row["model_energy_pj"] = sum(e.total_pj for e in r.energy)
    row["model_energy_compute_pj"] = sum(e.compute_pj for e in r.energy)
    row["model_energy_memory_pj"] = sum(e.memory_pj for e in r.energy)
    row["model_energy_ops_pj"] = row["model_energy_pj"]  # the op-count term, named beside the activity term
    row["model_energy_float32_pj"] = r.float32_energy_pj
    if r.activity is not None:
        act = r.activity
        row["measured_activity_images"] = act.n_images
        row["measured_activity_bit_exact"] = act.bit_exact
        row["measured_toggles_per_image"] = sum(act.toggles.values())
        row["model_energy_activity_pj"] = sum(act.energy_pj.values())
    return row


def layer_rows(r: DesignResult) -> list[dict]:
    """One row per layer (and one for the argmax stage when its area was measured)."""
    d = r.design
    m = d.model
    per_layer: dict[str, dict] = {L.name: {} for L in m.layers}
    per_layer["argmax"] = {}
    for t, la in r.layer_area.items():
        for name, counts in la.items():
            if name in per_layer:
                per_layer[name].update({f"measured_{t}_{k}": getattr(counts, k) for k in AREA_KEYS})
    for t, e in r.estimates.items():
        for L, le in zip(m.layers, e.layers):
            per_layer[L.name].update({f"model_est_{t}_{k}": getattr(le, k) for k in ESTIMATE_KEYS})
    if r.activity is not None:
        energy = r.activity.energy_pj
        for name, tog in r.activity.toggles.items():
            if name in per_layer:
                per_layer[name]["measured_toggles_per_image"] = tog
                per_layer[name]["model_energy_activity_pj"] = energy[name]
    rows = []
    for i, (L, lm, le) in enumerate(zip(m.layers, r.memory.layers, r.energy)):
        rows.append({"design": d.label, "layer": L.name, "op": L.op, "kind": L.kind,
                     "in": L.in_features, "out": L.out_features, "macs": L.macs,
                     "folding": str(d.foldings[i]) if d.foldings else None,
                     "cycles": d.layer_cycles[i] if d.layer_cycles else None,
                     "weight_bits": lm.weight_bits, "threshold_bits": lm.threshold_bits,
                     "bias_bits": lm.bias_bits, "table_bits": lm.table_bits,
                     "model_compute_pj": le.compute_pj, "model_memory_pj": le.memory_pj,
                     "model_total_pj": le.total_pj, **le.ops,
                     "model_energy_ops_pj": le.total_pj, **per_layer[L.name]})
    if per_layer["argmax"]:  # the argmax stage's measured area, so per-layer rows add up
        rows.append({"design": d.label, "layer": "argmax", "kind": "argmax", **per_layer["argmax"]})
    return rows


def tool_results(r: DesignResult) -> dict:
    """The raw tool records of report.json's ``tools`` (synthesis, place-and-route, activity)."""
    pnr = {fam: asdict(tm.pnr) for fam, tm in r.timing.items()}
    return {"synth": {t: s.to_json() for t, s in r.synth.items()},
            "pnr": next(iter(pnr.values()), None),  # the first family
            "pnr_by_family": pnr,
            "layer_area": {t: {n: asdict(a) for n, a in la.items()} for t, la in r.layer_area.items()},
            "activity": r.activity.to_json() if r.activity is not None else None,
            "failures": [f.to_json() for f in r.failures]}
