"""The top level's aggregate-posterior prior: the shrunk Gaussian fit against known densities,
and its sampling against its own covariance by Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microvae.model import TopPrior, build_vae, fit_top_prior
from microvae.model.config import LikelihoodConfig, ModelConfig


def _gaussian(n, cov, mean, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.multivariate_normal(mean, cov, size=n)).float()


def test_fit_recovers_a_known_correlated_gaussian():
    a = np.random.default_rng(1).normal(size=(6, 6))
    cov = a @ a.T + 0.5 * np.eye(6)
    mean = np.arange(6.0)
    prior = fit_top_prior(_gaussian(40_000, cov, mean))
    # plenty of tiles: almost no shrinkage, the sample moments
    assert prior.shrinkage < 0.02
    np.testing.assert_allclose(prior.mean.numpy(), mean, atol=0.05)
    fitted = (prior.scale_tril @ prior.scale_tril.T).double().numpy()
    np.testing.assert_allclose(fitted, cov, atol=0.05 * np.abs(cov).max())


def test_fit_with_fewer_tiles_than_dimensions_shrinks_to_the_diagonal():
    d, n = 100, 40
    var = np.linspace(0.1, 2.0, d)
    z = _gaussian(n, np.diag(var), np.zeros(d), seed=2).reshape(n, 4, 5, 5)
    prior = fit_top_prior(z)
    assert prior.shape == (4, 5, 5) and prior.tiles == n
    # independent variables: the off-diagonal sample covariances are noise, shrunk away
    assert prior.shrinkage > 0.7
    cov = (prior.scale_tril @ prior.scale_tril.T).double()
    assert torch.linalg.eigvalsh(cov).min() > 0  # positive definite although n < d
    x = z.reshape(n, -1).double()
    np.testing.assert_allclose(torch.diagonal(cov).numpy(), x.var(0).numpy(), rtol=1e-3)


def test_samples_follow_the_fitted_covariance_and_temperature():
    a = np.random.default_rng(3).normal(size=(4, 4))
    prior = fit_top_prior(_gaussian(5_000, a @ a.T + np.eye(4), np.ones(4)).reshape(-1, 1, 2, 2))
    target = (prior.scale_tril @ prior.scale_tril.T).double()
    g = torch.Generator().manual_seed(0)
    s = prior.sample(100_000, generator=g)
    assert s.shape == (100_000, 1, 2, 2)
    flat = s.reshape(len(s), -1).double()
    np.testing.assert_allclose(flat.mean(0).numpy(), prior.mean.numpy(), atol=0.03)
    scale = float(target.abs().max())  # Monte Carlo error of 1e5 draws: well under 2%
    np.testing.assert_allclose(torch.cov(flat.T).numpy(), target.numpy(), atol=0.02 * scale)
    half = prior.sample(100_000, temperature=0.5, generator=g).reshape(100_000, -1).double()
    np.testing.assert_allclose(torch.cov(half.T).numpy(), 0.25 * target.numpy(), atol=0.005 * scale)
    cold = prior.sample(3, temperature=0.0)
    assert torch.equal(cold, prior.mean.reshape(1, 1, 2, 2).expand(3, -1, -1, -1))


def test_round_trip_and_bad_input():
    prior = fit_top_prior(torch.randn(10, 3))
    back = TopPrior.from_dict(prior.to_dict())
    assert torch.equal(back.mean, prior.mean) and back.shape == (3,) and back.tiles == 10
    bad = prior.to_dict() | {"shape": [4]}
    with pytest.raises(ValueError, match="needs mean"):
        TopPrior.from_dict(bad)
    with pytest.raises(ValueError, match="N >= 2"):
        fit_top_prior(torch.randn(1, 3))


@pytest.mark.parametrize("skip_mode", ["ladder", "none"])
def test_encode_top_is_the_top_level_of_encode(skip_mode):
    torch.manual_seed(0)
    cfg = ModelConfig(
        skip_mode=skip_mode, levels=2, base_channels=8, max_channels=16, latent_channels=4
    )
    vae = build_vae(cfg, LikelihoodConfig(name="gaussian"), bit_depth=None).eval()
    x = torch.rand(3, 1, 64, 64) * 2 - 1  # the global latent's tile size
    torch.testing.assert_close(vae.encode_top(x), vae.encode(x)[0])
