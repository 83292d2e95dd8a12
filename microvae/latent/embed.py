"""Embeddings of tiles: posterior means of the latent levels, pooled or flat, and a PCA map.

An embedding is what the encoder says about a tile: the mean of q(z | x). ``pooled`` gives one
vector per tile, per latent level and channel the spatial mean and standard deviation
(:func:`~microvae.inference.embedding.pool_latents`, the definition ``microvae predict`` uses
per plane): comparable between tiles whatever their content's position. ``flat`` keeps the
whole top-level map (C * h * w values), which decodes back into an image: the density and the
holes are computed on it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..inference import TrainedModel
from ..inference.embedding import pool_latents
from .tiles import TileSet

__all__ = ["latent_maps", "embed", "pca"]


def _tiles(tiles: TileSet | np.ndarray) -> np.ndarray:
    return tiles.tiles if isinstance(tiles, TileSet) else np.asarray(tiles)


@torch.no_grad()
def latent_maps(
    model: TrainedModel, tiles: TileSet | np.ndarray, *, batch_size: int = 32
) -> list[np.ndarray]:
    """Posterior means of every level (top first) for tiles (N, T, T) in raw intensities:
    (N, C_l, h_l, w_l) float32 maps, or (N, D) for a global latent vector."""
    raw = _tiles(tiles)
    out: list[list[np.ndarray]] | None = None
    for a in range(0, len(raw), batch_size):
        z = model.vae.encode(model.to_tensor(raw[a : a + batch_size]))
        z = [level.float().cpu().numpy() for level in z]
        out = [[v] for v in z] if out is None else [o + [v] for o, v in zip(out, z)]
    if out is None:
        raise ValueError("no tiles to encode")
    return [np.concatenate(levels) for levels in out]


def embed(
    model: TrainedModel,
    tiles: TileSet | np.ndarray,
    *,
    how: Literal["pooled", "flat"] = "pooled",
    batch_size: int = 32,
) -> np.ndarray:
    """Embeddings of tiles (N, T, T): ``pooled`` (N, 2 * sum C_l) or ``flat`` (N, C*h*w of
    the top level), float32 (see the module docstring)."""
    maps = latent_maps(model, tiles, batch_size=batch_size)
    if how == "pooled":
        return pool_latents(maps, batched=True)
    if how == "flat":
        return maps[0].reshape(len(maps[0]), -1)
    raise ValueError(f"how must be 'pooled' or 'flat', got {how!r}")


def pca(
    x: np.ndarray, n_components: int = 2, *, standardise: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of rows ``x`` (N, D): coordinates (N, n_components) and the share
    of variance each explains (n_components,). ``standardise`` scales every column to unit
    variance first, so that a few high-variance channels (brightness) do not fill the map."""
    x = np.asarray(x, np.float64)
    centred = x - x.mean(axis=0)
    if standardise:
        sd = centred.std(axis=0)
        centred = centred / np.where(sd > 0, sd, 1.0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(n_components, vt.shape[0])
    coords = centred @ vt[:k].T
    var = s**2
    share = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    if k < n_components:  # fewer samples or dimensions than components asked for
        coords = np.pad(coords, ((0, 0), (0, n_components - k)))
        share = np.pad(share, (0, n_components - k))
    return coords, share
