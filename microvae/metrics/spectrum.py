"""Radially averaged power spectra and the high-frequency power ratio.

Frequencies are in cycles per pixel (0 to 0.5, the Nyquist frequency); divide by the pixel
size for cycles per micrometre. Images are mean-subtracted and apodised with a separable Tukey
window (a quarter of each side tapered) before the FFT, so that the jump between opposite
edges of a non-periodic image does not spread power over all frequencies.

The *signal band* of an image: the frequencies, from the lowest up, whose power stands
``snr_factor`` times (10 dB by default) above the noise floor, the median power of the rings
above 0.4 cycles/px. On oversampled microscopy data those top rings hold only noise (the
optics pass nothing there), so a reconstruction that reproduces the noise is not rewarded by a
band chosen inside the signal band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft
from scipy.ndimage import median_filter
from scipy.signal.windows import tukey

__all__ = [
    "NOISE_FLOOR_FROM",
    "HFRatio",
    "apodise",
    "radial_frequency",
    "ring_index",
    "radial_power_spectrum",
    "signal_band",
    "band_of",
    "choose_band",
    "hf_power_ratio",
]

NOISE_FLOOR_FROM = 0.4  # cycles/px: rings above this measure the noise floor
TUKEY_ALPHA = 0.25


def apodise(image: np.ndarray, window: bool = True) -> np.ndarray:
    """float64 copy of a 2D image, mean subtracted, times a separable Tukey window."""
    if image.ndim != 2:
        raise ValueError(f"expected a 2D image, got shape {image.shape}")
    x = image.astype(np.float64)
    x -= x.mean()
    if window:
        h, w = x.shape
        x *= tukey(h, TUKEY_ALPHA)[:, None]
        x *= tukey(w, TUKEY_ALPHA)[None, :]
    return x


def radial_frequency(shape: tuple[int, int]) -> np.ndarray:
    """|f| in cycles/px of every coefficient of a 2D FFT (numpy's layout), float64 (H, W)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    return np.sqrt(fy * fy + fx * fx)


def ring_index(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Ring of every FFT coefficient (rings 1/min(H, W) cycles/px wide; -1 beyond Nyquist) and
    the ring centres in cycles/px."""
    step = 1.0 / min(shape)
    f = radial_frequency(shape)
    ring = np.floor(f / step + 0.5).astype(np.int64)
    n_rings = int(np.floor(0.5 / step + 0.5)) + 1
    ring[ring >= n_rings] = -1
    return ring, np.arange(n_rings) * step


def _ring_sums(values: np.ndarray, ring: np.ndarray, n: int) -> np.ndarray:
    keep = ring >= 0
    return np.bincount(ring[keep], weights=values[keep], minlength=n)[:n]


def radial_power_spectrum(
    image: np.ndarray, *, window: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in cycles/px, mean power per ring), both (n_rings,), ring 0 = DC.

    Power is |FFT|**2 / number of pixels, in intensity units squared (Parseval: a white noise
    of variance v has a flat spectrum of height v, less the window's loss)."""
    spec = fft.fft2(apodise(image, window), workers=-1)
    power = (spec.real**2 + spec.imag**2) / image.size
    ring, freqs = ring_index(image.shape)
    counts = _ring_sums(np.ones_like(power), ring, len(freqs))
    return freqs, _ring_sums(power, ring, len(freqs)) / np.maximum(counts, 1)


def signal_band(
    image: np.ndarray, *, snr_factor: float = 10.0, window: bool = True
) -> tuple[float, float] | None:
    """(lowest, highest) frequency of the image's signal band in cycles/px (see the module
    docstring), or None when no frequency stands above the noise floor."""
    freqs, power = radial_power_spectrum(image, window=window)
    return band_of(freqs, power, snr_factor)


def band_of(
    freqs: np.ndarray, power: np.ndarray, snr_factor: float = 10.0
) -> tuple[float, float] | None:
    """The signal band of a spectrum (``freqs`` in cycles/px from 0, ``power`` per
    frequency), by :func:`signal_band`'s rule."""
    floor = float(np.median(power[freqs >= NOISE_FLOOR_FROM]))
    # a running median over 5 rings: one noisy ring neither ends the band nor extends it
    smooth = median_filter(power, size=5, mode="nearest")
    above = smooth[1:] > snr_factor * max(floor, np.finfo(float).tiny)
    if not above[0]:
        return None
    end = int(np.argmin(above)) if not above.all() else len(above)
    return float(freqs[1]), float(freqs[end])  # freqs[end]: the first ring below, as an edge


@dataclass
class HFRatio:
    """Power of the test image over the reference's in ``band`` (cycles/px), and whether the
    band came from the reference's signal band (``auto``) or was given."""

    ratio: float
    band: tuple[float, float]
    auto: bool


def choose_band(
    band: tuple[float, float] | None,
    spectrum,
    snr_factor: float = 10.0,
    unit: str = "cycles/px",
) -> tuple[float, float] | None:
    """``band`` checked, or where None the upper half of the signal band of ``spectrum()``
    ((frequencies, power), computed only then); None where there is no signal band."""
    if band is None:
        found = band_of(*spectrum(), snr_factor)
        if found is None:
            return None
        band = (found[1] / 2, found[1])
    lo, hi = band
    if not 0 <= lo < hi <= 0.5 + 1e-9:
        raise ValueError(f"band must be 0 <= low < high <= 0.5 {unit}, got {band}")
    return band


def hf_power_ratio(
    reference: np.ndarray,
    test: np.ndarray,
    *,
    band: tuple[float, float] | None = None,
    snr_factor: float = 10.0,
) -> HFRatio:
    """High-frequency power ratio: the test image's spectral power in ``band`` over the
    reference's. 1 is as sharp as the reference; a blurry reconstruction is far below 1.

    ``band`` defaults to the upper half of the reference's signal band (see
    :func:`signal_band`); pass (low, high) in cycles/px for a fixed band. When the reference
    has no signal band the ratio is NaN.
    """
    if reference.shape != test.shape or reference.ndim != 2:
        raise ValueError(
            f"reference and test must be 2D of one shape, got {reference.shape}, {test.shape}"
        )
    auto = band is None
    band = choose_band(band, lambda: radial_power_spectrum(reference), snr_factor)
    if band is None:
        return HFRatio(float("nan"), (float("nan"), float("nan")), True)
    lo, hi = band
    f = radial_frequency(reference.shape)
    inside = (f >= lo) & (f <= hi)

    def band_power(img: np.ndarray) -> float:
        spec = fft.fft2(apodise(img), workers=-1)
        return float(np.sum(np.abs(spec[inside]) ** 2))

    ref_power = band_power(reference)
    ratio = band_power(test) / ref_power if ref_power > 0 else float("nan")
    return HFRatio(ratio, (float(lo), float(hi)), auto)
