"""Tiled inference: exact stitching, no seams, any size, axes and dtype."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from microvae.cli.synth_cmd import write_synthetic_set
from microvae.errors import AxesError, ChannelError
from microvae.inference import TileOptions, load_model
from microvae.inference.tiled import run_tiles
from microvae.inference.tiling import TileGrid, blend_window
from microvae.synthetic import SynthParams, generate
from microvae.training.fit import fit

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = [
    "data.tile_size=32",
    "model.levels=2",
    "model.base_channels=8",
    "model.max_channels=16",
    "model.latent_channels=4",
    "train.max_steps=40",
    "train.batch_size=8",
    "train.val_every=40",
    "data.max_val_tiles=4",
    "train.accelerator=cpu",
    "train.devices=1",
]


def _train(base, extra=()):
    if not (base / "data").exists():
        write_synthetic_set(
            base / "data", SynthParams(shape=(128, 128)), n=3, seed=0, progress=False
        )
    run, _ = fit(
        CONFIGS / "demo.yaml",
        [str(base / "data" / "synth_00?.tif")],
        base / f"run{len(extra)}",
        overrides=TINY + list(extra),
        progress=False,
    )
    return load_model(run / "model.pt")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("inference"))


@pytest.fixture(scope="module")
def local_model(tmp_path_factory):
    """No normalisation layers: the output at a pixel depends only on its neighbourhood."""
    return _train(tmp_path_factory.mktemp("inference_local"), ["model.norm=none"])


@pytest.mark.parametrize("shape", [(5, 7), (32, 32), (100, 37), (257, 300)])
def test_grid_covers_the_plane_on_aligned_corners(shape):
    grid = TileGrid.plan(shape, tile=32, overlap=8, multiple=4)
    covered = np.zeros(grid.padded_shape, int)
    for y, x in grid.positions:
        assert y % 4 == 0 and x % 4 == 0
        covered[y : y + 32, x : x + 32] += 1
    assert covered.min() >= 1
    plane = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    padded = grid.pad_plane(plane)
    assert padded.shape == grid.padded_shape
    np.testing.assert_array_equal(grid.crop(padded), plane)


def test_blend_window_is_smooth_and_positive():
    w = blend_window(32, 8)
    assert w.min() > 0 and w.max() == 1 and np.allclose(w, w.T) and np.allclose(w, w[::-1])
    assert np.all(w[16, 8:24] == 1) and np.all(np.diff(w[16, :8]) > 0)


class _Identity(torch.nn.Module):
    """A 'model' returning its input: stitching must then give back the plane exactly."""

    levels = 2

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def reconstruct(self, x, **kw):
        return x

    def encode(self, x):
        return [x[:, :, ::4, ::4].repeat(1, 3, 1, 1), x[:, :, ::2, ::2]]

    def reconstruct_and_encode(self, x, **kw):
        return x, self.encode(x)


@pytest.mark.parametrize(
    "shape,tile,overlap", [((100, 77), 32, 8), ((20, 20), 32, 12), ((64, 200), 64, 0)]
)
def test_stitching_is_exact_for_an_identity(shape, tile, overlap):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    out = run_tiles(
        _Identity(), x, TileOptions(batch_size=3), tile=tile, overlap=overlap, latents=True
    )
    np.testing.assert_allclose(out["reconstruction"], x, atol=1e-5)
    top, fine = out["latents"]
    np.testing.assert_allclose(fine[0], x[::2, ::2][: fine.shape[1], : fine.shape[2]], atol=1e-5)
    assert top.shape[0] == 3


def test_no_seams_and_little_dependence_on_tile_size(local_model):
    img = generate(shape=(256, 256), seed=5).ground_truth  # smooth: noise-free and blurred
    small = local_model.reconstruct(img, tile_size=64, overlap=16).astype(float)
    large = local_model.reconstruct(img, tile_size=128, overlap=32).astype(float)
    rng = float(img.max() - img.min())
    diff = small - large
    assert np.abs(diff).mean() < 0.01 * rng  # seen: 0.5% of the range
    # a seam would be a jump of the difference at the small tiles' borders
    grid = TileGrid.plan(img.shape, tile=64, overlap=16, multiple=4)
    (_, _), (left, _) = grid.pad
    borders = {x - left for _, x in grid.positions} | {x + 64 - left for _, x in grid.positions}
    cols = [c for c in sorted(borders) if 1 <= c < img.shape[1]]
    jumps = np.abs(np.diff(diff, axis=1)).mean(axis=0)  # jumps[c - 1]: between c-1 and c
    assert max(jumps[c - 1] for c in cols) < 3 * np.median(jumps) + 0.002 * rng


def test_default_tile_is_the_training_tile(model):
    assert model.default_tile() == model.config.data.tile_size == 32


def test_axes_dtypes_and_sizes(model, caplog):
    s = generate(shape=(3, 70, 90), seed=1)
    zyx = model.reconstruct(s.image, "ZYX", tile_size=32)
    assert zyx.shape == (3, 70, 90) and zyx.dtype == np.uint16
    one = model.reconstruct(s.image[1])
    np.testing.assert_array_equal(one, zyx[1])  # deterministic, plane by plane
    tiny = model.reconstruct(s.image[0, :13, :21])
    assert tiny.shape == (13, 21)
    rgb = np.stack([s.image[0]] * 3, axis=-1)
    with pytest.raises(ChannelError, match="axes YXS has 3 samples"):
        model.reconstruct(rgb, "YXS")
    assert model.reconstruct(rgb, "YXS", channel=1).shape == (70, 90)
    with pytest.raises(AxesError, match="pass axes="):
        model.reconstruct(s.image)
    as_float = model.reconstruct(s.image[0].astype(np.float32))
    assert as_float.dtype == np.float32
    np.testing.assert_array_equal(as_float, zyx[0].astype(np.float32))
    with caplog.at_level(logging.WARNING, logger="microvae"):
        small8 = model.reconstruct((s.image[0] // 16).astype(np.uint8))
    assert small8.dtype == np.uint8
    assert "uint8 data, the model was trained on uint16" in caplog.text


def test_sampling_on_request(model):
    img = generate(shape=(64, 64), seed=2).image
    a = model.reconstruct(img, output="sample", seed=1)
    b = model.reconstruct(img, output="sample", seed=1)
    c = model.reconstruct(img, output="sample", seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_encode_embeddings_and_maps(model):
    s = generate(shape=(2, 64, 96), seed=3)
    enc = model.encode(s.image, "ZYX", tile_size=32)
    assert enc["embedding"].shape == (2, 16)
    top, fine = enc["latents"][0]
    assert top.shape == (4, 16, 24) and fine.shape == (4, 32, 48)
    expected = np.concatenate(
        [top.mean((1, 2)), top.std((1, 2)), fine.mean((1, 2)), fine.std((1, 2))]
    )
    np.testing.assert_allclose(enc["embedding"][0], expected, rtol=1e-5, atol=1e-6)


def test_one_pass_equals_separate_passes(model):
    img = generate(shape=(70, 90), seed=4).image
    recon, levels = model.process_plane(img)
    np.testing.assert_array_equal(recon, model.reconstruct_plane(img))
    for a, b in zip(levels, model.encode_plane(img)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_step_by_step_plane_yields_progress_and_the_same_result(model):
    img = generate(shape=(70, 90), seed=4).image
    opts = TileOptions(batch_size=2)
    steps = model.iter_process_plane(img, options=opts)
    ticks = []
    while True:
        try:
            ticks.append(next(steps))
        except StopIteration as done:
            recon, levels = done.value
            break
    total = model.count_tiles(img.shape, opts)
    assert ticks[-1] == (total, total) and len(ticks) == -(-total // 2)
    assert [d for d, _ in ticks] == sorted(d for d, _ in ticks)
    np.testing.assert_array_equal(recon, model.reconstruct_plane(img, options=opts))
    assert levels is None
    # stopping between batches is just not iterating further
    partial = model.iter_process_plane(img, options=opts)
    assert next(partial) == (2, total)
    partial.close()
