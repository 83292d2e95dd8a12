"""Side-by-side PNGs: original | reconstruction | absolute difference, for eyes, not numbers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import atomic_path

__all__ = ["side_by_side", "save_png"]


def _to_uint8(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (np.clip((a.astype(np.float64) - lo) / max(hi - lo, 1e-12), 0, 1) * 255).astype(np.uint8)


def side_by_side(
    original: np.ndarray, reconstruction: np.ndarray, *, gap: int = 4, zoom: int = 1
) -> np.ndarray:
    """One uint8 image: original and reconstruction on the same contrast (the original's 0.5
    and 99.8 percentiles), then |difference| scaled to its own 99.8 percentile."""
    lo, hi = np.percentile(original, (0.5, 99.8))
    diff = np.abs(original.astype(np.float64) - reconstruction.astype(np.float64))
    panels = [
        _to_uint8(original, lo, hi),
        _to_uint8(reconstruction, lo, hi),
        _to_uint8(diff, 0, np.percentile(diff, 99.8)),
    ]
    if zoom > 1:
        panels = [np.kron(p, np.ones((zoom, zoom), np.uint8)) for p in panels]
    h = panels[0].shape[0]
    spacer = np.full((h, gap), 255, np.uint8)
    return np.concatenate([panels[0], spacer, panels[1], spacer, panels[2]], axis=1)


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a uint8 image as PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return path
