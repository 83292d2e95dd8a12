"""Likelihoods p(x | z): Gaussian, Laplace and a discretised logistic mixture (DMoL).

One interface: the decoder outputs ``n_params`` channels; ``log_prob(params, x)`` gives log p
per pixel in nats, ``mean(params)`` the expected image and ``sample(params)`` a draw, all in
[-1, 1] units. With a bit depth, all three are *discrete* distributions over the same integer
levels (see :mod:`microvae.model.discretize`), so their nats and bits per dimension compare
directly; without one (``bit_depth=None``, continuous data) they are densities.

Scales are bounded below (a floor plus softplus), so no likelihood can collapse onto a pixel.

The decoder's outputs are read in the *data's own coordinates*: ``u = a x + b``, the affine map
that sends the training data's low and high percentiles to -1 and 1 (the encoder's input
normalisation, set by :meth:`Likelihood.set_data_affine`). A raw location of 0 is the middle of
the data's range and a raw scale of 1 half of it, whatever the bit depth and camera offset:
14-bit data with an offset of 2000 and a signal range of 2000 levels occupy 0.12 of [-1, 1],
and in those units a fresh decoder would start 8 times too wide and off-centre, and its
gradients would be 8 times larger (the gradient of a log mass scales as 1 / scale). The floors
and everything the methods return stay in [-1, 1] units.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .discretize import (
    bin_width,
    log_cdf_laplace,
    log_cdf_logistic,
    log_cdf_normal,
    log_discrete_mass,
    quantise_unit,
)

__all__ = [
    "Likelihood",
    "GaussianLikelihood",
    "LaplaceLikelihood",
    "LogisticMixtureLikelihood",
    "make_likelihood",
    "LIKELIHOODS",
]

LIKELIHOODS = ("gaussian", "laplace", "dmol")
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class Likelihood(nn.Module, ABC):
    """Base class: ``params`` is (B, n_params, H, W); data ``x`` is (B, C, H, W) in [-1, 1]
    (or (..., D, H, W) for volumes: every likelihood is per voxel and works on either)."""

    name: str
    params_per_channel: int

    def __init__(self, channels: int, bit_depth: int | None):
        super().__init__()
        if bit_depth is not None and not 1 <= bit_depth <= 16:
            raise ValueError(f"bit_depth must be 1..16 or None (continuous), got {bit_depth}")
        self.channels = channels
        self.bit_depth = bit_depth
        # decoder outputs are in u = a x + b (see the module docstring); (1, 0) reads them in
        # [-1, 1] units, as model files of format 1 were trained
        self.register_buffer("data_scale", torch.ones(()))
        self.register_buffer("data_shift", torch.zeros(()))

    def set_data_affine(self, scale: float, shift: float) -> None:
        """Read decoder outputs in ``u = x * scale + shift`` (scale > 0) coordinates."""
        if not scale > 0:
            raise ValueError(f"data affine scale must be > 0, got {scale}")
        self.data_scale.fill_(scale)
        self.data_shift.fill_(shift)

    def _to_unit_loc(self, loc: Tensor) -> Tensor:
        return (loc - self.data_shift) / self.data_scale

    @property
    def n_params(self) -> int:
        """Channels the decoder must output for this likelihood."""
        return self.channels * self.params_per_channel

    def _split(self, params: Tensor) -> Tensor:
        b, n, *spatial = params.shape
        if n != self.n_params:
            raise ValueError(f"{self.name}: expected {self.n_params} parameter channels, got {n}")
        return params.view(b, self.params_per_channel, self.channels, *spatial)

    def _snap(self, x: Tensor) -> Tensor:
        x = x.clamp(-1.0, 1.0)
        return quantise_unit(x, self.bit_depth) if self.bit_depth is not None else x

    @abstractmethod
    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """log p(x | params) per pixel and channel, (B, C, H, W), nats."""

    @abstractmethod
    def mean(self, params: Tensor) -> Tensor:
        """Expected image (B, C, H, W) in [-1, 1] (the continuous mean, clamped)."""

    @abstractmethod
    def sample(
        self, params: Tensor, *, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """A draw (B, C, H, W), on the level grid when discrete; scales times ``temperature``."""


class _LocationScale(Likelihood):
    """Gaussian or Laplace: a location per pixel, a scale per pixel or shared per channel."""

    def __init__(
        self,
        channels: int,
        bit_depth: int | None,
        *,
        scale: Literal["pixel", "shared"] = "pixel",
        min_scale: float = 1e-3,
        init_scale: float = 0.1,
    ):
        super().__init__(channels, bit_depth)
        if scale not in ("pixel", "shared"):
            raise ValueError(f"scale must be 'pixel' or 'shared', got {scale!r}")
        if not 0 < min_scale < init_scale:
            raise ValueError(f"need 0 < min_scale < init_scale, got {min_scale}, {init_scale}")
        self.scale_mode, self.min_scale = scale, min_scale
        # a raw output of 0 gives init_scale, so a freshly initialised decoder starts sensibly
        self._offset = _inverse_softplus(init_scale - min_scale)
        self.params_per_channel = 2 if scale == "pixel" else 1
        if scale == "shared":
            self.raw_scale = nn.Parameter(torch.zeros(channels))

    def loc_scale(self, params: Tensor) -> tuple[Tensor, Tensor]:
        """Location and scale (B, C, H, W) in [-1, 1] units."""
        p = self._split(params)
        ones = (1,) * (p.ndim - 3)  # the spatial axes: 2 for planes, 3 for volumes
        raw = p[:, 1] if self.scale_mode == "pixel" else self.raw_scale.view(1, -1, *ones)
        scale = self.min_scale + F.softplus(raw + self._offset) / self.data_scale
        return self._to_unit_loc(p[:, 0]), scale

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        loc, scale = self.loc_scale(params)
        if self.bit_depth is None:
            return self.log_density_standard((x - loc) / scale) - torch.log(scale)
        return log_discrete_mass(self.log_cdf, x, loc, scale, self.bit_depth)

    def mean(self, params: Tensor) -> Tensor:
        return self.loc_scale(params)[0].clamp(-1.0, 1.0)

    def sample(self, params, *, temperature=1.0, generator=None):
        loc, scale = self.loc_scale(params)
        return self._snap(loc + temperature * scale * self.standard_noise(loc, generator))

    @staticmethod
    @abstractmethod
    def log_density_standard(z: Tensor) -> Tensor: ...

    @staticmethod
    @abstractmethod
    def standard_noise(like: Tensor, generator: torch.Generator | None) -> Tensor: ...


class GaussianLikelihood(_LocationScale):
    """Gaussian with a learned scale: the MSE baseline (blurs what it cannot predict)."""

    name = "gaussian"
    log_cdf = staticmethod(log_cdf_normal)

    @staticmethod
    def log_density_standard(z):
        return -0.5 * z**2 - _LOG_SQRT_2PI

    @staticmethod
    def standard_noise(like, generator):
        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


class LaplaceLikelihood(_LocationScale):
    """Laplace with a learned scale (L1): keeps edges sharper than the Gaussian."""

    name = "laplace"
    log_cdf = staticmethod(log_cdf_laplace)

    @staticmethod
    def log_density_standard(z):
        return -z.abs() - math.log(2.0)

    @staticmethod
    def standard_noise(like, generator):
        u = torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
        u = u.clamp(1e-7, 1 - 1e-7) - 0.5
        return -torch.sign(u) * torch.log1p(-2 * u.abs())


class LogisticMixtureLikelihood(Likelihood):
    """Discretised mixture of K logistics per pixel and channel (PixelCNN++), any bit depth.

    Parameters per channel: K mixture logits, K means, K log-scales. Log-scales are bounded
    below by ``min_log_scale`` (default: log of a bin width minus 3, i.e. a scale 20x narrower
    than one level, which lets the mixture put all its mass on one level).
    """

    name = "dmol"

    def __init__(
        self,
        channels: int,
        bit_depth: int | None,
        *,
        components: int = 5,
        min_log_scale: float | None = None,
    ):
        super().__init__(channels, bit_depth)
        if components < 1:
            raise ValueError(f"components must be >= 1, got {components}")
        self.components = components
        self.params_per_channel = 3 * components
        if min_log_scale is None:
            min_log_scale = (math.log(bin_width(bit_depth)) if bit_depth else math.log(1e-3)) - 3
        self.min_log_scale = min_log_scale

    def components_of(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(log weights, means, log scales), each (B, K, C, H, W), in [-1, 1] units."""
        p = self._split(params)
        b, _, c, *spatial = p.shape
        p = p.view(b, 3, self.components, c, *spatial)
        log_w = torch.log_softmax(p[:, 0], dim=1)
        raw_log_s = p[:, 2] - torch.log(self.data_scale)
        log_s = self.min_log_scale + F.softplus(raw_log_s - self.min_log_scale)
        return log_w, self._to_unit_loc(p[:, 1]), log_s

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        log_w, loc, log_s = self.components_of(params)
        x = x.unsqueeze(1)
        if self.bit_depth is None:
            z = (x - loc) * torch.exp(-log_s)
            per = F.logsigmoid(z) + F.logsigmoid(-z) - log_s
        else:
            per = log_discrete_mass(log_cdf_logistic, x, loc, torch.exp(log_s), self.bit_depth)
        return torch.logsumexp(log_w + per, dim=1)

    def mean(self, params: Tensor) -> Tensor:
        log_w, loc, _ = self.components_of(params)
        return (torch.exp(log_w) * loc).sum(dim=1).clamp(-1.0, 1.0)

    def sample(self, params, *, temperature=1.0, generator=None):
        log_w, loc, log_s = self.components_of(params)
        u = torch.rand(log_w.shape, generator=generator, device=log_w.device, dtype=log_w.dtype)
        gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-7)))
        pick = F.one_hot((log_w + gumbel).argmax(dim=1), self.components)
        pick = pick.movedim(-1, 1).to(loc.dtype)
        loc, log_s = (loc * pick).sum(1), (log_s * pick).sum(1)
        v = torch.rand(loc.shape, generator=generator, device=loc.device, dtype=loc.dtype)
        v = v.clamp(1e-7, 1 - 1e-7)
        return self._snap(loc + temperature * torch.exp(log_s) * (torch.log(v) - torch.log1p(-v)))


def make_likelihood(
    name: str,
    *,
    channels: int,
    bit_depth: int | None,
    components: int = 5,
    scale: Literal["pixel", "shared"] = "pixel",
    min_scale: float = 1e-3,
) -> Likelihood:
    """The likelihood called ``name`` (``gaussian``, ``laplace`` or ``dmol``)."""
    if name == "gaussian":
        return GaussianLikelihood(channels, bit_depth, scale=scale, min_scale=min_scale)
    if name == "laplace":
        return LaplaceLikelihood(channels, bit_depth, scale=scale, min_scale=min_scale)
    if name == "dmol":
        return LogisticMixtureLikelihood(channels, bit_depth, components=components)
    raise ValueError(f"likelihood {name!r} is unknown; choose one of {', '.join(LIKELIHOODS)}")
