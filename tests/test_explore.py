"""The latent map behind the napari explorer, against independent computations: the model's own
passes, a hand-made PCA, and the diagnostics."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from microvae.errors import ShapeError
from microvae.inference import load_model
from microvae.latent import (
    MIN_TILES,
    collect_tiles,
    decode_top,
    embed,
    find_holes,
    fit_projection,
    map_latents,
    move_channels,
    tiles_from_array,
    traverse,
)
from microvae.latent import projection as projection_module
from microvae.latent.diagnostics import diagnose
from microvae.synthetic import generate


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return load_model(tiny_model_path)


@pytest.fixture(scope="module")
def tiles(model, synth_data):
    return collect_tiles(model, [str(synth_data / "synth_00?.tif")], max_tiles=30)


def _raw(model, x: torch.Tensor) -> np.ndarray:
    return model.to_raw(x)


def test_moving_channels_at_once_is_the_shifted_latent_decoded(model):
    tile = generate(shape=(32, 32), seed=3).image
    # nothing moved: the tile's top level with the levels below at their prior means
    coarse = _raw(model, model.vae.reconstruct(model.to_tensor(tile), posterior_levels=1))[0]
    still = move_channels(model, {}, base=tile)
    np.testing.assert_allclose(still.astype(float), coarse.astype(float), atol=1)
    # one channel: the traversal's image at that value
    one = move_channels(model, {2: 1.5}, base=tile)
    trav = traverse(model, channels=[2], values=(1.5,), base=tile)[0, 0]
    np.testing.assert_allclose(one.astype(float), trav.astype(float), atol=1)
    # two at once: built by hand from the encoder, the prior's spread and the decoder
    prior = model.vae.priors(size=(32, 32))[0]
    with torch.no_grad():
        z = model.vae.encode(model.to_tensor(tile))[0].clone()
        z[:, 0] += -2.0 * prior.std[:, 0]
        z[:, 3] += 0.5 * prior.std[:, 3]
        expected = _raw(model, model.vae.decode([z], shape=(1, 32, 32)))[0]
    both = move_channels(model, {0: -2.0, 3: 0.5}, base=tile)
    np.testing.assert_allclose(both.astype(float), expected.astype(float), atol=1)
    assert not np.array_equal(both, still)
    # from a flat latent (a hole, a tile's embedding): decode_top's image when nothing moves
    flat = embed(model, tile[None], how="flat")[0]
    np.testing.assert_allclose(
        move_channels(model, {}, z_top=flat).astype(float),
        decode_top(model, flat[None])[0].astype(float),
        atol=1,
    )
    with pytest.raises(ValueError, match="not both"):
        move_channels(model, {}, base=tile, z_top=flat)
    with pytest.raises(ValueError, match="z_top has 5 values"):
        move_channels(model, {}, z_top=np.zeros(5))
    with pytest.raises(ValueError, match="channels are 0..3"):
        move_channels(model, {7: 1.0})


def test_a_fitted_map_places_new_points_as_pca_would():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)) * [4.0, 2.0, 1.0, 0.5] + [10, -3, 0, 1]
    proj, coords = fit_projection(x, "pca", standardise=False)
    assert proj.explained[0] == pytest.approx(16 / 21.25, abs=0.05)
    # independent: the eigenvectors of the covariance
    _, vecs = np.linalg.eigh(np.cov(x.T, bias=True))
    top = vecs[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(coords), np.abs((x - x.mean(0)) @ top), atol=1e-8)
    new = rng.normal(size=(3, 4))
    np.testing.assert_allclose(
        np.abs(proj.transform(new)), np.abs((new - x.mean(0)) @ top), atol=1e-8
    )
    with pytest.raises(ValueError, match="fitted on 4-D rows"):
        proj.transform(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="method must be"):
        fit_projection(x, "tsne")


def test_umap_is_used_through_its_fit_and_transform_where_installed(monkeypatch):
    calls = []

    class FakeUMAP:  # umap-learn's interface: fit_transform, then transform of new rows
        def __init__(self, n_components, n_neighbors, random_state):
            calls.append((n_components, n_neighbors, random_state))

        def fit_transform(self, z):
            self.fitted = z
            return z[:, :2] * 2

        def transform(self, z):
            return z[:, :2] * 2

    monkeypatch.setattr(projection_module, "available_projections", lambda: ["pca"])
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="pip install umap-learn"):
        fit_projection(x, "umap")
    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    monkeypatch.setattr(projection_module, "available_projections", lambda: ["pca", "umap"])
    proj, coords = fit_projection(x, "umap", seed=4)
    assert calls == [(2, 9, 4)]  # fewer neighbours than points for a small set
    z = (x - x.mean(0)) / x.std(0)
    np.testing.assert_allclose(coords, z[:, :2] * 2)
    np.testing.assert_allclose(proj.transform(x[:2]), z[:2, :2] * 2)
    with pytest.raises(ValueError, match="at least 4 rows"):
        fit_projection(x[:3], "umap")


def test_tiles_of_a_stack_keep_their_plane_and_take_their_labels():
    stack = np.stack([generate(shape=(64, 64), seed=s).image for s in range(5)])
    labels = np.zeros(stack.shape, np.uint8)
    labels[:, :32] = 2  # the top half of every plane is label 2, a sliver of the bottom 5
    labels[:, 60:, :8] = 5
    got = tiles_from_array(stack, 32, max_tiles=40, planes=3, source="s", labels=labels)
    assert set(got.positions[:, 0]) == {0, 2, 4}  # three planes spread over five
    for tile, (k, y, x), lab in zip(got.tiles, got.positions, got.labels):
        np.testing.assert_array_equal(tile, stack[k, y : y + 32, x : x + 32])
        # independent: count the labels of the tile's region
        region = labels[k, y : y + 32, x : x + 32]
        n2, n5 = (region == 2).sum(), (region == 5).sum()
        expected = "unlabelled" if n2 + n5 == 0 else ("label 2" if n2 >= n5 else "label 5")
        assert lab == expected
    assert {"label 2", "unlabelled"} <= set(got.labels)
    with pytest.raises(ShapeError, match="do not match"):
        tiles_from_array(stack, 32, max_tiles=4, source="s", labels=labels[0])


def test_the_map_puts_tiles_holes_and_channel_use_in_one_space(model, tiles):
    m = map_latents(model, tiles, colour_by="source")
    flat = embed(model, tiles, how="flat")
    np.testing.assert_allclose(m.flat, flat, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.projection.transform(flat), m.coords, atol=1e-6)
    assert m.colours == tiles.sources and m.grouping == "sources"
    # the holes are find_holes' between the three files, decoded by decode_top
    holes, _ = find_holes(flat, tiles.sources, k=10)
    assert [h.groups for h in m.holes] == [h.groups for h in holes]
    assert len(m.holes) == 3 and m.hole_images.shape == (3, 32, 32)
    np.testing.assert_allclose(
        m.hole_images.astype(float),
        decode_top(model, np.stack([h.point for h in holes])).astype(float),
        atol=1,
    )
    assert m.hole_coords().shape == (3, 2)
    np.testing.assert_allclose(m.path_coords(1)[m.holes[1].index], m.hole_coords()[1])
    # channel use: the diagnostics' top-level KL per channel, ranked
    diag = diagnose(model, tiles, max_tiles=len(tiles))
    kl = np.asarray(diag["kl_per_channel_nats_per_element"][0])
    np.testing.assert_allclose(m.channel_kl, kl, rtol=1e-5)
    assert m.informative_channels(2) == [int(c) for c in np.argsort(-kl)[:2]]
    assert m.verdict == diag["verdict"] and not m.notes


def test_the_map_says_what_it_cannot_compute(model, tiles, tiny_deterministic_path):
    clustered = map_latents(model, tiles, colour_by="cluster", n_clusters=2)
    assert set(clustered.colours) <= {"cluster 0", "cluster 1"}
    few = map_latents(model, tiles.subset(np.arange(MIN_TILES - 1)))
    assert not few.holes and "need at least 12" in few.notes[0]
    assert few.channel_kl is not None  # the traversals still work
    det = load_model(tiny_deterministic_path)
    flat_map = map_latents(det, tiles)
    assert flat_map.coords.shape == (len(tiles), 2) and flat_map.channel_kl is None
    assert "does not generate" in flat_map.notes[0] and flat_map.informative_channels(3) == []
    with pytest.raises(ValueError, match="colour_by must be"):
        map_latents(model, tiles, colour_by="colour")
    with pytest.raises(ValueError, match="n_clusters must be at least 2"):
        map_latents(model, tiles, colour_by="cluster", n_clusters=1)
