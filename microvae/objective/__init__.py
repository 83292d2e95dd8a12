"""The objective: ELBO with beta, warm-up, free bits, KL balancing; IWAE; stability checks."""

from .config import ObjectiveConfig
from .elbo import LossTerms, compute_loss
from .iwae import iwae_bound, log_importance_weights
from .kl_schedules import in_warmup, kl_weight
from .stability import NonFiniteGuard, check_finite, nonfinite_gradients

__all__ = [
    "check_finite",
    "compute_loss",
    "in_warmup",
    "iwae_bound",
    "kl_weight",
    "log_importance_weights",
    "LossTerms",
    "nonfinite_gradients",
    "NonFiniteGuard",
    "ObjectiveConfig",
]
