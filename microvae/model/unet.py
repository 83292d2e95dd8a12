"""The classic U-Net VAE (``skip_mode='deterministic'``): a labelled ablation.

One latent at the bottleneck with a N(0, I) prior; encoder features are concatenated into the
decoder at every finer resolution. The decoder can rebuild x from the skips alone, so training
pushes q(z|x) onto the prior (posterior collapse), the model cannot generate, and its "ELBO"
is not a bound. Kept as the reference case for the collapse diagnostics.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import VAE, LevelLatents
from .blocks import Up, conv
from .config import ModelConfig
from .distributions import DiagonalGaussian
from .likelihoods import Likelihood

__all__ = ["DeterministicUNetVAE"]


class DeterministicUNetVAE(VAE):
    skip_mode = "deterministic"
    can_generate = False
    elbo_is_bound = False

    def __init__(self, config: ModelConfig, likelihood: Likelihood):
        super().__init__(config, likelihood)
        ch, latent = self.channels, config.latents_per_level()[-1]
        d = config.dims
        k = self.kernels
        self.posterior = conv(d, ch[-1], 2 * latent, k[-1])
        self.read_z = conv(d, latent, ch[-1], 1)
        self.bottleneck = nn.Sequential(*self._blocks(ch[-1], config.levels))
        # level l (top first) decodes at 1/2**l, upsamples, then merges the skip f_{l-1}
        self.ups = nn.ModuleList(
            Up(ch[lv], ch[lv - 1], self.strides[lv - 1], k[lv - 1])
            for lv in range(config.levels, 0, -1)
        )
        self.merges = nn.ModuleList(
            conv(d, 2 * ch[lv - 1], ch[lv - 1], 1) for lv in range(config.levels, 0, -1)
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*self._blocks(ch[lv - 1], lv - 1)) for lv in range(config.levels, 0, -1)
        )

    def z_readers(self) -> list[nn.Module]:
        return [self.read_z]

    def _run(
        self,
        features,
        *,
        shape,
        posterior_levels,
        sample_latents,
        z=None,
        temperature=1.0,
        generator=None,
    ):
        if features is None:
            self._require_generative("run without an input")
        q = DiagonalGaussian.from_params(self.posterior(features[-1]), min_std=self.config.min_std)
        prior = DiagonalGaussian.standard(q.mean)
        dist = q if posterior_levels > 0 else prior
        given = z[0] if z else None
        zl = (
            given
            if given is not None
            else (dist.sample(generator=generator) if sample_latents else dist.mean)
        )
        state = self.bottleneck(self.read_z(zl))
        for i, (up, merge, stage) in enumerate(zip(self.ups, self.merges, self.stages)):
            skip = features[self.levels - 1 - i]
            state = stage(merge(torch.cat([up(state), skip], dim=1)))
        return self.head(state), [LevelLatents(prior, q, zl)]
