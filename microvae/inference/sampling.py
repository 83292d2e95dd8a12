"""Posterior samples of a batch of tiles, summarised in one pass: the mean of N
reconstructions drawn with every latent level sampled from q(z|x) (the MMSE estimate), their
variance, and quantiles where asked.

A draw is ``vae.reconstruct(x, sample_latents=True, output=...)``: with ``output="mean"`` the
likelihood's mean given the sampled latents (the spread is then the posterior's, over
plausible signals), with ``"sample"`` a draw from the likelihood too (the spread includes the
pixel noise the likelihood models). The draws of one batch of tiles are run as copies of the
tiles along the batch axis, at most ``batch_size`` network inputs at a time, and merged into a
running mean and sum of squared deviations (Chan et al.'s parallel form of Welford's update),
so memory does not grow with N; quantiles need the draws themselves and keep the N draws of
the batch's tiles (only those tiles, never a plane's).
"""

from __future__ import annotations

import torch

from ..model import VAE

__all__ = ["posterior_stats", "stats_channels"]


def stats_channels(quantiles: tuple[float, ...]) -> int:
    """Channels of :func:`posterior_stats`' output: mean, variance, then one per quantile."""
    return 2 + len(quantiles)


@torch.no_grad()
def posterior_stats(
    vae: VAE,
    x: torch.Tensor,
    *,
    samples: int,
    batch_size: int,
    output: str = "mean",
    quantiles: tuple[float, ...] = (),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Summarise ``samples`` posterior reconstructions of the tiles ``x`` (B, 1, *S), in
    model units: (B, 2 + len(quantiles), *S) float32 holding the mean, the unbiased variance
    (0 for a single draw) and the quantiles (each in 0..1) of the draws per pixel."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if any(not 0.0 <= q <= 1.0 for q in quantiles):
        raise ValueError(f"quantiles must lie in 0..1, got {list(quantiles)}")
    b = len(x)
    copies = max(1, batch_size // b)  # draws per pass: the batch holds copies of the tiles
    n, mean, m2 = 0, None, None
    kept: list[torch.Tensor] = []
    while n < samples:
        k = min(copies, samples - n)
        xs = x.repeat(k, *([1] * (x.ndim - 1)))
        draws = vae.reconstruct(xs, sample_latents=True, output=output, generator=generator)
        draws = draws.float().reshape(k, b, *draws.shape[1:])
        if quantiles:
            kept.append(draws)
        d_mean = draws.mean(0)
        d_m2 = ((draws - d_mean) ** 2).sum(0)
        if mean is None:
            mean, m2 = d_mean, d_m2
        else:  # merge two groups' means and sums of squared deviations
            delta = d_mean - mean
            total = n + k
            mean = mean + delta * (k / total)
            m2 = m2 + d_m2 + delta**2 * (n * k / total)
        n += k
    var = m2 / (n - 1) if n > 1 else torch.zeros_like(m2)
    parts = [mean, var]
    if quantiles:
        q = torch.tensor(quantiles, dtype=torch.float32, device=mean.device)
        parts.extend(torch.quantile(torch.cat(kept), q, dim=0))
    return torch.cat(parts, dim=1)
