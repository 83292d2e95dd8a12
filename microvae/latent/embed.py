"""Embeddings of tiles: posterior means of the latent levels, pooled or flat (maps: .projection).

An embedding is what the encoder says about a tile: the mean of q(z | x). ``pooled`` gives one
vector per tile, per latent level and channel the spatial mean and standard deviation
(:func:`~microvae.inference.pooling.pool_latents`, the definition ``microvae predict`` uses
per plane): comparable between tiles whatever their content's position. ``flat`` keeps the
whole top-level map (C * h * w values), which decodes back into an image: the density and the
holes are computed on it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..inference import TrainedModel, pool_latents
from .tiles import TileSet

__all__ = ["latent_maps", "embed"]


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
