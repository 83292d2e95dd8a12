"""The model file's format: its marker, version and required keys, and the error for a file
that is missing, damaged, foreign or unsafe (shared by model files and bioimage.io packages)."""

from __future__ import annotations

from ..errors import MicrovaeError

__all__ = ["FORMAT", "FORMAT_VERSION", "REQUIRED", "ModelFileError"]

FORMAT = "microvae-model"
# 2: the likelihood reads decoder outputs in the data's normalised coordinates
# (likelihood.data_scale/data_shift in the weights); format 1 files load with the identity
# 3: the ladder's posterior blocks follow model.norm and model.activation (before: always
# GroupNorm and SiLU; format 2 files load as they were built)
FORMAT_VERSION = 3
REQUIRED = ("format", "format_version", "state_dict", "config", "normalisation", "versions")


class ModelFileError(MicrovaeError, ValueError):
    """A model file is missing, damaged, foreign or unsafe."""
