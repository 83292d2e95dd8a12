"""The data pipeline: sources, splits, normalisation, foreground sampling, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from microvae.data import DataConfig, DataError, Normalisation, find_images, prepare_data
from microvae.data.augment import Augmenter
from microvae.data.tile_sampler import TileSampler
from microvae.errors import ChannelError
from microvae.io import write_image


def _write(path, data, axes="YX"):
    return write_image(path, data, axes=axes)


def _noise_image(seed, shape=(128, 128), bright=True):
    rng = np.random.default_rng(seed)
    img = rng.poisson(20, shape).astype(np.uint16) + 100
    if bright:
        img[40:70, 30:90] += 1500
    return img


def test_find_images_files_folders_globs(tmp_path):
    (tmp_path / "sub").mkdir()
    for p in ("a.tif", "b.TIFF", "sub/c.tif", "notes.txt"):
        (tmp_path / p).write_bytes(b"x")
    assert [p.name for p in find_images([tmp_path])] == ["a.tif", "b.TIFF", "c.tif"]
    assert [p.name for p in find_images([str(tmp_path / "*.tif"), tmp_path / "a.tif"])] == ["a.tif"]
    with pytest.raises(DataError, match="no such file or folder"):
        find_images([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        find_images([tmp_path / "empty"])
    with pytest.raises(DataError, match="no images"):
        find_images([str(tmp_path / "*.png")])


def test_split_by_file_by_plane_by_rows(tmp_path):
    for i in range(5):
        _write(tmp_path / f"f{i}.tif", _noise_image(i))
    d = prepare_data([tmp_path], DataConfig(tile_size=32), n_train_tiles=4)
    assert d.summary["split"] == "by file: 4 for training, 1 for validation"
    stack = np.stack([_noise_image(i) for i in range(10)])
    _write(tmp_path / "stack.tif", stack, "ZYX")
    d = prepare_data([tmp_path / "stack.tif"], DataConfig(tile_size=32), n_train_tiles=4)
    assert d.summary["split"] == (
        "by plane of stack.tif: 8 for training, 2 spread over the stack for validation "
        "(planes 2, 7)"
    )
    # spread over the stack, not its (often out-of-focus) end; each plane on one side only
    assert [v.tobytes() for v in d.val.planes] == [stack[2].tobytes(), stack[7].tobytes()]
    assert [t.tobytes() for t in d.train.planes] == [
        stack[i].tobytes() for i in range(10) if i not in (2, 7)
    ]
    _write(tmp_path / "one.tif", _noise_image(0, (200, 128)))
    d = prepare_data([tmp_path / "one.tif"], DataConfig(tile_size=32), n_train_tiles=4)
    assert (
        d.summary["split"] == "by rows of one.tif: top 160 for training, bottom 40 for validation"
    )
    # no validation tile overlaps a training tile: they come from disjoint rows
    assert d.val.planes[0].shape == (40, 128) and d.train.planes[0].shape == (160, 128)


def test_few_files_are_split_within_each_file(tmp_path):
    # two files split by file would train on one and judge the model on the other
    _write(tmp_path / "a.tif", np.stack([_noise_image(i) for i in range(10)]), "ZYX")
    _write(tmp_path / "b.tif", _noise_image(3, (200, 128)))
    d = prepare_data([tmp_path], DataConfig(tile_size=32), n_train_tiles=4)
    assert d.summary["split"] == (
        "within each of 2 files: by plane of a.tif: 8 for training, 2 spread over the stack "
        "for validation (planes 2, 7); "
        "by rows of b.tif: top 160 for training, bottom 40 for validation"
    )
    assert d.summary["train_planes"] == 9 and d.summary["val_planes"] == 3
    forced = prepare_data([tmp_path], DataConfig(tile_size=32, split="file"), n_train_tiles=4)
    assert forced.summary["split"] == "by file: 1 for training, 1 for validation"
    with pytest.raises(DataError, match="data.split = file needs at least 2 files"):
        prepare_data([tmp_path / "a.tif"], DataConfig(tile_size=32, split="file"), n_train_tiles=4)


def test_too_small_and_constant_data(tmp_path):
    _write(tmp_path / "small1.tif", _noise_image(0, (48, 48)))
    _write(tmp_path / "small2.tif", _noise_image(1, (48, 48)))
    with pytest.raises(DataError, match=r"small\d.tif: planes of 48x48 are smaller than data"):
        prepare_data(
            [tmp_path / "small1.tif", tmp_path / "small2.tif"], DataConfig(), n_train_tiles=1
        )
    _write(tmp_path / "flat1.tif", np.full((64, 64), 7, np.uint16))
    _write(tmp_path / "flat2.tif", np.full((64, 64), 7, np.uint16))
    with pytest.raises(DataError, match="every training image is constant"):
        prepare_data(
            [tmp_path / "flat1.tif", tmp_path / "flat2.tif"],
            DataConfig(tile_size=32),
            n_train_tiles=1,
        )
    _write(tmp_path / "one_small.tif", _noise_image(0, (64, 64)))
    with pytest.raises(DataError, match="cannot be split into training and validation rows"):
        prepare_data([tmp_path / "one_small.tif"], DataConfig(tile_size=64), n_train_tiles=1)


def test_rgb_file_needs_a_channel(tmp_path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.zeros((64, 64, 3), np.uint8), photometric="rgb")
    with pytest.raises(
        ChannelError, match=r"3 samples; pass channel=0..2 .*\(config: data.channel\)"
    ):
        prepare_data([path], DataConfig(tile_size=32), n_train_tiles=1)


@pytest.mark.parametrize("bits,dtype", [(8, np.uint8), (12, np.uint16), (16, np.uint16)])
def test_normalisation_round_trip_is_exact_for_levels(bits, dtype):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 2**bits, (50, 50)).astype(dtype)
    norm = Normalisation.fit([raw], bit_depth=bits, percentiles=(1, 99))
    x = norm.to_model(raw)
    assert x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(norm.from_model(x), raw)
    scale, shift = norm.encoder_affine()
    lo, hi = norm.to_model(np.array([norm.low, norm.high]))
    assert lo * scale + shift == pytest.approx(-1, abs=1e-5)
    assert hi * scale + shift == pytest.approx(1, abs=1e-5)
    assert Normalisation.from_dict(norm.to_dict()) == norm


def test_normalisation_of_continuous_data():
    raw = np.random.default_rng(1).normal(5, 2, (64, 64)).astype(np.float32)
    norm = Normalisation.fit([raw], bit_depth=None, percentiles=(0.5, 99.5))
    x = norm.to_model(raw)
    assert np.mean((x >= -1) & (x <= 1)) == pytest.approx(0.99, abs=0.005)
    np.testing.assert_allclose(norm.from_model(x), raw, rtol=1e-5, atol=1e-5)


def test_foreground_sampling_finds_the_signal():
    img = np.full((256, 256), 100, np.uint16)
    img[200:230, 20:50] = 3000  # 1.4% of the image is signal
    kw = dict(threshold=1000, min_share=0.05)
    rng = np.random.default_rng(0)
    always = TileSampler([img], 32, foreground_fraction=1.0, **kw)
    never = TileSampler([img], 32, foreground_fraction=0.0, **kw)

    def share(sampler):
        hits = []
        for _ in range(500):
            _, y, x = sampler.sample(rng)
            hits.append((img[y : y + 32, x : x + 32] > 1000).mean() >= 0.05)
        return np.mean(hits)

    assert share(always) == 1.0
    assert share(never) < 0.2


def test_tiles_are_reproducible_and_on_the_level_grid(tmp_path):
    for i in range(3):
        _write(tmp_path / f"f{i}.tif", _noise_image(i))
    cfg = DataConfig(tile_size=32)
    a = prepare_data([tmp_path], cfg, n_train_tiles=50, seed=3)
    b = prepare_data([tmp_path], cfg, n_train_tiles=50, seed=3)
    assert all(np.array_equal(a.train[i], b.train[i]) for i in (0, 17, 49))
    tile = a.train[5].numpy()
    levels = (tile + 1) / 2 * (2**a.normalisation.bit_depth - 1)
    assert np.allclose(levels, np.round(levels), atol=1e-3)


def test_d4_and_gain_augmentation():
    tile = np.arange(16, dtype=np.uint16).reshape(4, 4) * 100 + 100
    aug = Augmenter()
    rng = np.random.default_rng(0)
    seen = {aug(tile, rng).tobytes() for _ in range(200)}
    assert len(seen) == 8  # the eight symmetries of the square
    for out in map(np.frombuffer, seen, [np.uint16] * 8):
        assert sorted(out) == sorted(tile.ravel())  # values unchanged
    gain = Augmenter(gain=(0.5, 2.0), offset=100, max_value=1000)
    out = gain(tile, rng)
    assert out.dtype == np.uint16 and out.max() <= 1000 and out.min() >= 0


@pytest.mark.real_data
def test_real_files_become_tiles(real_data):
    hela = prepare_data([real_data / "hela-cells.tif"], DataConfig(channel=1), n_train_tiles=8)
    assert hela.summary["split"].startswith("by rows of hela-cells.tif")
    assert hela.normalisation.bit_depth == 12
    yeast = prepare_data([real_data / "MitoGraphTest001.tif"], DataConfig(), n_train_tiles=8)
    assert yeast.summary["split"].startswith("by plane of MitoGraphTest001.tif: 33 for training")
    assert yeast.normalisation.bit_depth == 14
    # the camera offset of the yeast stack (>2100) is far from 0: the encoder's input
    # normalisation still spreads the training signal over [-1, 1]
    scale, shift = yeast.normalisation.encoder_affine()
    yeast = prepare_data([real_data / "MitoGraphTest001.tif"], DataConfig(), n_train_tiles=200)
    x = np.stack([t.numpy() for t in yeast.train]) * scale + shift
    assert x.min() < -0.9 and x.max() > 0.9
    blanked = prepare_data([real_data / "123002002001.tif"], DataConfig(), n_train_tiles=8)
    assert blanked.summary["foreground_tile_candidates"] > 0


def test_datasets_end_like_sequences(tmp_path):
    for i in range(2):
        _write(tmp_path / f"f{i}.tif", _noise_image(i))
    d = prepare_data([tmp_path], DataConfig(tile_size=32), n_train_tiles=7)
    assert len(list(d.train)) == 7 and len(list(d.val)) == len(d.val)
