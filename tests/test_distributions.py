"""Diagonal Gaussians: analytic KL against Monte Carlo and against torch.distributions."""

import torch
from torch.distributions import Normal, kl_divergence

from microvae.model.distributions import DiagonalGaussian


def test_analytic_kl_matches_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    q = DiagonalGaussian(torch.tensor([0.3, -1.0, 2.0, 0.0]), torch.tensor([0.5, 1.2, 0.1, 2.0]))
    p = DiagonalGaussian(torch.tensor([0.0, 0.5, 1.5, 0.0]), torch.tensor([1.0, 0.7, 0.3, 1.0]))
    analytic = q.kl(p)
    n = 400_000
    z = q.mean + q.std * torch.randn(n, 4, generator=gen, dtype=torch.float32)
    mc = (q.log_prob(z) - p.log_prob(z)).double()
    stderr = mc.std(dim=0) / n**0.5
    assert ((mc.mean(dim=0) - analytic.double()).abs() < 4 * stderr + 1e-4).all()
    # and a second, independent implementation
    ref = kl_divergence(Normal(q.mean, q.std), Normal(p.mean, p.std))
    assert torch.allclose(analytic, ref, rtol=1e-5, atol=1e-6)


def test_log_prob_matches_torch():
    d = DiagonalGaussian(torch.tensor([0.1, 2.0]), torch.tensor([0.3, 4.0]))
    z = torch.tensor([0.5, -1.0])
    assert torch.allclose(d.log_prob(z), Normal(d.mean, d.std).log_prob(z))


def test_zero_params_are_standard_normal_and_scales_are_floored():
    d = DiagonalGaussian.from_params(torch.zeros(2, 6, 3, 3), min_std=1e-3)
    assert d.mean.shape == (2, 3, 3, 3)
    assert torch.allclose(d.mean, torch.zeros(1)) and torch.allclose(d.std, torch.ones(1))
    tiny = DiagonalGaussian.from_params(torch.full((1, 2), -1e4), min_std=1e-3)
    assert (tiny.std >= 1e-3).all() and torch.isfinite(tiny.std).all()
