"""Configuration of the VAE and its likelihood (validated; bad values name the field)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ModelConfig", "LikelihoodConfig", "z_strides_for"]


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

    ``dims`` 3 makes every convolution, tile, latent and likelihood volumetric (Z, Y, X): the
    same model, one code path. Y and X halve at every level; Z halves only at the levels whose
    ``z_strides`` entry is 2 (finest level first), because Z is usually coarser than XY:
    :func:`z_strides_for` chooses them from the voxel's size. The tile is ``tile_depth`` planes
    deep, a multiple of the product of ``z_strides``.
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
    dims: Literal[2, 3] = Field(2, description="2: planes (Y, X); 3: volumes (Z, Y, X)")
    z_strides: list[int] | None = Field(
        None,
        description="dims 3: per level, finest first, 2 where Z halves and 1 where it does not "
        "(default: 2 at every level, isotropic voxels)",
    )
    tile_depth: int = Field(16, ge=1, le=1024, description="dims 3: planes per tile")
    z_kernels: list[int] | None = Field(
        None,
        description="dims 3: the convolutions' width in Z at full resolution and at each "
        "level (levels + 1 numbers, 1 or 3): 1 where the voxel is still much deeper than wide, "
        "so those convolutions see one plane (default: 3 everywhere)",
    )

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
        self._check_dims()
        if self.tile_size % 2**self.levels:
            m = 2**self.levels
            raise ValueError(
                f"tile_size {self.tile_size} (data.tile_size in a run config) is not divisible "
                f"by 2**levels = {m}; use a multiple of {m}"
            )
        return self

    def _check_dims(self) -> None:
        if self.dims == 2:
            if self.z_strides is not None or self.z_kernels is not None:
                raise ValueError(
                    "z_strides and z_kernels are for 3D models: set model.dims 3, or remove them"
                )
            return
        zk = self.z_kernels
        if zk is not None and (len(zk) != self.levels + 1 or set(zk) - {1, 3}):
            raise ValueError(
                f"z_kernels must list {self.levels + 1} numbers (full resolution, then each "
                f"level), each 1 or 3; got {zk}"
            )
        zs = self.z_strides
        if zs is not None and (len(zs) != self.levels or set(zs) - {1, 2}):
            raise ValueError(
                f"z_strides must list {self.levels} numbers (one per level, finest first), each "
                f"1 or 2; got {zs}"
            )
        m = self.multiples()[0]
        # without z_strides a run chooses them from the voxel, and checks the depth then
        if zs is not None and self.tile_depth % m:
            raise ValueError(
                f"tile_depth {self.tile_depth} (data.tile_depth in a run config) is not "
                f"divisible by {m}, the product of z_strides {self.strides_z()}; use a "
                f"multiple of {m}"
            )
        if self.skip_mode == "none" and self.latent == "global":
            raise ValueError(
                "a global latent vector is for 2D models; a 3D model with skip_mode none needs "
                "model.latent map"
            )

    def strides_z(self) -> list[int]:
        """Z's stride at each level, finest first (all 1 for a 2D model: it has no Z)."""
        if self.dims == 2:
            return [1] * self.levels
        return list(self.z_strides) if self.z_strides is not None else [2] * self.levels

    def strides(self) -> list[tuple[int, ...]]:
        """Per level, finest first, the stride of each spatial axis: (2, 2) or (z, 2, 2)."""
        if self.dims == 2:
            return [(2, 2)] * self.levels
        return [(z, 2, 2) for z in self.strides_z()]

    def kernels(self) -> list[int | tuple[int, int, int]]:
        """The convolutions' kernel at full resolution (index 0) and at levels 1..levels: 3,
        or (z, 3, 3) in 3D."""
        if self.dims == 2:
            return [3] * (self.levels + 1)
        return [(z, 3, 3) for z in (self.z_kernels or [3] * (self.levels + 1))]

    def multiples(self) -> tuple[int, ...]:
        """What each spatial side of a tile must be a multiple of: (2**levels,) * 2, or
        (product of z_strides, 2**levels, 2**levels)."""
        xy = 2**self.levels
        if self.dims == 2:
            return (xy, xy)
        return (math.prod(self.strides_z()), xy, xy)

    def tile_shape(self) -> tuple[int, ...]:
        """The tile the model is built for: (tile_size,) * 2 or (tile_depth, tile_size,
        tile_size)."""
        t = self.tile_size
        return (t, t) if self.dims == 2 else (self.tile_depth, t, t)

    def channels_per_level(self) -> list[int]:
        """Feature channels at full resolution (index 0) and at levels 1..levels."""
        if self.channels is not None:
            return list(self.channels)
        return [min(self.base_channels * 2**i, self.max_channels) for i in range(self.levels + 1)]

    def latents_per_level(self) -> list[int]:
        """Latent channels at levels 1..levels (index 0 is level 1)."""
        lat = self.latent_channels
        return list(lat) if isinstance(lat, list) else [lat] * self.levels


def z_strides_for(levels: int, z_over_xy: float) -> list[int]:
    """Z's stride at each level (finest first) for voxels ``z_over_xy`` times as deep as they
    are wide: XY halves at every level, Z only where, halved, its voxel side stays within
    1.5x the XY side, so that coarse levels see voxels near cubes (nnU-Net pools the same
    way). ``z_over_xy`` 1: isotropic, 2 at every level; 4: Z kept at the first two levels."""
    if not z_over_xy > 0:
        raise ValueError(f"z_over_xy must be > 0, got {z_over_xy}")
    z, xy, out = float(z_over_xy), 1.0, []
    for _ in range(levels):
        xy *= 2
        if z * 2 <= xy * 1.5:  # halving Z leaves it no more than 1.5x the XY side
            z *= 2
            out.append(2)
        else:
            out.append(1)
    return out


def z_kernels_for(levels: int, z_over_xy: float) -> list[int]:
    """The convolutions' width in Z at full resolution and at each level (the ``z_kernels``
    of voxels ``z_over_xy`` times as deep as wide, with :func:`z_strides_for`'s strides): 1
    where the voxel there is more than twice as deep as wide, 3 elsewhere (nnU-Net's rule).
    A plane apart is then too far for a 3-wide kernel to relate; the levels below, where
    XY is coarser, see Z. ``z_over_xy`` 1: 3 everywhere; 3.6: 1 at full resolution only."""
    strides = z_strides_for(levels, z_over_xy)
    z, xy, out = float(z_over_xy), 1.0, []
    for level in range(levels + 1):
        out.append(1 if z > 2 * xy else 3)
        if level < levels:
            xy *= 2
            z *= strides[level]
    return out
