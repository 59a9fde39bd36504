"""Bit widths of integer ranges: the one place lowbit turns a range into a width.

Hardware registers, ROM fields, memory counts and energy models all ask the same question
("how many bits hold every integer in [lo, hi]?"); they differ only in whether the value is
stored as two's complement even when it cannot be negative.
"""
from __future__ import annotations


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's complement width ``w`` with ``-2**(w-1) <= lo`` and ``hi <= 2**(w-1) - 1``.

    Always at least 1 (the range [0, 0] or [-1, 0] fits one signed bit)."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"signed_bits: lo={lo} > hi={hi}")
    neg = (-lo - 1).bit_length() if lo < 0 else 0  # -2**k needs k bits of magnitude, not k + 1
    return max(max(hi, 0).bit_length(), neg) + 1


def unsigned_bits(hi: int) -> int:
    """Bits of an unsigned integer holding every value in [0, hi] (at least 1)."""
    hi = int(hi)
    if hi < 0:
        raise ValueError(f"unsigned_bits: hi={hi} < 0")
    return max(1, hi.bit_length())


def range_bits(lo: int, hi: int) -> int:
    """Storage width of [lo, hi]: unsigned when ``lo >= 0``, else two's complement."""
    return unsigned_bits(hi) if int(lo) >= 0 else signed_bits(lo, hi)
