"""Diagonal Gaussians with bounded scales, and their analytic KL divergence."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["DiagonalGaussian"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class DiagonalGaussian:
    """N(mean, std^2) per element; tensors of one shape, e.g. (B, C, H, W).

    Built from network outputs with :meth:`from_params`: ``std = min_std + softplus(raw + c)``
    where ``c`` makes a raw output of 0 give std 1, so a zero-initialised layer is N(0, I).
    """

    def __init__(self, mean: Tensor, std: Tensor):
        self.mean, self.std = mean, std

    @classmethod
    def from_params(
        cls, params: Tensor, *, min_std: float = 1e-3, dim: int = 1
    ) -> DiagonalGaussian:
        """Split ``params`` in two along ``dim``: (mean, raw std)."""
        mean, raw = params.chunk(2, dim=dim)
        offset = math.log(math.expm1(1.0 - min_std))
        return cls(mean, min_std + F.softplus(raw + offset))

    @classmethod
    def standard(cls, like: Tensor) -> DiagonalGaussian:
        return cls(torch.zeros_like(like), torch.ones_like(like))

    def sample(
        self, *, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """Reparameterised draw: mean + temperature * std * eps."""
        eps = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + temperature * self.std * eps

    def log_prob(self, z: Tensor) -> Tensor:
        """Elementwise log density (nats)."""
        return -0.5 * ((z - self.mean) / self.std) ** 2 - torch.log(self.std) - _LOG_SQRT_2PI

    def kl(self, other: DiagonalGaussian) -> Tensor:
        """Elementwise KL(self || other) in nats, analytic."""
        ratio = (self.std / other.std) ** 2
        return 0.5 * (ratio + ((self.mean - other.mean) / other.std) ** 2 - 1 - torch.log(ratio))
