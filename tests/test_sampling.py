"""Posterior samples through the one plane and block pipeline: their mean (MMSE), spread and
quantiles, checked against the draws computed directly, and bad requests refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microvae.errors import MicrovaeError
from microvae.inference import ArraySink, TileOptions, load_model, run_image
from microvae.inference.pipeline import as_image
from microvae.inference.sampling import posterior_stats
from microvae.synthetic import generate


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return load_model(tiny_model_path)


def _tiles(model, n: int = 3) -> torch.Tensor:
    image = generate(shape=(64, 64), seed=4).image
    x = model.normalisation.to_model(image)
    return torch.from_numpy(np.stack([x[:32, :32], x[32:, :32], x[:32, 32:]][:n])[:, None])


@pytest.mark.parametrize("batch_size", [64, 5, 1])
def test_stats_equal_those_of_the_draws(model, batch_size):
    """Mean, unbiased variance and quantiles of 7 draws, merged over passes of any size,
    equal numpy's over the same draws (drawn here pass by pass with the same generator)."""
    x, n, qs = _tiles(model), 7, (0.1, 0.5, 0.9)
    got = posterior_stats(
        model.vae,
        x,
        samples=n,
        batch_size=batch_size,
        quantiles=qs,
        generator=torch.Generator().manual_seed(3),
    ).numpy()
    gen, draws = torch.Generator().manual_seed(3), []
    copies = max(1, batch_size // len(x))
    while len(draws) < n:
        k = min(copies, n - len(draws))
        rec = model.vae.reconstruct(x.repeat(k, 1, 1, 1), sample_latents=True, generator=gen)
        draws.extend(rec.reshape(k, len(x), *rec.shape[1:]).numpy())
    draws = np.stack(draws).astype(np.float64)  # (n, B, 1, H, W)
    assert got.shape == (len(x), 2 + len(qs), 32, 32)
    np.testing.assert_allclose(got[:, 0], draws.mean(0)[:, 0], atol=1e-5)
    np.testing.assert_allclose(got[:, 1], draws.var(0, ddof=1)[:, 0], atol=1e-5)
    for i, q in enumerate(qs):
        np.testing.assert_allclose(got[:, 2 + i], np.quantile(draws, q, axis=0)[:, 0], atol=1e-5)
    assert (got[:, 1] > 0).mean() > 0.5  # the draws differ: the posterior is sampled


def test_a_plane_sampled_through_the_pipeline(model):
    """A plane the size of one tile: the pipeline's MMSE and standard deviation are the
    draws' mean and spread in raw units; more samples, a smoother mean."""
    plane = generate(shape=(32, 32), seed=5).image
    options = TileOptions(samples=6, seed=1, quantiles=(0.05, 0.95), batch_size=12, overlap=0)
    sinks = [ArraySink("reconstruction"), ArraySink("std")]
    run_image(model, as_image(plane), sinks, options=options)
    mmse, std = sinks[0].array, sinks[1].array
    x = torch.from_numpy(model.normalisation.to_model(plane))[None, None]
    stats = posterior_stats(
        model.vae, x, samples=6, batch_size=12, quantiles=(0.05, 0.95),
        generator=torch.Generator().manual_seed(1),
    )[0].numpy()  # fmt: skip
    norm = model.normalisation
    np.testing.assert_array_equal(mmse, norm.from_model(stats[0]))
    np.testing.assert_allclose(std, np.sqrt(stats[1]) * norm.raw_per_model_unit(), rtol=1e-5)
    assert mmse.dtype == plane.dtype and std.dtype == np.float32 and std.shape == plane.shape
    # the same through model.posterior, with the quantiles of the draws
    post = model.posterior(
        plane, samples=6, seed=1, quantiles=(0.05, 0.95), batch_size=12, overlap=0
    )
    np.testing.assert_array_equal(post.mmse, mmse)
    np.testing.assert_array_equal(post.std, std)
    assert post.quantiles.shape == (2, 32, 32) and post.quantiles.dtype == np.float32
    np.testing.assert_allclose(post.quantiles, norm.from_model_float(stats[2:]), rtol=1e-5)
    lo, hi = post.quantiles
    assert (lo <= hi).all() and (hi - lo).max() > 0


def test_a_volume_sampled_in_3d_tiles(tiny_3d_model_path):
    model = load_model(tiny_3d_model_path)
    volume = generate(shape=(10, 40, 40), seed=2, z_step_um=0.2, pixel_size_um=0.05).image
    sinks = [ArraySink("reconstruction"), ArraySink("std")]
    run_image(model, as_image(volume, "ZYX"), sinks, options=TileOptions(samples=3, seed=0))
    assert sinks[0].array.shape == volume.shape and sinks[1].array.shape == volume.shape
    assert np.isfinite(sinks[1].array).all() and sinks[1].array.max() > 0
    single = model.reconstruct(volume, "ZYX")
    assert not np.array_equal(sinks[0].array, single)  # the mean of draws, not the mean pass


def test_bad_requests_are_refused_in_one_line(model, tiny_deterministic_path):
    with pytest.raises(ValueError, match="samples must be a whole number >= 1"):
        TileOptions(samples=0)
    with pytest.raises(ValueError, match="quantiles need samples >= 2"):
        TileOptions(quantiles=(0.5,))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        TileOptions(samples=4, quantiles=(0.0, 0.5))
    deterministic = load_model(tiny_deterministic_path)
    plane = generate(shape=(32, 32), seed=5).image
    with pytest.raises(MicrovaeError, match="cannot sample its posterior") as info:
        deterministic.reconstruct(plane, samples=4)
    assert "\n" not in str(info.value)
    # std without samples
    with pytest.raises(ValueError, match="needs posterior samples"):
        run_image(model, as_image(plane), [ArraySink("std")], options=TileOptions())
