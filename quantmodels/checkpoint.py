"""Best-epoch checkpoints: parameters and running statistics in one ``.npz`` plus a JSON
description, both written atomically (no pickle; loadable with ``allow_pickle=False``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_json, atomic_write_npz
from .errors import DataError

CKPT_NPZ = "checkpoint.npz"
CKPT_JSON = "checkpoint.json"


def save_checkpoint(directory: str | Path, params: dict[str, np.ndarray], state: dict[str, np.ndarray],
                    info: dict[str, Any]) -> Path:
    """Write ``checkpoint.npz`` (``params/<name>``, ``state/<name>``) then ``checkpoint.json``."""
    directory = Path(directory)
    arrays = {f"params/{k}": v for k, v in params.items()} | {f"state/{k}": v for k, v in state.items()}
    atomic_write_npz(directory / CKPT_NPZ, arrays)
    atomic_write_json(directory / CKPT_JSON, info)
    return directory


def load_checkpoint(directory: str | Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: (params, state, info)."""
    directory = Path(directory)
    try:
        info = json.loads((directory / CKPT_JSON).read_text(encoding="utf-8"))
        with np.load(directory / CKPT_NPZ, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{directory}: unreadable checkpoint ({type(e).__name__}: {e})") from None
    params = {k[7:]: v for k, v in arrays.items() if k.startswith("params/")}
    state = {k[6:]: v for k, v in arrays.items() if k.startswith("state/")}
    return params, state, info
