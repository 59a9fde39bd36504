"""Generated Verilog is pinned byte for byte: one dense and one conv model per kind.

A refactor must not change the hardware. An intended hardware change updates the pins:
``python tests/test_verilog_snapshot.py --update`` (and says why in the commit). The pins hold
for the Amaranth version they were made with; another version may print Verilog differently,
so the test skips there rather than fail on formatting.
"""
from __future__ import annotations

import hashlib
import json
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from amaranth.back import verilog

from hw.folding import parse_folding
from hw.network import NetworkTop

sys.path.insert(0, str(Path(__file__).parent))
from conftest import ALL_KINDS, random_conv_model, random_kind_model  # noqa: E402

PINS = Path(__file__).with_name("data") / "verilog_sha256.json"
# folding: automatic, and a narrow per-layer one that exercises several row and column folds
CASES = [(k, "dense", None) for k in ALL_KINDS] + [(k, "dense", "fc0:pe=2,simd=3;fc1:pe=1,simd=2")
                                                   for k in ALL_KINDS] + [(k, "conv", None) for k in ALL_KINDS]


def design_sha256(kind: str, shape: str, fold: str | None) -> str:
    model = random_kind_model(kind) if shape == "dense" else random_conv_model(kind, channels=(2,), seed=1)
    text = verilog.convert(NetworkTop(model, parse_folding(model, fold)), name="lowbit_net", emit_src=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _key(kind: str, shape: str, fold: str | None) -> str:
    return f"{kind}/{shape}/{fold or 'auto'}"


@pytest.mark.parametrize("kind, shape, fold", CASES)
def test_verilog_bytes_pinned(kind, shape, fold):
    pins = json.loads(PINS.read_text())
    if pins["amaranth"] != version("amaranth"):
        pytest.skip(f"pins made with amaranth {pins['amaranth']}, this is {version('amaranth')}")
    assert _key(kind, shape, fold) in pins["sha256"], "new case: run this file with --update"
    assert design_sha256(kind, shape, fold) == pins["sha256"][_key(kind, shape, fold)]


if __name__ == "__main__":
    if "--update" not in sys.argv:
        sys.exit("usage: python tests/test_verilog_snapshot.py --update")
    doc = {"amaranth": version("amaranth"), "sha256": {_key(*c): design_sha256(*c) for c in CASES}}
    PINS.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(CASES)} pins to {PINS}")
