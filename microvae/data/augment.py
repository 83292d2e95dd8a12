"""Augmentation: the eight flips and rotations (albumentations D4), and optional intensity gain.

The dihedral group never changes values, so it is always safe. The intensity gain multiplies
raw intensities above the offset and rounds back to integer levels; it is allowed only for
likelihoods whose noise model it does not break (RunConfig refuses it with dmol).
"""

from __future__ import annotations

import albumentations as A
import numpy as np

__all__ = ["Augmenter"]


class Augmenter:
    """Applies D4 (and the gain, when ``gain`` is given) to raw tiles, seeded per call: 2D
    tiles (Y, X), or volumes (Z, Y, X), whose planes all take the same dihedral transform in
    XY and whose Z is flipped half the time (Z, usually coarser, is never rotated into XY)."""

    def __init__(
        self,
        *,
        gain: tuple[float, float] | None = None,
        offset: float = 0.0,
        max_value: float | None = None,
    ):
        self.d4 = A.Compose([A.D4(p=1.0)])
        self.gain, self.offset, self.max_value = gain, offset, max_value

    def __call__(self, tile: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        self.d4.set_random_seed(int(rng.integers(2**31)))
        if tile.ndim == 3:  # the planes as channels: one transform for all of them
            out = np.moveaxis(self.d4(image=np.moveaxis(tile, 0, -1))["image"], -1, 0)
            if rng.random() < 0.5:
                out = out[::-1]
        else:
            out = self.d4(image=tile)["image"]
        if self.gain is not None:
            g = rng.uniform(*self.gain)
            out = self.offset + (out.astype(np.float64) - self.offset) * g
            if tile.dtype.kind in "ui":
                info = np.iinfo(tile.dtype)
                top = info.max if self.max_value is None else min(self.max_value, info.max)
                out = np.clip(np.rint(out), max(info.min, 0), top)
            elif self.max_value is not None:
                out = np.clip(out, 0, self.max_value)
            out = out.astype(tile.dtype)
        return np.ascontiguousarray(out)
