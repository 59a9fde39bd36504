"""Error types shared by every lowbit layer.

Every error a user can cause (bad file, bad field, impossible folding) is a
:class:`LowbitError` whose message is one line naming the file/field, the value
found and what was expected. The CLI prints it and exits with status 2.
"""


class LowbitError(Exception):
    """Base class for user-facing errors (one-line message, CLI exit status 2)."""


class DataError(LowbitError):
    """A dataset file is missing, truncated or has the wrong shape/dtype."""


class IRError(LowbitError):
    """An IR model directory is inconsistent (shapes, kinds, dtypes, ranges)."""


class ConfigError(LowbitError):
    """A hyper-parameter, folding or CLI option is invalid."""


def clip(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error line never echoes unbounded input."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit - 3] + "..."
