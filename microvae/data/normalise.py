"""Normalisation: raw intensities <-> model values, fitted on training data, stored with the model.

Discrete data (a bit depth b) are modelled as their integer levels: ``x = 2 k / (2**b - 1) - 1``
is the likelihood's target, and the inverse is exact, so reconstructions come back in the
input's dtype and intensity range. The encoder sees the same x stretched by an affine map that
sends the training data's low and high percentiles to -1 and 1 (12-bit data that use levels
100-2000 would otherwise fill a small part of [-1, 1]). Continuous data (no bit depth) are
mapped by the percentiles directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Normalisation"]


@dataclass(frozen=True)
class Normalisation:
    """bit_depth (None: continuous), the raw values at the low/high percentiles, the dtype."""

    bit_depth: int | None
    low: float
    high: float
    dtype: str

    @classmethod
    def fit(
        cls,
        planes: list[np.ndarray],
        *,
        bit_depth: int | None,
        percentiles: tuple[float, float],
        max_samples: int = 1_000_000,
        seed: int = 0,
    ) -> Normalisation:
        """Fit on training planes (2D arrays of one dtype) with the given bit depth."""
        rng = np.random.default_rng(seed)
        total = sum(p.size for p in planes)
        share = min(1.0, max_samples / max(total, 1))
        sample = np.concatenate(
            [p.ravel()[rng.random(p.size) < share] if share < 1 else p.ravel() for p in planes]
        ).astype(np.float64)
        low, high = np.percentile(sample, percentiles)
        if high <= low:  # nearly constant data: widen to something finite
            high = low + 1.0
        return cls(bit_depth, float(low), float(high), planes[0].dtype.name)

    @property
    def levels(self) -> int | None:
        return 2**self.bit_depth if self.bit_depth is not None else None

    def to_model(self, raw: np.ndarray) -> np.ndarray:
        """Raw intensities -> likelihood targets x in [-1, 1] (float32)."""
        if self.bit_depth is None:
            x = (raw.astype(np.float32) - self.low) / (self.high - self.low) * 2 - 1
            return x.astype(np.float32)
        # float32 holds integers below 2**24 exactly: no float64 copy of a whole plane
        k = raw.astype(np.float32)
        if raw.dtype.kind == "f":
            np.rint(k, out=k)
        np.clip(k, 0, self.levels - 1, out=k)
        k *= np.float32(2.0 / (self.levels - 1))
        k -= np.float32(1.0)
        return k

    def from_model(self, x: np.ndarray) -> np.ndarray:
        """Model values -> raw intensities in the training dtype (rounded for integer data)."""
        if self.bit_depth is None:
            raw = (x.astype(np.float64) + 1) / 2 * (self.high - self.low) + self.low
        else:  # float32 is exact here (levels < 2**24); rounding lands on the right level
            raw = np.clip(x, -1, 1).astype(np.float32)
            raw += np.float32(1.0)
            raw *= np.float32((self.levels - 1) / 2)
            np.rint(raw, out=raw)
        dtype = np.dtype(self.dtype)
        if dtype.kind in "ui":
            info = np.iinfo(dtype)
            raw = np.clip(np.rint(raw), info.min, info.max)
        return raw.astype(dtype)

    def from_model_float(self, x: np.ndarray) -> np.ndarray:
        """Model values -> raw intensities as float32, neither rounded nor clipped to the
        training dtype (for quantiles and other summaries between intensity levels)."""
        x = np.asarray(x, np.float32)
        if self.bit_depth is None:
            return ((x + 1) / 2 * (self.high - self.low) + self.low).astype(np.float32)
        return ((x + 1) * np.float32((self.levels - 1) / 2)).astype(np.float32)

    def raw_per_model_unit(self) -> float:
        """Raw intensity per model unit (the slope of :meth:`from_model`, before rounding):
        what converts a spread (a standard deviation) from model units to raw ones."""
        if self.bit_depth is None:
            return (self.high - self.low) / 2
        return (self.levels - 1) / 2

    def encoder_affine(self) -> tuple[float, float]:
        """(scale, shift) with x_in = x * scale + shift mapping the percentiles to -1 and 1."""
        lo, hi = self.to_model(np.array([self.low, self.high]))
        if hi <= lo:
            return 1.0, 0.0
        scale = 2.0 / float(hi - lo)
        return scale, float(-1.0 - lo * scale)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Normalisation:
        return cls(
            bit_depth=None if d["bit_depth"] is None else int(d["bit_depth"]),
            low=float(d["low"]),
            high=float(d["high"]),
            dtype=str(d["dtype"]),
        )
