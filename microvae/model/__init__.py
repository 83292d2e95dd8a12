"""The model layer: building blocks, distributions, likelihoods and the VAE variants."""

from __future__ import annotations

from .base import VAE, LevelLatents, VAEOutput
from .config import LikelihoodConfig, ModelConfig
from .distributions import DiagonalGaussian
from .ladder import LadderVAE
from .likelihoods import LIKELIHOODS, Likelihood, make_likelihood
from .plain import PlainVAE
from .top_prior import TopPrior, fit_top_prior
from .unet import DeterministicUNetVAE

__all__ = [
    "LIKELIHOODS",
    "DeterministicUNetVAE",
    "DiagonalGaussian",
    "LadderVAE",
    "LevelLatents",
    "Likelihood",
    "LikelihoodConfig",
    "ModelConfig",
    "PlainVAE",
    "TopPrior",
    "VAE",
    "VAEOutput",
    "build_vae",
    "fit_top_prior",
    "make_likelihood",
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
