"""Where tiles come from: random positions, with a share of them required to contain signal.

Mostly-background images (a few cells in a large field, blanked regions) would otherwise train
the model mostly on camera noise. "Signal" is a pixel above the Otsu threshold of the training
data; a foreground tile has at least ``min_share`` of such pixels. Candidate foreground
positions are found once, on a grid of stride tile/4, with an integral image. Planes (2D
models) and volumes (3D models) take the same path: a tile has a side per axis.
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np

from .sources import DataError

__all__ = ["TileSampler", "grid_tiles", "signal_share", "tile_shape"]

_log = logging.getLogger(__name__)


def tile_shape(tile: int | tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """A tile's side per axis: an int is a square tile in the last two axes (a 2D model's
    tile, or a volume's planes' when ``ndim`` is 3 and a depth is not given)."""
    if isinstance(tile, int):
        return (tile,) * ndim
    tile = tuple(int(t) for t in tile)
    if len(tile) != ndim:
        raise ValueError(f"a tile of {len(tile)} sides for arrays of {ndim} axes")
    return tile


def signal_share(
    mask: np.ndarray, tile: int | tuple[int, ...], stride: int | tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Grid positions (N, ndim) of tiles over ``mask`` (2D or 3D) and their share of signal
    pixels, via an integral image (a summed-area table, in as many axes as ``mask`` has)."""
    tile, stride = tile_shape(tile, mask.ndim), tile_shape(stride, mask.ndim)
    integral = mask.astype(np.int64)
    for axis in range(mask.ndim):
        integral = integral.cumsum(axis)
    integral = np.pad(integral, [(1, 0)] * mask.ndim)
    starts = [np.arange(0, n - t + 1, st) for n, t, st in zip(mask.shape, tile, stride)]
    grid = np.meshgrid(*starts, indexing="ij")
    total = np.zeros(grid[0].shape, np.int64)
    # inclusion-exclusion over the box's 2**ndim corners
    for corner in itertools.product((0, 1), repeat=mask.ndim):
        sign = -1 if (mask.ndim - sum(corner)) % 2 else 1
        total += sign * integral[tuple(g + c * t for g, c, t in zip(grid, corner, tile))]
    return np.stack([g.ravel() for g in grid], 1), total.ravel() / math.prod(tile)


class TileSampler:
    """Random tile positions over planes (or volumes), a share ``foreground_fraction`` of them
    on signal. ``tile``: a side (square 2D tiles) or a side per axis, e.g. (D, T, T)."""

    def __init__(
        self,
        planes: list[np.ndarray],
        tile: int | tuple[int, ...],
        *,
        threshold: float,
        min_share: float,
        foreground_fraction: float,
    ):
        ndim = planes[0].ndim
        self.tile = tile_shape(tile, ndim)
        self.foreground_fraction = foreground_fraction
        self.planes, self.threshold, self.min_share = planes, threshold, min_share
        self.shapes = [p.shape for p in planes]
        self.stride = tuple(max(t // 4, 1) for t in self.tile)
        positions = [math.prod(n - t + 1 for n, t in zip(p.shape, self.tile)) for p in planes]
        self.weights = np.asarray(positions, float) / sum(positions)
        self.candidates = []
        for p in planes:
            pos, share = signal_share(p > threshold, self.tile, self.stride)
            self.candidates.append(pos[share >= min_share])
        n_fg = sum(len(c) for c in self.candidates)
        self.fg_planes = np.array([i for i, c in enumerate(self.candidates) if len(c)])
        if foreground_fraction > 0 and n_fg == 0:
            _log.warning(
                "no tile has %.0f%% of its pixels above the signal threshold; "
                "sampling tiles uniformly",
                100 * min_share,
            )
        self.fg_weights = (
            np.array([len(self.candidates[i]) for i in self.fg_planes], float) / n_fg
            if n_fg
            else None
        )

    def window(self, i: int, start: tuple[int, ...]) -> np.ndarray:
        """The tile of plane (or volume) ``i`` at ``start``: a view."""
        return self.planes[i][tuple(slice(s, s + t) for s, t in zip(start, self.tile))]

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """(plane index, then the tile's start along each axis: row, column; or plane, row,
        column for volumes) of a random tile."""
        if self.fg_weights is not None and rng.random() < self.foreground_fraction:
            i = int(rng.choice(self.fg_planes, p=self.fg_weights))
            start0 = tuple(
                int(v) for v in self.candidates[i][rng.integers(len(self.candidates[i]))]
            )
            # jitter within the grid cell so that positions are not limited to the grid, and
            # keep the jittered tile only if it still holds enough signal
            half = np.array([st // 2 for st in self.stride])
            jitter = rng.integers(-half, half + 1, size=len(self.tile))
            start = tuple(
                int(np.clip(s + j, 0, n - t))
                for s, j, n, t in zip(start0, jitter, self.shapes[i], self.tile)
            )
            if (self.window(i, start) > self.threshold).mean() >= self.min_share:
                return (i, *start)
            return (i, *start0)
        i = int(rng.choice(len(self.shapes), p=self.weights))
        return (i, *(int(rng.integers(n - t + 1)) for n, t in zip(self.shapes[i], self.tile)))


def grid_tiles(
    planes: list[np.ndarray],
    tile: int | tuple[int, ...],
    *,
    max_tiles: int,
    threshold: float,
) -> list[tuple[int, ...]]:
    """Non-overlapping tiles over ``planes`` (or volumes), at most ``max_tiles``, as (plane
    index, *start): the ones with most signal first, deterministic (the validation set)."""
    found = []
    for i, p in enumerate(planes):
        t = tile_shape(tile, p.ndim)
        pos, share = signal_share(p > threshold, t, t)
        found += [(-s, i, *(int(v) for v in start)) for start, s in zip(pos, share)]
    if not found:
        what = "data.tile_size" if isinstance(tile, int) else f"the tile {tile}"
        raise DataError(f"validation images are smaller than {what}")
    found.sort()
    return [tuple(f[1:]) for f in found[:max_tiles]]
