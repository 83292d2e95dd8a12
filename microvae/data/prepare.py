"""From input paths and a DataConfig to training and validation datasets.

``prepare_data`` finds the TIFFs, loads their planes, splits them, checks sizes and content,
fits the normalisation and the signal threshold on the training planes only, and builds the
datasets. Its summary says what was found and how it was split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage.filters import threshold_otsu

from .augment import Augmenter
from .config import DataConfig
from .datasets import FixedTiles, RandomTiles
from .normalise import Normalisation
from .planes import Plane, load_planes, split_planes
from .sources import DataError, find_images
from .tile_sampler import TileSampler, grid_tiles

__all__ = ["PreparedData", "prepare_data"]


@dataclass
class PreparedData:
    train: RandomTiles
    val: FixedTiles
    normalisation: Normalisation
    summary: dict = field(default_factory=dict)


def _check_sizes(planes: list[Plane], tile: int, depth: int | None = None) -> None:
    """Every plane (or volume) holds a tile: ``tile`` x ``tile`` (and ``depth`` planes)."""
    small = [p for p in planes if min(p.data.shape[-2:]) < tile]
    if small:
        p = small[0]
        h, w = p.data.shape[-2:]
        raise DataError(
            f"{p.source}: planes of {h}x{w} are smaller than data.tile_size = {tile} "
            f"({len(small)} plane(s)); lower data.tile_size to at most {min(h, w)} (a multiple "
            "of 2**model.levels) or use larger images"
        )
    thin = [p for p in planes if depth is not None and p.data.shape[0] < depth]
    if thin:
        p = thin[0]
        raise DataError(
            f"{p.source}: a stack of {p.data.shape[0]} planes is thinner than data.tile_depth = "
            f"{depth}; lower data.tile_depth (a multiple of the product of model.z_strides) or "
            "train a 2D model"
        )


def prepare_data(
    inputs: list[str | os.PathLike],
    config: DataConfig,
    *,
    n_train_tiles: int,
    seed: int = 0,
    normalisation: Normalisation | None = None,
    first_tile: int = 0,
    dims: int = 2,
) -> PreparedData:
    """Datasets for training (``n_train_tiles`` random tiles) and validation.

    ``normalisation`` reuses a stored one (when resuming) instead of fitting it again, and
    ``first_tile`` continues the sequence of random tiles where the run stopped. ``dims`` 3:
    the files' volumes (Z, Y, X) in tiles of ``config.tile_depth`` planes; the summary then
    says the voxel's depth over its width (``z_over_xy``: the files', else the config's).
    """
    paths = find_images(inputs)
    train, val, how = _split(paths, config, seed, dims)
    tile = (
        config.tile_size if dims == 2 else (config.tile_depth, config.tile_size, config.tile_size)
    )
    train_arrays = [p.data for p in train]
    if normalisation is None:
        normalisation = _fit_normalisation(train, val, config, seed)
    threshold = _signal_threshold(train_arrays)
    train_set = _training_tiles(
        train_arrays, tile, config, normalisation, threshold, n_train_tiles, seed, first_tile
    )
    sampler = train_set.sampler
    val_arrays = [p.data for p in val]
    positions = grid_tiles(val_arrays, tile, max_tiles=config.max_val_tiles, threshold=threshold)
    val_set = FixedTiles(val_arrays, positions, tile, normalisation)
    summary = {
        "files": [str(p) for p in paths],
        "split": how,
        "train_planes": len(train),
        "val_planes": len(val),
        "val_tiles": len(positions),
        "bit_depth": normalisation.bit_depth,
        "signal_threshold": threshold,
        "foreground_tile_candidates": int(sum(len(c) for c in sampler.candidates)),
    }
    if dims == 3:
        summary["z_over_xy"] = _z_over_xy(train + val, config)
    return PreparedData(train_set, val_set, normalisation, summary)


def _training_tiles(
    arrays, tile, config: DataConfig, normalisation, threshold, n_tiles, seed, first_tile
) -> RandomTiles:
    """``n_tiles`` random training tiles, a share on signal, augmented."""
    sampler = TileSampler(
        arrays,
        tile,
        threshold=threshold,
        min_share=config.foreground_min_share,
        foreground_fraction=config.foreground_fraction,
    )
    max_value = 2**normalisation.bit_depth - 1 if normalisation.bit_depth else None
    augment = Augmenter(
        gain=config.intensity_gain if config.intensity_augment else None,
        offset=normalisation.low,
        max_value=max_value,
    )
    return RandomTiles(
        arrays, sampler, normalisation, augment, length=n_tiles, seed=seed, start=first_tile
    )


def _split(paths: list[Path], config: DataConfig, seed: int, dims: int = 2):
    """The planes (or volumes) of ``paths`` read and split into training and validation,
    and how (see :func:`split_planes`); an error if every training plane is constant."""
    by_file = load_planes(
        paths, channel=config.channel, axes=config.axes, max_gb=config.max_memory_gb, dims=dims
    )
    depth = config.tile_depth if dims == 3 else None
    every = [p for file_planes in by_file.values() for p in file_planes]
    _check_sizes(every, config.tile_size, depth)
    train, val, how = split_planes(
        by_file,
        val_fraction=config.val_fraction,
        tile_size=config.tile_size,
        seed=seed,
        mode=config.split,
        tile_depth=depth or 1,
    )
    if all(p.data.min() == p.data.max() for p in train):
        raise DataError(
            "every training image is constant (one value everywhere): there is nothing to "
            "learn; check the files or data.channel"
        )
    return train, val, how


def _z_over_xy(planes: list[Plane], config: DataConfig) -> float | None:
    """The voxel's depth over its width: the files' (which must agree), else the config's,
    else None."""
    found = {round(p.z_over_xy, 3) for p in planes if p.z_over_xy is not None}
    if len(found) > 1:
        raise DataError(
            f"the training files have voxels of different shapes (Z step over pixel size: "
            f"{', '.join(map(str, sorted(found)))}); a 3D model takes one: train on files of "
            "one voxel size"
        )
    if found:
        return found.pop()
    return config.z_over_xy


def _fit_normalisation(train, val, config: DataConfig, seed: int) -> Normalisation:
    """The normalisation fitted on the training planes, at the config's bit depth or the
    files' own (None where a file does not say)."""
    depths = [p.bit_depth for p in train + val]
    bit_depth = config.bit_depth or (None if None in depths else max(depths))
    return Normalisation.fit(
        [p.data for p in train], bit_depth=bit_depth, percentiles=config.percentiles, seed=seed
    )


def _signal_threshold(arrays: list[np.ndarray]) -> float:
    """Otsu's threshold on a sample of up to ~200k pixels per plane: foreground tiles hold
    pixels above it."""
    sample = np.concatenate([a.ravel()[:: max(1, a.size // 200_000)] for a in arrays])
    return float(threshold_otsu(sample)) if sample.min() < sample.max() else float(sample[0])
