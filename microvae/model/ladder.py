"""The ladder VAE: a U-Net whose skips are latent variables (``skip_mode='ladder'``).

Top-down, from a learned constant at 1/2**L of the tile side: at each level the prior
p(z_l | z_>l) comes from the top-down state alone, the posterior q(z_l | x, z_>l) from the state
plus that level's encoder features (the skip). Every bit that crosses a skip therefore pays KL,
the model can generate, and its ELBO is a true bound. With ``full_resolution_latent`` one more
level sits at full resolution, below the others (latents top first: its map is the last), fed
by the encoder's full-resolution features: pixel-scale detail need not pass through 1/2.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import VAE, LevelLatents
from .blocks import ResBlock, Up, conv
from .config import ModelConfig
from .distributions import DiagonalGaussian
from .likelihoods import Likelihood

__all__ = ["LadderVAE"]


class _Level(nn.Module):
    """One top-down level: prior, posterior, the merge of z, blocks, and the upsampling."""

    def __init__(
        self,
        channels: int,
        below: int,
        latent: int,
        blocks: list[nn.Module],
        block_kw: dict,
        up: tuple[int, ...] | None = (2, 2),
        kernels: tuple = (3, 3),
    ):
        """``kernels``: this level's convolution kernel and the one of the level below (the
        upsampling's output)."""
        super().__init__()
        dims = block_kw["dims"]
        kernel, below_kernel = kernels
        self.prior = conv(dims, channels, 2 * latent, kernel)
        nn.init.zeros_(self.prior.weight)  # p(z_l | z_>l) starts as N(0, I)
        nn.init.zeros_(self.prior.bias)
        self.posterior = nn.Sequential(
            # the model's norm and activation, as every other block (not its residual scale:
            # this block is no part of the residual stream)
            ResBlock(
                2 * channels,
                channels,
                norm=block_kw["norm"],
                activation=block_kw["activation"],
                dims=dims,
                kernel=kernel,
            ),
            conv(dims, channels, 2 * latent, kernel),
        )
        self.read_z = conv(dims, latent, channels, 1)
        self.blocks = nn.Sequential(*blocks)
        self.up = Up(channels, below, up, below_kernel) if up else nn.Identity()


class LadderVAE(VAE):
    skip_mode = "ladder"

    def __init__(self, config: ModelConfig, likelihood: Likelihood):
        super().__init__(config, likelihood)
        ch, lat, k = self.channels, config.latents_per_level(), self.kernels
        self.top = nn.Parameter(torch.zeros(1, ch[-1], *(1,) * config.dims))
        # top level first: index i holds level L - i, which upsamples by level L - i's stride
        self.td = nn.ModuleList(
            _Level(
                ch[lv],
                ch[lv - 1],
                lat[lv - 1],
                self._blocks(ch[lv], lv),
                self._block_kw,
                up=self.strides[lv - 1],
                kernels=(k[lv], k[lv - 1]),
            )
            for lv in range(config.levels, 0, -1)
        )
        if config.full_resolution_latent:
            self.td.append(
                _Level(
                    ch[0],
                    ch[0],
                    config.full_resolution_latent,
                    self._blocks(ch[0], 0),
                    self._block_kw,
                    up=None,
                    kernels=(k[0], k[0]),
                )
            )
        self.final = nn.Sequential(*self._blocks(ch[0], 0))

    @property
    def n_latent_levels(self) -> int:
        return len(self.td)

    def use_format2_posterior_blocks(self) -> None:
        """Model files before format 3 built every posterior block with GroupNorm and SiLU,
        whatever ``model.norm`` and ``model.activation`` said: rebuild them so for such a
        file's weights (a no-op for those settings)."""
        for level in self.td:
            old = level.posterior[0]
            first, last = old.branch[2], old.branch[-1]  # the two convolutions
            level.posterior[0] = ResBlock(first.in_channels, last.out_channels, dims=self.dims).to(
                last.weight.device
            )

    def z_readers(self) -> list[nn.Module]:
        return [level.read_z for level in self.td]

    def _posterior(self, level, state: Tensor, features: Tensor) -> DiagonalGaussian:
        q_in = torch.cat([state, features], dim=1)
        return DiagonalGaussian.from_params(level.posterior(q_in), min_std=self.config.min_std)

    @torch.no_grad()
    def encode_top(
        self, x: Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """The top level's latents alone (B, C, h, w): the bottom-up pass and the top
        posterior, without the top-down pass below it (a fifth of :meth:`encode`'s time)."""
        self._check_input(x)
        state = self._top_state(self._shape(x))
        q = self._posterior(self.td[0], state, self.bottom_up(x)[self.levels])
        return q.sample(generator=generator) if sample else q.mean

    def _top_state(self, shape: tuple[int, ...]) -> Tensor:
        """The learned constant the top-down pass starts from, (B, C_L, *coarsest shape)."""
        return self.top.expand(shape[0], -1, *self.coarse(tuple(shape[1:]), self.levels))

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
        state = self._top_state(shape)
        latents = []
        for i, level in enumerate(self.td):
            lv = self.levels - i
            prior = DiagonalGaussian.from_params(level.prior(state), min_std=self.config.min_std)
            posterior = None
            if features is not None and i < posterior_levels:
                posterior = self._posterior(level, state, features[lv])
            given = z[i] if z is not None and i < len(z) else None
            if given is not None:
                zl = given
            else:
                dist = posterior if posterior is not None else prior
                t = 1.0 if posterior is not None else temperature
                zl = (
                    dist.sample(temperature=t, generator=generator) if sample_latents else dist.mean
                )
            latents.append(LevelLatents(prior, posterior, zl))
            state = level.up(level.blocks(state + level.read_z(zl)))
        return self.head(self.final(state)), latents
