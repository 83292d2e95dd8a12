"""Tiles over a plane: a grid aligned to the model's 2**levels, reflection padding, blending.

A plane is padded by reflection (a margin for context at the borders, and up to at least one
tile), covered by overlapping tiles whose corners sit on multiples of 2**levels (so latent
maps at 1/2**l resolution stitch exactly), and the tiles' outputs are averaged with a smooth
window: a raised cosine over the overlap, strictly positive, normalised by the summed weights.
Where one tile alone covers a pixel the result is that tile's; where tiles overlap it fades
from one to the other, so no seam shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["TileGrid", "plan_axis", "blend_profile", "blend_window"]


def plan_axis(length: int, tile: int, stride: int) -> list[int]:
    """Tile starts along one axis: every ``stride``, the last flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_profile(tile: int, overlap: int) -> np.ndarray:
    """(tile,) float32: 1 inside, a raised cosine over ``overlap`` pixels at each end, never 0."""
    w = np.ones(tile, np.float64)
    if overlap > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap) + 0.5) / overlap)
        w[:overlap] = ramp
        w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
    return w.astype(np.float32)


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """(tile, tile) float32 weights: the outer product of :func:`blend_profile` with itself."""
    w = blend_profile(tile, overlap)
    return np.outer(w, w)


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of one (height, width) plane go.

    Attributes:
        pad: ((top, bottom), (left, right)) reflection padding of the plane.
        positions: (row, column) of every tile's corner in the padded plane.
        tile, overlap: tile side and the minimum overlap, in pixels.
    """

    shape: tuple[int, int]
    tile: int
    overlap: int
    pad: tuple[tuple[int, int], tuple[int, int]]
    positions: list[tuple[int, int]]

    @classmethod
    def plan(cls, shape: tuple[int, int], *, tile: int, overlap: int, multiple: int) -> TileGrid:
        """Grid for a plane of ``shape``; ``tile`` must be a multiple of ``multiple``."""
        if tile % multiple:
            raise ValueError(f"tile size {tile} is not a multiple of 2**levels = {multiple}")
        if not 0 <= overlap < tile:
            raise ValueError(f"overlap must be 0..{tile - 1} pixels, got {overlap}")
        margin = math.ceil(overlap / 2 / multiple) * multiple
        stride = max(multiple, (tile - overlap) // multiple * multiple)
        pads, starts = [], []
        for n in shape:
            padded = max(n + 2 * margin, tile)
            padded += -padded % multiple
            pads.append((margin, padded - n - margin))
            starts.append(plan_axis(padded, tile, stride))
        positions = [(y, x) for y in starts[0] for x in starts[1]]
        return cls(tuple(shape), tile, overlap, (pads[0], pads[1]), positions)

    @property
    def padded_shape(self) -> tuple[int, int]:
        (t, b), (left, r) = self.pad
        return self.shape[0] + t + b, self.shape[1] + left + r

    def pad_plane(self, plane: np.ndarray) -> np.ndarray:
        """The plane padded by reflection (repeatedly, if it is smaller than the padding)."""
        out = plane
        for axis, (before, after) in enumerate(self.pad):
            while before or after:  # numpy's reflect needs pads smaller than the axis
                n = out.shape[axis] - 1
                b, a = min(before, n), min(after, n)
                widths = [(0, 0), (0, 0)]
                widths[axis] = (b, a)
                out = np.pad(out, widths, mode="reflect" if n > 0 else "edge")
                if n == 0:
                    b, a = before, after
                before, after = before - b, after - a
        return out

    def crop(self, padded: np.ndarray, scale: int = 1) -> np.ndarray:
        """The plane's own region of a padded array (at 1/``scale`` resolution; last 2 axes):
        at least one element per axis, so that a plane smaller than ``scale`` keeps the
        latent pixel that covers it."""
        (t, _), (left, _) = self.pad
        h, w = self.shape
        y0, x0 = t // scale, left // scale
        y1, x1 = max((t + h) // scale, y0 + 1), max((left + w) // scale, x0 + 1)
        return padded[..., y0:y1, x0:x1]
