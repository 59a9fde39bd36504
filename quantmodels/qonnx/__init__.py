"""QONNX import and export: lowbit IR <-> QONNX graphs (needs the ``onnx`` and ``qonnx`` packages).

:func:`import_qonnx` streamlines a QONNX graph exactly into the integer IR; :func:`export_qonnx`
writes an IR model as a QONNX graph that ``qonnx.core.onnx_exec.execute_onnx`` runs to the golden
model's predictions; :func:`agreement` measures golden vs executor on images.
"""
from __future__ import annotations

from .check import Agreement, agreement
from .exporter import export_qonnx
from .importer import ImportSummary, import_qonnx

__all__ = ["Agreement", "agreement", "export_qonnx", "ImportSummary", "import_qonnx"]
