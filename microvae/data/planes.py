"""Loading the planes (2D models) or volumes (3D models) of training files into memory, and
splitting them train/validation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ChannelError
from ..io import open_image
from .sources import DataError

__all__ = ["Plane", "load_planes", "split_planes"]


@dataclass
class Plane:
    """One 2D plane (Y, X), or for a 3D model one volume (Z, Y, X), in memory, with where it
    came from, its file's bit depth and, for volumes, the voxel's depth over its width when
    the file says (None otherwise)."""

    data: np.ndarray
    source: str
    bit_depth: int | None
    z_over_xy: float | None = None


def load_planes(
    paths: list[Path], *, channel: int | None, axes: str | None, max_gb: float, dims: int = 2
) -> dict[Path, list[Plane]]:
    """Every plane of every file (a 2D model's view), or with ``dims`` 3 every volume (per
    time point, a 3D model's view); refusing sets larger than ``max_gb``."""
    records, total = [], 0
    try:
        for path in paths:
            rec = open_image(path, channel=channel, axes=axes)
            try:
                rec.require_single_channel()
            except ChannelError as exc:
                rec.close()
                raise ChannelError(f"{exc} (config: data.channel)") from None
            records.append(rec)
            total += math.prod(rec.shape) * rec.dtype.itemsize
        if total > max_gb * 1e9:
            raise DataError(
                f"the training files hold {total / 1e9:.1f} GB of pixels, more than "
                f"data.max_memory_gb = {max_gb}; raise it if the machine has the memory, or "
                "train on a subset"
            )
        planes: dict[Path, list[Plane]] = {}
        for rec in records:
            depth = rec.bit_depth
            if dims == 3:
                ratio = _z_over_xy(rec)
                planes[rec.path] = [
                    Plane(
                        np.ascontiguousarray(v),
                        _label(rec.name, rec.volume_axes, idx),
                        depth,
                        ratio,
                    )
                    for idx, v in rec.iter_volumes()
                ]
            else:
                planes[rec.path] = [
                    Plane(np.ascontiguousarray(p), _label(rec.name, rec.plane_axes, idx), depth)
                    for idx, p in rec.iter_planes()
                ]
        return planes
    finally:
        for rec in records:
            rec.close()


def _z_over_xy(rec) -> float | None:
    """The voxel's depth over its width, where the file gives both sizes."""
    z, x = rec.pixel_size.get("Z"), rec.pixel_size.get("X")
    return float(z) / float(x) if z and x else None


def _label(name: str, axes: str, index: tuple[int, ...]) -> str:
    if not axes:
        return name
    return f"{name}[{','.join(f'{a}={i}' for a, i in zip(axes, index))}]"


# Splitting by file holds out whole files, the honest test of generalisation, but with fewer
# files it leaves too few for training (two files: one trains, one validates, and the model is
# judged on a file whose offset and content it never saw); below this many, every file is split.
MIN_FILES_BY_FILE = 5


def split_planes(
    planes: dict[Path, list[Plane]],
    *,
    val_fraction: float,
    tile_size: int,
    seed: int,
    mode: str = "auto",
    tile_depth: int = 1,
) -> tuple[list[Plane], list[Plane], str]:
    """(training planes, validation planes, how they were split).

    ``mode``: ``file`` holds out whole files (at least one, at least one left to train);
    ``within`` splits every file on its own: a stack by planes spread evenly over it (every
    1/val_fraction-th), a single 2D image by a band of rows at its bottom; ``auto`` is
    ``file`` from ``MIN_FILES_BY_FILE`` files on and ``within`` below. Never by overlapping
    tiles. Volumes (3D models) split the same way: by file, or within a file by time points
    spread over it, or one volume by a central block of planes (``tile_depth`` deep at least).
    """
    files = list(planes)
    if mode not in ("auto", "file", "within"):
        raise ValueError(f"split mode must be auto, file or within, got {mode!r}")
    by_file = mode == "file" or (mode == "auto" and len(files) >= MIN_FILES_BY_FILE)
    if by_file:
        if len(files) < 2:
            raise DataError(
                f"data.split = file needs at least 2 files, got {len(files)}; use "
                "data.split = within (or auto) to split the planes of one file"
            )
        n_val = min(max(1, round(val_fraction * len(files))), len(files) - 1)
        order = np.random.default_rng(seed).permutation(len(files))
        val_files = {files[i] for i in order[:n_val]}
        train = [p for f in files if f not in val_files for p in planes[f]]
        val = [p for f in files if f in val_files for p in planes[f]]
        return train, val, f"by file: {len(files) - n_val} for training, {n_val} for validation"
    train, val, parts = [], [], []
    for f in files:
        t, v, how = _split_one(
            planes[f],
            f.name,
            val_fraction=val_fraction,
            tile_size=tile_size,
            tile_depth=tile_depth,
        )
        train += t
        val += v
        parts.append(how)
    if len(files) == 1:
        return train, val, parts[0]
    return train, val, f"within each of {len(files)} files: " + "; ".join(parts)


def _split_one(
    only: list[Plane], name: str, *, val_fraction: float, tile_size: int, tile_depth: int = 1
) -> tuple[list[Plane], list[Plane], str]:
    """One file's planes: planes spread evenly over a stack, or rows of one image; volumes
    spread over the time points, or one volume's central block of planes."""
    if len(only) == 1 and only[0].data.ndim == 3:
        return _split_volume(
            only[0], name, val_fraction=val_fraction, tile_size=tile_size, tile_depth=tile_depth
        )
    if len(only) >= 2:
        n = len(only)
        n_val = min(max(1, round(val_fraction * n)), n - 1)
        # spread over the stack, not a block at one end: the ends of a Z-stack are often out of
        # focus (MitoGraphTest001.tif's last 8 planes hold a sixth of its in-focus contrast),
        # and a model judged on them is judged on noise. Neighbouring planes share structure
        # (the axial PSF spans a few), not noise, so validation still measures the noise model.
        picks = sorted({min(n - 1, int((k + 0.5) * n / n_val)) for k in range(n_val)})
        held = set(picks)
        train = [q for i, q in enumerate(only) if i not in held]
        val = [only[i] for i in picks]
        how = (
            f"by plane of {name}: {n - len(picks)} for training, {len(picks)} spread over the "
            f"stack for validation (planes {', '.join(map(str, picks))})"
        )
        return train, val, how
    plane = only[0]
    h = plane.data.shape[0]
    n_val = max(tile_size, round(val_fraction * h))
    if h - n_val < tile_size:
        raise DataError(
            f"{name}: one {plane.data.shape[0]}x{plane.data.shape[1]} image cannot be split "
            f"into training and validation rows of at least data.tile_size = {tile_size}; "
            "add images, or lower data.tile_size"
        )
    train = Plane(
        plane.data[: h - n_val], f"{plane.source}[rows 0-{h - n_val - 1}]", plane.bit_depth
    )
    val = Plane(
        plane.data[h - n_val :], f"{plane.source}[rows {h - n_val}-{h - 1}]", plane.bit_depth
    )
    return (
        [train],
        [val],
        f"by rows of {name}: top {h - n_val} for training, bottom {n_val} for validation",
    )


def _split_volume(
    volume: Plane, name: str, *, val_fraction: float, tile_size: int, tile_depth: int
) -> tuple[list[Plane], list[Plane], str]:
    """One volume: a central block of planes (at least a tile deep) for validation, the planes
    above and below it for training, each a volume of its own (a tile never spans the gap);
    central, because the ends of a Z-stack are often out of focus. Where neither side would
    hold a tile, a band at the end of the longer of Y and X validates instead, every plane
    kept."""
    n = volume.data.shape[0]
    n_val = max(tile_depth, round(val_fraction * n))
    lo = (n - n_val) // 2
    hi = lo + n_val
    sides = [(a, b) for a, b in ((0, lo), (hi, n)) if b - a >= tile_depth]

    def part(where: tuple, label: str) -> Plane:
        return Plane(
            volume.data[where], f"{volume.source}[{label}]", volume.bit_depth, volume.z_over_xy
        )

    if sides:
        train = [part((slice(a, b),), f"planes {a}-{b - 1}") for a, b in sides]
        how = (
            f"by planes of {name}: planes {lo}-{hi - 1} for validation, "
            + " and ".join(f"{a}-{b - 1}" for a, b in sides)
            + " for training"
        )
        return train, [part((slice(lo, hi),), f"planes {lo}-{hi - 1}")], how
    axis = 1 if volume.data.shape[1] >= volume.data.shape[2] else 2
    size, word = volume.data.shape[axis], ("rows", "columns")[axis - 1]
    n_val = max(tile_size, round(val_fraction * size))
    if size - n_val < tile_size:
        raise DataError(
            f"{name}: a volume of {'x'.join(map(str, volume.data.shape))} cannot be split into "
            f"training and validation parts that each hold a {tile_depth}x{tile_size}x"
            f"{tile_size} tile (data.tile_depth x data.tile_size); lower them, add files "
            "(data.split file), or train a 2D model"
        )
    cut = size - n_val
    head = [slice(None)] * axis
    train = part((*head, slice(0, cut)), f"{word} 0-{cut - 1}")
    val = part((*head, slice(cut, size)), f"{word} {cut}-{size - 1}")
    how = (
        f"by {word} of {name} (its {n} planes are too few for a block of them): {word} "
        f"{cut}-{size - 1} for validation, the others for training"
    )
    return [train], [val], how
