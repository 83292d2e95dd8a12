"""The model layer: building blocks, distributions, likelihoods and the VAE variants."""

from __future__ import annotations

from .base import VAE, LevelLatents, VAEOutput
from .collapse import collapse_report, z_weight_norms
from .config import LikelihoodConfig, ModelConfig, z_kernels_for, z_strides_for
from .discretize import LN2
from .distributions import DiagonalGaussian
from .ladder import LadderVAE
from .likelihoods import LIKELIHOODS, Likelihood, make_likelihood
from .plain import PlainVAE
from .top_prior import MAX_TOP_PRIOR_DIM, TopPrior, fit_top_prior
from .unet import DeterministicUNetVAE

__all__ = [
    "z_kernels_for",
    "z_strides_for",
    "build_vae",
    "collapse_report",
    "DeterministicUNetVAE",
    "DiagonalGaussian",
    "fit_top_prior",
    "LadderVAE",
    "LevelLatents",
    "Likelihood",
    "LikelihoodConfig",
    "LIKELIHOODS",
    "LN2",
    "make_likelihood",
    "MAX_TOP_PRIOR_DIM",
    "ModelConfig",
    "PlainVAE",
    "TopPrior",
    "VAE",
    "VAEOutput",
    "z_weight_norms",
]

_VARIANTS = {"ladder": LadderVAE, "deterministic": DeterministicUNetVAE, "none": PlainVAE}


def build_vae(
    model: ModelConfig | None = None,
    likelihood: LikelihoodConfig | None = None,
    *,
    bit_depth: int | None,
) -> VAE:
    """The VAE that ``model`` and ``likelihood`` describe, for data of ``bit_depth`` (None:
    continuous data).

    Example:
        >>> vae = build_vae(ModelConfig(levels=2), LikelihoodConfig(name="laplace"), bit_depth=12)
        >>> vae.skip_mode
        'ladder'
    """
    model = model or ModelConfig()
    likelihood = likelihood or LikelihoodConfig()
    lik = make_likelihood(
        likelihood.name,
        channels=model.in_channels,
        bit_depth=bit_depth,
        components=likelihood.components,
        scale=likelihood.scale,
        min_scale=likelihood.min_scale,
    )
    return _VARIANTS[model.skip_mode](model, lik)
