"""Calibration of a predicted spread, with ground truth and without (noise split), checked on
images whose errors and spreads are known by construction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from microvae.metrics import (
    calibration_curve,
    extrapolate_slope,
    fit_spread,
    split_calibration,
    split_errors,
)


def _scene(seed: int = 0):
    """Photon counts of a known smooth signal, and a stand-in posterior whose errors have a
    known standard deviation: 2 on the left half, 6 on the right (photons)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:384, :384]
    signal = 20 + 15 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    sigma = np.where(xx < 192, 2.0, 6.0)
    image = rng.poisson(signal).astype(np.uint16)
    return signal, sigma, image, rng


def test_binning_against_a_direct_computation():
    pv = np.array([4.0, 1.0, 3.0, 2.0, 6.0, 5.0])
    se = np.array([8.0, 2.0, 6.0, 4.0, 12.0, 10.0])  # twice the prediction everywhere
    c = calibration_curve(pv, se, bins=3)
    np.testing.assert_allclose(c.predicted, [1.5, 3.5, 5.5])
    np.testing.assert_allclose(c.observed, [3.0, 7.0, 11.0])
    assert list(c.pixels) == [2, 2, 2] and c.slope == pytest.approx(2.0)
    with pytest.raises(ValueError, match="cannot fill"):
        calibration_curve(pv, se, bins=10)


@pytest.mark.parametrize("scale,slope", [(1.0, 1.0), (0.5, 4.0)])
def test_the_split_finds_what_the_ground_truth_finds(scale, slope):
    """A spread that is right (scale 1) gives slope 1; one half as wide (overconfident) gives
    4; with the ground truth and, within 10%, without it."""
    signal, sigma, image, rng = _scene()

    def posterior(x):  # a reconstruction of the signal, wrong by N(0, sigma), independent of B
        return signal + rng.normal(0, sigma), scale * sigma

    recon, std = posterior(image)
    truth = calibration_curve(std**2, (recon - signal) ** 2)
    split = split_calibration(image, posterior, seed=1)
    assert truth.slope == pytest.approx(slope, rel=0.05)
    assert split.slope == pytest.approx(truth.slope, rel=0.10)
    # bin by bin as well, within 4 standard errors of each bin's mean of the split's noisy
    # per-pixel estimates (the bins hold 14,745 pixels each)
    predicted, errors = split_errors(image, posterior, seed=1)
    groups = np.array_split(np.argsort(predicted.ravel(), kind="stable"), 10)
    se = np.array([errors.ravel()[g].std() / np.sqrt(g.size) for g in groups])
    assert np.all(np.abs(split.observed - truth.observed) < 4 * se)
    assert np.all(se < 0.2 * truth.observed)  # and the bins are informative


def test_an_image_without_measurable_noise_is_refused():
    flat = np.full((64, 64), 100, np.uint16)
    with pytest.raises(ValueError):
        split_calibration(flat, lambda x: (x, np.ones(x.shape)))


def test_extrapolation_is_exact_on_a_line_in_inverse_dose():
    fractions = (0.25, 0.35, 0.5)
    slopes = tuple(0.9 + 0.8 / f for f in fractions)
    assert extrapolate_slope(fractions, slopes)[0] == pytest.approx(1.7)
    slope, se = extrapolate_slope(fractions, slopes, (0.1, 0.2, 0.3))
    assert slope == pytest.approx(1.7)
    # the standard error of a weighted line's value at 1/fraction = 1, computed directly
    x, w = 1 / np.array(fractions), 1 / np.array([0.1, 0.2, 0.3]) ** 2
    xm = np.sum(w * x) / w.sum()
    assert se == pytest.approx(np.sqrt(1 / w.sum() + (1 - xm) ** 2 / np.sum(w * (x - xm) ** 2)))
    with pytest.raises(ValueError, match="two or more"):
        extrapolate_slope((0.5,), (2.0,))


def test_fit_spread_finds_the_full_dose_truth_of_a_denoiser():
    """A linear denoiser (a blur) whose error grows as the dose falls, with a predicted
    spread that does not change with the dose (as a model's hardly does): the split at 1/4,
    1/2 and 3/4 of the dose, extrapolated, gives the slope that the ground truth gives at
    the full dose, which none of the splits alone gives."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:384, :384]
    signal = 30 + 25 * np.sin(xx / 9.0) * np.cos(yy / 13.0) ** 2
    image = rng.poisson(signal).astype(np.uint16)
    std = np.sqrt(0.5 + 0.02 * signal)  # any fixed map: the slope sums up how far it is off

    def posterior(x):
        return gaussian_filter(x.astype(np.float64), 1.0), std

    truth = calibration_curve(std**2, (posterior(image)[0] - signal) ** 2).slope
    fit = fit_spread([image], posterior, seed=3)
    # within twice its own standard error, and that error is informative (under 15%)
    assert abs(fit.slope - truth) < 2 * fit.slope_stderr < 0.3 * truth
    assert fit.scale == pytest.approx(np.sqrt(fit.slope))
    # at part of the dose the error is larger: no single split would have found it
    assert all(c.slope > 1.3 * truth for c in fit.curves)
    with pytest.raises(ValueError, match="cannot|constant|no shot noise"):
        fit_spread([np.full((64, 64), 100, np.uint16)], posterior)
