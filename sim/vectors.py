"""Packing integer vectors to the harness's hex memories and unpacking its responses.

Element i of a vector of ``bits``-wide elements sits at bits [i*bits +: bits] (LSB first),
the same layout as the network top's ``in_data`` and ``out_logits`` ports.
"""
from __future__ import annotations

import numpy as np


def pack_rows(x: np.ndarray, bits: int) -> list[str]:
    """Pack (N, F) unsigned integers of ``bits`` each into N hex words of F*bits bits."""
    x = np.asarray(x, dtype=np.uint64)
    n, f = x.shape
    width = f * bits
    if x.size and int(x.max()) >> bits:
        raise ValueError(f"pack_rows: value {int(x.max())} does not fit in {bits} bits")
    # (N, F, bits) little-endian bit planes -> (N, F*bits) -> bytes LSB first
    planes = ((x[:, :, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    packed = np.packbits(planes.reshape(n, width), axis=1, bitorder="little")
    digits = (width + 3) // 4
    rows = packed[:, ::-1]  # most significant byte first for hex
    return [row.tobytes().hex()[-digits:] for row in rows]


def write_hex(path, rows: list[str]) -> None:
    """Write one hex word per line ($readmemh format)."""
    with open(path, "w") as f:
        f.write("\n".join(rows))
        f.write("\n")


def read_hex(path) -> list[int]:
    """Read a $writememh file into Python ints (skips comments and blank lines)."""
    vals = []
    with open(path) as f:
        for line in f:
            line = line.split("//")[0].strip()
            if not line or line.startswith("@"):
                continue
            vals.append(int(line, 16))
    return vals


def unpack_responses(words: list[int], class_width: int, logit_width: int,
                     n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``{logits, class}`` words into classes (N,) and signed logits (N, n_classes)."""
    classes = np.array([w & ((1 << class_width) - 1) for w in words], dtype=np.int64)
    mask, sign = (1 << logit_width) - 1, 1 << (logit_width - 1)
    logits = np.zeros((len(words), n_classes), dtype=np.int64)
    for i, w in enumerate(words):
        v = w >> class_width
        for j in range(n_classes):
            e = (v >> (j * logit_width)) & mask
            logits[i, j] = e - (1 << logit_width) if e & sign else e
    return classes, logits
