"""Latent tools against independent computations: the model's own passes, and known densities."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from microvae.errors import NotGenerativeError
from microvae.inference import load_model
from microvae.inference.pooling import pool_latents
from microvae.latent import (
    KNNDensity,
    collect_tiles,
    decode_top,
    embed,
    find_holes,
    interpolate,
    latent_maps,
    linear_probe,
    pca,
    prototype,
    samples,
    split_by_group,
    tiles_from_planes,
    traverse,
)
from microvae.synthetic import generate
from microvae.training.prior_fit import TOP_PRIOR_TILES


@pytest.fixture(scope="module")
def data(synth_data) -> Path:
    return synth_data


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return load_model(tiny_model_path)


def _tiles(n=6, seed=5):
    img = generate(shape=(96, 96), seed=seed).image
    return np.stack([img[:32, :32], img[32:64, 32:64], img[64:, 64:], img[:32, 64:]] * 2)[:n]


def _raw(model, x: torch.Tensor) -> np.ndarray:
    return model.to_raw(x)


def test_prototype_and_zero_temperature_samples_are_the_prior_means(model):
    proto = prototype(model)
    assert proto.shape == (32, 32) and proto.dtype == np.uint16
    # independent: decode every level at its prior mean through the model's own pass
    expected = _raw(model, model.vae.decode([None, None], shape=(1, 32, 32)))[0]
    np.testing.assert_array_equal(proto, expected)
    cold = samples(model, 3, temperature=0.0, prior="learned")
    # a batch of 3 may round a few pixels differently from a batch of 1: one level at most
    for s in cold:
        np.testing.assert_allclose(s.astype(float), proto.astype(float), atol=1)
    warm = samples(model, 3, temperature=1.0, seed=1)
    assert warm.shape == (3, 32, 32) and not np.array_equal(warm[0], warm[1])
    np.testing.assert_array_equal(warm, samples(model, 3, temperature=1.0, seed=1))


def test_samples_draw_the_top_level_from_the_fitted_aggregate_posterior(model, tmp_path):
    top = model.top_prior
    shape = tuple(model.vae.priors(size=(32, 32))[0].mean.shape[1:])
    assert top is not None and top.shape == shape and top.tiles == TOP_PRIOR_TILES
    # the fit sees the encoder's posterior, which differs from the learned prior
    assert not torch.allclose(top.mean, model.vae.priors(size=(32, 32))[0].mean.flatten())
    # T = 0: the top level at the fitted mean, the levels below at their prior means given it
    cold = samples(model, 2, temperature=0.0, prior="aggregate")
    expected = model.vae.decode([top.mean.reshape(1, *shape), None], shape=(1, 32, 32))
    for s in cold:
        np.testing.assert_allclose(s.astype(float), _raw(model, expected)[0].astype(float), atol=1)
    auto = samples(model, 3, seed=2)
    np.testing.assert_array_equal(auto, samples(model, 3, seed=2, prior="aggregate"))
    assert not np.array_equal(auto, samples(model, 3, seed=2, prior="learned"))
    # another size than the fit's: the learned prior, or a clear refusal when asked for
    np.testing.assert_array_equal(
        samples(model, 2, seed=2, size=64), samples(model, 2, seed=2, size=64, prior="learned")
    )
    with pytest.raises(ValueError, match="32-pixel tiles"):
        samples(model, 2, size=64, prior="aggregate")
    with pytest.raises(ValueError, match="prior must be"):
        samples(model, 2, prior="posterior")
    # a model file without a fitted top prior (older microvae) samples from the learned one
    payload = torch.load(model.path, weights_only=True)
    del payload["top_prior"]
    torch.save(payload, tmp_path / "old.pt")
    old = load_model(tmp_path / "old.pt")
    assert old.top_prior is None
    np.testing.assert_array_equal(
        samples(old, 3, seed=2), samples(model, 3, seed=2, prior="learned")
    )
    with pytest.raises(ValueError, match="no fitted top prior"):
        samples(old, 2, prior="aggregate")


def test_interpolation_ends_are_the_reconstructions(model):
    a, b = _tiles(2)
    path = interpolate(model, a, b, steps=5)
    assert path.shape == (5, 32, 32)
    for end, tile in ((path[0], a), (path[-1], b)):
        recon = _raw(model, model.vae.reconstruct(model.to_tensor(tile)))[0]
        np.testing.assert_allclose(end.astype(float), recon.astype(float), atol=1)
    assert not np.array_equal(path[2], path[0])
    with pytest.raises(ValueError, match="one shape"):
        interpolate(model, a, b[:16])


def test_traversal_at_zero_is_its_start(model):
    trav = traverse(model, channels=[0, 3], values=(-2.0, 0.0, 2.0))
    assert trav.shape == (2, 3, 32, 32)
    proto = prototype(model)
    for row in trav:  # batches of 3 vs 1: one level of rounding at most
        np.testing.assert_allclose(row[1].astype(float), proto.astype(float), atol=1)
    tile = _tiles(1)[0]
    from_tile = traverse(model, channels=[1], values=(0.0,), base=tile)
    # top level from the tile, levels below at prior means: coarse-to-fine with one level
    coarse = _raw(model, model.vae.reconstruct(model.to_tensor(tile), posterior_levels=1))[0]
    np.testing.assert_allclose(from_tile[0, 0].astype(float), coarse.astype(float), atol=1)
    with pytest.raises(ValueError, match="channels are 0..3"):
        traverse(model, channels=[4])


def test_decoding_flat_embeddings_is_coarse_to_fine_reconstruction(model):
    tiles = _tiles(4)
    flat = embed(model, tiles, how="flat")
    assert flat.shape == (4, 4 * 8 * 8)
    decoded = decode_top(model, flat, batch_size=3)
    coarse = _raw(model, model.vae.reconstruct(model.to_tensor(tiles), posterior_levels=1))
    np.testing.assert_allclose(decoded.astype(float), coarse.astype(float), atol=1)


def test_pooled_embeddings_are_mean_and_sd_of_each_level(model):
    tiles = _tiles(5)
    maps = latent_maps(model, tiles, batch_size=2)
    assert [m.shape for m in maps] == [(5, 4, 8, 8), (5, 4, 16, 16)]
    got = embed(model, tiles)
    expected = np.concatenate(
        [maps[0].mean((2, 3)), maps[0].std((2, 3)), maps[1].mean((2, 3)), maps[1].std((2, 3))], 1
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # a global vector per tile counts as a 1 x 1 map: mean = the vector, sd = 0
    vec = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(pool_latents([vec], batched=True), np.c_[vec, np.zeros((2, 3))])


def test_deterministic_unet_cannot_generate(tiny_deterministic_path):
    det = load_model(tiny_deterministic_path)
    with pytest.raises(NotGenerativeError, match="cannot"):
        prototype(det)
    with pytest.raises(NotGenerativeError):
        interpolate(det, *_tiles(2))
    assert embed(det, _tiles(2)).shape == (2, 2 * 4)  # it still encodes


def test_tiles_come_from_signal_and_are_shared_between_files(model, data):
    tiles = collect_tiles(model, [str(data / "synth_00?.tif")], max_tiles=9)
    assert len(tiles) == 9 and tiles.tiles.shape == (9, 32, 32)
    assert sorted(set(tiles.sources)) == ["synth_000.tif", "synth_001.tif", "synth_002.tif"]
    blank = np.full((64, 64), 100, np.uint16)
    blank[:32, :32] = generate(shape=(32, 32), seed=1).image
    only = tiles_from_planes([blank], 32, max_tiles=4, min_signal=0.05)
    # stride 16: the tiles that overlap the structured quadrant, the whole one first; the
    # tiles of flat background are left out
    assert only.positions[0].tolist() == [0, 0, 0]
    assert all(y < 32 and x < 32 for _, y, x in only.positions) and len(only) >= 2


def test_pca_recovers_the_dominant_direction():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3)) * [5.0, 1.0, 0.1]
    coords, share = pca(x, 2, standardise=False)
    assert share[0] == pytest.approx(25 / 26.01, abs=0.02)
    assert abs(np.corrcoef(coords[:, 0], x[:, 0])[0, 1]) > 0.99


def test_knn_density_dimension_and_the_hole_between_two_clusters():
    rng = np.random.default_rng(0)
    d = 5
    a = rng.normal(size=(300, d))
    b = rng.normal(size=(300, d)) + np.r_[8.0, np.zeros(d - 1)]
    x = np.concatenate([a, b])
    density = KNNDensity(x, k=10)
    assert density.dimension == pytest.approx(d, rel=0.25)  # Levina-Bickel on 5-D Gaussians
    holes, _ = find_holes(x, ["a"] * 300 + ["b"] * 300, n_points=21)
    (hole,) = holes
    assert hole.groups == ("a", "b")
    assert hole.t == pytest.approx(0.5, abs=0.1)  # halfway between two equal clusters

    # independent: the exact log density of this Gaussian mixture along the path, relative to
    # the median over the data (the k-NN estimate's reference)
    def exact(p):
        centres = np.stack([np.zeros(d), np.r_[8.0, np.zeros(d - 1)]])
        sq = ((p[:, None, :] - centres[None]) ** 2).sum(-1)
        return np.log(np.exp(-sq / 2).mean(axis=1))

    truth = exact(hole.path) - np.median(exact(x))
    assert np.argmin(truth) in (hole.index - 1, hole.index, hole.index + 1)
    assert np.corrcoef(truth, hole.path_log_density)[0, 1] > 0.9
    # the estimate smooths (k = 10 neighbours), so its dip is shallower than the truth's
    assert truth.min() < hole.log_density < 0.25 * truth.min() < 0
    # without labels, k-means finds the two clusters and the same hole
    holes, _ = find_holes(x, n_clusters=2)
    assert holes[0].t == pytest.approx(0.5, abs=0.1)
    assert math.isfinite(holes[0].log_density)


def test_linear_probe_separates_what_is_separable_and_nothing_else():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    y = np.where(x[:, 2] + 0.5 * x[:, 4] > 0, "tubular", "fragmented")  # a linear rule
    train = np.arange(400) < 200
    assert linear_probe(x[train], y[train], x[~train], y[~train]) > 0.95
    shuffled = rng.permutation(y)  # labels unrelated to x: chance
    assert 0.35 < linear_probe(x[train], shuffled[train], x[~train], shuffled[~train]) < 0.65
    three = np.digitize(x[:, 0], [-0.5, 0.5]).astype(str)  # three classes along one axis
    assert linear_probe(x[train], three[train], x[~train], three[~train]) > 0.85
    with pytest.raises(ValueError, match="do not occur"):
        linear_probe(x[:10], ["a"] * 5 + ["b"] * 5, x[:2], ["c", "a"])


def test_split_by_group_keeps_groups_whole():
    groups = ["f1", "f1", "f2", "f3", "f4", "f4"]
    labels = ["a", "a", "a", "b", "b", "b"]
    train, test = split_by_group(groups, labels)
    assert train.tolist() == [True, True, False, True, False, False]
    assert (train ^ test).all()
    assert split_by_group(["f1", "f2"], ["a", "b"]) is None  # one file per label
