"""Golden model vs the qonnx executor on images: the measurement behind every import/export claim."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..ir import IRModel, golden_forward
from .graph import load_qonnx, run_graph


@dataclass(frozen=True)
class Agreement:
    """Per-image class agreement between lowbit's golden model and the QONNX graph."""

    n_images: int
    agree: int  #: images where golden class == argmax of the executor's output
    first_disagreement: int | None  #: index of the first image that differs
    golden_accuracy: float | None  #: with labels
    graph_accuracy: float | None

    def to_json(self) -> dict:
        return asdict(self)

    def render(self) -> str:
        s = f"golden vs qonnx executor: {self.agree}/{self.n_images} images agree"
        if self.first_disagreement is not None:
            s += f" (first difference at image {self.first_disagreement})"
        if self.golden_accuracy is not None:
            s += f"; accuracy golden {100 * self.golden_accuracy:.2f}%, graph {100 * self.graph_accuracy:.2f}%"
        return s


def agreement(model: IRModel, onnx_path: str | Path, images: np.ndarray, labels: np.ndarray | None = None,
              graph=None) -> Agreement:
    """Run ``images`` (raw uint8) through the golden model and through the QONNX file with qonnx's executor."""
    g = golden_forward(model, images).classes
    out = run_graph(graph if graph is not None else load_qonnx(onnx_path), images)
    e = out.argmax(1)
    bad = np.flatnonzero(g != e)
    acc = (lambda c: float((c == labels).mean())) if labels is not None else (lambda c: None)
    return Agreement(len(images), int(len(images) - len(bad)), int(bad[0]) if len(bad) else None, acc(g), acc(e))
