"""Configuration of the data pipeline (validated; bad values name the field)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DataConfig"]


class DataConfig(BaseModel):
    """How TIFFs become training tiles.

    A 2D model trains on the planes of every input (Z/T/C stacks plane by plane); a 3D model
    (``model.dims`` 3) on its volumes (Z, Y, X), in tiles ``tile_depth`` planes deep. ``split``:
    ``file`` holds out whole files; ``within`` splits every file (a stack by planes spread
    evenly over it, a 2D image by a band of rows at its bottom); ``auto`` splits by file from 5
    files on and within each file below. Never by overlapping tiles.
    """

    model_config = ConfigDict(extra="forbid")

    tile_size: int = Field(64, ge=8, le=1024, description="tile side in pixels")
    tile_depth: int = Field(16, ge=1, le=1024, description="3D models: planes per tile")
    z_over_xy: float | None = Field(
        None,
        gt=0,
        description="3D models: the voxel's depth over its width (Z step / pixel size), for "
        "files that do not say; it decides at which levels Z halves",
    )
    channel: int | None = Field(None, ge=0, description="channel to use from C/S axes")
    axes: str | None = Field(None, description="override the files' axes, e.g. ZYX")
    val_fraction: float = Field(0.2, gt=0.0, lt=0.9, description="share held out for validation")
    split: Literal["auto", "file", "within"] = Field(
        "auto", description="by file, within each file, or auto (by file from 5 files on)"
    )
    foreground_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="share of training tiles that must contain signal"
    )
    foreground_min_share: float = Field(
        0.02, gt=0.0, le=1.0, description="pixels above the signal threshold a tile needs"
    )
    intensity_augment: bool = Field(
        False, description="random gain/offset (rounded to levels); not with dmol"
    )
    intensity_gain: tuple[float, float] = (0.8, 1.25)
    percentiles: tuple[float, float] = Field(
        (0.5, 99.8), description="encoder input normalisation: these percentiles map to -1, 1"
    )
    bit_depth: int | None = Field(
        None, ge=1, le=16, description="override the bit depth found in the training data"
    )
    max_val_tiles: int = Field(64, ge=1, le=100000)
    max_memory_gb: float = Field(8.0, gt=0, description="refuse training sets larger than this")
    num_workers: int = Field(0, ge=0, le=64, description="DataLoader worker processes")

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        lo, hi = self.percentiles
        if not 0 <= lo < hi <= 100:
            raise ValueError("percentiles must be (low, high) with 0 <= low < high <= 100")
        g0, g1 = self.intensity_gain
        if not 0 < g0 <= g1:
            raise ValueError("intensity_gain must be (low, high) with 0 < low <= high")
        return self
