"""Torch datasets of tiles: random training tiles (reproducible per index) and a fixed
validation grid. Items are float32 tensors (1, T, T), or (1, D, T, T) from volumes, of
likelihood targets in [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import Augmenter
from .normalise import Normalisation
from .tile_sampler import TileSampler, tile_shape

__all__ = ["RandomTiles", "FixedTiles"]


class RandomTiles(Dataset):
    """``length`` random tiles; tile ``i`` depends only on (seed, start + i), whatever the
    workers; ``start`` skips the tiles a resumed run has already seen."""

    def __init__(
        self,
        planes: list[np.ndarray],
        sampler: TileSampler,
        normalisation: Normalisation,
        augment: Augmenter,
        *,
        length: int,
        seed: int,
        start: int = 0,
    ):
        self.planes, self.sampler, self.norm, self.augment = planes, sampler, normalisation, augment
        self.length, self.seed, self.start = length, seed, start

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.length:  # ends iteration with `for` like a sequence
            raise IndexError(f"tile {index} of {self.length}")
        # a resumed run starts at the tile after the last one it trained on
        rng = np.random.default_rng((self.seed, self.start + index))
        i, *start = self.sampler.sample(rng)
        tile = self.augment(self.sampler.window(i, start), rng)
        return torch.from_numpy(self.norm.to_model(tile))[None]


class FixedTiles(Dataset):
    """Tiles at fixed positions (plane, then the start along each axis): the validation
    set. ``tile``: a side (square 2D tiles) or a side per axis."""

    def __init__(
        self,
        planes: list[np.ndarray],
        positions: list[tuple[int, ...]],
        tile: int | tuple[int, ...],
        normalisation: Normalisation,
    ):
        self.planes, self.positions, self.norm = planes, positions, normalisation
        self.tile = tile_shape(tile, planes[0].ndim) if planes else tile

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> torch.Tensor:
        i, *start = self.positions[index]  # a list: raises IndexError past the end
        window = tuple(slice(s, s + t) for s, t in zip(start, self.tile))
        return torch.from_numpy(self.norm.to_model(self.planes[i][window]))[None]
