"""A Gaussian fitted to the top latent level's aggregate posterior, for sampling.

A VAE's learned prior p(z_top) and the distribution its encoder actually produces for the
data, the aggregate posterior q(z_top) = E_x q(z_top | x), need not agree: the learned prior
is a diagonal Gaussian per position, so it draws the top level's latents independently, while
those of real microscopy tiles are correlated across positions and channels (with about the
prior's spread per latent: benchmarks/real_data.py records both), and independent draws
decode to images sparser than the data. Fitting a density to the aggregate posterior after
training and drawing the top level from it ("ex-post density estimation", Ghosh et al. 2020,
*From variational to deterministic autoencoders*) gives samples with the data's layout; the
levels below are still drawn from the model's own conditional priors.

The fit is one full-covariance Gaussian over the flattened top level, its covariance shrunk
towards its diagonal with the Schäfer-Strimmer (2005) intensity, so that it stays positive
definite and well conditioned with fewer tiles than dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["TopPrior", "fit_top_prior", "MAX_TOP_PRIOR_DIM"]

# beyond this many top-level dimensions the covariance (D x D) is not fitted (memory, and
# too few tiles to estimate it)
MAX_TOP_PRIOR_DIM = 4096


@dataclass
class TopPrior:
    """N(mean, L L^T) over the flattened top level. ``mean`` (D,), ``scale_tril`` (D, D)
    lower triangular, ``shape`` the top level's shape per image ((C, h, w) or (D,)),
    ``tiles`` how many tiles it was fitted on, ``shrinkage`` the covariance's shrinkage
    intensity towards its diagonal, in [0, 1]."""

    mean: Tensor
    scale_tril: Tensor
    shape: tuple[int, ...]
    tiles: int
    shrinkage: float

    def sample(
        self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n`` top-level latents (n, *shape), float32, on the prior's device; the spread
        around the mean scaled by ``temperature``."""
        eps = torch.randn(
            n, len(self.mean), generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        z = self.mean + temperature * eps @ self.scale_tril.T
        return z.reshape(n, *self.shape)

    def to(self, device: torch.device | str) -> TopPrior:
        return TopPrior(
            self.mean.to(device), self.scale_tril.to(device), self.shape, self.tiles, self.shrinkage
        )

    def to_dict(self) -> dict:
        """Tensors and plain values, as a weights-only model file stores them."""
        return {
            "mean": self.mean.detach().cpu(),
            "scale_tril": self.scale_tril.detach().cpu(),
            "shape": [int(s) for s in self.shape],
            "tiles": int(self.tiles),
            "shrinkage": float(self.shrinkage),
        }

    @classmethod
    def from_dict(cls, d: dict) -> TopPrior:
        mean, tril = d["mean"].float(), d["scale_tril"].float()
        shape = tuple(int(s) for s in d["shape"])
        dim = 1
        for s in shape:
            dim *= s
        if mean.shape != (dim,) or tril.shape != (dim, dim):
            raise ValueError(
                f"top prior of shape {shape} needs mean ({dim},) and scale_tril ({dim}, {dim}), "
                f"got {tuple(mean.shape)} and {tuple(tril.shape)}"
            )
        return cls(mean, tril, shape, int(d["tiles"]), float(d["shrinkage"]))


def fit_top_prior(z: Tensor) -> TopPrior:
    """Fit :class:`TopPrior` to top-level latents ``z`` (N, *shape), N >= 2, drawn from the
    posterior of N data tiles. The covariance is S* = (1 - a) S + a diag(S), with S the
    sample covariance and a = sum_{i != j} Var(s_ij) / sum_{i != j} s_ij^2 clipped to
    [0, 1] (Schäfer & Strimmer 2005, target "diagonal, unequal variance")."""
    if z.ndim < 2 or len(z) < 2:
        raise ValueError(f"need latents (N, ...) of N >= 2 tiles, got shape {tuple(z.shape)}")
    shape = tuple(z.shape[1:])
    x = z.reshape(len(z), -1).double()
    n, d = x.shape
    if d > MAX_TOP_PRIOR_DIM:
        raise ValueError(f"top level of {d} dimensions: more than {MAX_TOP_PRIOR_DIM} to fit")
    mean = x.mean(0)
    xc = x - mean
    w_mean = xc.T @ xc / n  # mean of w_kij = xc_ki xc_kj
    s = w_mean * (n / (n - 1))  # unbiased sample covariance
    # sum_k (w_kij - w_mean_ij)^2 = sum_k xc_ki^2 xc_kj^2 - n w_mean_ij^2
    sq = xc * xc
    var_s = (sq.T @ sq - n * w_mean * w_mean) * (n / (n - 1) ** 3)
    off = ~torch.eye(d, dtype=torch.bool, device=x.device)
    denom = float((s[off] ** 2).sum())
    a = 1.0 if denom == 0 else min(1.0, max(0.0, float(var_s[off].sum()) / denom))
    cov = (1 - a) * s + a * torch.diag(torch.diagonal(s))
    # a floor on the variances keeps the Cholesky factor finite for constant dimensions
    floor = 1e-6 * max(float(torch.diagonal(cov).mean()), 1e-12)
    cov = cov + floor * torch.eye(d, dtype=cov.dtype, device=cov.device)
    tril = torch.linalg.cholesky(cov)
    return TopPrior(mean.float(), tril.float(), shape, n, a)
