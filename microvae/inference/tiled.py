"""Running a VAE over a whole plane in batches of tiles, and stitching the results.

Reconstructions are blended in model units ([-1, 1]) and converted back to raw intensities by
the caller. Latents are stitched per level at that level's resolution with the same blending,
which is exact because tile corners sit on multiples of 2**levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model import VAE
from .tiling import TileGrid, blend_window

__all__ = ["TileOptions", "run_tiles"]


@dataclass(frozen=True)
class TileOptions:
    """How to run a plane: tile side and overlap (None: the model's defaults), tiles per batch,
    ``output`` mean (deterministic) or sample, coarse-to-fine ``posterior_levels``, and a seed
    for sampling."""

    tile_size: int | None = None
    overlap: int | None = None
    batch_size: int = 8
    output: str = "mean"
    posterior_levels: int | None = None
    sample_latents: bool = False
    seed: int | None = None


def _stitch(
    acc: np.ndarray, wsum: np.ndarray, values: np.ndarray, y: int, x: int, window: np.ndarray
) -> None:
    t = window.shape[0]
    acc[..., y : y + t, x : x + t] += values * window
    wsum[y : y + t, x : x + t] += window


@torch.no_grad()
def run_tiles(
    vae: VAE,
    x: np.ndarray,
    options: TileOptions,
    *,
    tile: int,
    overlap: int,
    reconstruct: bool = True,
    latents: bool = False,
) -> dict:
    """Reconstruct and/or encode one plane ``x`` (H, W) float32 in model units.

    Returns a dict with ``reconstruction`` (H, W) in model units, and with ``latents`` a list,
    top level first, of stitched posterior-mean maps (C_l, H / 2**l, W / 2**l), or of the
    tiles' mean vectors (n_tiles, D) for a global latent.
    """
    multiple = 2**vae.levels
    grid = TileGrid.plan(x.shape, tile=tile, overlap=overlap, multiple=multiple)
    padded = grid.pad_plane(x)
    device = next(vae.parameters()).device
    window = blend_window(tile, overlap)
    out: dict = {}
    acc = np.zeros(padded.shape, np.float32) if reconstruct else None
    wsum = np.zeros(padded.shape, np.float32)
    level_acc: list[np.ndarray] | None = None
    level_w: list[np.ndarray] = []
    vectors: list[np.ndarray] = []
    gen = None
    if options.seed is not None:
        gen = torch.Generator(device=device).manual_seed(options.seed)
    for start in range(0, len(grid.positions), options.batch_size):
        where = grid.positions[start : start + options.batch_size]
        batch = np.stack([padded[y : y + tile, xx : xx + tile] for y, xx in where])[:, None]
        xb = torch.from_numpy(batch).to(device)
        zs = None
        if (
            reconstruct
            and latents
            and options.posterior_levels is None
            and not options.sample_latents
        ):  # both from one pass through the network
            rec, zs = vae.reconstruct_and_encode(xb, output=options.output, generator=gen)
        elif reconstruct:
            rec = vae.reconstruct(
                xb,
                posterior_levels=options.posterior_levels,
                sample_latents=options.sample_latents,
                output=options.output,
                generator=gen,
            )
        if reconstruct:
            rec = rec[:, 0].float().cpu().numpy()
            for (y, xx), r in zip(where, rec):
                _stitch(acc, wsum, r, y, xx, window)
        if latents:
            zs = [z.float().cpu().numpy() for z in (zs if zs is not None else vae.encode(xb))]
            if zs[0].ndim == 2:  # a global latent vector per tile
                vectors.extend(zs[0])
                continue
            if level_acc is None:
                level_acc, level_w = [], []
                for z in zs:
                    s = tile // z.shape[-1]
                    h, w = padded.shape[0] // s, padded.shape[1] // s
                    level_acc.append(np.zeros((z.shape[1], h, w), np.float32))
                    level_w.append(np.zeros((h, w), np.float32))
            for lv, z in enumerate(zs):
                s = tile // z.shape[-1]
                win = blend_window(tile // s, max(overlap // s, 0))
                for (y, xx), zt in zip(where, z):
                    _stitch(level_acc[lv], level_w[lv], zt, y // s, xx // s, win)
    if reconstruct:
        out["reconstruction"] = grid.crop(acc / wsum)
    if latents:
        if vectors:
            out["latents"] = [np.stack(vectors)]
        else:
            out["latents"] = [
                grid.crop(a / w, scale=padded.shape[0] // a.shape[1])
                for a, w in zip(level_acc, level_w)
            ]
    return out
