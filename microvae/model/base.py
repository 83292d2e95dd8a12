"""The interface every VAE variant shares, and the parts they share: bottom-up path and head.

Data ``x`` are (B, C, H, W) tensors in [-1, 1] (integer levels mapped as in
:mod:`microvae.model.discretize`), or (B, C, D, H, W) for a 3D model (``config.dims``): every
shape below is written for 2D and holds with the extra axis in 3D. A variant implements
``_run``: given bottom-up features (or none, to generate) it walks its latent levels top-down
and returns the likelihood's parameters and, per level, the prior, the posterior and the
latent used.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import NotGenerativeError, ShapeError
from .blocks import Down, ResBlock, conv, make_activation, make_norm
from .config import ModelConfig
from .distributions import DiagonalGaussian
from .likelihoods import Likelihood

__all__ = ["VAE", "VAEOutput", "LevelLatents"]

Output = Literal["mean", "sample"]


@dataclass
class LevelLatents:
    """One latent level: its prior, its posterior (None when generating) and the z used."""

    prior: DiagonalGaussian
    posterior: DiagonalGaussian | None
    z: Tensor


@dataclass
class VAEOutput:
    """What ``forward`` returns; every term per image (B,), in nats unless stated.

    Attributes:
        params: likelihood parameters (B, n_params, H, W).
        log_px: log p(x | z), summed over pixels and channels.
        kl: per latent level (top first), the elementwise analytic KL(q || p):
            (B, C_l, H_l, W_l) for maps, (B, D) for a global latent vector.
        log_qz, log_pz: log q(z | x) and log p(z) of the sampled z, all levels (for IWAE).
        n_dims: pixels x channels per image (for per-dimension units).
    """

    params: Tensor
    log_px: Tensor
    kl: list[Tensor]
    log_qz: Tensor
    log_pz: Tensor
    latents: list[LevelLatents]
    n_dims: int

    @property
    def kl_per_level(self) -> Tensor:
        """(B, n_levels): KL of each level summed over its elements."""
        return torch.stack([k.flatten(1).sum(dim=1) for k in self.kl], dim=1)

    @property
    def kl_per_channel(self) -> list[Tensor]:
        """Per level, (B, C_l): KL of each latent channel summed over its positions."""
        return [k.flatten(2).sum(dim=2) if k.ndim > 2 else k for k in self.kl]

    @property
    def elbo(self) -> Tensor:
        """log p(x|z) - KL, (B,), nats (beta = 1, no free bits)."""
        return self.log_px - self.kl_per_level.sum(dim=1)


class VAE(nn.Module):
    """Base of the three variants (``ladder``, ``deterministic``, ``none``)."""

    skip_mode: str
    can_generate: bool = True
    elbo_is_bound: bool = True  # False where skips carry x around the latents

    def __init__(self, config: ModelConfig, likelihood: Likelihood):
        super().__init__()
        if likelihood.channels != config.in_channels:
            raise ValueError(
                f"likelihood has {likelihood.channels} channels, model.in_channels is "
                f"{config.in_channels}"
            )
        self.config, self.likelihood = config, likelihood
        self.levels, self.dims = config.levels, config.dims
        self.strides = config.strides()
        # the kernel at each resolution (full, then each level): (1, 3, 3) where Z is coarse
        k = self.kernels = config.kernels()
        ch = self.channels = config.channels_per_level()
        n_blocks = 2 * config.blocks_per_level * (config.levels + 1)
        self._block_kw = dict(
            norm=config.norm,
            activation=config.activation,
            residual_scale=1 / math.sqrt(n_blocks),
            dims=config.dims,
        )
        self.stem = nn.Sequential(
            conv(config.dims, config.in_channels, ch[0], k[0]), *self._blocks(ch[0], 0)
        )
        self.down = nn.ModuleList(
            nn.Sequential(
                Down(ch[i - 1], ch[i], self.strides[i - 1], k[i - 1]), *self._blocks(ch[i], i)
            )
            for i in range(1, config.levels + 1)
        )
        # the encoder's input normalisation (x * scale + shift), stored with the weights
        self.register_buffer("in_scale", torch.ones(()))
        self.register_buffer("in_shift", torch.zeros(()))
        self.head = nn.Sequential(
            make_norm(config.norm, ch[0]),
            make_activation(config.activation),
            conv(config.dims, ch[0], likelihood.n_params, k[0]),
        )

    def _blocks(self, channels: int, level: int) -> list[nn.Module]:
        """The residual blocks at ``level`` (0: full resolution), with its kernel."""
        kw = dict(self._block_kw, kernel=self.kernels[level])
        return [ResBlock(channels, **kw) for _ in range(self.config.blocks_per_level)]

    # -- shapes ------------------------------------------------------------------------------

    def check_shape(self, *sides: int) -> None:
        """Raise ShapeError unless the tile's sides ((H, W), or (D, H, W) in 3D) are
        multiples of what the levels halve (:meth:`ModelConfig.multiples`)."""
        multiples = self.config.multiples()
        if len(sides) != len(multiples):
            raise ShapeError(
                f"a {self.dims}D model takes tiles of {self.dims} sides, got {len(sides)}: "
                f"{'x'.join(map(str, sides))}"
            )
        for n, m in zip(sides, multiples):
            if n % m:
                what = "2**levels" if m == 2**self.levels else "the product of z_strides"
                raise ShapeError(
                    f"tile {'x'.join(map(str, sides))} is not divisible by {what} = {m} "
                    f"(levels={self.levels}); use sides that are multiples of "
                    f"{'x'.join(map(str, multiples))}, e.g. {n - n % m or m} or {n - n % m + m}"
                )

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != self.dims + 2 or x.shape[1] != self.config.in_channels:
            axes = "H, W" if self.dims == 2 else "D, H, W"
            raise ShapeError(
                f"expected images (B, {self.config.in_channels}, {axes}), got {tuple(x.shape)}"
            )
        self.check_shape(*x.shape[2:])

    def _shape(self, x: Tensor) -> tuple[int, ...]:
        """(B, *spatial) of ``x``: what ``_run`` takes as ``shape``."""
        return (x.shape[0], *x.shape[2:])

    def coarse(self, spatial: tuple[int, ...], level: int) -> tuple[int, ...]:
        """The spatial shape at ``level`` (0: full resolution) of a tile of ``spatial``."""
        out = list(spatial)
        for stride in self.strides[:level]:
            out = [n // s for n, s in zip(out, stride)]
        return tuple(out)

    def _size(self, size: tuple[int, ...] | None) -> tuple[int, ...]:
        """``size`` or the tile the model is built for, checked."""
        size = tuple(size) if size is not None else self.config.tile_shape()
        self.check_shape(*size)
        return size

    # -- the parts a variant implements ------------------------------------------------------

    def set_input_normalisation(self, scale: float, shift: float) -> None:
        """The encoder sees ``x * scale + shift``, and the decoder's outputs are read in the
        same coordinates (the likelihood still models x itself, on its levels)."""
        self.in_scale.fill_(scale)
        self.in_shift.fill_(shift)
        self.likelihood.set_data_affine(scale, shift)

    def bottom_up(self, x: Tensor) -> list[Tensor]:
        """Encoder features [f_0 (full resolution), f_1 (1/2), ..., f_L (1/2**L)]."""
        feats = [self.stem(x * self.in_scale + self.in_shift)]
        for down in self.down:
            feats.append(down(feats[-1]))
        return feats

    @abstractmethod
    def _run(
        self,
        features: list[Tensor] | None,
        *,
        shape: tuple[int, ...],
        posterior_levels: int,
        sample_latents: bool,
        z: list[Tensor | None] | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, list[LevelLatents]]:
        """Top-down pass -> (likelihood params, latents per level, top level first).

        ``features`` None means generating; ``posterior_levels`` top levels use q(z|x), the
        others p(z); ``z`` fixes latents (None entries are free); ``shape`` is (B, H, W) or
        (B, D, H, W).
        """

    @abstractmethod
    def z_readers(self) -> list[nn.Module]:
        """Per latent level (top first), the decoder layer that reads z (for diagnostics)."""

    @property
    def n_latent_levels(self) -> int:
        return self.levels if self.skip_mode == "ladder" else 1

    # -- the public interface ----------------------------------------------------------------

    def forward(self, x: Tensor) -> VAEOutput:
        """One pass with sampled posterior latents; returns every term of the ELBO."""
        self._check_input(x)
        feats = self.bottom_up(x)
        params, latents = self._run(
            feats, shape=self._shape(x), posterior_levels=self.n_latent_levels, sample_latents=True
        )
        log_px = self.likelihood.log_prob(params, x).flatten(1).sum(dim=1)
        kl, log_q, log_p = [], 0.0, 0.0
        for lat in latents:
            kl.append(lat.posterior.kl(lat.prior))
            dims = tuple(range(1, lat.z.ndim))
            log_q = log_q + lat.posterior.log_prob(lat.z).sum(dim=dims)
            log_p = log_p + lat.prior.log_prob(lat.z).sum(dim=dims)
        return VAEOutput(params, log_px, kl, log_q, log_p, latents, n_dims=x[0].numel())

    def _image(self, params: Tensor, output: Output, generator, temperature=1.0) -> Tensor:
        if output == "mean":
            return self.likelihood.mean(params)
        if output == "sample":
            return self.likelihood.sample(params, temperature=temperature, generator=generator)
        raise ValueError(f"output must be 'mean' or 'sample', got {output!r}")

    @torch.no_grad()
    def encode(
        self, x: Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> list[Tensor]:
        """Latents of ``x`` per level, top level first (posterior means unless ``sample``)."""
        self._check_input(x)
        _, latents = self._run(
            self.bottom_up(x),
            shape=self._shape(x),
            posterior_levels=self.n_latent_levels,
            sample_latents=sample,
            generator=generator,
        )
        return [lat.z for lat in latents]

    def encode_top(
        self, x: Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """The top level's latents of ``x`` alone: ``encode(x)[0]`` (variants compute it
        faster where they can)."""
        return self.encode(x, sample=sample, generator=generator)[0]

    @torch.no_grad()
    def decode(
        self,
        z: list[Tensor | None],
        *,
        shape: tuple[int, ...],
        output: Output = "mean",
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Image (B, C, H, W) from latents per level (top first; None -> the prior mean);
        ``shape`` is (B, H, W) or (B, D, H, W)."""
        self._require_generative("decode latents without an input")
        self.check_shape(*shape[1:])
        params, _ = self._run(
            None, shape=shape, posterior_levels=0, sample_latents=False, z=z, generator=generator
        )
        return self._image(params, output, generator)

    @torch.no_grad()
    def reconstruct_and_encode(
        self, x: Tensor, *, output: Output = "mean", generator: torch.Generator | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        """``reconstruct(x)`` and ``encode(x)`` from one pass (posterior means at every level)."""
        self._check_input(x)
        params, latents = self._run(
            self.bottom_up(x),
            shape=self._shape(x),
            posterior_levels=self.n_latent_levels,
            sample_latents=False,
            generator=generator,
        )
        return self._image(params, output, generator), [lat.z for lat in latents]

    @torch.no_grad()
    def reconstruct(
        self,
        x: Tensor,
        *,
        posterior_levels: int | None = None,
        sample_latents: bool = False,
        output: Output = "mean",
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Reconstruction (B, C, H, W) in [-1, 1]; deterministic by default.

        ``posterior_levels=k`` (ladder only) takes the top k levels from q(z|x) and the prior
        means below: coarse-to-fine reconstruction, which shows which scale carries which
        structure; since the finest level tends to encode pixel noise, it is also a denoised view.
        """
        self._check_input(x)
        k = self.n_latent_levels if posterior_levels is None else posterior_levels
        if not 0 <= k <= self.n_latent_levels:
            raise ValueError(f"posterior_levels must be 0..{self.n_latent_levels}, got {k}")
        params, _ = self._run(
            self.bottom_up(x),
            shape=self._shape(x),
            posterior_levels=k,
            sample_latents=sample_latents,
            generator=generator,
        )
        return self._image(params, output, generator)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        size: tuple[int, ...] | None = None,
        temperature: float = 1.0,
        output: Output = "mean",
        generator: torch.Generator | None = None,
        top: Tensor | None = None,
    ) -> Tensor:
        """``n`` images (n, C, H, W) generated from the prior, no input needed; with ``top``
        (n, ...) the top level is given (e.g. drawn from a :class:`~.aggregate.TopPrior`) and
        only the levels below are drawn from the model's priors."""
        self._require_generative("generate images")
        size = self._size(size)
        if top is not None and len(top) != n:
            raise ValueError(f"top holds latents for {len(top)} images, not n={n}")
        params, _ = self._run(
            None,
            shape=(n, *size),
            posterior_levels=0,
            sample_latents=True,
            z=None if top is None else [top],
            temperature=temperature,
            generator=generator,
        )
        return self._image(params, output, generator)

    @torch.no_grad()
    def priors(
        self, z: list[Tensor | None] | None = None, *, size: tuple[int, ...] | None = None
    ) -> list[DiagonalGaussian]:
        """The prior of every level (top first) for one image, given latents ``z`` fixed
        from the top (None entries and missing levels at their prior means). The top level's
        prior does not depend on z: ``priors()[0]`` is p(z_top), (1, C, h, w) or (1, D)."""
        self._require_generative("compute priors without an input")
        size = self._size(size)
        _, latents = self._run(
            None, shape=(1, *size), posterior_levels=0, sample_latents=False, z=z
        )
        return [lat.prior for lat in latents]

    @torch.no_grad()
    def prototype(self, *, size: tuple[int, ...] | None = None) -> Tensor:
        """The image decoded from eps = 0: every latent at its prior mean (z = 0 under N(0, I))."""
        self._require_generative("decode a prototype")
        size = self._size(size)
        params, _ = self._run(None, shape=(1, *size), posterior_levels=0, sample_latents=False)
        return self._image(params, "mean", None)

    def _require_generative(self, what: str) -> None:
        if not self.can_generate:
            raise NotGenerativeError(
                f"skip_mode '{self.skip_mode}' cannot {what}: its skips hand encoder features "
                "of an input image to the decoder, so it needs one (use skip_mode 'ladder' for "
                "a model that generates)"
            )
