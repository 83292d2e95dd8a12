"""The training loss from a VAE's output: ELBO with beta, free bits and KL balancing.

Units: the loss and the per-dimension terms are nats per image dimension (pixel x channel),
averaged over the batch; ``bits_per_dim`` is the negative true ELBO (beta = 1, no free bits)
in bits per dimension, comparable across likelihoods because all are discrete over the same
integer levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..model import LN2, VAEOutput
from .config import ObjectiveConfig
from .kl_schedules import in_warmup, kl_weight

__all__ = ["LossTerms", "compute_loss"]


@dataclass
class LossTerms:
    """Every term of one step, for the optimiser and the logs.

    Attributes:
        loss: scalar to minimise (nats/dim): -(recon - beta_t * penalised KL).
        recon: E_q[log p(x|z)] (nats/dim, batch mean).
        kl: total analytic KL (nats/dim, batch mean), before free bits and weights.
        kl_per_level: (L,) nats per image, batch mean, top level first.
        kl_per_channel: per level, (C_l,) nats per image, batch mean.
        beta: beta_t used.
        elbo: true ELBO (nats/dim, batch mean); bits_per_dim: -elbo / ln 2.
    """

    loss: Tensor
    recon: Tensor
    kl: Tensor
    kl_per_level: Tensor
    kl_per_channel: list[Tensor]
    beta: float
    elbo: Tensor
    bits_per_dim: Tensor

    def as_dict(self) -> dict[str, float]:
        """Scalars for a logger: loss, recon, kl, beta, elbo, bits_per_dim, kl_level_i."""
        d = {
            k: float(getattr(self, k).detach())
            for k in ("loss", "recon", "kl", "elbo", "bits_per_dim")
        }
        d["beta"] = self.beta
        d.update({f"kl_level_{i}": float(v) for i, v in enumerate(self.kl_per_level)})
        return d


def _penalised_kl(out: VAEOutput, config: ObjectiveConfig, balance: bool) -> Tensor:
    """Per image (B,): the KL after free bits and balancing, in nats."""
    lam = config.free_bits
    per_level = []
    for kl in out.kl:
        # (B, channels, positions); a global latent vector has one position per channel
        per_channel = kl.reshape(kl.shape[0], kl.shape[1], -1)
        positions = per_channel.shape[2]
        total = per_channel.sum(dim=2)  # (B, C)
        if lam > 0 and config.free_bits_mode == "channel":
            # max(batch-mean KL, lambda) per channel: a constant (no gradient) below lambda
            active = (per_channel.mean(dim=(0, 2)) >= lam).to(kl.dtype)
            level = (total * active).sum(dim=1) + ((1 - active) * lam * positions).sum()
        elif lam > 0:
            floor = torch.full_like(total[:, 0], lam * per_channel[0].numel())
            level = torch.where(per_channel.mean() >= lam, total.sum(dim=1), floor)
        else:
            level = total.sum(dim=1)
        per_level.append(level)
    stacked = torch.stack(per_level, dim=1)  # (B, L)
    if balance and stacked.shape[1] > 1:
        sizes = torch.tensor(
            [k[0].numel() for k in out.kl], dtype=stacked.dtype, device=stacked.device
        )
        per_elem = (stacked.detach().abs().mean(dim=0) + 0.01) / (sizes / sizes.sum())
        stacked = stacked * (per_elem / per_elem.mean())
    return stacked.sum(dim=1)


def compute_loss(out: VAEOutput, config: ObjectiveConfig, step: int) -> LossTerms:
    """The loss and its terms for ``out`` at optimisation step ``step``."""
    beta = kl_weight(step, config)
    n = out.n_dims
    balance = config.kl_balancing and in_warmup(step, config)
    penalised = _penalised_kl(out, config, balance)
    recon = out.log_px.mean() / n
    loss = -(out.log_px - beta * penalised).mean() / n
    kl_levels = out.kl_per_level
    kl = kl_levels.sum(dim=1).mean() / n
    elbo = recon - kl
    return LossTerms(
        loss=loss,
        recon=recon.detach(),
        kl=kl.detach(),
        kl_per_level=kl_levels.mean(dim=0).detach(),
        kl_per_channel=[c.mean(dim=0).detach() for c in out.kl_per_channel],
        beta=beta,
        elbo=elbo.detach(),
        bits_per_dim=(-elbo / LN2).detach(),
    )
