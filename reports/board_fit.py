"""``lowbit fit``: the fastest folding whose area fits a board, estimated first, confirmed by synthesis.

Candidates are the throughput-balanced foldings of :func:`hw.folding.auto_folding` for lane
budgets 2^k, fastest first. Each is screened with the calibrated area estimator (a MODEL of the
layers only: :mod:`reports.estimator`) against a share of the board's budget that leaves room for
what the estimator does not see (shell, argmax, LUT/FF packing); the first one that passes is
synthesized with Yosys (shell + network, the board's family) and must fit the budget as counted
(MEASURED). When nothing fits, the refusal names the resource and by how much.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from hw.boards import Board
from hw.folding import Folding, auto_folding
from hw.network import NetworkTop
from hw.protocol import DEFAULT_BAUD, baud_divider
from hw.shell import SYSTEM_TOP, system_verilog
from quantmodels.atomic import atomic_write_text
from quantmodels.errors import ConfigError
from quantmodels.ir import IRModel

from .estimator import estimate_model
from .synth import synthesize

#: Share of the board's LUTs the estimated layers may take: measured on the digits TFC W1A1 net at
#: 256 lanes on the UP5K, nextpnr packed 5,806 logic cells where the estimator said 3,570 LUTs (1.6x).
ESTIMATE_LUT_SHARE = 0.6
#: Share of the LUTs the synthesized design may take (placement needs slack; FF-only cells).
SYNTH_LUT_SHARE = 0.9
MAX_SYNTH_TRIES = 3


class FitError(ConfigError):
    """No folding of the model fits the board."""


@dataclass(frozen=True)
class FitResult:
    """The chosen folding and the figures it was chosen by."""

    board: str
    foldings: list[str]
    cycles_per_image: int
    estimated: dict | None  #: MODEL: {"luts", "brams", "dsps"} of the layers, None if not estimable
    synthesized: dict  #: MEASURED by Yosys: {"luts", "ffs", "brams", "dsps"} of shell + network
    rejected: list[str]  #: faster candidates and why they were passed over

    @property
    def fold_spec(self) -> str:
        """The --fold argument that reproduces the choice."""
        return ";".join(self.foldings)

    def to_json(self) -> dict:
        return {**asdict(self), "fold_spec": self.fold_spec}


def candidates(model: IRModel) -> list[list[Folding]]:
    """Throughput-balanced foldings for lane budgets 2^k, fastest first, without repeats."""
    top = max(L.rows * L.cols for L in model.layers)
    seen, out = set(), []
    lanes = 1 << (top - 1).bit_length()
    while lanes >= 1:
        f = auto_folding(model, lanes)
        key = tuple(str(x) for x in f)
        if key not in seen:
            seen.add(key)
            out.append(f)
        lanes //= 2
    return sorted(out, key=lambda f: (max(x.cycles for x in f), sum(x.lanes for x in f)))


def _over(need: dict, budget: dict, lut_share: float) -> list[str]:
    """One phrase per resource ``need`` exceeds (LUTs against ``lut_share`` of the budget)."""
    out = []
    for k in ("luts", "brams", "dsps"):
        limit = budget[k] * (lut_share if k == "luts" else 1.0)
        if need[k] > limit:
            allowed = f"{limit:,.0f} ({lut_share:.0%} of {budget[k]:,})" if k == "luts" else f"{limit:,.0f}"
            out.append(f"{need[k]:,.0f} {k[:-1].upper()} where {allowed} are allowed, {need[k] - limit:,.0f} over")
    return out


def fit_board(model: IRModel, b: Board, work_dir: str | Path, popcount: str = "tree",
              baud: int = DEFAULT_BAUD) -> FitResult:
    """The fastest folding of ``model`` that fits board ``b`` (see the module doc)."""
    work = Path(work_dir)
    bud = {"luts": b.budget.luts, "brams": b.budget.brams, "dsps": b.budget.dsps}
    divider = baud_divider(b.clock_hz, baud)
    rejected: list[str] = []
    last_reason = ""
    tries = 0
    for folds in candidates(model):
        label = ";".join(str(f) for f in folds)
        try:
            e = estimate_model(model.layers, folds, b.family, family=b.family)  # the units NetworkTop builds below
            est = {"luts": round(e.luts), "brams": e.brams, "dsps": e.dsps}
        except ConfigError:  # e.g. conv layers: the estimator is calibrated on dense units only
            est = None
        if est is not None and (over := _over(est, bud, ESTIMATE_LUT_SHARE)):
            last_reason = f"{over[0]} (estimate of the layers)"
            rejected.append(f"{label}: {last_reason}")
            continue
        if tries == MAX_SYNTH_TRIES:
            break
        tries += 1
        net = NetworkTop(model, folds, popcount, family=b.family)
        vpath = atomic_write_text(work / f"fit{tries}" / "system.v", system_verilog(net, divider))
        s = synthesize(vpath, SYSTEM_TOP, b.family)
        syn = {"luts": s.luts, "ffs": s.ffs, "brams": s.brams, "dsps": s.dsps}
        if over := _over(syn, bud, SYNTH_LUT_SHARE):
            last_reason = f"{over[0]} (synthesis)"
            rejected.append(f"{label}: {last_reason}")
            continue
        return FitResult(b.name, [str(f) for f in folds], net.cycles_per_image, est, syn, rejected)
    raise FitError(f"fit: no folding of {model.name} fits {b.name}: the smallest one tried needs {last_reason}")
