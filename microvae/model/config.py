"""Configuration of the VAE and its likelihood (validated; bad values name the field)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ModelConfig", "LikelihoodConfig"]


class LikelihoodConfig(BaseModel):
    """p(x | z): ``gaussian`` (the blurry MSE baseline), ``laplace`` or ``dmol``."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["gaussian", "laplace", "dmol"] = "dmol"
    components: int = Field(5, ge=1, le=32, description="dmol: logistic components per pixel")
    scale: Literal["pixel", "shared"] = Field(
        "pixel", description="gaussian/laplace: scale predicted per pixel or one per channel"
    )
    min_scale: float = Field(1e-3, gt=0, lt=0.1, description="gaussian/laplace: scale floor")


class ModelConfig(BaseModel):
    """Architecture of the VAE.

    ``levels`` latent levels sit at 1/2, 1/4, ..., 1/2**levels of the tile side, so tile sides
    must be divisible by 2**levels; a ladder may add one at full resolution
    (``full_resolution_latent`` channels). ``channels`` lists the feature channels at full
    resolution and at each level (``levels + 1`` numbers, narrow at full resolution so it
    trains on a CPU); by default ``base_channels * 2**l`` capped at ``max_channels``.
    """

    model_config = ConfigDict(extra="forbid")

    skip_mode: Literal["ladder", "deterministic", "none"] = "ladder"
    levels: int = Field(3, ge=1, le=7)
    in_channels: int = Field(1, ge=1, le=16, description="image channels")
    channels: list[int] | None = None
    base_channels: int = Field(16, ge=4, le=256)
    max_channels: int = Field(128, ge=4, le=1024)
    latent_channels: int | list[int] = Field(
        8, description="latent channels per level: one number, or a list, finest (1/2) first"
    )
    full_resolution_latent: int = Field(
        0,
        ge=0,
        le=256,
        description="ladder: latent channels of one more level at full resolution, below "
        "the others (0: none); capacity for pixel-scale detail",
    )
    blocks_per_level: int = Field(1, ge=1, le=8)
    norm: Literal["group", "none"] = "group"
    activation: Literal["silu", "gelu"] = "silu"
    min_std: float = Field(1e-3, gt=0, lt=0.5, description="floor of latent std devs")
    latent: Literal["global", "map"] = Field(
        "global", description="skip_mode none: a global vector (classic VAE) or a map"
    )
    global_latent_dim: int = Field(64, ge=1, le=4096)
    tile_size: int = Field(64, ge=8, le=4096, description="tile side the model is built for")

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.channels is not None:
            if len(self.channels) != self.levels + 1 or min(self.channels) < 1:
                raise ValueError(
                    f"channels must list {self.levels + 1} positive numbers (full resolution "
                    f"and {self.levels} levels), got {self.channels}"
                )
        lat = self.latent_channels
        if isinstance(lat, list) and (len(lat) != self.levels or min(lat) < 1):
            raise ValueError(f"latent_channels must list {self.levels} positive numbers, got {lat}")
        if isinstance(lat, int) and lat < 1:
            raise ValueError(f"latent_channels must be >= 1, got {lat}")
        if self.full_resolution_latent and self.skip_mode != "ladder":
            raise ValueError(
                f"full_resolution_latent is a ladder level; skip_mode {self.skip_mode} has "
                "none: set it to 0 or use skip_mode ladder"
            )
        if self.tile_size % 2**self.levels:
            m = 2**self.levels
            raise ValueError(
                f"tile_size {self.tile_size} (data.tile_size in a run config) is not divisible "
                f"by 2**levels = {m}; use a multiple of {m}"
            )
        return self

    def channels_per_level(self) -> list[int]:
        """Feature channels at full resolution (index 0) and at levels 1..levels."""
        if self.channels is not None:
            return list(self.channels)
        return [min(self.base_channels * 2**i, self.max_channels) for i in range(self.levels + 1)]

    def latents_per_level(self) -> list[int]:
        """Latent channels at levels 1..levels (index 0 is level 1)."""
        lat = self.latent_channels
        return list(lat) if isinstance(lat, list) else [lat] * self.levels
