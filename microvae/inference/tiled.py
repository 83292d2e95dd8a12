"""Running a VAE over a whole plane in batches of tiles, and stitching the results.

Reconstructions are blended in model units ([-1, 1]) and converted back to raw intensities by
the caller. Latents are stitched per level at that level's resolution with the same blending,
which is exact because tile corners sit on multiples of 2**levels.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from ..data.normalise import Normalisation
from ..model import VAE
from .grid import TileGrid, blend_profile, blend_window

__all__ = ["TileOptions", "iter_tiles"]


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


def _axis_weights(length: int, starts: list[int], w1d: np.ndarray) -> np.ndarray:
    weights = np.zeros(length, np.float32)
    for s in starts:
        weights[s : s + len(w1d)] += w1d
    return weights


@torch.no_grad()
def iter_tiles(
    vae: VAE,
    plane: np.ndarray,
    options: TileOptions,
    *,
    tile: int,
    overlap: int,
    normalisation: Normalisation | None = None,
    reconstruct: bool = True,
    latents: bool = False,
) -> Generator[tuple[int, int], None, dict]:
    """Reconstruct and/or encode one plane (H, W), step by step: yields (tiles done, tiles in
    all) after every batch, for progress bars and for stopping between batches (stop
    iterating), and returns a dict.

    ``plane`` is in model units, or raw and normalised by ``normalisation`` after padding
    (so that one float32 copy of the padded plane exists, not two). The dict holds
    ``reconstruction`` (H, W) in model units, and with ``latents`` a list, top level first, of
    stitched posterior-mean maps (C_l, H / 2**l, W / 2**l), or of the tiles' mean vectors
    (n_tiles, D) for a global latent.
    """
    multiple = 2**vae.levels
    grid = TileGrid.plan(plane.shape, tile=tile, overlap=overlap, multiple=multiple)
    padded = grid.pad_plane(plane)
    if normalisation is not None:
        padded = normalisation.to_model(padded)
    device = next(vae.parameters()).device
    window = blend_window(tile, overlap)
    out: dict = {}
    acc = np.zeros(padded.shape, np.float32) if reconstruct else None
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
                acc[y : y + tile, xx : xx + tile] += r * window
        if latents:
            zs = [z.float().cpu().numpy() for z in (zs if zs is not None else vae.encode(xb))]
            if zs[0].ndim == 2:  # a global latent vector per tile
                vectors.extend(zs[0])
            else:
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
        yield min(start + options.batch_size, len(grid.positions)), len(grid.positions)
    if reconstruct:
        # The grid is rows x columns of starts and the window an outer product, so the summed
        # weights are the outer product of two 1D sums: divided in place, band by band.
        w1d = blend_profile(tile, overlap)
        rows = _axis_weights(acc.shape[0], sorted({y for y, _ in grid.positions}), w1d)
        cols = _axis_weights(acc.shape[1], sorted({x for _, x in grid.positions}), w1d)
        for a in range(0, acc.shape[0], 256):
            acc[a : a + 256] /= rows[a : a + 256, None] * cols[None, :]
        out["reconstruction"] = grid.crop(acc)
    if latents:
        if vectors:
            out["latents"] = [np.stack(vectors)]
        else:
            out["latents"] = [
                grid.crop(a / w, scale=padded.shape[0] // a.shape[1])
                for a, w in zip(level_acc, level_w)
            ]
    return out
