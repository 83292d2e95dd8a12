"""Tiles for analysis: the training-sized tiles with most signal from images or files.

The latent tools and the diagnostics look at many tiles of the size the model was trained on
(its latent maps have a fixed size per tile, and GroupNorm statistics match). Tiles are taken
on a grid of stride half a tile, the ones with most signal (pixels above the plane's Otsu
threshold) first, so that mostly-background fields do not fill the set with camera noise.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from skimage.filters import threshold_otsu

from ..data import find_images, signal_share
from ..errors import ShapeError
from ..inference import TrainedModel
from ..io import open_image

__all__ = [
    "TileSet",
    "collect_tiles",
    "majority_label",
    "spread_planes",
    "tiles_from_array",
    "tiles_from_planes",
]


@dataclass
class TileSet:
    """Tiles (N, T, T) in raw intensities, and where each came from.

    Attributes:
        tiles: (N, T, T), the images' dtype.
        sources: per tile, the file (or array) name.
        positions: (N, 3) int64: plane number within its source, top row, left column.
        labels: optional per-tile label (e.g. a phenotype); defaults to the source.
    """

    tiles: np.ndarray
    sources: list[str]
    positions: np.ndarray
    labels: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.labels:
            self.labels = list(self.sources)

    def __len__(self) -> int:
        return len(self.tiles)

    def subset(self, index) -> TileSet:
        index = np.asarray(index)
        return TileSet(
            self.tiles[index],
            [self.sources[i] for i in index],
            self.positions[index],
            [self.labels[i] for i in index],
        )

    @staticmethod
    def concat(sets: Iterable[TileSet]) -> TileSet:
        sets = [s for s in sets if len(s)]
        if not sets:
            raise ShapeError(
                "no tiles: the images are smaller than the model's tile or hold no signal"
            )
        return TileSet(
            np.concatenate([s.tiles for s in sets]),
            [x for s in sets for x in s.sources],
            np.concatenate([s.positions for s in sets]),
            [x for s in sets for x in s.labels],
        )


def _threshold(plane: np.ndarray) -> float:
    if float(plane.min()) == float(plane.max()):
        return float(plane.max())
    return float(threshold_otsu(plane))


def tiles_from_planes(
    planes: list[np.ndarray],
    tile: int,
    *,
    max_tiles: int,
    min_signal: float = 0.05,
    source: str = "array",
    label: str | None = None,
) -> TileSet:
    """Up to ``max_tiles`` ``tile`` x ``tile`` tiles of 2D ``planes`` on a grid of stride
    tile/2 (neighbours overlap by half), those with most signal first, each with at least
    ``min_signal`` of its pixels above the plane's Otsu threshold (empty background says
    nothing about the structure); an empty set when the planes are smaller than a tile or hold
    no signal."""
    per_plane = []
    for k, plane in enumerate(planes):
        if plane.ndim != 2:
            raise ShapeError(f"{source}: expected 2D planes, got shape {plane.shape}")
        if min(plane.shape) < tile:
            continue
        pos, share = signal_share(plane > _threshold(plane), tile, max(tile // 2, 1))
        order = np.argsort(-share, kind="stable")
        per_plane.append(
            [(k, int(pos[i][0]), int(pos[i][1])) for i in order if share[i] >= min_signal]
        )
    # the planes in turn, each's tiles with most signal first
    found = [p for rank in itertools.zip_longest(*per_plane) for p in rank if p is not None]
    found = found[:max_tiles]
    dtype = planes[0].dtype if planes else np.float32
    tiles = np.empty((len(found), tile, tile), dtype)
    for i, (k, y, x) in enumerate(found):
        tiles[i] = planes[k][y : y + tile, x : x + tile]
    return TileSet(
        tiles,
        [source] * len(found),
        np.asarray(found, np.int64).reshape(-1, 3),
        [label or source] * len(found),
    )


def spread_planes(n: int, k: int) -> list[int]:
    """k plane numbers spread evenly over n planes (all of them when k >= n)."""
    if k >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / max(k - 1, 1)) for i in range(k)})


def majority_label(region: np.ndarray) -> str:
    """The most common non-zero value of a labels region as ``label N``; ``unlabelled``
    where it holds none (0 is background in napari's and scikit-image's labels)."""
    values, counts = np.unique(region[region != 0], return_counts=True)
    return f"label {values[np.argmax(counts)]}" if len(values) else "unlabelled"


def tiles_from_array(
    data: np.ndarray,
    tile: int,
    *,
    max_tiles: int,
    planes: int = 8,
    min_signal: float = 0.05,
    source: str = "array",
    labels: np.ndarray | None = None,
) -> TileSet:
    """Tiles of an image array (..., Y, X), e.g. a napari layer's data: from up to ``planes``
    planes spread over its leading axes, as :func:`tiles_from_planes` chooses them. The
    positions' plane numbers count the planes of ``data`` in C order (``np.unravel_index``
    with ``data.shape[:-2]`` gives the index). ``labels``, an array of ``data``'s shape
    (integer labels, 0 background), labels each tile by its most common label
    (:func:`majority_label`); without it the tiles are labelled by ``source``."""
    data = np.asarray(data)
    if data.ndim < 2:
        raise ShapeError(f"{source}: need an image (..., Y, X), got shape {data.shape}")
    if labels is not None and np.shape(labels) != data.shape:
        raise ShapeError(
            f"{source}: labels of shape {np.shape(labels)} do not match the image's "
            f"{data.shape}: give labels drawn on this image"
        )
    stack = data.reshape(-1, *data.shape[-2:])
    chosen = spread_planes(len(stack), planes)
    found = tiles_from_planes(
        [stack[k] for k in chosen],
        tile,
        max_tiles=max_tiles,
        min_signal=min_signal,
        source=source,
    )
    found.positions[:, 0] = np.asarray(chosen, np.int64)[found.positions[:, 0]]
    if labels is not None:
        lab = np.asarray(labels).reshape(stack.shape)
        found.labels = [
            majority_label(lab[k, y : y + tile, x : x + tile]) for k, y, x in found.positions
        ]
    return found


def collect_tiles(
    model: TrainedModel,
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    max_tiles: int = 256,
    planes_per_file: int = 8,
    min_signal: float = 0.05,
    channel: int | None = None,
    axes: str | None = None,
) -> TileSet:
    """Tiles of the model's training size from TIFF files, folders or globs: up to
    ``max_tiles`` in all, shared evenly between files, from up to ``planes_per_file`` planes
    of each (spread over its stack), most signal first, none with less than ``min_signal``
    of signal pixels."""
    model.require_2d("the latent tools (tiles, diagnostics on images, maps, figures)")
    paths = find_images([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)
    tile = model.default_tile()
    per_file = max(1, math.ceil(max_tiles / len(paths)))
    sets = []
    for path in paths:
        with open_image(path, channel=channel, axes=axes) as rec:
            rec.require_single_channel()
            wanted = spread_planes(rec.n_planes, planes_per_file)
            planes = []
            for k, (_, plane) in enumerate(rec.iter_planes()):
                if k in wanted:
                    planes.append(plane)
                if k >= wanted[-1]:
                    break
        sets.append(
            tiles_from_planes(
                planes, tile, max_tiles=per_file, min_signal=min_signal, source=path.name
            )
        )
    return TileSet.concat(sets)
