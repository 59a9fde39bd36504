"""Activity-based energy (a MODEL): toggles counted in a real Verilator run, per layer.

A traced build of the bulk harness (:func:`sim.regression.build_simulator` with
``trace=True``, its own cache entry) streams real images through the network and writes
SAIF: one toggle count per net bit per instance. Toggles are summed per layer instance
(hierarchy prefix ``dut/<layer>``), each net counted once where it is driven: a module's
input ports are the previous stage's outputs (or the harness's stimulus), so they are
skipped, and so are the clock and reset. Energy = toggles x ``PJ_PER_TOGGLE`` (rule
``toggle_bit`` in :mod:`reports.energy_constants`).
"""
from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hw.network import stage_of
from quantmodels.ir import IRModel
from sim.harness import HarnessPorts

from .energy_constants import PJ_PER_TOGGLE

#: Instance name of the network inside the harness (sim.harness).
DUT_INSTANCE = "dut"
#: Harness depth of traced builds: fixed, so one build serves any image count up to it.
ACTIVITY_DEPTH = 256
_NET = re.compile(r"^\(\s*(\S+)\s+\(T0\s+(\d+)\)\s+\(T1\s+(\d+)\).*\(TC\s+(\d+)\)\s*\)\s*$")


@dataclass(frozen=True)
class ActivityResult:
    """Toggles per inference per layer and the modelled activity energy."""

    n_images: int
    bit_exact: bool  #: the traced run matched the golden model too
    cycles: int  #: simulated cycles of the whole traced batch
    toggles: dict[str, float] = field(default_factory=dict)  #: layer -> net-bit toggles / image
    net_bits: dict[str, int] = field(default_factory=dict)  #: layer -> net bits counted

    @property
    def energy_pj(self) -> dict[str, float]:
        """MODEL: activity energy per layer per inference (pJ)."""
        return {k: v * PJ_PER_TOGGLE for k, v in self.toggles.items()}

    def to_json(self) -> dict:
        return {**asdict(self), "model_energy_activity_pj": self.energy_pj, "pj_per_toggle": PJ_PER_TOGGLE}


def module_inputs(verilog_text: str, top: str) -> dict[str, set[str]]:
    """Input port names of every submodule of ``top``, keyed by the instance's short name."""
    out: dict[str, set[str]] = {}
    current = None
    for line in verilog_text.splitlines():
        s = line.strip()
        if s.startswith("module "):
            name = s.split()[1].split("(")[0].lstrip("\\")
            current = name.removeprefix(top + ".") if name.startswith(top + ".") else None
            if current is not None:
                out[current] = set()
        elif s.startswith("endmodule"):
            current = None
        elif current is not None and s.startswith("input "):
            out[current].add(s.rstrip(";").split()[-1].lstrip("\\"))
    return out


def saif_toggles(saif: str | Path, skip: dict[str, set[str]]) -> tuple[dict[str, int], dict[str, int]]:
    """Sum SAIF toggle counts per direct child instance of the DUT.

    ``skip[instance]`` lists port names not counted there (inputs: counted at their driver).
    Amaranth's Verilog repeats some nets under suffixed names (``out_valid$13``): a net whose
    name before ``$`` and bit index match an already-counted net with identical (T0, T1, TC)
    in the same instance is the same wire and counted once.
    Returns (toggles per instance, net bits per instance).
    """
    toggles: dict[str, int] = {}
    bits: dict[str, int] = {}
    seen: set[tuple] = set()
    stack: list[str] = []
    with open(saif) as f:
        for line in f:
            s = line.strip()
            if s.startswith("(INSTANCE"):
                stack.append(s.split()[1])
            elif s.startswith("(NET"):
                stack.append("(NET")
            elif s == ")":
                if stack:
                    stack.pop()
            elif s.startswith("(") and "(TC" in s:
                m = _NET.match(s)
                scopes = [x for x in stack if x != "(NET"]
                if not m or DUT_INSTANCE not in scopes:
                    continue
                inst = scopes[scopes.index(DUT_INSTANCE) + 1:]
                if not inst:
                    continue  # the network top's own scope only aliases its children's ports
                layer = inst[0]
                raw = m.group(1)
                net = raw.split("\\[")[0].lstrip("\\")
                if len(inst) == 1 and (net in skip.get(layer, set()) or net in ("clk", "rst")):
                    continue
                base = net.split("$")[0]
                if base:
                    sig = (tuple(inst), base, raw[len(raw.split("\\[")[0]):], m.group(2), m.group(3), m.group(4))
                    if sig in seen:
                        continue
                    seen.add(sig)
                stage = stage_of(layer)  # a stream converter's toggles count at the stage it feeds
                toggles[stage] = toggles.get(stage, 0) + int(m.group(4))
                bits[stage] = bits.get(stage, 0) + 1
    return toggles, bits


def measure_activity(model: IRModel, verilog: str | Path, ports: HarnessPorts, samples: np.ndarray,
                     expected_cycles: int | None = None, keep_saif: str | Path | None = None) -> ActivityResult:
    """Simulate ``samples`` (raw uint8) on a traced build and count toggles per layer per image."""
    from sim.regression import build_simulator, run_regression

    b = build_simulator(verilog, ports, depth=max(ACTIVITY_DEPTH, len(samples)), trace=True)
    with tempfile.TemporaryDirectory(prefix="lowbit-activity-") as tmp:
        saif = Path(tmp) / "activity.saif"
        r = run_regression(b, model, samples, workdir=Path(tmp) / "run", expected_cycles=expected_cycles,
                           trace_file=saif)
        skip = module_inputs(Path(verilog).read_text(), ports.dut)
        tog, bits = saif_toggles(saif, skip)
        if keep_saif is not None:
            shutil.copyfile(saif, keep_saif)
    n = len(samples)
    return ActivityResult(n, r.bit_exact, r.cycles, {k: v / n for k, v in tog.items()}, bits)
