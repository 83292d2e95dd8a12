"""At the end of training: fit the top latent level's aggregate posterior
(:func:`microvae.model.fit_top_prior`) on tiles drawn as training draws them, for sampling."""

from __future__ import annotations

import copy
import logging

import torch

from ..data import RandomTiles
from ..model import MAX_TOP_PRIOR_DIM, VAE, TopPrior, fit_top_prior

__all__ = ["aggregate_top_prior", "TOP_PRIOR_TILES"]

_log = logging.getLogger(__name__)

TOP_PRIOR_TILES = 2048  # tiles encoded for the fit: a few seconds on a CPU
# tile indices far past any training run's, so that the fit's tiles are fresh draws
_FRESH = 2**40


@torch.no_grad()
def aggregate_top_prior(
    vae: VAE,
    state_dict: dict[str, torch.Tensor],
    train: RandomTiles,
    *,
    n_tiles: int = TOP_PRIOR_TILES,
    batch_size: int = 64,
) -> TopPrior | None:
    """The top level's aggregate posterior under the weights ``state_dict`` (loaded into a
    copy of ``vae``), fitted on ``n_tiles`` posterior samples of tiles drawn like ``train``'s
    (same planes, sampler, normalisation and augmentation); None for a model that does not
    generate, or a top level too large to fit (said in the log)."""
    if not vae.can_generate:
        return None
    model = copy.deepcopy(vae).eval()
    model.load_state_dict(state_dict)
    device = next(model.parameters()).device
    tiles = RandomTiles(
        train.planes,
        train.sampler,
        train.norm,
        train.augment,
        length=n_tiles,
        seed=train.seed,
        start=_FRESH,
    )
    gen = torch.Generator(device=device).manual_seed(train.seed)
    z = []
    for a in range(0, n_tiles, batch_size):
        x = torch.stack([tiles[i] for i in range(a, min(a + batch_size, n_tiles))]).to(device)
        z.append(model.encode_top(x, sample=True, generator=gen).float().cpu())
    z = torch.cat(z)
    dim = z[0].numel()
    if dim > MAX_TOP_PRIOR_DIM:
        _log.info(
            "top level of %d dimensions: no aggregate prior fitted (over %d); samples use the "
            "learned prior",
            dim,
            MAX_TOP_PRIOR_DIM,
        )
        return None
    prior = fit_top_prior(z)
    _log.info(
        "aggregate posterior of the top level fitted on %d tiles (%d dimensions, shrinkage "
        "%.2f): samples draw their top level from it",
        n_tiles,
        dim,
        prior.shrinkage,
    )
    return prior
