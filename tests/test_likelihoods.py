"""Likelihoods against independent computations: masses sum to 1, match scipy, compare."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import stats

from microvae.model.discretize import bin_width, log1mexp, to_levels, to_unit
from microvae.model.likelihoods import make_likelihood

torch.manual_seed(0)


def _all_levels(bit_depth: int, h: int = 3, w: int = 3) -> torch.Tensor:
    n = 2**bit_depth
    return to_unit(torch.arange(n), bit_depth).view(n, 1, 1, 1).expand(n, 1, h, w)


def _extreme_dmol_params(lik, h=3, w=3) -> torch.Tensor:
    k = lik.components
    p = torch.randn(1, 3, k, 1, h, w)
    p[:, 0] *= 4  # peaked and flat mixture weights
    p[:, 1] = torch.linspace(-3, 3, k).view(1, k, 1, 1, 1) + 0.3 * torch.randn(1, k, 1, h, w)
    p[:, 2] = torch.linspace(-25, 4, k).view(1, k, 1, 1, 1)  # from the floor to very wide
    return p.view(1, lik.n_params, h, w)


@pytest.mark.parametrize("bit_depth", [1, 8, 12])
def test_dmol_masses_sum_to_one(bit_depth):
    lik = make_likelihood("dmol", channels=1, bit_depth=bit_depth, components=5)
    for _ in range(3):
        params = _extreme_dmol_params(lik)
        x = _all_levels(bit_depth)
        logp = lik.log_prob(params.expand(len(x), -1, -1, -1), x)
        total = torch.exp(logp.double()).sum(0)
        assert torch.allclose(total, torch.ones_like(total), atol=1e-4), total


@pytest.mark.parametrize("name", ["gaussian", "laplace"])
@pytest.mark.parametrize("bit_depth", [1, 8, 12])
def test_gaussian_laplace_masses_sum_to_one(name, bit_depth):
    lik = make_likelihood(name, channels=1, bit_depth=bit_depth)
    params = torch.cat(
        [torch.linspace(-2, 2, 9).view(1, 1, 3, 3), torch.linspace(-12, 3, 9).view(1, 1, 3, 3)],
        dim=1,
    )
    x = _all_levels(bit_depth)
    total = torch.exp(lik.log_prob(params.expand(len(x), -1, -1, -1), x).double()).sum(0)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-4)


def test_dmol_16_bits_dense_sum_around_each_mode():
    b = 16
    lik = make_likelihood("dmol", channels=1, bit_depth=b, components=3)
    params = torch.zeros(1, 3, 3, 1, 1, 1)
    params[0, 0, :, 0, 0, 0] = torch.tensor([0.3, -1.0, 1.2])
    params[0, 1, :, 0, 0, 0] = torch.tensor([-0.6, 0.1, 0.8])
    params[0, 2, :, 0, 0, 0] = torch.log(torch.tensor([2e-4, 5e-5, 1e-3]))  # 3 to 15 levels
    params = params.view(1, lik.n_params, 1, 1)
    _, loc, log_s = lik.components_of(params)
    window = set()
    for mu, s in zip(loc.flatten().tolist(), torch.exp(log_s).flatten().tolist()):
        centre = int(round((mu + 1) / bin_width(b)))
        half = int(40 * s / bin_width(b)) + 2  # logistic tails beyond 40 scales: < 1e-17
        window.update(range(max(centre - half, 0), min(centre + half, 2**b - 1) + 1))
    levels = torch.tensor(sorted(window))
    x = to_unit(levels, b).view(-1, 1, 1, 1)
    total = torch.exp(lik.log_prob(params.expand(len(x), -1, -1, -1), x).double()).sum()
    assert abs(total.item() - 1) < 1e-4


@pytest.mark.parametrize("name", ["gaussian", "laplace", "dmol"])
@pytest.mark.parametrize("bit_depth", [1, 8, 12, 16])
def test_gradients_finite_at_edge_levels(name, bit_depth):
    lik = make_likelihood(name, channels=1, bit_depth=bit_depth)
    if name == "dmol":
        params = _extreme_dmol_params(lik, 2, 2)
    else:
        params = torch.tensor([[-5.0, 0, 5, 0.5], [-15, -3, 5, 12]]).view(1, 2, 2, 2)
    params = params.expand(2, -1, -1, -1).clone().requires_grad_(True)
    x = torch.stack([torch.full((1, 2, 2), -1.0), torch.full((1, 2, 2), 1.0)])  # levels 0, max
    assert (to_levels(x, bit_depth)[1] == 2**bit_depth - 1).all()
    logp = lik.log_prob(params, x)
    assert torch.isfinite(logp).all()
    logp.sum().backward()
    assert torch.isfinite(params.grad).all()


def _mp_cdf(name):
    if name == "gaussian":
        return mpmath.ncdf
    return lambda z: mpmath.exp(z) / 2 if z < 0 else 1 - mpmath.exp(-z) / 2


@pytest.mark.parametrize("name,dist", [("gaussian", stats.norm), ("laplace", stats.laplace)])
def test_masses_match_exact_arithmetic(name, dist):
    """Against 50-digit arithmetic (mpmath), tails included, where float64 would cancel."""
    b = 8
    lik = make_likelihood(name, channels=1, bit_depth=b, min_scale=1e-4)
    gen = torch.Generator().manual_seed(1)
    n = 300
    loc = torch.rand(n, generator=gen) * 3 - 1.5
    scale = torch.exp(torch.rand(n, generator=gen) * 6 - 6)  # 0.0025 .. 1
    levels = torch.randint(0, 2**b, (n,), generator=gen)
    levels[:20], levels[20:40] = 0, 2**b - 1
    x = to_unit(levels, b)
    raw = torch.log(torch.expm1(scale - lik.min_scale)) - lik._offset
    params = torch.stack([loc, raw], 1).view(n, 2, 1, 1)
    ours = lik.log_prob(params, x.view(n, 1, 1, 1)).flatten().double().numpy()
    cdf, half = _mp_cdf(name), mpmath.mpf(2) / (2**b - 1) / 2
    mpmath.mp.dps = 50
    exact = []
    for k, mu, s in zip(levels.tolist(), loc.double().tolist(), scale.double().tolist()):
        centre = mpmath.mpf(2 * k) / (2**b - 1) - 1
        z_lo, z_hi = (centre - half - mu) / s, (centre + half - mu) / s
        if centre > mu:  # survival functions: both CDFs would be 1 - tiny
            mass = (1 if k == 0 else cdf(-z_lo)) - (0 if k == 2**b - 1 else cdf(-z_hi))
        else:
            mass = (1 if k == 2**b - 1 else cdf(z_hi)) - (0 if k == 0 else cdf(z_lo))
        exact.append(float(mpmath.log(mass)))
    exact = np.array(exact)
    # float32 arguments carry a relative error of ~1e-7, i.e. ~1e-7 * z^2 nats deep in a tail
    np.testing.assert_allclose(ours, exact, rtol=1e-4, atol=2e-5)
    # narrow bins: the mass is the density times the bin width
    xs = x.double().numpy()
    z = (xs - loc.double().numpy()) / scale.double().numpy()
    interior = (levels.numpy() > 0) & (levels.numpy() < 2**b - 1)
    wide = interior & (scale.numpy() > 20 * bin_width(b)) & (np.abs(z) < 3)  # midpoint rule
    dens = dist(loc=loc.double().numpy(), scale=scale.double().numpy()).logpdf(xs)
    np.testing.assert_allclose(ours[wide], dens[wide] + np.log(bin_width(b)), atol=2e-3)


def test_continuous_mode_gives_densities():
    for name, dist in (("gaussian", stats.norm), ("laplace", stats.laplace)):
        lik = make_likelihood(name, channels=1, bit_depth=None)
        params = torch.tensor([0.2, 0.0]).view(1, 2, 1, 1)
        x = torch.tensor(0.27).view(1, 1, 1, 1)
        expected = dist(loc=0.2, scale=0.1).logpdf(0.27)
        assert lik.log_prob(params, x).item() == pytest.approx(expected, rel=1e-4)


def test_bits_per_dim_agree_on_data_from_a_known_distribution():
    """Data: 12-bit levels from a discretised Gaussian. Each likelihood, fitted, must approach
    the data's entropy from above (cross-entropy >= entropy) on the same footing."""
    b, mu, sigma = 12, 0.2, 0.03
    levels = np.arange(2**b)
    xs = levels * bin_width(b) - 1
    half = bin_width(b) / 2
    p = stats.norm.cdf(xs + half, mu, sigma) - stats.norm.cdf(xs - half, mu, sigma)
    p /= p.sum()
    entropy_bits = -(p[p > 0] * np.log2(p[p > 0])).sum()
    rng = np.random.default_rng(0)
    data = to_unit(torch.from_numpy(rng.choice(levels, size=20000, p=p)), b).view(-1, 1, 1, 1)
    results = {}
    for name in ("gaussian", "laplace", "dmol"):
        lik = make_likelihood(name, channels=1, bit_depth=b, components=3)
        params = torch.zeros(1, lik.n_params, 1, 1, requires_grad=True)
        opt = torch.optim.Adam([params], lr=0.05)
        for _ in range(400):
            opt.zero_grad()
            nll = -lik.log_prob(params.expand(len(data), -1, -1, -1), data).mean()
            nll.backward()
            opt.step()
        results[name] = nll.item() / math.log(2)
    for name, bits in results.items():
        assert entropy_bits - 0.02 < bits < entropy_bits + 0.15, (name, bits, entropy_bits)
    assert abs(results["gaussian"] - entropy_bits) < 0.02  # the true family fits exactly


@pytest.mark.parametrize("name", ["gaussian", "laplace", "dmol"])
def test_samples_follow_the_distribution(name):
    b = 8
    lik = make_likelihood(name, channels=1, bit_depth=b)
    params = torch.randn(1, lik.n_params, 1, 1)
    n = 20000
    gen = torch.Generator().manual_seed(3)
    draws = lik.sample(params.expand(n, -1, -1, -1), generator=gen).flatten()
    assert ((to_unit(to_levels(draws, b), b) - draws).abs() < 1e-6).all()  # on the grid
    # empirical frequencies vs the model's masses
    counts = torch.bincount(to_levels(draws, b), minlength=2**b).double() / n
    probs = (
        torch.exp(lik.log_prob(params.expand(2**b, -1, -1, -1), _all_levels(b, 1, 1)))
        .flatten()
        .double()
    )
    assert (counts - probs).abs().sum() < 0.08  # total variation of 20000 draws


def test_mean_matches_sample_average_away_from_edges():
    lik = make_likelihood("dmol", channels=1, bit_depth=12, components=3)
    params = torch.zeros(1, 3, 3, 1, 1, 1)
    params[0, 1, :, 0] = torch.tensor([-0.3, 0.0, 0.4]).view(3, 1, 1)
    params[0, 2] = math.log(0.05)
    params = params.view(1, 9, 1, 1)
    draws = lik.sample(params.expand(40000, -1, -1, -1), generator=torch.Generator().manual_seed(0))
    assert draws.mean().item() == pytest.approx(lik.mean(params).item(), abs=0.01)


def test_log1mexp_is_accurate():
    x = torch.tensor([-1e-10, -1e-5, -0.5, -0.7, -5.0, -50.0], dtype=torch.float64)
    expected = torch.tensor([math.log(-math.expm1(v)) for v in x.tolist()], dtype=torch.float64)
    assert torch.allclose(log1mexp(x), expected, rtol=1e-10)


def test_unknown_likelihood_and_bad_options():
    with pytest.raises(ValueError, match="choose one of gaussian, laplace, dmol"):
        make_likelihood("poisson", channels=1, bit_depth=8)
    with pytest.raises(ValueError, match="bit_depth must be 1..16"):
        make_likelihood("dmol", channels=1, bit_depth=17)
