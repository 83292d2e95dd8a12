"""Fidelity without ground truth: the error to the underlying signal, estimated by splitting the
noise (binomial thinning).

Photon counts y ~ Poisson(s) split into two independent halves: A ~ Binomial(y, 1/2) and
B = y - A are independent Poisson(s / 2) images of one specimen. A reconstruction r made from
A alone is independent of B, so

    E[(r - B)^2] = E[(r - s/2)^2] + Var(B),   Var(B) = E[B] = s/2,

and ``mean((r - B)^2) - mean(B)`` estimates the squared error of r to the noise-free signal
s / 2 without bias, pixel for pixel, though nobody knows s.

Camera data (ADU = offset + gain * (photo-electrons + read noise)) are first converted to
photo-electrons with the gain and offset estimated from the image itself (mean-variance:
noise variance grows with the mean with slope = gain, see :func:`estimate_camera`), rounded
and split. Read noise and an offset that is not exactly right make the electrons' variance
differ from their mean by a constant, v0 = Var(e) - E[e] (the intercept of the mean-variance
line in electrons); the halves then have Var(B) = E[B] + v0 / 4, and the estimate subtracts
v0 / 4 as well. (Their read noise is shared, which a reconstruction that copies its input
pixel for pixel would turn into a small bias; a denoising one does not.)

The reconstruction is scored at the input's scale: A is doubled back to a full-dose image in
ADU (offset + gain * 2 A), reconstructed, and the estimated squared error is reported in ADU^2
of that scale (4 gain^2 times the half-dose error in electrons^2): the error of reconstructing
an image of half the dose, the only one the split allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "CameraModel",
    "SPLIT_KEYS",
    "SplitHalves",
    "SplitNoiseError",
    "estimate_camera",
    "thin",
    "split_halves",
    "split_noise_error",
    "split_noise_values",
]

# the estimate's numbers in a metrics row (evaluate's CSV, the napari tables)
SPLIT_KEYS = ("split_mse", "split_rmse", "split_psnr_db", "split_gain", "split_offset")


@dataclass(frozen=True)
class CameraModel:
    """ADU = offset + gain * electrons; ``intercept``: Var(e) - E[e] in electrons^2 at this
    offset (read noise variance, less the offset's error in electrons)."""

    gain: float
    offset: float
    intercept: float
    bins: int  # intensity bins the fit used

    def to_electrons(self, adu: np.ndarray) -> np.ndarray:
        return (np.asarray(adu, np.float64) - self.offset) / self.gain

    def to_adu(self, electrons: np.ndarray) -> np.ndarray:
        return self.offset + self.gain * np.asarray(electrons, np.float64)


# per axis, the second difference normalised to unit energy: applied along y and x it gives a
# 3x3 detail with the noise's variance whose response to a smooth signal falls as the 4th power
# of frequency (the 2x2 Haar diagonal detail used before fell as the 2nd: on diffraction-limited
# tubules 10% of its variance in the brightest pixels was structure, which biased the gain up
# by 5-20%; this one lets through 0.3%)
_D2 = np.array([1.0, -2.0, 1.0]) / np.sqrt(6.0)
# noise samples kept per call at most (a regular subsample beyond): enough for 40 bins of
# thousands, a bounded cost on a deep stack
_MAX_SAMPLES = 4_000_000


def _noise_pairs(
    plane: np.ndarray, step: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel at least 2 from the edges, every ``step`` pixels along y and x: (the mean of
    the 16 pixels around its 3x3, its 3x3 mean weighted (1 4 1) x (1 4 1) / 36, its noise
    sample, whether its neighbourhood touches a flat one). The separable second difference
    has the noise's variance and no response to a signal quadratic in y and in x over 3x3.
    Pixels are binned by the ring's mean, whose noise is independent of the 3x3's: binned by
    the 3x3 mean itself, a bin's mean would carry the noise that chose it, which spreads the
    bins along the mean and flattens the fitted gain (by 5-10% where the signal varies
    little)."""
    p = np.asarray(plane, np.float64)
    if min(p.shape) < 5:
        empty = np.zeros(0)
        return empty, empty, empty, np.zeros(0, bool)
    detail = ndimage.correlate1d(ndimage.correlate1d(p, _D2, axis=0), _D2, axis=1)
    # the mean weighted as the detail weighs the pixels' variances (the squared filter): the
    # detail's variance is then gain x this mean + c exactly, however curved the signal
    mean3 = ndimage.correlate1d(ndimage.correlate1d(p, _D2**2, axis=0), _D2**2, axis=1)
    ring = (25 * ndimage.uniform_filter(p, 5) - 9 * ndimage.uniform_filter(p, 3)) / 16
    # nine equal values are no noise sample: a blanked region (set to one value outside the
    # cell), a scale bar or saturation; nor is a 3x3 that reaches into one (its step is no
    # noise either), hence the 5x5 spread
    flat = ndimage.maximum_filter(p, 3) == ndimage.minimum_filter(p, 3)
    flat = ndimage.maximum_filter(flat, 5)
    inner = (slice(2, -2, step), slice(2, -2, step))  # the edges' reflected values are no noise
    return ring[inner].ravel(), mean3[inner].ravel(), detail[inner].ravel(), flat[inner].ravel()


def estimate_camera(
    planes: np.ndarray | list[np.ndarray], *, n_bins: int = 40, min_count: int = 100
) -> CameraModel:
    """Gain and offset of a camera from its images (2D planes in ADU), by mean-variance.

    Pixels whose 3x3 neighbourhood holds one value (blanked regions, saturation) are left out,
    with their neighbours. The noise sample of each pixel is its separable second difference,
    which a diffraction-limited signal hardly reaches. Pixels are grouped by the mean of the 16
    around their 3x3 into up to ``n_bins`` bins of equal counts (at least ``min_count`` each);
    in each, the mean of the pixels' 3x3 means (weighted as the detail weighs them) and the
    variance of their samples (without gross outliers) give one point of the line
    variance = gain * mean + c, fitted by least squares with each point weighted by its
    inverse standard error. On synthetic camera images the gain comes within 2% (1 sd) of the
    generator's, without bias. The offset is the one at which the electrons' variance equals
    their mean (read noise absorbed as shot noise, as the generalised Anscombe transform
    does), so ``intercept`` (Var(e) - E[e]) is 0.

    Raises:
        ValueError: a constant image, or a variance that does not grow with the mean (no
            shot noise to measure: not photon-limited data, or already denoised).
    """
    planes = [planes] if isinstance(planes, np.ndarray) and planes.ndim == 2 else list(planes)
    pixels = sum(max(0, p.shape[0] - 4) * max(0, p.shape[1] - 4) for p in planes)
    step = max(1, int(np.ceil(np.sqrt(pixels / _MAX_SAMPLES))))
    rings, means, diffs, flat = zip(*(_noise_pairs(p, step) for p in planes))
    keep = ~np.concatenate(flat)
    r, m, d = (np.concatenate(v)[keep] for v in (rings, means, diffs))
    if m.size < min_count * 3 or np.ptp(m) == 0:
        raise ValueError(
            f"estimate_camera: the image is too small or constant ({m.size} pixels with "
            f"noise, {3 * min_count} needed)"
        )
    mu, var, w = _binned_variances(r, m, d, n_bins, min_count)
    if len(mu) < 3 or np.ptp(mu) == 0:
        raise ValueError("estimate_camera: too few intensity levels to fit a mean-variance line")
    # weights: the inverse standard error of each bin's variance (~ var / sqrt(count)), so that
    # the few bright bins, whose variances are large and uncertain in proportion, do not
    # dominate
    gain, c = np.polyfit(mu, var, 1, w=np.sqrt(w) / np.maximum(var, 1e-12))
    if not gain > 0:
        raise ValueError(
            f"estimate_camera: the noise variance does not grow with the mean (slope {gain:.3g}):"
            " no shot noise to measure; these data are not photon-limited or were processed"
        )
    # The offset at which the electrons' variance equals their mean (the line through the
    # origin in electrons): the read noise is then absorbed as if it were shot noise, the two
    # halves of a split are uncorrelated (at another offset the counts it adds or removes
    # correlate them, which biases the score of a reconstruction that keeps some of the
    # noise), and the intercept is 0 by construction.
    offset = -c / gain
    intercept = (c + gain * offset) / gain**2
    return CameraModel(float(gain), float(offset), float(intercept), len(mu))


def _binned_variances(key: np.ndarray, m: np.ndarray, d: np.ndarray, n_bins: int, min_count: int):
    """Pixels grouped by ``key`` into bins of equal counts: each bin's mean of local means
    ``m``, robust noise variance of its details ``d``, and count (float64 arrays)."""
    order = np.argsort(key, kind="stable")
    # small images: fewer, fuller bins
    n_bins = max(3, min(n_bins, m.size // min_count))
    edges = np.linspace(0, m.size, n_bins + 1).astype(int)
    mu, var, count = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        idx = order[lo:hi]
        if idx.size < min_count:
            continue
        x = d[idx]
        # the variance without gross outliers (a hot pixel, an edge of structure) beyond 6
        # MADs: the MAD alone is biased low on a bin whose pixels differ in variance (a mixture
        # has heavy tails) and is too coarse for the few values of low photon counts
        centre = np.median(x)
        spread = 6 * 1.4826 * np.median(np.abs(x - centre))
        var.append(x[np.abs(x - centre) <= spread].var() if spread > 0 else x.var())
        mu.append(m[idx].mean())
        count.append(idx.size)
    return np.array(mu), np.array(var), np.array(count, float)


def thin(counts: np.ndarray, rng: np.random.Generator, p: float = 0.5):
    """Binomial thinning of non-negative integer counts: (A ~ Bin(counts, p), counts - A)."""
    k = np.asarray(counts)
    if k.size and (k.min() < 0 or not np.all(np.equal(np.mod(k, 1), 0))):
        raise ValueError("thin: counts must be non-negative integers")
    k = k.astype(np.int64)
    a = rng.binomial(k, p)
    return a, k - a


@dataclass(frozen=True)
class SplitHalves:
    """One binomial split of an image: ``full``, part A (a ``fraction`` of the photo-electrons)
    scaled back to a full-dose image in the input's dtype and scale (what the model
    reconstructs), and ``b``, the rest in photo-electrons (what the reconstruction is scored
    against), with the ``camera``. The halves of the noise-split estimate are fraction 1/2."""

    full: np.ndarray
    b: np.ndarray
    camera: CameraModel
    fraction: float = 0.5
    # per pixel, the variance that rounding the electrons to counts added (f (1 - f) for a
    # fractional part f, by dithered rounding); None: 1/12 everywhere
    rounding_var: np.ndarray | None = None

    def squared_error(self, recon: np.ndarray) -> np.ndarray:
        """Per pixel, an unbiased estimate of the squared error of ``recon`` (a
        reconstruction of ``full``, ADU) to the noise-free signal, in ADU^2 of the input's
        scale: noisy pixel by pixel (it can be negative), exact on average."""
        cam, q = self.camera, 1.0 - self.fraction
        r = cam.to_electrons(recon)  # the reconstruction's estimate of the signal s
        # B / q estimates s with Var(B / q) = E[B] / q^2 + v0, v0 = the intercept plus the
        # variance that rounding to counts adds (thinning keeps q^2 of the excess variance)
        rounding = 1 / 12 if self.rounding_var is None else self.rounding_var
        return cam.gain**2 * ((r - self.b / q) ** 2 - self.b / q**2 - (cam.intercept + rounding))


def split_halves(
    image: np.ndarray,
    *,
    camera: CameraModel | None = None,
    seed: int = 0,
    what: str = "split_halves",
    fraction: float = 0.5,
) -> SplitHalves:
    """Split a plane or a (Z, Y, X) volume (ADU or photon counts) into two independent parts,
    A with ``fraction`` of the photo-electrons (scaled back to full dose) and B with the rest
    (camera estimated from the image when None); fraction 1/2: the noise-split estimate's."""
    plane = np.asarray(image)
    if plane.ndim not in (2, 3):
        raise ValueError(
            f"{what}: expected a 2D plane or a (Z, Y, X) volume, got shape {plane.shape}"
        )
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{what}: the fraction of part A must lie in (0, 1), got {fraction}")
    cam = camera or estimate_camera(list(plane) if plane.ndim == 3 else plane)
    rng = np.random.default_rng(seed)
    # dithered rounding (down or up with the odds that keep the mean), whose added variance
    # f (1 - f) is known pixel by pixel: plain rounding of counts scaled by an estimated
    # gain near 1 (photon counts) moves whole ranges of counts by one, which biased the
    # estimate by more than the error of a good denoiser
    value = np.clip(cam.to_electrons(plane), 0, None)
    frac = value - np.floor(value)
    electrons = np.floor(value) + (rng.random(value.shape) < frac)
    a, b = thin(electrons, rng, fraction)
    full = cam.to_adu(a / fraction)
    if plane.dtype.kind in "ui":
        info = np.iinfo(plane.dtype)
        full = np.clip(np.rint(full), info.min, info.max)
    return SplitHalves(full.astype(plane.dtype), b, cam, fraction, frac * (1 - frac))


@dataclass
class SplitNoiseError:
    """The estimate and what it rests on; errors in ADU^2 of the input's (full-dose) scale."""

    mse: float  # estimated mean squared error to the noise-free signal
    rmse: float  # sqrt(max(mse, 0))
    psnr_db: float | None  # 10 log10(data_range^2 / mse), None when mse <= 0
    data_range: float
    gain: float
    offset: float
    intercept: float
    pixels: int

    def to_dict(self, prefix: str = "split_") -> dict[str, float | None]:
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}


def split_noise_error(
    image: np.ndarray,
    reconstruct: Callable[[np.ndarray], np.ndarray],
    *,
    camera: CameraModel | None = None,
    data_range: float | None = None,
    seed: int = 0,
) -> SplitNoiseError:
    """Estimate the squared error of ``reconstruct`` to the noise-free signal of ``image``.

    Args:
        image: a 2D plane, or a volume (Z, Y, X) for a 3D reconstruction, in ADU (camera) or
            photon counts, any numeric dtype.
        reconstruct: maps an image of the same shape, dtype and scale to its reconstruction
            (e.g. ``TrainedModel.reconstruct``; for a volume, with its axes).
        camera: gain and offset; estimated from ``image`` (all planes of a volume) when None
            (photon-count data come out with a gain near 1 and an offset near 0).
        data_range: for the PSNR; by default the image's 0.1-99.9 percentile range.
        seed: of the binomial split.

    Returns:
        The estimate, in ADU^2 of the input's scale (see the module docstring).
    """
    plane = np.asarray(image)
    halves = split_halves(plane, camera=camera, seed=seed, what="split_noise_error")
    recon = np.asarray(reconstruct(halves.full), np.float64)
    mse = float(np.mean(halves.squared_error(recon)))
    cam = halves.camera
    if data_range is None:
        lo, hi = np.percentile(plane, [0.1, 99.9])
        data_range = float(hi - lo) or 1.0
    psnr = 10 * np.log10(data_range**2 / mse) if mse > 0 else None
    return SplitNoiseError(
        mse=mse,
        rmse=float(np.sqrt(max(mse, 0.0))),
        psnr_db=None if psnr is None else float(psnr),
        data_range=float(data_range),
        gain=cam.gain,
        offset=cam.offset,
        intercept=cam.intercept,
        pixels=int(plane.size),
    )


def split_noise_values(
    image: np.ndarray, reconstruct: Callable[[np.ndarray], np.ndarray], *, seed: int = 0
) -> tuple[dict[str, float], str | None]:
    """The estimate of :func:`split_noise_error` as a metrics row's numbers (``SPLIT_KEYS``,
    NaN for a PSNR without one) and None; or every number NaN and the reason where the
    plane's noise cannot be measured (no camera or photon-count statistics)."""
    try:
        est = split_noise_error(image, reconstruct, seed=seed)
    except ValueError as exc:
        return dict.fromkeys(SPLIT_KEYS, float("nan")), str(exc)
    d = est.to_dict()
    return {k: float("nan") if d[k] is None else float(d[k]) for k in SPLIT_KEYS}, None
