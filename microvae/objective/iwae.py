"""The importance-weighted bound (IWAE, Burda et al. 2016) for evaluation.

log p(x) >= IWAE_K = E[log (1/K) sum_k p(x, z_k) / q(z_k | x)] >= ELBO, and IWAE_K grows with K
towards log p(x). For skip_mode 'deterministic' the number is computed the same way but is no
bound (the skips carry x past the latents); ``VAE.elbo_is_bound`` says which.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..model import VAE

__all__ = ["log_importance_weights", "iwae_bound"]


@torch.no_grad()
def log_importance_weights(model: VAE, x: Tensor, k: int, *, chunk: int = 8) -> Tensor:
    """log p(x|z_k) + log p(z_k) - log q(z_k|x) for k posterior samples: (B, k), nats."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out = []
    done = 0
    while done < k:
        n = min(chunk, k - done)
        xs = x.repeat_interleave(n, dim=0)  # image i's samples are rows i*n .. i*n + n - 1
        o = model(xs)
        out.append((o.log_px + o.log_pz - o.log_qz).view(x.shape[0], n))
        done += n
    return torch.cat(out, dim=1)


@torch.no_grad()
def iwae_bound(model: VAE, x: Tensor, k: int, *, chunk: int = 8) -> Tensor:
    """IWAE_K per image (B,), nats (divide by x[0].numel() * ln 2 for bits/dim)."""
    log_w = log_importance_weights(model, x, k, chunk=chunk)
    return torch.logsumexp(log_w, dim=1) - math.log(k)
