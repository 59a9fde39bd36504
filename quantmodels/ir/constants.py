"""The IR's fixed facts: schema version, file names, bit limits and its closed choices."""
from __future__ import annotations

from enum import StrEnum

SCHEMA_VERSION = 5
#: Versions this loader reads: v1 (xnor_popcount, mac) is a subset of v2 (adds four kinds
#: and the ``products`` array), which is a subset of v3 (adds the conv2d op with fused max-pool),
#: which is a subset of v4 (adds the ``truncate`` input quantizer), which is a subset of v5
#: (adds ``arrays``: the sha256 manifest of weights.npz, checked on load).
READABLE_VERSIONS = (1, 2, 3, 4, 5)
FORMAT = "lowbit-ir"
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"
MAX_BITS = 16
#: Largest vector (input features, layer width) and accumulator width lowbit accepts: beyond them
#: no FPGA holds the design, and the golden model's int64 arithmetic must never wrap.
MAX_FEATURES = 1 << 24
MAX_ACC_BITS = 48
#: Layer names become Verilog identifiers and file names.
LAYER_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class OutputType(StrEnum):
    """A layer's integer output stage."""

    THRESHOLD = "threshold"
    REQUANTIZE = "requantize"
    ARGMAX = "argmax"


class InputQuantizer(StrEnum):
    """How raw uint8 samples become the first layer's input codes.

    threshold: x >= t -> 1 (bits = 1); identity: the uint8 as is (bits = 8);
    truncate: the top ``bits`` bits of the uint8, x >> (8 - bits) (bits = 1..8)."""

    THRESHOLD = "threshold"
    IDENTITY = "identity"
    TRUNCATE = "truncate"


class Op(StrEnum):
    """What a layer's weight matrix acts on: the whole vector, or every window of an image."""

    DENSE = "dense"
    CONV2D = "conv2d"


def choices(enum: type[StrEnum]) -> str:
    """``"a, b, c"``: the valid values of a closed choice, for error messages."""
    return ", ".join(e.value for e in enum)
