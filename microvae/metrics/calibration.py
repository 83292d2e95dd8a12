"""Is the predicted spread right? Calibration of a reconstruction's uncertainty, with and without
ground truth.

A model that gives, per pixel, a reconstruction and a predicted standard deviation (the spread
of its posterior draws, :meth:`microvae.inference.TrainedModel.posterior`) is calibrated when,
among the pixels it predicts a variance v for, the squared error to the true signal averages v.
Binning the pixels by predicted variance and comparing each bin's mean predicted variance with
its mean squared error gives the calibration curve; the slope of error against prediction
(through the origin, each bin weighted by the inverse square of its standard error) sums it
up: 1 is calibrated, above 1 the model is overconfident, below 1 underconfident.

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

from .thinning import CameraModel, estimate_camera, split_halves

__all__ = [
    "FRACTIONS",
    "CalibrationCurve",
    "SpreadFit",
    "calibration_curve",
    "extrapolate_slope",
    "fit_spread",
    "split_calibration",
    "split_errors",
]

# the fractions of the photo-electrons the model sees in fit_spread's two splits
FRACTIONS = (0.25, 0.35, 0.5)


@dataclass(frozen=True)
class CalibrationCurve:
    """Per bin of predicted variance: ``predicted`` (mean predicted variance), ``observed``
    (mean squared error: true, or estimated by the noise split), ``stderr`` (the standard
    error of ``observed``, from the spread of the bin's per-pixel errors), ``pixels``; and
    ``slope``, observed against predicted through the origin, each bin weighted by the
    inverse of its squared standard error (1: calibrated; the factor by which the predicted
    variance should be scaled), with its standard error ``slope_stderr`` (bins taken as
    independent). Units: the image's squared."""

    predicted: np.ndarray
    observed: np.ndarray
    stderr: np.ndarray
    pixels: np.ndarray
    slope: float
    slope_stderr: float

    def to_dict(self) -> dict:
        return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in asdict(self).items()}


def calibration_curve(
    predicted_var: np.ndarray, squared_error: np.ndarray, *, bins: int = 10
) -> CalibrationCurve:
    """Bin pixels into ``bins`` equally populated bins of ``predicted_var`` and compare each
    bin's mean predicted variance with its mean ``squared_error`` (any shape, the same).

    The slope weighs each bin by 1 / stderr^2: the noise split's per-pixel errors are noisy in
    proportion to the noise variance, so its brightest bins, which a weighting by pixels and
    prediction would let decide, are the least certain (their standard error was 20-40% of
    their mean on four 256^2 synthetic images, against a few % for the middle bins)."""
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
    stderr = np.array([se[g].std() / np.sqrt(g.size) for g in groups])
    pixels = np.array([len(g) for g in groups])
    # errors known exactly (a stderr of 0) would take all the weight: floor it
    floor = 1e-6 * max(float(stderr.max()), 1e-300)
    w = 1.0 / np.maximum(stderr, floor) ** 2
    denom = float(np.sum(w * predicted**2))
    if denom > 0:
        slope, slope_se = float(np.sum(w * predicted * observed) / denom), denom**-0.5
    else:
        slope = slope_se = float("nan")
    return CalibrationCurve(predicted, observed, stderr, pixels, slope, float(slope_se))


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
    fraction: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the predicted variance and the noise-split estimate of the squared error
    (float64, the image's shape and units squared) that :func:`split_calibration` bins; to
    pool several images into one curve, concatenate these and call
    :func:`calibration_curve`. ``fraction``: of the photo-electrons the model sees (the
    rest score it), 1/2 for the noise split."""
    halves = split_halves(
        np.asarray(image), camera=camera, seed=seed, what="split_calibration", fraction=fraction
    )
    recon, std = posterior(halves.full)
    error = halves.squared_error(np.asarray(recon, np.float64))
    return np.asarray(std, np.float64) ** 2, error


@dataclass(frozen=True)
class SpreadFit:
    """What :func:`fit_spread` measured: per fraction of the dose the model saw, the
    calibration curve (``curves``, in the order of ``fractions``); ``slope``, the error over
    the predicted variance extrapolated to the full dose, with its standard error; and
    ``scale`` = sqrt(slope), the factor by which the predicted standard deviation should be
    multiplied, with its standard error."""

    fractions: tuple[float, ...]
    curves: tuple[CalibrationCurve, ...]
    slope: float
    slope_stderr: float

    @property
    def scale(self) -> float:
        return float(np.sqrt(self.slope))

    @property
    def scale_stderr(self) -> float:
        return self.slope_stderr / (2 * self.scale)

    def to_dict(self) -> dict:
        return {
            "fractions": list(self.fractions),
            "slopes": [c.slope for c in self.curves],
            "slope_stderrs": [c.slope_stderr for c in self.curves],
            "slope": self.slope,
            "slope_stderr": self.slope_stderr,
            "scale": self.scale,
            "scale_stderr": self.scale_stderr,
            "curves": [c.to_dict() for c in self.curves],
        }


def extrapolate_slope(
    fractions: tuple[float, ...],
    slopes: tuple[float, ...],
    stderrs: tuple[float, ...] | None = None,
) -> tuple[float, float]:
    """The calibration slope at the full dose from slopes measured at ``fractions`` of it: a
    line in 1 / fraction, fitted by least squares (weighted by 1 / stderrs^2 where given),
    evaluated at 1. Returns (slope, its standard error; NaN without ``stderrs``).

    Why a line in 1/fraction: a model's predicted spread hardly changes with the dose of its
    input while its error does, and the noise a reconstruction passes on (and so much of its
    error) grows as the noise variance, in proportion to 1 / dose; a linear denoiser's error
    is exactly a + b / dose. On synthetic images, with the ground truth, the slopes of a
    trained model at doses 1/4, 1/2, 3/4 and 1 (4.24, 2.62, 2.06, 1.75) lie near such a
    line (extrapolated from the first three: 1.80). Why no fraction above 1/2: the part that
    scores the reconstruction then holds less than half the dose, and its estimate's bias
    from an error in the estimated gain grows as 1 / (1 - fraction)^2 (at 3/4 it read
    slopes 30-40% low on synthetic images).
    """
    if len(fractions) != len(slopes) or len(fractions) < 2:
        raise ValueError("extrapolate_slope: needs a slope for each of two or more fractions")
    x = np.stack([np.ones(len(fractions)), 1.0 / np.asarray(fractions, np.float64)], 1)
    y = np.asarray(slopes, np.float64)
    w = np.ones_like(y) if stderrs is None else 1.0 / np.asarray(stderrs, np.float64) ** 2
    cov = np.linalg.inv(x.T @ (w[:, None] * x))
    coef = cov @ x.T @ (w * y)
    at_one = np.array([1.0, 1.0])
    se = float(np.sqrt(at_one @ cov @ at_one)) if stderrs is not None else float("nan")
    return float(at_one @ coef), se


def fit_spread(
    images: list[np.ndarray],
    posterior: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    *,
    fractions: tuple[float, ...] = FRACTIONS,
    bins: int = 10,
    seed: int = 0,
) -> SpreadFit:
    """Fit the factor by which ``posterior``'s standard deviation should be scaled, without
    ground truth.

    The noise split measures the model on part of the dose only; so every image is split at
    each of ``fractions`` (the model sees that fraction of the photo-electrons, scaled back to
    full dose, and the rest score it, :func:`split_errors`), pixels are pooled over the images
    per fraction into a calibration curve, and the curves' slopes are extrapolated to the full
    dose (:func:`extrapolate_slope`).

    Args:
        images: planes or (Z, Y, X) volumes in ADU or photon counts, as ``posterior`` takes
            them.
        posterior: maps an image to (reconstruction, predicted standard deviation), both in
            the image's units, uncalibrated.
        fractions, bins, seed: the doses, the curves' bins and the splits' seed.

    Raises:
        ValueError: an image whose noise cannot be measured (no camera or photon-count
            statistics; the message says which), or slopes too noisy to fit (not positive).
    """
    pooled: list[tuple[list, list]] = [([], []) for _ in fractions]
    for image in images:
        image = np.asarray(image)
        camera = estimate_camera(list(image) if image.ndim == 3 else image)
        for (pv, err), fraction in zip(pooled, fractions):
            p, e = split_errors(image, posterior, camera=camera, seed=seed, fraction=fraction)
            pv.append(p.ravel())
            err.append(e.ravel())
    curves = tuple(
        calibration_curve(np.concatenate(pv), np.concatenate(err), bins=bins) for pv, err in pooled
    )
    slopes = tuple(c.slope for c in curves)
    slope, slope_se = extrapolate_slope(
        tuple(fractions), slopes, tuple(c.slope_stderr for c in curves)
    )
    if not all(k > 0 for k in (*slopes, slope)):
        raise ValueError(
            "fit_spread: the noise split's error estimates are too noisy to fit a scale "
            f"(slopes {', '.join(f'{k:.3g}' for k in slopes)} at fractions {fractions}, "
            f"{slope:.3g} at full dose); give more or larger images"
        )
    return SpreadFit(tuple(fractions), curves, slope, slope_se)
