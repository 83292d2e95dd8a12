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


def _check_sizes(planes: list[Plane], tile: int) -> None:
    small = [p for p in planes if min(p.data.shape) < tile]
    if small:
        p = small[0]
        h, w = p.data.shape
        raise DataError(
            f"{p.source}: planes of {h}x{w} are smaller than data.tile_size = {tile} "
            f"({len(small)} plane(s)); lower data.tile_size to at most {min(h, w)} (a multiple "
            "of 2**model.levels) or use larger images"
        )


def prepare_data(
    inputs: list[str | os.PathLike],
    config: DataConfig,
    *,
    n_train_tiles: int,
    seed: int = 0,
    normalisation: Normalisation | None = None,
    first_tile: int = 0,
) -> PreparedData:
    """Datasets for training (``n_train_tiles`` random tiles) and validation.

    ``normalisation`` reuses a stored one (when resuming) instead of fitting it again, and
    ``first_tile`` continues the sequence of random tiles where the run stopped.
    """
    paths = find_images(inputs)
    train, val, how = _split(paths, config, seed)
    train_arrays = [p.data for p in train]
    if normalisation is None:
        normalisation = _fit_normalisation(train, val, config, seed)
    threshold = _signal_threshold(train_arrays)
    sampler = TileSampler(
        train_arrays,
        config.tile_size,
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
    train_set = RandomTiles(
        train_arrays,
        sampler,
        normalisation,
        augment,
        length=n_train_tiles,
        seed=seed,
        start=first_tile,
    )
    val_arrays = [p.data for p in val]
    positions = grid_tiles(
        val_arrays, config.tile_size, max_tiles=config.max_val_tiles, threshold=threshold
    )
    val_set = FixedTiles(val_arrays, positions, config.tile_size, normalisation)
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
    return PreparedData(train_set, val_set, normalisation, summary)


def _split(paths: list[Path], config: DataConfig, seed: int):
    """The planes of ``paths`` read and split into training and validation planes, and how
    (see :func:`split_planes`); an error if every training plane is constant."""
    by_file = load_planes(
        paths, channel=config.channel, axes=config.axes, max_gb=config.max_memory_gb
    )
    _check_sizes([p for file_planes in by_file.values() for p in file_planes], config.tile_size)
    train, val, how = split_planes(
        by_file,
        val_fraction=config.val_fraction,
        tile_size=config.tile_size,
        seed=seed,
        mode=config.split,
    )
    if all(p.data.min() == p.data.max() for p in train):
        raise DataError(
            "every training image is constant (one value everywhere): there is nothing to "
            "learn; check the files or data.channel"
        )
    return train, val, how


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
