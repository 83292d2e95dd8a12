"""Batch processing of folders of image stacks."""

from .stacks import OUTPUTS, BatchSummary, FileResult, output_paths, process_stacks

__all__ = ["OUTPUTS", "BatchSummary", "FileResult", "output_paths", "process_stacks"]
