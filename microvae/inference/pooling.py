"""One definition of an embedding: pooled statistics of the posterior-mean latent maps.

For every latent level (top first) and channel: the spatial mean and the spatial standard
deviation of the posterior mean, concatenated: 2 * sum(C_l) values. The mean says what a region
holds on average, the standard deviation how much it varies (texture: tubules vs puncta),
and neither depends on where in the tile or plane the structure lies. A global latent vector
(skip_mode none) counts as a 1 x 1 map per tile; over a plane its tiles are the positions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pool_latents"]


def pool_latents(levels: list[np.ndarray], *, batched: bool) -> np.ndarray:
    """Embeddings from latent maps per level (top first).

    Args:
        levels: with ``batched``, (N, C_l, h_l, w_l) maps or (N, D) vectors per tile; without,
            one plane's stitched maps (C_l, H_l, W_l) or its tiles' vectors (n_tiles, D).

    Returns:
        float32 (N, 2 * sum C_l) with ``batched``, else (2 * sum C_l,).
    """
    parts = []
    for z in levels:
        z = np.asarray(z, np.float32)
        if batched:
            if z.ndim == 2:  # a vector per tile: a 1 x 1 map
                z = z[:, :, None, None]
            axes = (2, 3)
        else:
            if z.ndim == 2:  # the vectors of a plane's tiles: tiles are the positions
                z = z.T[:, :, None]
            axes = (1, 2)
        parts += [z.mean(axis=axes), z.std(axis=axes)]
    return np.concatenate(parts, axis=-1).astype(np.float32)
