"""Running a 3D VAE over a whole volume in overlapping 3D tiles, one slab of planes at a time.

A volume (Z planes of H x W) is covered by 3D tiles (D, T, T): in XY the plane grid of
:mod:`.grid`, in Z a grid of the same kind (reflection padding, starts on multiples of what
the levels halve Z by, a raised-cosine blend over the overlap). The tiles of one Z start form
a slab; slabs are run in Z order, and a plane is finished as soon as no later slab covers it:
it is divided by its summed weights and handed on, and its buffers are freed. Memory is
therefore a few slabs of planes, whatever the volume's depth: the planes a slab reads (a
cache of about one tile's depth), and the accumulators of the planes not yet finished. Latent
maps are stitched the same way at each level's resolution; a finished plane carries, per
level, the latent plane that covers it.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..data import Normalisation
from ..model import VAE
from .grid import TileGrid, blend_profile, blend_window, plan_axis
from .tiled import TileOptions, network_pass, split_stats

__all__ = ["FinishedPlane", "ZGrid", "iter_volume"]


@dataclass(frozen=True)
class ZGrid:
    """Where the tiles of a volume of ``n`` planes go along Z: reflection padding ``pad``
    (before, after) and the tiles' first (padded) planes ``starts``; ``depth`` planes a tile,
    overlapping by at least ``overlap``."""

    n: int
    depth: int
    overlap: int
    pad: tuple[int, int]
    starts: list[int]

    @classmethod
    def plan(cls, n: int, *, depth: int, overlap: int, multiple: int) -> ZGrid:
        """Grid for ``n`` planes; ``depth`` must be a multiple of ``multiple``."""
        if depth % multiple:
            raise ValueError(
                f"tile depth {depth} is not a multiple of {multiple} (the product of z_strides)"
            )
        if not 0 <= overlap < depth:
            raise ValueError(f"overlap in Z must be 0..{depth - 1} planes, got {overlap}")
        margin = math.ceil(overlap / 2 / multiple) * multiple
        stride = max(multiple, (depth - overlap) // multiple * multiple)
        padded = max(n + 2 * margin, depth)
        padded += -padded % multiple
        return cls(
            n, depth, overlap, (margin, padded - n - margin), plan_axis(padded, depth, stride)
        )

    @property
    def padded(self) -> int:
        return self.n + sum(self.pad)

    def source(self, pz: int) -> int:
        """The plane a padded index reads: reflected at both ends (repeatedly for a volume
        thinner than the padding), as numpy's ``reflect``."""
        z = pz - self.pad[0]
        if self.n == 1:
            return 0
        period = 2 * (self.n - 1)
        z = z % period
        return z if z < self.n else period - z

    def weights(self) -> np.ndarray:
        """(padded,) float32: the summed Z blend weights of every padded plane."""
        w = np.zeros(self.padded, np.float32)
        profile = blend_profile(self.depth, self.overlap)
        for s in self.starts:
            w[s : s + self.depth] += profile
        return w


@dataclass
class FinishedPlane:
    """A plane of the volume, done: its index ``k`` (0..n-1), the reconstruction (H, W) in
    model units or None, and per latent level (top first) the latent plane (C_l, H_l, W_l)
    that covers it, or None; when sampling, the draws' standard deviation and quantiles."""

    k: int
    reconstruction: np.ndarray | None
    latents: list[np.ndarray] | None
    std: np.ndarray | None = None  # when sampling (TileOptions.samples > 1), model units
    quantiles: np.ndarray | None = None  # (Q, H, W), when asked


class _Rolling:
    """Blended tiles of one resolution (``sz`` planes and ``sxy`` pixels per element), kept
    per padded plane until the plane is finished."""

    def __init__(self, sz: int, sxy: int, grid: TileGrid, zgrid: ZGrid):
        self.sz, self.sxy = sz, sxy
        hp, wp = grid.padded_shape
        self.shape = (hp // sxy, wp // sxy)
        t = grid.tile // sxy
        d = zgrid.depth // sz
        self.window = (
            blend_profile(d, zgrid.overlap // sz)[:, None, None]
            * blend_window(t, grid.overlap // sxy)[None]
        )
        self.acc: dict[int, np.ndarray] = {}
        self.wsum: dict[int, np.ndarray] = {}

    def add(self, z0: int, where, values: np.ndarray) -> None:
        """``values`` (B, C, d, t, t): the tiles whose first padded plane is ``z0`` and whose
        corners are ``where`` (full resolution)."""
        b, c, d, t, _ = values.shape
        lz0 = z0 // self.sz
        for i in range(d):
            lz = lz0 + i
            if lz not in self.acc:
                self.acc[lz] = np.zeros((c, *self.shape), np.float32)
                self.wsum[lz] = np.zeros(self.shape, np.float32)
            acc, wsum, win = self.acc[lz], self.wsum[lz], self.window[i]
            for (y, x), v in zip(where, values[:, :, i]):
                y, x = y // self.sxy, x // self.sxy
                acc[:, y : y + t, x : x + t] += v * win
                wsum[y : y + t, x : x + t] += win

    def pop(self, lz: int) -> np.ndarray:
        """The finished plane ``lz`` (C, h, w) at this resolution, divided by its weights."""
        return self.acc.pop(lz) / self.wsum.pop(lz)


def iter_volume(
    vae: VAE,
    planes: Iterator[np.ndarray],
    n: int,
    plane_shape: tuple[int, int],
    options: TileOptions,
    *,
    tile: int,
    overlap: int,
    depth: int,
    overlap_z: int,
    normalisation: Normalisation | None = None,
    reconstruct: bool = True,
    latents: bool = False,
    wanted: set[int] | None = None,
) -> Generator[tuple[int, int, list[FinishedPlane]], None, None]:
    """Reconstruct and/or encode a volume of ``n`` planes of ``plane_shape``, slab by slab:
    yields (tiles done, tiles in all, planes finished since the last yield) after every
    batch of tiles. ``planes`` gives the volume's planes in order (raw, or in model units
    without ``normalisation``); they are taken as the slabs need them, a few at a time.
    ``wanted``: the planes to finish (default all); slabs that cover none of them are not
    run (their planes are still read, in order)."""
    multiples = vae.config.multiples()
    grid = TileGrid.plan(plane_shape, tile=tile, overlap=overlap, multiple=multiples[1])
    zgrid = ZGrid.plan(n, depth=depth, overlap=overlap_z, multiple=multiples[0])
    wanted = set(range(n)) if wanted is None else set(wanted)
    slabs = [
        s for s in zgrid.starts if any(p - zgrid.pad[0] in wanted for p in range(s, s + depth))
    ]
    reader = _SlabReader(planes, grid, zgrid, normalisation)
    recon = _Rolling(1, 1, grid, zgrid) if reconstruct else None
    levels = _latent_scales(vae) if latents else []
    maps = [_Rolling(sz, sxy, grid, zgrid) for sz, sxy in levels]
    device = next(vae.parameters()).device
    gen = None if options.seed is None else torch.Generator(device).manual_seed(options.seed)
    per = options.tiles_per_batch()
    total, done = math.ceil(len(grid.positions) / per) * len(slabs), 0
    next_plane = 0  # padded index of the first plane not yet finished
    for s_i, z0 in enumerate(slabs):
        slab = reader.slab(z0)
        for start in range(0, len(grid.positions), per):
            where = grid.positions[start : start + per]
            batch = np.stack([slab[:, y : y + tile, x : x + tile] for y, x in where])[:, None]
            xb = torch.from_numpy(batch).to(device)
            rec, zs = network_pass(vae, xb, options, recon, maps or None, gen)
            if recon is not None:
                recon.add(z0, where, rec.float().cpu().numpy())
            for m, z in zip(maps, zs or []):
                m.add(z0, where, z.float().cpu().numpy())
            done += 1
            finished: list[FinishedPlane] = []
            if start + per >= len(grid.positions):
                # the slab is done: planes that no later slab covers are finished
                upto = slabs[s_i + 1] if s_i + 1 < len(slabs) else zgrid.padded
                finished = _finish(next_plane, upto, zgrid, grid, recon, maps, wanted, options)
                next_plane = upto
                reader.forget_below(upto)
            yield done, total, finished


def _finish(first, upto, zgrid, grid, recon, maps, wanted, options) -> list[FinishedPlane]:
    """The padded planes ``first`` .. ``upto - 1`` that are wanted planes of the volume,
    finished; the buffers of every plane below ``upto`` freed."""
    out = []
    for pz in range(first, upto):
        k = pz - zgrid.pad[0]
        keep = 0 <= k < zgrid.n and k in wanted
        r = recon.pop(pz) if recon is not None and pz in recon.acc else None
        if keep:
            lat = None
            if maps:
                lat = [grid.crop(m.acc[pz // m.sz] / m.wsum[pz // m.sz], scale=m.sxy) for m in maps]
            parts = {} if r is None else split_stats(grid.crop(r), options)
            out.append(
                FinishedPlane(
                    k,
                    parts.get("reconstruction"),
                    lat,
                    parts.get("std"),
                    parts.get("quantiles"),
                )
            )
    for m in maps:  # a latent plane goes with the last full-resolution plane it covers
        for lz in [lz for lz in m.acc if (lz + 1) * m.sz <= upto]:
            m.pop(lz)
    return out


def _latent_scales(vae: VAE) -> list[tuple[int, int]]:
    """Per latent level, top first: (planes, pixels) of the full-resolution volume per latent
    element."""
    cfg = vae.config
    out = []
    for lv in range(vae.n_latent_levels):
        level = cfg.levels - lv  # the ladder's levels, top first; its full-resolution level: 0
        strides = cfg.strides()[: max(level, 0)]
        out.append((math.prod(s[0] for s in strides), 2 ** max(level, 0)))
    return out


class _SlabReader:
    """The padded, normalised planes a slab needs, taken from ``planes`` in order as far as
    needed, and kept until no later slab needs them."""

    def __init__(self, planes, grid: TileGrid, zgrid: ZGrid, normalisation: Normalisation | None):
        self.planes, self.grid, self.zgrid, self.norm = iter(planes), grid, zgrid, normalisation
        self.cache: dict[int, np.ndarray] = {}
        self.taken = 0  # planes taken from the iterator so far

    def _plane(self, k: int, needed: set[int]) -> np.ndarray:
        while k not in self.cache:
            if self.taken > k:
                raise RuntimeError(f"plane {k} was needed again after it was freed")
            plane = next(self.planes)
            if self.taken in needed:  # planes before a later slab (wanted planes) pass by
                padded = self.grid.pad_plane(np.asarray(plane))
                if self.norm is not None:
                    padded = self.norm.to_model(padded)
                self.cache[self.taken] = padded
            self.taken += 1
        return self.cache[k]

    def slab(self, z0: int) -> np.ndarray:
        """(depth, Hp, Wp) float32: the padded planes z0 .. z0 + depth - 1. Planes read on
        the way that no slab from ``z0`` on reads are dropped at once."""
        needed = {self.zgrid.source(p) for p in range(z0, self.zgrid.padded)}
        return np.stack(
            [self._plane(self.zgrid.source(p), needed) for p in range(z0, z0 + self.zgrid.depth)]
        )

    def forget_below(self, pz: int) -> None:
        """Free the planes that no padded plane from ``pz`` on reads."""
        needed = {self.zgrid.source(p) for p in range(pz, self.zgrid.padded)}
        for k in [k for k in self.cache if k not in needed]:
            del self.cache[k]
