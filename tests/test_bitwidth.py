"""The one bit-width helper: edge cases of signed, unsigned and storage widths."""
from __future__ import annotations

import pytest

from quantmodels.bitwidth import range_bits, signed_bits, unsigned_bits


@pytest.mark.parametrize("lo, hi, width", [
    (0, 0, 1), (-1, 0, 1), (0, 1, 2), (-1, 1, 2), (-2, 1, 2), (-2, 2, 3),
    (-128, 127, 8), (-129, 127, 9), (-128, 128, 9), (0, 255, 9), (-256, -256, 9), (-5, -3, 4),
    (-(1 << 40), (1 << 40) - 1, 41),
])
def test_signed_bits(lo, hi, width):
    assert signed_bits(lo, hi) == width
    # the definition: the smallest two's complement width holding both ends
    assert -(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1
    assert width == 1 or lo < -(1 << (width - 2)) or hi > (1 << (width - 2)) - 1


def test_signed_bits_exhaustive_small():
    for lo in range(-70, 70):
        for hi in range(lo, 70):
            w = next(w for w in range(1, 12) if -(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1)
            assert signed_bits(lo, hi) == w, (lo, hi)


@pytest.mark.parametrize("hi, width", [(0, 1), (1, 1), (2, 2), (255, 8), (256, 9)])
def test_unsigned_bits(hi, width):
    assert unsigned_bits(hi) == width


def test_range_bits_is_unsigned_for_non_negative_ranges():
    assert range_bits(0, 255) == 8 and range_bits(3, 4) == 3
    assert range_bits(-128, 127) == 8 and range_bits(-1, 255) == 9


def test_bad_ranges_fail_loudly():
    with pytest.raises(ValueError, match=r"^signed_bits: lo=3 > hi=2$"):
        signed_bits(3, 2)
    with pytest.raises(ValueError, match=r"^unsigned_bits: hi=-1 < 0$"):
        unsigned_bits(-1)
