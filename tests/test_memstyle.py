"""Memory styles (hw.memstyle): the one rule for ROMs and written memories, and ``distributed``
synthesizing on every family with Yosys (real runs, a small net), LUT-RAM counted exactly."""
from __future__ import annotations

import pytest

from hw.folding import parse_folding
from hw.memstyle import MemStyle, attrs, placed, resolve
from hw.verilog import generate_verilog
from reports.estimator import lutram_cells, unit_memories
from reports.synth import layer_area, module_area

from conftest import random_xnor_model


def test_auto_rule_rom_vs_written_memory():
    # deep and large: block RAM, ROM or RAM alike
    assert resolve("auto", 98, 128) is MemStyle.BLOCK and resolve("auto", 98, 128, written=True) is MemStyle.BLOCK
    # small: a ROM is left to the tool, a written memory (input bank) goes to LUT-RAM
    assert resolve("auto", 32, 49) is None and resolve("auto", 32, 49, written=True) is MemStyle.DISTRIBUTED
    assert resolve("logic", 32, 49, written=True) is MemStyle.LOGIC


def test_written_memory_without_lutram_weighs_blocks_against_cells():
    """iCE40 has no LUT-RAM: a written memory below the auto thresholds goes to block RAM when its bits
    (about a logic cell each in flip-flops) outweigh LOGIC_CELLS_PER_BLOCK cells per block it takes."""
    from hw.memstyle import LOGIC_CELLS_PER_BLOCK, blocks

    assert blocks(16, 64, "ice40") == 4 and blocks(16, 32, "ice40") == 2 and blocks(2048, 2, "ice40") == 1
    assert blocks(1024, 16, "ecp5") == 1 and blocks(2048, 16, "ecp5") == 2
    # the digits nets' input banks (2 x 8 words of 8 x 8-bit / 8 x 4-bit inputs): 256 bits a block
    assert resolve("auto", 16, 64, written=True, family="ice40") is MemStyle.BLOCK
    assert resolve("auto", 16, 32, written=True, family="ice40") is MemStyle.BLOCK
    assert 16 * 32 / blocks(16, 32, "ice40") >= LOGIC_CELLS_PER_BLOCK
    # a 4-word bank would waste a whole block: registers
    assert resolve("auto", 4, 16, written=True, family="ice40") is MemStyle.DISTRIBUTED
    assert resolve("auto", 8, 16, written=True, family="ice40") is MemStyle.DISTRIBUTED  # 128 bits, 1 block
    assert resolve("auto", 32, 49, written=True, family="ice40") is MemStyle.BLOCK  # 1,568 bits, 4 blocks
    # with LUT-RAM, or without a family, or a ROM, or a forced style: as before
    for fam in ("ecp5", "xilinx", None):
        assert resolve("auto", 16, 64, written=True, family=fam) is MemStyle.DISTRIBUTED
    assert resolve("auto", 16, 64, family="ice40") is None
    assert resolve("logic", 16, 64, written=True, family="ice40") is MemStyle.LOGIC


def test_line_buffer_rule():
    """hw.conv's line buffer: auto keeps a tiny one (below LINE_LOGIC_BELOW_BITS) in registers."""
    from hw.memstyle import LINE_LOGIC_BELOW_BITS, line_style

    assert line_style("auto", 6, 6) is MemStyle.LOGIC and 6 * 6 < LINE_LOGIC_BELOW_BITS
    assert line_style("auto", 28, 48) is None  # the tool's choice
    assert line_style("auto", 64, 96) is MemStyle.BLOCK and line_style("distributed", 6, 6) is MemStyle.DISTRIBUTED


@pytest.mark.parametrize("family", ["ice40", "ecp5", "xilinx"])
def test_placed_table(family):
    lutram = family != "ice40"
    assert placed(MemStyle.DISTRIBUTED, family, written=True) == ("distributed" if lutram else "logic")
    assert placed(MemStyle.DISTRIBUTED, family) == "logic"  # a ROM has no write port: LUTs
    assert placed(MemStyle.BLOCK, family) == "block" and placed(None, family) is None


def test_attributes_yosys_can_map():
    # Yosys 0.70 has no LUT-RAM mapping for a ROM: a distributed ROM is spelled logic
    assert attrs(MemStyle.DISTRIBUTED) == {"rom_style": "logic", "ram_style": "logic"}
    assert attrs(MemStyle.DISTRIBUTED, written=True) == {"rom_style": "distributed", "ram_style": "distributed"}
    assert attrs(None) == {} and attrs(MemStyle.BLOCK)["rom_style"] == "block"


# fc0 16x32 at pe=1, simd=2: 16 row folds, input banks 2 x 16 words x 2 bits; fc1 4x16: 2 x 8 words
SPEC = "pe=1,simd=2"


@pytest.mark.yosys
@pytest.mark.parametrize("target,style", [("ice40", "distributed"), ("ecp5", "distributed"),
                                          ("xilinx", "distributed"), ("xilinx", "auto")])
def test_distributed_synthesizes_and_lutram_is_counted(target, style, tmp_path):
    """Used to stop with "no valid mapping found" on ecp5 and xilinx (distributed ROMs); now every
    family maps it, the input banks are LUT-RAM where the family has it, and the estimator's
    unit_memories gives the exact LUT-RAM cells Yosys puts in each unit's own module (the banks; the
    output FIFO's small unmarked memory inside ``fcN.fifo`` is Yosys' own choice, not counted here)."""
    m = random_xnor_model((32, 16, 4), seed=5)
    folds = parse_folding(m, SPEC)
    d = generate_verilog(m, folds, tmp_path, mem_style=style)
    mods = module_area(d.verilog_path, d.top_name, target)
    for L, f in zip(m.layers, folds):
        mems = unit_memories(L, f, target, style)
        assert mems[0].name == "weights" and mems[-1].name == "inbuf"  # (fc1, the argmax layer: no params)
        expected = sum(lutram_cells(mm.depth, mm.live, target) for mm in mems if mm.style == "distributed")
        assert mods[L.name].lutrams == expected, L.name
        assert mods[L.name].brams == 0 and mods[f"{L.name}.core"].lutrams == 0  # ROMs: LUTs
        if target != "ice40":  # fc0: 32 x 2 bits, fc1: 16 x 2 bits -> one RAM32M / two and one DPR16X4
            assert expected == {"xilinx": (1, 1), "ecp5": (2, 1)}[target][int(L.name[2:])]
        else:
            assert expected == 0 and mods[L.name].ffs >= 2 * f.col_folds * f.simd  # the banks in flip-flops
    if target == "xilinx":
        assert mods["fc0"].lutram_luts == 4 * mods["fc0"].lutrams  # RAM32M: four LUT6


@pytest.mark.yosys
def test_module_area_adds_up_to_layer_area(tmp_path):
    m = random_xnor_model((32, 16, 4), seed=5)
    d = generate_verilog(m, parse_folding(m, SPEC), tmp_path)
    mods = module_area(d.verilog_path, d.top_name, "xilinx")
    assert {"fc0", "fc0.core", "fc0.fifo", "fc1", "fc1.core", "fc1__stream", "argmax"} <= set(mods)
    layers = layer_area(d.verilog_path, d.top_name, "xilinx")
    assert layers["fc1"].luts == sum(mods[k].luts for k in ("fc1", "fc1.core", "fc1.fifo", "fc1__stream"))
    assert sum(a.luts for a in layers.values()) == sum(a.luts for a in mods.values())
