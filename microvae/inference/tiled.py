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

from ..data import Normalisation
from ..model import VAE
from .grid import TileGrid, blend_profile, blend_window
from .sampling import posterior_stats

__all__ = ["TileOptions", "iter_tiles", "split_stats"]


@dataclass(frozen=True)
class TileOptions:
    """How to run a plane: tile side and overlap (None: the model's defaults), tiles per batch,
    ``output`` mean (deterministic) or sample, coarse-to-fine ``posterior_levels``, and a seed
    for sampling; for a 3D model also the tile's depth and its overlap in Z, in planes.

    ``samples`` > 1: the reconstruction is the mean of that many posterior draws (every latent
    level sampled from q(z|x); each draw the likelihood's mean, or a likelihood sample with
    ``output="sample"``), with their per-pixel standard deviation and the ``quantiles`` asked
    (:mod:`.sampling`); ``batch_size`` then counts network inputs, the copies of a tile for
    its draws included. ``calibrated``: the spread (and the quantiles' distances from the
    mean) widened by the scale ``microvae calibrate`` stored in the model file, if any; False
    gives the model's own spread (what calibrate itself measures)."""

    tile_size: int | None = None
    overlap: int | None = None
    tile_depth: int | None = None
    overlap_z: int | None = None
    batch_size: int = 8
    output: str = "mean"
    posterior_levels: int | None = None
    sample_latents: bool = False
    seed: int | None = None
    samples: int = 1
    quantiles: tuple[float, ...] = ()
    calibrated: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.samples, int) or self.samples < 1:
            raise ValueError(f"samples must be a whole number >= 1, got {self.samples!r}")
        if self.quantiles and self.samples < 2:
            raise ValueError("quantiles need samples >= 2 (the quantiles of the draws)")
        if any(not 0.0 < q < 1.0 for q in self.quantiles):
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {self.quantiles}")
        object.__setattr__(self, "quantiles", tuple(float(q) for q in self.quantiles))

    @property
    def sampled(self) -> bool:
        """Whether the posterior is summarised over several draws."""
        return self.samples > 1

    def tiles_per_batch(self) -> int:
        """Tiles per network pass: ``batch_size``, shared among a tile's draws when sampling."""
        return max(1, self.batch_size // self.samples) if self.sampled else self.batch_size


def split_stats(stacked: np.ndarray, options: TileOptions) -> dict[str, np.ndarray]:
    """The blended channels (C, ...) of a plane or volume, by name: ``reconstruction``; and
    when sampling ``std`` (the square root of the blended variance) and ``quantiles``
    (Q, ...), all in model units."""
    out = {"reconstruction": stacked[0]}
    if options.sampled:
        out["std"] = np.sqrt(np.maximum(stacked[1], 0))
        if options.quantiles:
            out["quantiles"] = stacked[2:]
    return out


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
    grid = TileGrid.plan(plane.shape, tile=tile, overlap=overlap, multiple=2**vae.levels)
    padded = grid.pad_plane(plane)
    if normalisation is not None:
        padded = normalisation.to_model(padded)
    device = next(vae.parameters()).device
    blend = _Blend(padded.shape, tile, overlap) if reconstruct else None
    maps = _LatentMaps(padded.shape, tile, overlap) if latents else None
    gen = None
    if options.seed is not None:
        gen = torch.Generator(device=device).manual_seed(options.seed)
    n, per = len(grid.positions), options.tiles_per_batch()
    for start in range(0, n, per):
        where = grid.positions[start : start + per]
        batch = np.stack([padded[y : y + tile, xx : xx + tile] for y, xx in where])[:, None]
        rec, zs = network_pass(vae, torch.from_numpy(batch).to(device), options, blend, maps, gen)
        if blend is not None:
            blend.add(where, rec.float().cpu().numpy())
        if maps is not None:
            maps.add(where, [z.float().cpu().numpy() for z in zs])
        yield min(start + per, n), n
    out: dict = {}
    if blend is not None:
        out.update(split_stats(grid.crop(blend.result(grid)), options))
    if maps is not None:
        out["latents"] = maps.result(grid)
    return out


def network_pass(vae: VAE, xb: torch.Tensor, options: TileOptions, blend, maps, gen):
    """The reconstruction (with ``blend``) and the posterior means (with ``maps``) of a batch
    of tiles; both from one pass through the network where the options allow."""
    if blend is None:
        return None, vae.encode(xb)
    if options.sampled:
        stats = posterior_stats(
            vae,
            xb,
            samples=options.samples,
            batch_size=options.batch_size,
            output=options.output,
            quantiles=options.quantiles,
            generator=gen,
        )
        return stats, (vae.encode(xb) if maps is not None else None)
    one_pass = maps is not None and options.posterior_levels is None and not options.sample_latents
    if one_pass:
        return vae.reconstruct_and_encode(xb, output=options.output, generator=gen)
    rec = vae.reconstruct(
        xb,
        posterior_levels=options.posterior_levels,
        sample_latents=options.sample_latents,
        output=options.output,
        generator=gen,
    )
    return rec, (vae.encode(xb) if maps is not None else None)


class _Blend:
    """The blended reconstruction of a padded plane (and, when sampling, its other channels:
    variance, quantiles), tile by tile: (C, Hp, Wp)."""

    def __init__(self, shape: tuple[int, int], tile: int, overlap: int):
        self.shape, self.acc = shape, None
        self.tile, self.overlap = tile, overlap
        self.window = blend_window(tile, overlap)

    def add(self, where, tiles: np.ndarray) -> None:
        """``tiles`` (B, C, t, t)."""
        if self.acc is None:
            self.acc = np.zeros((tiles.shape[1], *self.shape), np.float32)
        t = self.tile
        for (y, x), r in zip(where, tiles):
            self.acc[:, y : y + t, x : x + t] += r * self.window

    def result(self, grid: TileGrid) -> np.ndarray:
        """The padded plane's channels (C, Hp, Wp), divided by the summed weights."""
        # The grid is rows x columns of starts and the window an outer product, so the summed
        # weights are the outer product of two 1D sums: divided in place, band by band.
        acc = self.acc
        w1d = blend_profile(self.tile, self.overlap)
        rows = _axis_weights(acc.shape[1], sorted({y for y, _ in grid.positions}), w1d)
        cols = _axis_weights(acc.shape[2], sorted({x for _, x in grid.positions}), w1d)
        for a in range(0, acc.shape[1], 256):
            acc[:, a : a + 256] /= rows[None, a : a + 256, None] * cols[None, None, :]
        return acc


class _LatentMaps:
    """The posterior means of a padded plane: per level, stitched at that level's resolution
    with the same blending; or, for a global latent, one vector per tile."""

    def __init__(self, shape: tuple[int, int], tile: int, overlap: int):
        self.shape, self.tile, self.overlap = shape, tile, overlap
        self.acc: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        self.vectors: list[np.ndarray] = []

    def add(self, where, zs: list[np.ndarray]) -> None:
        if zs[0].ndim == 2:  # a global latent vector per tile
            self.vectors.extend(zs[0])
            return
        if not self.acc:
            for z in zs:
                s = self.tile // z.shape[-1]
                h, w = self.shape[0] // s, self.shape[1] // s
                self.acc.append(np.zeros((z.shape[1], h, w), np.float32))
                self.weights.append(np.zeros((h, w), np.float32))
        for lv, z in enumerate(zs):
            s = self.tile // z.shape[-1]
            win = blend_window(self.tile // s, max(self.overlap // s, 0))
            for (y, x), zt in zip(where, z):
                _stitch(self.acc[lv], self.weights[lv], zt, y // s, x // s, win)

    def result(self, grid: TileGrid) -> list[np.ndarray]:
        """Top level first: (C_l, H / 2**l, W / 2**l) maps, or [(n_tiles, D)] vectors."""
        if self.vectors:
            return [np.stack(self.vectors)]
        return [
            grid.crop(a / w, scale=self.shape[0] // a.shape[1])
            for a, w in zip(self.acc, self.weights)
        ]
