"""The plain convolutional VAE (``skip_mode='none'``): the blurry baseline.

One latent at the bottleneck with a N(0, I) prior and no skips: by default a global vector
(``latent='global'``, the classic VAE, built for one tile size), or a low-resolution map
(``latent='map'``, any size divisible by 2**levels).
"""

from __future__ import annotations

from torch import nn

from ..errors import ShapeError
from .base import VAE, LevelLatents
from .blocks import Up, conv
from .config import ModelConfig
from .distributions import DiagonalGaussian
from .likelihoods import Likelihood

__all__ = ["PlainVAE"]


class PlainVAE(VAE):
    skip_mode = "none"

    def __init__(self, config: ModelConfig, likelihood: Likelihood):
        super().__init__(config, likelihood)
        ch = self.channels
        self.side = config.tile_size // 2**config.levels
        if config.latent == "global":
            d, cells = config.global_latent_dim, ch[-1] * self.side**2
            self.posterior = nn.Sequential(nn.Flatten(), nn.Linear(cells, 2 * d))
            self.read_z = nn.Linear(d, cells)
        else:
            latent = config.latents_per_level()[-1]
            self.posterior = conv(config.dims, ch[-1], 2 * latent, self.kernels[-1])
            self.read_z = conv(config.dims, latent, ch[-1], 1)
        self.stages = nn.ModuleList(
            nn.Sequential(
                *self._blocks(ch[lv], lv),
                Up(ch[lv], ch[lv - 1], self.strides[lv - 1], self.kernels[lv - 1]),
            )
            for lv in range(config.levels, 0, -1)
        )
        self.final = nn.Sequential(*self._blocks(ch[0], 0))

    def z_readers(self) -> list[nn.Module]:
        return [self.read_z]

    def check_shape(self, *sides: int) -> None:
        super().check_shape(*sides)
        t = self.config.tile_size
        if self.config.latent == "global" and sides != (t, t):
            raise ShapeError(
                f"tile {'x'.join(map(str, sides))}: skip_mode 'none' with a global latent is "
                f"built for {t}x{t} tiles (model.tile_size); use that size, or model.latent 'map'"
            )

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
        b = shape[0]
        glob = self.config.latent == "global"
        q = None
        if features is not None and posterior_levels > 0:
            q = DiagonalGaussian.from_params(
                self.posterior(features[-1]), min_std=self.config.min_std
            )
        like = q.mean if q is not None else self._prior_like(b, shape[1:])
        prior = DiagonalGaussian.standard(like)
        given = z[0] if z else None
        if given is not None:
            zl = given
        elif q is not None:
            zl = q.sample(generator=generator) if sample_latents else q.mean
        else:
            zl = (
                prior.sample(temperature=temperature, generator=generator)
                if sample_latents
                else prior.mean
            )
        state = self.read_z(zl)
        if glob:
            state = state.view(b, self.channels[-1], self.side, self.side)
        for stage in self.stages:
            state = stage(state)
        return self.head(self.final(state)), [LevelLatents(prior, q, zl)]

    def _prior_like(self, b: int, spatial: tuple[int, ...]):
        """Zeros shaped as the latent of ``b`` tiles of ``spatial``: (B, D) or (B, C, *coarse)."""
        p = next(self.parameters())
        if self.config.latent == "global":
            return p.new_zeros(b, self.config.global_latent_dim)
        coarse = self.coarse(tuple(spatial), self.levels)
        return p.new_zeros(b, self.config.latents_per_level()[-1], *coarse)
