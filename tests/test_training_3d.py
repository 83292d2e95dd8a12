"""Training on stacks in 3D: volumes in, 3D tiles with signal, anisotropy-aware augmentation
and Z strides from the files' voxel size, a split by blocks of planes, a model file out."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

import microvae
from microvae.config import ConfigError
from microvae.data import DataConfig, prepare_data
from microvae.data.augment import Augmenter
from microvae.data.sources import DataError
from microvae.data.tile_sampler import signal_share
from microvae.synthetic import generate

VOXEL = {"Z": 0.2, "Y": 0.05, "X": 0.05}  # Z 4x coarser: Z keeps its size at level 1


@pytest.fixture(scope="module")
def stacks(tmp_path_factory) -> Path:
    """Two synthetic ZYX stacks (16 x 64 x 64) with their voxel size, and one without."""
    folder = tmp_path_factory.mktemp("stacks")
    for i in range(2):
        s = generate(shape=(16, 64, 64), seed=i, z_step_um=0.2, pixel_size_um=0.05)
        microvae.write_image(folder / f"s{i}.tif", s.image, axes="ZYX", pixel_size=VOXEL)
    bare = generate(shape=(16, 64, 64), seed=5, z_step_um=0.2, pixel_size_um=0.05).image
    microvae.write_image(folder.parent / "bare.tif", bare, axes="ZYX", pixel_size={})
    return folder


def test_signal_share_in_3d_matches_counting():
    rng = np.random.default_rng(0)
    mask = rng.random((7, 11, 13)) > 0.7
    tile, stride = (3, 4, 5), (2, 3, 4)
    pos, share = signal_share(mask, tile, stride)
    for (z, y, x), s in zip(pos, share):
        box = mask[z : z + 3, y : y + 4, x : x + 5]
        assert s == pytest.approx(box.mean())
    assert len(pos) == len(range(0, 5, 2)) * len(range(0, 8, 3)) * len(range(0, 9, 4))


def test_volume_augmentation_keeps_z_apart_from_xy():
    """Every augmented volume is one of the 16 transforms: a D4 transform of each plane (the
    same for all) and Z flipped or not; Z never moves into XY."""
    v = np.arange(4 * 5 * 5, dtype=np.uint16).reshape(4, 5, 5)
    allowed = set()
    for flip_z, k, flip in itertools.product((False, True), range(4), (False, True)):
        w = v[::-1] if flip_z else v
        w = np.rot90(w, k, axes=(1, 2))
        w = w[:, :, ::-1] if flip else w
        allowed.add(np.ascontiguousarray(w).tobytes())
    rng = np.random.default_rng(0)
    seen = {Augmenter()(v, rng).tobytes() for _ in range(300)}
    assert seen <= allowed and len(seen) == 16


def test_prepare_data_in_3d_gives_volume_tiles(stacks):
    cfg = DataConfig(tile_size=32, tile_depth=8, max_val_tiles=4, split="within")
    data = prepare_data([stacks / "s0.tif"], cfg, n_train_tiles=6, seed=0, dims=3)
    tiles = torch.stack([data.train[i] for i in range(6)])
    assert tiles.shape == (6, 1, 8, 32, 32) and tiles.dtype == torch.float32
    assert data.val[0].shape == (1, 8, 32, 32)
    assert data.summary["z_over_xy"] == pytest.approx(4.0)
    # 16 planes: a central block of 8 would leave 4 on each side, too few for a tile 8
    # deep; a band of rows validates instead, every plane kept
    assert data.summary["split"].startswith("by rows of s0.tif")
    assert [p.shape for p in data.val.planes] == [(16, 32, 64)]
    deep = prepare_data(
        [stacks / "s0.tif"],
        DataConfig(tile_size=32, tile_depth=4, split="within"),
        n_train_tiles=1,
        dims=3,
    )
    assert deep.summary["split"].startswith("by planes of s0.tif: planes 6-9 for validation")
    assert [p.shape[0] for p in deep.train.planes] == [6, 6]
    with pytest.raises(DataError, match="cannot be split"):
        prepare_data(
            [stacks / "s0.tif"],
            DataConfig(tile_size=48, tile_depth=12, split="within"),
            n_train_tiles=1,
            dims=3,
        )


def test_a_3d_model_trains_end_to_end(stacks, tmp_path, tiny_overrides):
    """``microvae.train`` with model.dims 3: Z strides from the files' voxels, a model file
    that loads and reconstructs a volume tile."""
    overrides = [
        *tiny_overrides,
        "model.dims=3",
        "data.tile_depth=8",
        "train.max_steps=20",
        "train.val_every=10",
        "data.split=file",
    ]
    model, _ = microvae.train(
        None, str(stacks / "s?.tif"), tmp_path / "run", overrides=overrides, progress=False
    )
    cfg = model.config.model
    # voxels 4x deeper than wide: after two levels XY has caught up, so Z never halves
    assert cfg.dims == 3 and cfg.z_strides == [1, 1]
    assert np.isfinite(model.summary["validation"]["val/bits_per_dim"])
    assert (tmp_path / "run" / "model.pt").is_file()
    back = microvae.load_model(tmp_path / "run" / "model.pt", device="cpu")
    x = torch.zeros(1, 1, 8, 32, 32)
    assert back.vae.reconstruct(x).shape == x.shape
    assert back.vae.config.z_strides == [1, 1]


def test_a_3d_model_without_voxel_size_says_what_to_set(stacks, tmp_path, tiny_overrides):
    with pytest.raises(ConfigError, match="data.z_over_xy"):
        microvae.train(
            None,
            str(stacks.parent / "bare.tif"),
            tmp_path / "run",
            overrides=[*tiny_overrides, "model.dims=3", "data.tile_depth=4"],
            progress=False,
        )
