"""Rendering segments into pixels: anti-aliased tubes on an oversampled grid.

Each output pixel's value is the fluorophore density of the object there (0 to the segment's
brightness, before any blur). In 2D the density is the projection of a solid tube (its chord
length, normalised to 1 on the centre line), as a widefield image sees it; in 3D it is the solid
tube itself. Distances come from one Euclidean distance transform of the rasterised centre
lines, so that nearby and touching segments merge as real networks do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from .geometry import TUBULE, Segment

__all__ = ["Rendered", "render_segments"]


@dataclass
class Rendered:
    """Object density (float32, 0-1), labels (uint8: 0 background, 1 tubule, 2 punctum) and
    tubule centre lines (bool, a 1-pixel 8-connected skeleton), all of the output shape."""

    density: np.ndarray
    labels: np.ndarray
    centerline: np.ndarray


def _to_index(points_um: np.ndarray, spacing_um: np.ndarray, factor: np.ndarray) -> np.ndarray:
    # Pixel i covers [i - 0.5, i + 0.5) in pixel units; a fine pixel j of factor f has its
    # centre at (j + 0.5) / f - 0.5.
    return np.round((points_um / spacing_um + 0.5) * factor - 0.5).astype(np.int64)


def _block_mean(a: np.ndarray, factor: np.ndarray) -> np.ndarray:
    shape = []
    for n, f in zip(a.shape, factor):
        shape += [n // f, f]
    return a.reshape(shape).mean(axis=tuple(range(1, 2 * a.ndim, 2)))


def render_segments(
    segments: list[Segment],
    shape: tuple[int, ...],
    spacing_um: tuple[float, ...],
    *,
    supersample: int = 2,
) -> Rendered:
    """Render ``segments`` (um coordinates) into an image of ``shape`` with ``spacing_um``.

    Args:
        segments: centre lines with diameters (um), brightness and label.
        shape: output shape, (Y, X) or (Z, Y, X).
        spacing_um: pixel size per axis in um.
        supersample: oversampling factor in Y and X (Z is not oversampled).
    """
    spacing = np.asarray(spacing_um, float)
    factor = np.array([1] * (len(shape) - 2) + [supersample] * 2)
    fine_shape = tuple(np.asarray(shape) * factor)
    seeds = np.zeros(fine_shape, bool)
    radius = np.zeros(fine_shape, np.float32)
    bright = np.zeros(fine_shape, np.float32)
    label = np.zeros(fine_shape, np.uint8)
    centerline = np.zeros(shape, bool)
    for seg in segments:
        idx = _to_index(seg.points, spacing, factor)
        ok = np.all((idx >= 0) & (idx < fine_shape), axis=1)
        if not ok.any():
            continue
        where = tuple(idx[ok].T)
        seeds[where] = True
        radius[where] = seg.diameter / 2
        bright[where] = seg.brightness
        label[where] = seg.label
        if seg.label == TUBULE:
            coarse = _to_index(seg.points, spacing, np.ones_like(factor))
            inside = np.all((coarse >= 0) & (coarse < shape), axis=1)
            centerline[tuple(coarse[inside].T)] = True
    # Rounded samples of a curve make 4-connected staircases; thin them to a 1-pixel skeleton.
    centerline = skeletonize(centerline)
    if not seeds.any():
        zeros = np.zeros(shape, np.float32)
        return Rendered(zeros, zeros.astype(np.uint8), centerline)
    fine_spacing = spacing / factor
    dist, nearest = ndimage.distance_transform_edt(
        ~seeds, sampling=fine_spacing, return_indices=True
    )
    nearest = tuple(nearest)
    r = radius[nearest]
    if len(shape) == 2:  # projection of a solid tube: chord length through it
        inside = np.sqrt(np.clip(1.0 - (dist / r) ** 2, 0.0, 1.0))
    else:  # the solid tube, edges anti-aliased over one fine pixel
        inside = np.clip((r - dist) / fine_spacing[-1] + 0.5, 0.0, 1.0)
    density = (inside * bright[nearest]).astype(np.float32)
    covered = inside > 0
    fine_label = np.where(covered, label[nearest], 0)
    coverage = np.stack([_block_mean(fine_label == k, factor) for k in (1, 2)])
    labels = np.where(coverage.max(axis=0) >= 0.5, coverage.argmax(axis=0) + 1, 0)
    return Rendered(
        _block_mean(density, factor).astype(np.float32), labels.astype(np.uint8), centerline
    )
