"""Evaluation reports: metrics.csv, diagnostics.json, figures (PNG) and report.md."""

from .evaluate import Evaluation, evaluate, ground_truth_path, read_labels

__all__ = ["Evaluation", "evaluate", "ground_truth_path", "read_labels"]
