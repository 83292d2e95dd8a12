"""Sharpness and resolution along Z: the high-frequency power ratio and the Fourier
correlation of volumes (Z, Y, X) along their Z axis.

A volume's columns (one per Y, X position) are mean-subtracted and apodised along Z with the
Tukey window of :mod:`.spectrum`, then Fourier transformed along Z; power and correlation are
summed over all columns at each Z frequency (cycles per plane, 0 to 0.5; divide by the Z step
for cycles per micrometre). A reconstruction that blurs planes together loses power at high Z
frequencies (ratio below 1), one that invents structure between planes decorrelates there.
The signal band, and with it the default band of the ratio, follows the in-plane rule
(:func:`.spectrum.signal_band`): short stacks give few frequencies (a stack of N planes has
N // 2 + 1), so the band is coarse there.
"""

from __future__ import annotations

import numpy as np
from scipy import fft
from scipy.signal.windows import tukey

from .frc import FRC_THRESHOLD, FRCResult, correlation_curve, frc_result
from .spectrum import TUKEY_ALPHA, HFRatio, choose_band

__all__ = ["axial_power_spectrum", "axial_hf_ratio", "axial_frc"]

MIN_PLANES = 8  # below this, a Z spectrum has too few frequencies to mean anything


def _z_spectrum(volume: np.ndarray, what: str) -> np.ndarray:
    """rfft along Z of the apodised columns, (N // 2 + 1, Y, X) complex128."""
    v = np.asarray(volume)
    if v.ndim != 3 or v.shape[0] < MIN_PLANES:
        raise ValueError(
            f"{what}: expected a volume (Z, Y, X) of at least {MIN_PLANES} planes, got shape "
            f"{v.shape}"
        )
    x = v.astype(np.float64)
    x -= x.mean(axis=0, keepdims=True)
    x *= tukey(len(x), TUKEY_ALPHA)[:, None, None]
    return fft.rfft(x, axis=0, workers=-1)


def axial_power_spectrum(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in cycles/plane, (N // 2 + 1,); mean power per frequency over the
    columns, in intensity units squared), the Z spectrum of a volume (Z, Y, X)."""
    spec = _z_spectrum(volume, "axial_power_spectrum")
    power = (spec.real**2 + spec.imag**2).mean(axis=(1, 2)) / len(volume)
    return np.fft.rfftfreq(len(volume)), power


def axial_hf_ratio(
    reference: np.ndarray,
    test: np.ndarray,
    *,
    band: tuple[float, float] | None = None,
    snr_factor: float = 10.0,
) -> HFRatio:
    """The test volume's power along Z in ``band`` (cycles/plane) over the reference's: 1 is
    as sharp along Z as the reference, far below 1 blurs planes together. ``band`` defaults
    to the upper half of the reference's Z signal band; NaN when it has none."""
    if reference.shape != test.shape:
        raise ValueError(f"reference and test differ in shape: {reference.shape}, {test.shape}")
    freqs, ref_power = axial_power_spectrum(reference)
    auto = band is None
    band = choose_band(band, lambda: (freqs, ref_power), snr_factor, "cycles/plane")
    if band is None:
        return HFRatio(float("nan"), (float("nan"), float("nan")), True)
    lo, hi = band
    inside = (freqs >= lo) & (freqs <= hi)
    ref = float(ref_power[inside].sum())
    _, test_power = axial_power_spectrum(test)
    ratio = float(test_power[inside].sum()) / ref if ref > 0 else float("nan")
    return HFRatio(ratio, (float(lo), float(hi)), auto)


def axial_frc(
    volume1: np.ndarray,
    volume2: np.ndarray,
    *,
    z_step: float | None = None,
    unit: str | None = "um",
    threshold: float = FRC_THRESHOLD,
) -> FRCResult:
    """Fourier correlation of two volumes (Z, Y, X) of one shape along Z, per Z frequency
    over all columns, and the Z resolution where it falls below ``threshold`` (in planes, and
    in ``unit`` when ``z_step`` is given); see :mod:`.frc` for the curve and the crossing."""
    if volume1.shape != volume2.shape:
        raise ValueError(f"axial_frc: volumes differ in shape: {volume1.shape}, {volume2.shape}")
    f1, f2 = _z_spectrum(volume1, "axial_frc"), _z_spectrum(volume2, "axial_frc")
    sums = [(a * np.conj(b)).real.sum(axis=(1, 2)) for a, b in ((f1, f2), (f1, f1), (f2, f2))]
    curve = correlation_curve(*sums)
    return frc_result(np.fft.rfftfreq(len(volume1)), curve, threshold, z_step, unit)
