"""Per-operation energies: the ONE table every lowbit energy figure is computed from.

MODELLED, not measured. Source: M. Horowitz, "Computing's energy problem (and what we
can do about it)", ISSCC 2014, 45 nm, 0.9 V. Entries marked ``derived`` are our
extrapolations from that table, stated with the rule used.
"""
from __future__ import annotations

CITATION = "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, 45 nm, 0.9 V"

#: Horowitz ISSCC 2014 table (pJ per operation).
HOROWITZ_PJ = {
    "int_add_8": 0.03,
    "int_add_16": 0.05,
    "int_add_32": 0.1,
    "int_mult_8": 0.2,
    "int_mult_32": 3.1,
    "fp_add_16": 0.4,
    "fp_add_32": 0.9,
    "fp_mult_16": 1.1,
    "fp_mult_32": 3.7,
    "sram_read_64b_8KB": 10.0,
    "sram_read_64b_32KB": 20.0,
    "sram_read_64b_1MB": 100.0,
}

#: Extrapolation rules (derived, documented so a reader can disagree with them).
DERIVED_RULES = {
    "int_add_n": "n-bit add: piecewise-linear in n through (8, 0.03), (16, 0.05), (32, 0.1); "
                 "below 8 bits scaled linearly, 0.03*n/8",
    "xnor_1": "1-bit XNOR: taken equal to one bit of an 8-bit adder, 0.03/8 pJ",
    "popcount_n": "n-input popcount tree: about n one-bit full-adder cells, n * 0.03/8 pJ",
    "int_mult_nxm": "n x m-bit multiply: 0.2 pJ * (n*m)/64 (array multiplier area ~ n*m; "
                    "matches 32x32 = 3.2 vs 3.1 in the table)",
    "skip_zero_weights": "accumulate / shift_add: a zero weight costs nothing (its add is skipped)",
    "shift": "barrel shift of an n-bit value: taken equal to an n-bit add",
    "bit_plane": "bit_serial: per (activation bit, weight bit) plane, one 1-bit AND and one popcount "
                 "bit-add per weight, each 0.03/8 pJ",
    "table_lookup": "lut_product: reading one entry of the tiny product table taken equal to an add "
                    "of the entry's width (it is a LUT, not an SRAM)",
    "toggle_bit": "activity term: one 0->1 or 1->0 transition of one RTL net bit (register or named "
                  "wire, counted by Verilator SAIF) taken equal to one bit-slice of an 8-bit add, 0.03/8 pJ; "
                  "clock-tree and gate-internal nets are not counted, so this term is a lower bound",
    "sram_read_bit": "one stored bit read: the 64-bit read energy of the smallest listed SRAM "
                     "at least as large as the model's memory, divided by 64",
}

#: Activity term per toggling net bit (pJ): rule ``toggle_bit`` above.
PJ_PER_TOGGLE = HOROWITZ_PJ["int_add_8"] / 8
