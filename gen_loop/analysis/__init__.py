"""Analysis stage: find and explain the domain gap between named image sets and a reference.

``python -m gen_loop analyze`` loads the sets, embeds them with the detector's backbone, runs the
detector, and calls :func:`analyze_sets`, which a ``run`` can call as well with arrays it
already holds; :func:`write_report` turns the result into a report folder.
"""

from __future__ import annotations

from gen_loop.analysis.core import Analysis, AnalysisSettings, LossEvaluation, analyze_sets
from gen_loop.analysis.metadata import PROPERTIES, PropertySpec, image_properties
from gen_loop.analysis.origins import Origin, load_origin, origin_from_batch
from gen_loop.analysis.report import write_report
from gen_loop.analysis.shift import ShiftResult, two_sample_shift

__all__ = [
    "PROPERTIES",
    "Analysis",
    "AnalysisSettings",
    "LossEvaluation",
    "Origin",
    "PropertySpec",
    "ShiftResult",
    "analyze_sets",
    "image_properties",
    "load_origin",
    "origin_from_batch",
    "two_sample_shift",
    "write_report",
]
