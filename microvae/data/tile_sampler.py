"""Where tiles come from: random positions, with a share of them required to contain signal.

Mostly-background images (a few cells in a large field, blanked regions) would otherwise train
the model mostly on camera noise. "Signal" is a pixel above the Otsu threshold of the training
data; a foreground tile has at least ``min_share`` of such pixels. Candidate foreground
positions are found once, on a grid of stride tile/4, with an integral image.
"""

from __future__ import annotations

import logging

import numpy as np

from .sources import DataError

__all__ = ["TileSampler", "grid_tiles", "signal_share"]

_log = logging.getLogger(__name__)


def signal_share(mask: np.ndarray, tile: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid positions (N, 2) and their share of signal pixels, via an integral image."""
    integral = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ys = np.arange(0, mask.shape[0] - tile + 1, stride)
    xs = np.arange(0, mask.shape[1] - tile + 1, stride)
    y, x = np.meshgrid(ys, xs, indexing="ij")
    total = (
        integral[y + tile, x + tile]
        - integral[y, x + tile]
        - integral[y + tile, x]
        + integral[y, x]
    )
    return np.stack([y.ravel(), x.ravel()], 1), total.ravel() / tile**2


class TileSampler:
    """Random tile positions over planes, a share ``foreground_fraction`` of them on signal."""

    def __init__(
        self,
        planes: list[np.ndarray],
        tile: int,
        *,
        threshold: float,
        min_share: float,
        foreground_fraction: float,
    ):
        self.tile, self.foreground_fraction = tile, foreground_fraction
        self.planes, self.threshold, self.min_share = planes, threshold, min_share
        self.shapes = [p.shape for p in planes]
        self.stride = max(tile // 4, 1)
        positions = [(p.shape[0] - tile + 1) * (p.shape[1] - tile + 1) for p in planes]
        self.weights = np.asarray(positions, float) / sum(positions)
        self.candidates = []
        for p in planes:
            pos, share = signal_share(p > threshold, tile, self.stride)
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

    def sample(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """(plane index, top row, left column) of a random tile."""
        t = self.tile
        if self.fg_weights is not None and rng.random() < self.foreground_fraction:
            i = int(rng.choice(self.fg_planes, p=self.fg_weights))
            y0, x0 = (int(v) for v in self.candidates[i][rng.integers(len(self.candidates[i]))])
            h, w = self.shapes[i]
            # jitter within the grid cell so that positions are not limited to the grid, and
            # keep the jittered tile only if it still holds enough signal
            jitter = rng.integers(-(self.stride // 2), self.stride // 2 + 1, size=2)
            y = int(np.clip(y0 + jitter[0], 0, h - t))
            x = int(np.clip(x0 + jitter[1], 0, w - t))
            if (self.planes[i][y : y + t, x : x + t] > self.threshold).mean() >= self.min_share:
                return i, y, x
            return i, y0, x0
        i = int(rng.choice(len(self.shapes), p=self.weights))
        h, w = self.shapes[i]
        return i, int(rng.integers(h - t + 1)), int(rng.integers(w - t + 1))


def grid_tiles(
    planes: list[np.ndarray], tile: int, *, max_tiles: int, threshold: float
) -> list[tuple[int, int, int]]:
    """Non-overlapping tiles over ``planes``, at most ``max_tiles``: the ones with most signal
    first, deterministic (the validation set)."""
    found = []
    for i, p in enumerate(planes):
        pos, share = signal_share(p > threshold, tile, tile)
        found += [(-s, i, int(y), int(x)) for (y, x), s in zip(pos, share)]
    if not found:
        raise DataError(f"validation images are smaller than data.tile_size = {tile}")
    found.sort()
    return [(i, y, x) for _, i, y, x in found[:max_tiles]]
