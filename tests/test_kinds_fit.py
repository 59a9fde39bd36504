"""What the kinds_fmax benchmark places where: synthesis without DSPs for parts that have none, and
every family folding it names is legal for the digits net it places."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reports.pnr import synth_target

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_parts_without_multipliers_synthesize_without_dsps():
    assert synth_target("ice40", ("hx8k",)) == "ice40-nodsp"  # HX8K has no SB_MAC16
    assert synth_target("ice40", ("up5k", "hx8k")) == "ice40" and synth_target("ice40") == "ice40"
    assert synth_target("ecp5", ("25k",)) == "ecp5"


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_kind_foldings_are_legal_for_the_digits_net():
    from fpga_targets import KIND_DEVICES, KIND_FAMILY_FOLDS, KIND_FOLDS, KIND_METHODS

    from hw.folding import parse_folding

    from conftest import random_kind_model

    assert set(KIND_FOLDS) == set(KIND_METHODS)
    for (kind, fam), spec in KIND_FAMILY_FOLDS.items():
        assert kind in KIND_METHODS and fam in KIND_DEVICES
        m = random_kind_model(kind, sizes=(64, 64, 64, 64, 10), seed=0)
        assert [f.lanes for f in parse_folding(m, spec)][0] <= 16  # never wider than the default folding
