"""Evaluation reports: metrics.csv, diagnostics.json, figures (PNG) and report.md."""

from .calibrate import CalibrationReport, calibrate, calibrate_arrays, calibration_images
from .evaluate import Evaluation, evaluate, ground_truth_path, read_labels
from .uncertainty import (
    StructureUncertainty,
    structure_uncertainty,
    structure_uncertainty_steps,
)

__all__ = [
    "CalibrationReport",
    "calibrate",
    "calibrate_arrays",
    "calibration_images",
    "Evaluation",
    "evaluate",
    "ground_truth_path",
    "read_labels",
    "StructureUncertainty",
    "structure_uncertainty",
    "structure_uncertainty_steps",
]
