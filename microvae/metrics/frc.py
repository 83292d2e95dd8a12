"""Fourier ring correlation (FRC) between two images, and the resolution where it falls to 1/7.

FRC(r) = Re sum_ring F1 conj(F2) / sqrt(sum_ring |F1|^2 sum_ring |F2|^2): 1 where the two images
agree ring by ring, 0 where they are unrelated. The resolution is 1 / (the first frequency
where the curve, averaged over 3 rings, falls below the threshold): in pixels, and in physical
units when the pixel size is known. A curve that never falls below it gives the Nyquist limit
(2 pixels) with ``crossed = False``.

Note: FRC measures correlation, so a linear blur alone does not lower it (each ring is only
scaled); it falls where the two images' content differs, e.g. where the reconstruction lost the
signal and kept or invented noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft

from .spectrum import _ring_sums, apodise, ring_index

__all__ = ["FRCResult", "frc", "frc_result", "correlation_curve", "FRC_THRESHOLD"]

FRC_THRESHOLD = 1 / 7


@dataclass
class FRCResult:
    """The FRC curve and the resolution where it crosses ``threshold``.

    Attributes:
        frequencies: ring centres in cycles/px, (n_rings,), from 0 to 0.5.
        curve: FRC per ring, (n_rings,) float64 in [-1, 1] (ring 0, the mean, is excluded: NaN).
        resolution_px: 1 / crossing frequency, in pixels (2.0 = Nyquist when not crossed).
        resolution: the same in ``unit`` (None when the pixel size is unknown).
    """

    frequencies: np.ndarray
    curve: np.ndarray
    threshold: float
    resolution_px: float
    crossed: bool
    pixel_size: float | None = None
    unit: str | None = None

    @property
    def resolution(self) -> float | None:
        return None if self.pixel_size is None else self.resolution_px * self.pixel_size


def frc(
    image1: np.ndarray,
    image2: np.ndarray,
    *,
    pixel_size: float | None = None,
    unit: str | None = "um",
    threshold: float = FRC_THRESHOLD,
    window: bool = True,
) -> FRCResult:
    """FRC of two 2D images of one shape (any dtype); see the module docstring.

    Example:
        >>> rng = np.random.default_rng(0); a = rng.normal(size=(64, 64))
        >>> frc(a, a).resolution_px  # identical images agree up to Nyquist
        2.0
    """
    if image1.shape != image2.shape or image1.ndim != 2:
        raise ValueError(
            f"FRC needs two 2D images of one shape, got {image1.shape}, {image2.shape}"
        )
    f1 = fft.fft2(apodise(image1, window), workers=-1)
    f2 = fft.fft2(apodise(image2, window), workers=-1)
    ring, freqs = ring_index(image1.shape)
    n = len(freqs)
    cross = _ring_sums((f1 * np.conj(f2)).real, ring, n)
    p1 = _ring_sums(f1.real**2 + f1.imag**2, ring, n)
    p2 = _ring_sums(f2.real**2 + f2.imag**2, ring, n)
    return frc_result(freqs, correlation_curve(cross, p1, p2), threshold, pixel_size, unit)


def correlation_curve(cross: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """Per frequency, the cross power over the root of the two powers (all summed over a
    ring, or a plane of frequencies); index 0, the mean, NaN."""
    denom = np.sqrt(p1 * p2)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.where(denom > 0, cross / denom, 0.0)
    # two flat images have no power anywhere: they agree, so the curve is 1
    curve[(p1 == 0) & (p2 == 0)] = 1.0
    curve[0] = np.nan
    return curve


def frc_result(
    freqs: np.ndarray,
    curve: np.ndarray,
    threshold: float = FRC_THRESHOLD,
    pixel_size: float | None = None,
    unit: str | None = "um",
) -> FRCResult:
    """The resolution of a correlation curve (``curve[0]``, the mean, ignored): where its
    3-ring running mean first falls below ``threshold``, interpolated."""
    smooth = curve.copy()
    smooth[1:] = np.convolve(np.pad(curve[1:], 1, mode="edge"), np.ones(3) / 3, mode="valid")
    below = np.nonzero(smooth[1:] < threshold)[0]
    if len(below) == 0:
        return FRCResult(freqs, curve, threshold, 2.0, False, pixel_size, unit)
    k = int(below[0]) + 1
    if k == 1:
        f_cross = float(freqs[1])
    else:  # linear interpolation between the last ring above and the first below
        a, b = smooth[k - 1], smooth[k]
        f_cross = float(freqs[k - 1] + (a - threshold) / (a - b) * (freqs[k] - freqs[k - 1]))
    return FRCResult(freqs, curve, threshold, 1.0 / f_cross, True, pixel_size, unit)
