"""Sharpness and resolution along Z, checked against independent computations: the power a
Gaussian blur along Z leaves (its transfer function squared), and correlations of volumes that
agree, or share nothing, by construction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from microvae.metrics import axial_frc, axial_hf_ratio, axial_power_spectrum, hf_power_ratio


def _white(shape=(32, 48, 48), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100.0, 10.0, shape)


def test_white_noise_has_a_flat_z_spectrum_of_its_variance():
    freqs, power = axial_power_spectrum(_white())
    assert freqs[0] == 0 and freqs[-1] == 0.5 and len(freqs) == 17
    # Parseval with the Tukey window: mean(w**2) of the variance, at every frequency
    from scipy.signal.windows import tukey

    expected = 100.0 * np.mean(tukey(32, 0.25) ** 2)
    np.testing.assert_allclose(power[1:], expected, rtol=0.15)


def test_a_blur_along_z_keeps_its_transfer_function_squared():
    """Gaussian blur of sigma s planes along Z passes exp(-(2 pi f s)**2) of the power at f:
    the ratio in a fixed band matches that mean, and an in-plane blur does not move it."""
    v = _white(seed=1)
    s = 1.0
    band = (0.15, 0.25)
    blurred = ndi.gaussian_filter(v, (s, 0, 0), mode="wrap")
    freqs = np.fft.rfftfreq(32)
    inside = (freqs >= band[0]) & (freqs <= band[1])
    expected = np.mean(np.exp(-((2 * np.pi * freqs[inside] * s) ** 2)))
    got = axial_hf_ratio(v, blurred, band=band).ratio
    assert got == pytest.approx(expected, rel=0.15)
    assert axial_hf_ratio(v, v, band=band).ratio == pytest.approx(1.0)
    in_plane = ndi.gaussian_filter(v, (0, 2.0, 2.0))
    # an XY blur lowers every column's power alike (less noise variance), by the same factor
    # at every Z frequency: the in-plane HF ratio sees it, the axial one only as that factor
    whole = np.var(in_plane) / np.var(v)
    assert axial_hf_ratio(v, in_plane, band=band).ratio == pytest.approx(whole, rel=0.15)
    assert hf_power_ratio(v[16], in_plane[16], band=(0.25, 0.5)).ratio < 0.2


def test_axial_frc_of_agreeing_and_unrelated_volumes():
    v = _white(seed=2)
    same = axial_frc(v, v, z_step=0.2)
    assert not same.crossed and same.resolution_px == 2.0 and same.resolution == pytest.approx(0.4)
    other = axial_frc(v, _white(seed=3))
    assert other.crossed and other.resolution_px > 5  # falls at the first frequencies
    assert np.nanmax(np.abs(other.curve)) < 0.1


def test_axial_metrics_explain_bad_input():
    with pytest.raises(ValueError, match=r"at least 8 planes, got shape \(4, 16, 16\)"):
        axial_power_spectrum(np.zeros((4, 16, 16)))
    with pytest.raises(ValueError, match="differ in shape"):
        axial_frc(np.zeros((8, 16, 16)), np.zeros((8, 16, 8)))
    with pytest.raises(ValueError, match="cycles/plane"):
        axial_hf_ratio(_white(), _white(), band=(0.3, 0.7))
