"""A failing tool step is a status in a complete report, and the HTML reads what the JSON holds.

The failure is real: Yosys is given a design whose Verilog is cut short, so it rejects it; the
other design goes through synthesis and place-and-route as usual.
"""
from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from lowbit.flow import _print_report
from lowbit.steps import make_hardware
from reports.pnr import MAX_SHELL_CHAIN, PnrFamily, fits_nowhere, shell_verilog, shell_word
from reports.present import DASH, fmt, header
from reports.report import DesignInput, write_report
from reports.sweep_report import simulated
from reports.synth import SynthResult, Target

from conftest import random_mac_model, random_xnor_model


def _design(label: str, model, tmp: Path, broken: bool = False) -> DesignInput:
    model.meta.update(golden_test_accuracy=0.5 if "W1" in label else 0.75, seed=3)
    h = make_hardware(model, None, tmp / label)
    v = h.verilog
    if broken:  # a real bad input: the Verilog cut off mid-module, which Yosys refuses
        v = tmp / "broken.v"
        v.write_text(h.verilog.read_text()[: len(h.verilog.read_text()) // 2])
    return DesignInput(label, model, v, h.ports, h.cycles_per_image, h.latency_cycles,
                       layer_cycles=list(h.design.layer_cycles), foldings=h.foldings)


class _Tables(HTMLParser):
    """Every table of an HTML page: id -> rows of {data-key: cell text}."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[dict[str, str]]] = {}
        self.cells: list[str] = []
        self._id = self._key = self._span = None
        self._n = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._n += 1
            self._id = a.get("id") or f"t{self._n}"
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self.tables[self._id].append({})
        elif tag == "td":
            self._key = a.get("data-key", "?")
            self.tables[self._id][-1][self._key] = ""
        elif tag == "span" and self._key is not None:  # headline cells: value (v) and ratio (r)
            self._span = f"{self._key}.{a.get('class')}"
            self.tables[self._id][-1][self._span] = ""

    def handle_endtag(self, tag):
        if tag == "span":
            self._span = None
        if tag == "td":
            self.cells.append(self.tables[self._id][-1][self._key])
            self._key = None

    def handle_data(self, data):
        if self._key is not None:
            self.tables[self._id][-1][self._key] += data
        if self._span is not None:
            self.tables[self._id][-1][self._span] += data


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("failrep")
    designs = [_design("W1A1", random_xnor_model((16, 8, 4)), tmp),
               _design("int8 broken", random_mac_model((16, 8, 4)), tmp, broken=True),
               _design("int8", random_mac_model((16, 8, 4), seed=1), tmp)]
    paths = write_report(designs, tmp / "report", ("ice40", "xilinx"), pnr=True, progress=lambda m: None)
    return paths, json.loads(paths["json"].read_text())


@pytest.mark.slow  # about 5 minutes on a loaded 2-core machine: three designs through Yosys and nextpnr
@pytest.mark.yosys
def test_failed_synthesis_is_a_status_and_the_report_is_complete(report):
    paths, doc = report
    for k in ("csv", "layers_csv", "json", "png", "html"):
        assert paths[k].stat().st_size > 0
    df = pd.read_csv(paths["csv"]).set_index("design")
    assert list(df.index) == ["W1A1", "int8 broken", "int8"]
    assert df.loc["int8 broken", "status_ice40"] == "synthesis failed, see the tool log"
    assert df.loc["int8 broken", "status_xilinx"] == "synthesis failed, see the tool log"
    assert df.loc["W1A1", "status_ice40"].startswith("fits UP5K at ")  # placed: the failure cost nothing else
    assert df.loc["W1A1", "measured_ice40_fmax_mhz"] > 1 and df.loc["int8", "measured_xilinx_dsps"] > 0
    assert math.isnan(df.loc["int8 broken", "measured_ice40_luts"])
    assert df.loc["int8 broken", "memory_bits"] > 0 and df.loc["int8 broken", "model_energy_pj"] > 0  # counted, modelled
    fails = doc["designs"][1]["tools"]["failures"]
    assert [(f["step"], f["where"]) for f in fails] == [("synthesis", "ice40"), ("synthesis", "xilinx")]
    log = Path(fails[0]["log"])
    assert log.parent == paths["html"].parent / "logs" and "ERROR" in log.read_text()
    assert doc["meta"]["nothing_produced"] == [] and _print_report(paths) == 0
    page = paths["html"].read_text()
    assert f'href="logs/{log.name}"' in page


@pytest.mark.slow
@pytest.mark.yosys
def test_html_headline_equals_json_and_reads_cleanly(report):
    paths, doc = report
    page = paths["html"].read_text()
    p = _Tables()
    p.feed(page)
    head = doc["headline"]
    assert head["target"] == "ice40" and head["family"] == "ice40" and head["baseline"] == "int8"
    rows = p.tables["headline"][1:]  # the first row holds the headers
    assert [r["design"] for r in rows] == [r["design"] for r in head["rows"]]
    for cells, want in zip(rows, head["rows"]):
        for c in head["columns"]:
            v, ratio = want[c["key"]], want["vs_baseline"][c["key"]]
            text = cells[c["key"]]
            if v is None:
                assert text == DASH
                continue
            shown = cells[c["key"] + ".v"]
            assert float(shown.replace(",", "")) == pytest.approx(v, abs=10 ** -c["decimals"] / 2 + 1e-9)
            if ratio is not None:
                assert float(cells[c["key"] + ".r"].rstrip("\u00d7").replace(",", "")) == pytest.approx(ratio, abs=0.005)
            else:
                assert c["key"] + ".r" not in cells
    assert rows[0]["luts.v"] == f"{head['rows'][0]['luts']:,.0f}"
    assert head["rows"][1]["luts"] is None and rows[1]["status"] == "synthesis failed, see the tool log"
    # no NaN, no raw tool error in any cell, one number format
    assert not re.search(r"\bnan\b", page, re.I)
    assert not any("ERROR" in c or "failed on" in c for c in p.cells)
    assert not any(re.search(r"\d[eE][+-]\d", c) for c in p.cells)
    assert "measured_xilinx_luts" not in "".join(re.findall(r"<th[^>]*>([^<]*)</th>", page))  # human headers
    assert DASH in page and "no figure" in page  # the dash has its footnote


def test_status_names_the_resource_that_does_not_fit():
    need = SynthResult(Target.ICE40, luts=9383, ffs=4000, brams=20, dsps=808, carries=0)
    assert fits_nowhere(PnrFamily.ICE40, ("up5k", "hx8k"), need) == \
        "does not fit any iCE40: needs 808 SB_MAC16, the largest part has 8; needs 9,383 LUT4, the largest part has 7,680"
    small = SynthResult(Target.ICE40, luts=3000, ffs=2000, brams=4, dsps=0, carries=0)
    assert fits_nowhere(PnrFamily.ICE40, ("up5k", "hx8k"), small) is None
    # each part lacks something, though no single resource exceeds the largest part
    mixed = SynthResult(Target.ICE40, luts=6000, ffs=100, brams=0, dsps=4, carries=0)
    assert fits_nowhere(PnrFamily.ICE40, ("up5k", "hx8k"), mixed) == \
        "does not fit any iCE40: UP5K needs 6,000 LUT4, has 5,280; HX8K needs 4 SB_MAC16, has 0"


def test_shell_chains_stay_short():
    # the int8 TFC's 784 x 8-bit input: a 6,272-bit shift register crashed YoWASP Yosys
    w = shell_word(6272)
    assert w * MAX_SHELL_CHAIN >= 6272 and -(-6272 // w) <= MAX_SHELL_CHAIN
    text = shell_verilog("net", 6272, 4, 220)
    assert f"localparam integer W = {w};" in text and "words <= {words[N-W-1:0], word}" in text
    assert "sr <= {sr[IW-2:0], din}" in shell_verilog("net", 64, 4, 20)  # narrow inputs: unchanged shell


def test_formats_and_headers():
    assert fmt("measured_ice40_luts", 3683.0) == "3,683"
    assert fmt("measured_ice40_fmax_mhz", float("nan")) == DASH
    assert fmt("model_energy_pj", 32768.04) == "32,768.0"
    assert fmt("test_accuracy", 0.89974) == "89.97"
    assert header("measured_xilinx_luts_vs_int8 MAC baseline") == "LUTs, Xilinx 7 vs int8 MAC baseline (\u00d7)"
    assert header("measured_ice40_fmax_mhz") == "fmax (MHz), iCE40"
    assert header("model_energy_pj") == "energy/frame (pJ, model)"


def test_sweep_counts_each_simulation_once():
    # two synthesis targets share one hardware variant and its one simulation
    df = pd.DataFrame({"hw_key": ["a", "a", "b"], "measured_sim_images": [300, 300, 300],
                       "measured_sim_mismatches": [0, 0, 0]})
    assert simulated(df) == (2, 600, 0)


@pytest.mark.yosys
def test_nothing_produced_is_the_only_failing_exit(tmp_path):
    # every design's synthesis fails on the one requested target: the report is still written, and
    # the command's exit status (1) and one line say what gave nothing
    d = _design("int8 broken", random_mac_model((8, 4, 2)), tmp_path, broken=True)
    paths = write_report([d], tmp_path / "r", ("generic",), pnr=False, progress=lambda m: None)
    doc = json.loads(paths["json"].read_text())
    assert doc["meta"]["nothing_produced"] == ["target generic: synthesis failed for every design"]
    assert doc["designs"][0]["summary"]["status_generic"] == "synthesis failed, see the tool log"
    assert paths["html"].is_file() and paths["png"].is_file() and _print_report(paths) == 1
