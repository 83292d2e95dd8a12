"""Is the predicted spread right? Calibration of a reconstruction's uncertainty, with and without
ground truth.

A model that gives, per pixel, a reconstruction and a predicted standard deviation (the spread
of its posterior draws, :meth:`microvae.inference.TrainedModel.posterior`) is calibrated when,
among the pixels it predicts a variance v for, the squared error to the true signal averages v.
Binning the pixels by predicted variance and comparing each bin's mean predicted variance with
its mean squared error gives the calibration curve; the slope of error against prediction
(through the origin, weighted by the pixels) sums it up: 1 is calibrated, above 1 the model is
overconfident, below 1 underconfident.

With ground truth (synthetic data) the squared error is known pixel by pixel. Without it, the
noise split gives it: the image's photo-electrons are thinned into two independent halves
(:func:`~microvae.metrics.thinning.split_halves`), the model reconstructs half A (doubled back
to full dose) and predicts its spread, and half B scores it:
``(r/2 - B)^2 - B - v0/4`` is, pixel by pixel, an unbiased (if noisy) estimate of the squared
error of r to the signal. Averaged over a bin's thousands of pixels, it gives that bin's true
error without ground truth. As in the noise-split PSNR, what is measured is the model on an
image of half the dose. To our knowledge this ground-truth-free calibration check is new; it is
validated against the ground truth on synthetic data (tests, and benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from .thinning import CameraModel, split_halves

__all__ = ["CalibrationCurve", "calibration_curve", "split_calibration", "split_errors"]


@dataclass(frozen=True)
class CalibrationCurve:
    """Per bin of predicted variance: ``predicted`` (mean predicted variance), ``observed``
    (mean squared error: true, or estimated by the noise split), ``pixels``; and ``slope``,
    observed against predicted through the origin weighted by pixels (1: calibrated; the
    factor by which the predicted variance should be scaled). Units: the image's squared."""

    predicted: np.ndarray
    observed: np.ndarray
    pixels: np.ndarray
    slope: float

    def to_dict(self) -> dict:
        return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in asdict(self).items()}


def calibration_curve(
    predicted_var: np.ndarray, squared_error: np.ndarray, *, bins: int = 10
) -> CalibrationCurve:
    """Bin pixels into ``bins`` equally populated bins of ``predicted_var`` and compare each
    bin's mean predicted variance with its mean ``squared_error`` (any shape, the same)."""
    pv = np.asarray(predicted_var, np.float64).ravel()
    se = np.asarray(squared_error, np.float64).ravel()
    if pv.shape != se.shape:
        raise ValueError(f"calibration: {pv.size} predicted variances but {se.size} errors")
    if bins < 1 or pv.size < bins:
        raise ValueError(f"calibration: {pv.size} pixels cannot fill {bins} bins")
    order = np.argsort(pv, kind="stable")
    groups = np.array_split(order, bins)
    predicted = np.array([pv[g].mean() for g in groups])
    observed = np.array([se[g].mean() for g in groups])
    pixels = np.array([len(g) for g in groups])
    denom = float(np.sum(pixels * predicted**2))
    slope = float(np.sum(pixels * predicted * observed) / denom) if denom > 0 else float("nan")
    return CalibrationCurve(predicted, observed, pixels, slope)


def split_calibration(
    image: np.ndarray,
    posterior: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    *,
    bins: int = 10,
    camera: CameraModel | None = None,
    seed: int = 0,
) -> CalibrationCurve:
    """The calibration curve of ``posterior`` on ``image`` without ground truth.

    Args:
        image: a plane or a (Z, Y, X) volume in ADU or photon counts.
        posterior: maps an image of the same shape, dtype and scale to (reconstruction,
            predicted standard deviation), both in the image's units (e.g.
            ``lambda x: (p := model.posterior(x, samples=16)).mmse, p.std``).
        bins, camera, seed: as :func:`calibration_curve` and
            :func:`~microvae.metrics.split_noise_error`.

    Raises:
        ValueError: where the image's noise cannot be measured (no camera or photon-count
            statistics), as the noise-split estimate does.
    """
    predicted, error = split_errors(image, posterior, camera=camera, seed=seed)
    return calibration_curve(predicted, error, bins=bins)


def split_errors(
    image: np.ndarray,
    posterior: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    *,
    camera: CameraModel | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the predicted variance and the noise-split estimate of the squared error
    (float64, the image's shape and units squared) that :func:`split_calibration` bins; to
    pool several images into one curve, concatenate these and call
    :func:`calibration_curve`."""
    halves = split_halves(np.asarray(image), camera=camera, seed=seed, what="split_calibration")
    recon, std = posterior(halves.full)
    error = halves.squared_error(np.asarray(recon, np.float64))
    return np.asarray(std, np.float64) ** 2, error
